"""From events to deliveries, and from each try back to the endpoint's health.

Every handler runs in the transaction of what it hears: a ticket change's deliveries are written with the change
(a change rolled back sends nothing), an SLA point's with the tick's batch, a CSAT answer's with the answer. Each
endpoint's delivery of one event has its own `msg_` id and a dedupe key on (endpoint, ticket event), so an event
reaches an endpoint once.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from mets import events, transaction
from mets.models import Entity, SlaRule, Ticket, User
from mets.models.webhooks import WebhookEndpoint
from mets.services.directory import access
from mets.services.outbox import http as hooks
from mets.services.tickets.payload import instant, person, reply_payload, ticket_payload
from mets.services.webhooks import endpoints as admin
from mets.services.webhooks.types import CSAT_ANSWERED, FROM_TICKET_EVENT

_ENDPOINTS = "webhooks.endpoints"  # transaction.cache: the active endpoints heard by an entity's tickets


def listeners(session, entity: Entity) -> list[WebhookEndpoint]:
    """The active endpoints of `entity` and of the entities above it (read once per transaction and entity)."""
    cache = transaction.cache(session).setdefault(_ENDPOINTS, {})
    if entity.id not in cache:
        # Reading them must not flush the change half-done (the SLA tick writes tickets in bulk).
        with session.no_autoflush:
            ids = [e.id for e in access.lineage(session, entity)]
            cache[entity.id] = list(session.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.entity_id.in_(ids), WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)))
    return cache[entity.id]


def wanted(session, entity: Entity, event_type: str) -> bool:
    """Whether any active endpoint heard by `entity`'s tickets subscribes to `event_type`."""
    return any(event_type in (endpoint.event_types or []) for endpoint in listeners(session, entity))


def queue_event(session, entity: Entity, event_type: str, data: dict, *, key: str, now: datetime,
                ticket: Ticket | None = None, event_name: str | None = None) -> int:
    """One delivery of `{"type", "timestamp", "data"}` per endpoint that subscribes to `event_type`; how many."""
    queued = 0
    for endpoint in listeners(session, entity):
        if event_type in (endpoint.event_types or []):
            queued += admin.queue_for(session, endpoint, event_type, data, ticket=ticket, event_name=event_name,
                                      dedupe_key=f"endpoint:{endpoint.id}:{key}", now=now) is not None
    return queued


# --- what the payloads say ------------------------------------------------------------------------------------

def _changes(session, changes: dict) -> dict:
    """An event's changes as integrators read them: people by email, entities by slug, rules by name (the
    payload's rule: never an internal id); other values as recorded."""
    shown = {}
    for name, value in (changes or {}).items():
        pair = value if isinstance(value, list) and len(value) == 2 else None
        if name == "assignee_id" and pair:
            users = [session.get(User, v) if v else None for v in pair]
            shown["assignee"] = [u.email if u else None for u in users]
        elif name == "entity_id" and pair:
            entities = [session.get(Entity, v) if v else None for v in pair]
            shown["entity"] = [e.slug if e else None for e in entities]
        elif name == "sla_rule_id" and pair:
            rules = [session.get(SlaRule, v) if v else None for v in pair]
            shown["sla_rule"] = [r.name if r else None for r in rules]
        elif name == "policy_id" or name.endswith("_id"):
            continue
        else:
            shown[name] = value
    return shown


def ticket_data(session, ticket: Ticket, *, changes: dict, actor: User | None, reply=None) -> dict:
    """The `data` of a ticket event: the ticket (tickets.payload's shape), what changed, who did it, the reply."""
    data = {"ticket": ticket_payload(ticket), "changes": _changes(session, changes), "actor": person(actor)}
    if reply is not None:
        data["reply"] = reply_payload(reply)
    return data


# --- the handlers ----------------------------------------------------------------------------------------------

def ticket_changed(session, change, actor: User | None, now: datetime) -> int:
    """Queue each event of one ticket change for the endpoints that want it."""
    queued = 0
    for event in change.events:
        event_type = FROM_TICKET_EVENT.get(event.event)
        if event_type is None:
            continue
        if not wanted(session, change.ticket.entity, event_type):
            continue  # no payload to build (the SLA and escalation ticks emit thousands of changes)
        reply = change.reply if event.event == "reply_added" else None
        data = ticket_data(session, change.ticket, changes=event.changes, actor=actor, reply=reply)
        queued += queue_event(session, change.ticket.entity, event_type, data, key=f"event:{event.id}", now=now,
                              ticket=change.ticket, event_name=event.event)
    return queued


def _on_sla_event(session, ticket: Ticket, event: dict) -> None:
    event_type = FROM_TICKET_EVENT[event["event"]]
    if not wanted(session, ticket.entity, event_type):
        return
    data = ticket_data(session, ticket, changes=event["changes"], actor=None)
    queue_event(session, ticket.entity, event_type, data, key=f"event:{event['id']}", now=event["at"], ticket=ticket,
                event_name=event["event"])


def csat_answered(session, response, now: datetime) -> None:
    ticket = response.ticket
    data = {"ticket": ticket_payload(ticket),
            "survey": {"score": response.score, "comment": response.comment, "answered_at": instant(now),
                       "sent_at": instant(response.sent_at),
                       "agent": person(session.get(User, response.agent_id) if response.agent_id else None)}}
    # A changed answer is news again: the key names this answer's instant.
    queue_event(session, ticket.entity, CSAT_ANSWERED, data, key=f"csat:{response.id}:{now.isoformat()}", now=now,
                ticket=ticket, event_name="csat_answered")


def attempted(session, endpoint_id: int, outcome: str, response_code: int | None, now: datetime) -> None:
    """Keep the endpoint's health after a try: a success clears `failing_since`; a 410 Gone disables it at once;
    a failure WEBHOOK_DISABLE_AFTER_DAYS after the first failure since the last success disables it."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # two workers failing at once disable (and mail) once
    endpoint = session.scalar(query)
    if endpoint is None or not endpoint.active:
        return
    if outcome == "sent":
        endpoint.failing_since = None
        return
    if response_code == 410:
        admin.disable(session, endpoint, reason="The receiver answered 410 Gone: it asked for no more deliveries.",
                      now=now, by_system=True)
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        return
    days = current_app.config["WEBHOOK_DISABLE_AFTER_DAYS"]
    if now - endpoint.failing_since >= timedelta(days=days):
        since = instant(endpoint.failing_since)
        admin.disable(session, endpoint, now=now, by_system=True,
                      reason=f"Every delivery failed for {days:g} days (since {since}).")


def init_app(app) -> None:
    """Hear ticket changes, the SLA tick's points, CSAT answers and the HTTP channel's tries."""
    # A schedule that does not parse fails here, at start, not in the middle of someone's ticket change.
    hooks.parse_schedule(app.config["WEBHOOK_RETRY_SCHEDULE"])
    events.subscribe(events.TICKET_CHANGED, ticket_changed)
    for name in events.TICK_EVENTS:
        events.subscribe(name, _on_sla_event)
    events.subscribe(events.CSAT_ANSWERED, csat_answered)
    events.subscribe(events.WEBHOOK_ATTEMPTED, attempted)
