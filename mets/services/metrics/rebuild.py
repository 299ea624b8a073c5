"""Rebuilding the metric rows of tickets from their `ticket_events` (`flask mets metrics-rebuild`, the demo's history).

For the tickets created in [since, until): delete their rows and write them again by replaying each ticket's events
through the event-time `Recorder`, in batches of tickets (idempotent: run it twice, get the same rows), and set the
tickets' reopen and public reply counters from the same replay.

The replay knows from the events what they record: the priority, the entity (a move), the assignee and the SLA
extension at each event, and who acted (staff or customer: their kind today). The SLA pauses are the `sla_pauses`
rows the SLA wrote at the time. What the events do not record is taken as it is now: the ticket's SLA rule (the one
it has now, for every row) and the calendars, so rows rebuilt after an hours or rule edit follow the edit; rows
written at event time, never rebuilt, do not.
"""
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from mets.models import Entity, ResponseMetric, Ticket, TicketEvent, User
from mets.services.metrics.recorder import Facts, Recorder, pauses_of


def rebuild(session, since: datetime, until: datetime | None = None, *, batch_size: int = 500,
            after_batch: Callable[[int], None] | None = None) -> int:
    """Rewrite the rows of the tickets created in [since, until); returns how many tickets.

    `after_batch(done)` runs after each batch is flushed (the command commits there, so a long rebuild never holds
    one huge transaction); the caller commits the last one.
    """
    done, last_id = 0, 0
    while True:  # keyset batches by id: memory stays flat however many tickets there are
        query = select(Ticket).where(Ticket.created_at >= since, Ticket.id > last_id)
        if until is not None:
            query = query.where(Ticket.created_at < until)
        batch = list(session.scalars(query.order_by(Ticket.id).limit(batch_size)
                                     .options(selectinload(Ticket.sla_rule), selectinload(Ticket.entity))
                                     .execution_options(populate_existing=True)))  # the counters as stored
        if not batch:
            return done
        rebuild_tickets(session, batch)
        done += len(batch)
        last_id = batch[-1].id
        if after_batch is not None:
            after_batch(done)


def rebuild_tickets(session, batch: list[Ticket]) -> None:
    """Delete and rewrite the rows (and counters) of these tickets from their events."""
    ids = [t.id for t in batch]
    session.execute(delete(ResponseMetric).where(ResponseMetric.ticket_id.in_(ids)))
    events: dict[int, list[TicketEvent]] = {tid: [] for tid in ids}
    for event in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids))
                                 .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)):
        events[event.ticket_id].append(event)
    actor_ids = {e.actor_id for evs in events.values() for e in evs if e.actor_id is not None}
    kinds = dict(session.execute(select(User.id, User.kind).where(User.id.in_(actor_ids))).tuples().all())
    pauses = pauses_of(session, ids)
    for ticket in batch:
        recorder = Recorder(session, ticket, [], pauses=pauses.get(ticket.id, []))
        for facts in _replay(session, ticket, events[ticket.id], kinds):
            recorder.apply(facts)
        ticket.reopen_count, ticket.public_reply_count = recorder.reopens, recorder.public_replies
    session.flush()


def _replay(session, ticket: Ticket, events: list[TicketEvent], kinds: dict[int, str]):
    """The facts of each event, the ticket's fields followed through the events' recorded changes."""
    first_move = next((e.changes["entity_id"] for e in events if "entity_id" in (e.changes or {})), None)
    entity_id = first_move[0] if first_move else ticket.entity_id
    priority, assignee_id, extension = ticket.priority, None, 0
    for event in events:
        changes = event.changes or {}
        if event.event == "ticket_created":
            priority = changes.get("priority", priority)
        elif "priority" in changes:
            priority = changes["priority"][1]
        if "assignee_id" in changes:
            assignee_id = changes["assignee_id"][1]
        if "entity_id" in changes:
            entity_id = changes["entity_id"][1]
        if "sla_extension_minutes" in changes:
            extension = changes["sla_extension_minutes"][1]
        kind = kinds.get(event.actor_id)
        yield Facts(event=event.event, changes=changes, at=event.at, actor_id=event.actor_id,
                    actor_is_staff=kind == "staff", actor_is_customer=kind == "customer",
                    entity=session.get(Entity, entity_id), priority=priority, assignee_id=assignee_id,
                    extension_minutes=extension, rule=ticket.sla_rule)
