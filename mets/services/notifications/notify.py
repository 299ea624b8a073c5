"""Notifications: which change mails whom, rendered from the templates into the outbox.

Called in the transaction of the change (`services.tickets` for people's changes, the SLA tick
for warnings, breaches and escalations), so a notification exists exactly when its change does.
Each row's dedupe key is (ticket event, recipient): the same event can never mail anyone twice.
"""
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mets.models import Membership, Reply, Ticket, User
from mets import events, transaction
from mets.services import outbox
from mets.services.directory import access
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables
from mets.services.notifications import settings as notification_settings
from mets.services.notifications.settings import EVENTS, FROM_TICKET_EVENT

FINISHED = {"resolved", "closed"}
ENDPOINT_DISABLED = "webhook-endpoint-disabled"  # a shipped-only template
MUTED = "notifications"  # transaction.muted(session, MUTED): history written without mailing anyone
_LOOKUPS = "notifications.lookups"  # transaction.cache: settings and member lists by what they depend on


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    audience: str  # "customer" or "staff"


def ticket_changed(session, change, actor: User | None, now: datetime) -> int:
    """Queue the notifications for every event of one `services.tickets` change; returns how many."""
    kinds = {e.event for e in change.events}
    queued = 0
    for event in change.events:
        if event.event == "status_changed" and "reply_added" in kinds:
            continue  # the reply's own email tells the story; no second mail for its status side effect
        reply = change.reply if event.event == "reply_added" else None
        queued += notify_event(session, change.ticket, ticket_event=event.event, event_id=event.id, actor=actor,
                               changes=event.changes, reply=reply, now=now)
    return queued


def notify_event(session, ticket: Ticket, *, ticket_event: str, event_id: int, actor: User | None,
                 changes: dict, now: datetime, reply: Reply | None = None) -> int:
    """Queue one email per recipient of this event, as the entity's settings say; returns how many."""
    key = FROM_TICKET_EVENT.get(ticket_event)
    if key is None or transaction.is_muted(session, MUTED):
        return 0
    if ticket_event == "escalation_due" and (changes or {}).get("policy_id"):
        return 0  # a policy's level says who hears of it (its notify action; "settings" means these)
    spec = EVENTS[key]
    # Settings, members and templates do not depend on the change being made: reading them must
    # not flush it half-done (the SLA tick would then write each ticket twice).
    with session.no_autoflush:
        setting = _cached(session, ("settings", ticket.entity_id),
                          lambda: notification_settings.effective_all(session, ticket.entity))[key]
        public_reply = reply is not None and not reply.internal
        if not setting.enabled or (ticket.status in FINISHED and key != "status_changed" and not public_reply):
            # Nobody hears about a finished ticket unless the news is that it finished, or it is a
            # public reply: an agent's answer to a follow-up on a resolved ticket still reaches the customer.
            return 0
        chosen = recipients(session, ticket, setting, actor, internal=bool(reply and reply.internal))
        if not chosen:
            return 0
        shared = mail_variables.ticket_values(ticket, actor=actor, reply=reply, changes=changes, now=now)
        return sum(_queue_one(session, ticket, spec, recipient, shared, event_id=event_id, now=now)
                   for recipient in chosen)


def _queue_one(session, ticket, spec, recipient: Recipient, shared: dict, *, event_id, now) -> int:
    template = spec.template_for(recipient.audience)
    variables = {**shared, **mail_variables.recipient_values(ticket, audience=recipient.audience,
                                                              recipient_name=recipient.name or "",
                                                              recipient_email=recipient.email)}
    rendered = mail_templates.render(session, ticket.entity, template, variables)
    if recipient.audience == "customer":
        rendered = mail_templates.ensure_portal_link(rendered, variables["portal_url"])
    row = outbox.queue_message(
        session, to=recipient.email, name=recipient.name, subject=rendered.subject, text=rendered.text,
        html=rendered.html, audience=recipient.audience, priority=spec.priority, entity=ticket.entity,
        ticket=ticket, event_name=spec.key, template_name=template, template_data=_plain(variables),
        dedupe_key=f"event:{event_id}:{recipient.email}", now=now)
    return 1 if row is not None else 0


def _plain(variables: dict) -> dict:
    """What the admin's message page shows of the data (the portal link is a credential: not kept)."""
    return {k: v for k, v in variables.items() if k not in ("portal_url",) and not k.endswith("_html")
            and not (k == "ticket_url" and "/portal/auth/" in str(v))}


