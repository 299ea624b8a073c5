"""The event-time side: `ticket_changed` writes the rows of each `services.tickets` change (subscribed in init_app).

It reads the ticket as the change left it: its subscriber runs before automation's, so the changes a rule makes
(changes of their own, emitted inside automation's turn) come after the change that caused them. A ticket with no
rows yet that is not being created (one from before migration 0017, or written while metrics were muted) gets its
rows from its whole history first, as the rebuild writes them, this change included; one created before the archive
horizon (`rollups.archived_before`: its rows may have been archived) only gets the rows of changes from now on, so an
archived row is never written again.
"""
from datetime import datetime

from sqlalchemy import select

from mets import transaction
from mets.models import ResponseMetric, Ticket
from mets.services.metrics.rebuild import rebuild_tickets
from mets.services.metrics.rollups import archived_before
from mets.services.metrics.recorder import MUTED, Facts, Recorder

MEASURED = {"ticket_created", "reply_added", "status_changed"}


def ticket_changed(session, change, actor, now: datetime) -> None:
    """Write the rows of one change, in its transaction."""
    if transaction.is_muted(session, MUTED):
        return
    ticket = change.ticket
    kinds = {e.event for e in change.events}
    if not kinds & MEASURED:
        return
    created = "ticket_created" in kinds
    with session.no_autoflush:  # (a ticket being created has none, unless a subscriber before this one wrote them)
        rows = list(session.scalars(select(ResponseMetric).where(ResponseMetric.ticket_id == ticket.id)))
    if not rows and not created and not _archived(session, ticket):
        rebuild_tickets(session, [ticket])
        return
    recorder = Recorder(session, ticket, rows)
    for event in change.events:
        recorder.apply(Facts(
            event=event.event, changes=event.changes or {}, at=event.at, actor_id=actor.id if actor else None,
            actor_is_staff=bool(actor and actor.is_staff), actor_is_customer=bool(actor and actor.is_customer),
            entity=ticket.entity, priority=ticket.priority, assignee_id=ticket.assignee_id,
            extension_minutes=ticket.sla_extension_minutes or 0, rule=ticket.sla_rule))
    # In SQL (x = x + 1): the change holds the ticket row's lock, and a stale loaded value never wins.
    if recorder.reopens:
        ticket.reopen_count = Ticket.reopen_count + recorder.reopens
    if recorder.public_replies:
        ticket.public_reply_count = Ticket.public_reply_count + recorder.public_replies
    session.flush()


def _archived(session, ticket) -> bool:
    horizon = archived_before(session)
    return horizon is not None and ticket.created_at.date() < horizon