def recipients(session, ticket: Ticket, setting, actor: User | None, internal: bool) -> list[Recipient]:
    """Who gets this event's email: the setting's choices, never the actor, customers never internal notes."""
    customer_ok = bool(EVENTS[setting.event].customer_template) and not internal
    found = people(session, ticket, set(setting.recipients), setting.extra_addresses, customer_ok=customer_ok)
    if actor is not None and not (setting.event == "ticket_created" and actor.id == ticket.customer_id):
        # Nobody is told about their own change; but a customer's new ticket earns them a receipt.
        found.pop(actor.email, None)
    return list(found.values())


def people(session, ticket: Ticket, chosen: set[str], extra_addresses=(), *,
           customer_ok: bool = True) -> dict[str, Recipient]:
    """The active people behind recipient choices (customer, assignee, agents, managers, admins), by email."""
    found: dict[str, Recipient] = {}

    def add(user: User | None, audience: str = "staff") -> None:
        if user is not None and user.active and user.email not in found:
            found[user.email] = Recipient(user.email, user.name, audience)

    if "customer" in chosen and customer_ok:
        add(ticket.customer, "customer")
    if "assignee" in chosen:
        add(ticket.assignee)
    if chosen & {"agents", "managers"}:
        managers_only = "agents" not in chosen
        for user in _cached(session, ("members", ticket.entity_id, managers_only),
                            lambda: _members(session, ticket, managers_only)):
            add(user)
    if "admins" in chosen:
        for user in _cached(session, ("admins",), lambda: list(session.scalars(
                select(User).where(User.is_admin.is_(True), User.kind == "staff")))):
            add(user)
    for address in extra_addresses:
        found.setdefault(address, Recipient(address, None, "staff"))
    return found


def _cached(session, key: tuple, load):
    """Settings and member lists, loaded once per transaction (the SLA tick notifies in bulk)."""
    cache = transaction.cache(session).setdefault(_LOOKUPS, {})
    if key not in cache:
        cache[key] = load()
    return cache[key]


def _members(session, ticket: Ticket, managers_only: bool) -> list[User]:
    """Staff members of the ticket's entity or an entity above it (they all work its tickets)."""
    entity_ids = [e.id for e in access.lineage(session, ticket.entity)]
    query = (select(User).join(Membership, Membership.user_id == User.id)
             .where(Membership.entity_id.in_(entity_ids), User.kind == "staff").order_by(User.id))
    if managers_only:
        query = query.where(Membership.role == "manager")
    return list(session.scalars(query).unique())


def entity_managers(session, entity) -> list[User]:
    """The active staff who manage `entity` or an entity above it; the admins when nobody does (someone must hear)."""
    entity_ids = [e.id for e in access.lineage(session, entity)]
    managers = list(session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.entity_id.in_(entity_ids), Membership.role == "manager", User.kind == "staff",
               User.active.is_(True)).order_by(User.id)).unique())
    return managers or list(session.scalars(select(User).where(User.is_admin.is_(True), User.kind == "staff",
                                                               User.active.is_(True)).order_by(User.id)))


def webhook_endpoint_disabled(session, endpoint, *, reason: str, admin_url: str, now: datetime) -> int:
    """Mail the endpoint's entity's managers that METS disabled it, and why (shipped template
    `webhook-endpoint-disabled`); returns how many mails were queued."""
    tz = endpoint.entity.timezone or "UTC"
    variables = {"entity_name": endpoint.entity.name, "endpoint_url": endpoint.url,
                 "endpoint_description": endpoint.description or "", "reason": reason, "endpoint_admin_url": admin_url,
                 "disabled_at": f"{now.astimezone(ZoneInfo(tz)).strftime('%a %Y-%m-%d %H:%M')} {tz}"}
    queued = 0
    for user in entity_managers(session, endpoint.entity):
        rendered = mail_templates.render_shipped(ENDPOINT_DISABLED, {**variables, "recipient_name": user.name or ""})
        row = outbox.queue_message(
            session, to=user.email, name=user.name, subject=rendered.subject, text=rendered.text, html=rendered.html,
            audience="staff", entity=endpoint.entity, event_name="webhook_endpoint_disabled",
            template_name=ENDPOINT_DISABLED,
            # One mail per disabling: enabling and failing again is news again.
            dedupe_key=f"webhook-disabled:{endpoint.id}:{now.isoformat()}:{user.email}", now=now)
        queued += row is not None
    return queued


def _on_sla_event(session, ticket: Ticket, event: dict) -> None:
    notify_event(session, ticket, ticket_event=event["event"], event_id=event["id"], actor=None,
                 changes=event["changes"], now=event["at"])


def init_app(app) -> None:
    """Queue the notifications of every ticket change and of every SLA point the tick fires."""
    events.subscribe(events.TICKET_CHANGED, ticket_changed)
    for name in events.TICK_EVENTS:
        events.subscribe(name, _on_sla_event)
