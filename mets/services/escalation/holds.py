"""Held notices: a business-time level's mail waits while the desk is closed, then goes as one digest per person.

When a level of a `business_time` policy fires (by the tick, not by hand) and a `notify` recipient's desk is
closed, the mail is not queued: an `escalation_notices` row keeps it (rendered as it would have been sent),
`held_until` the desk's next opening. Whose hours: the ticket's entity's (`hours.calendar_for`, so a department
without hours of its own follows its parent's), which is also the recipient's own for the assignee, the entity's
managers, a named user of the entity and the notification settings' people; managers found further up (a
department without managers of its own, or the parent's managers) follow the hours of the entity they manage.
Manual escalations and calendar-time policies mail at once, as before.

`send_due` (run on every minute `tick`, after the levels) sends what is due: per recipient it claims every held
notice whose time has come with one `UPDATE ... SET sent_at WHERE sent_at IS NULL ... RETURNING` and writes the
outbox row in the same transaction, so each notice goes exactly once however many ticks run (a second claimer
waits on the rows' locks and then finds them taken), and an SMTP outage loses nothing (the outbox retries).
One notice is sent as it was rendered (`escalation-notification`, the dedupe key it would have had at once);
several as one `escalation-digest`. A notice about a ticket resolved or closed while it waited (now, or at any
time since it was held: a ticket reopened since is in a new round, whose levels speak for themselves) is
dropped, not sent: nobody needs to hear at 09:00 that a ticket solved at 05:00 was at risk at 03:00. So is one to
staff deactivated while it waited.
"""
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import selectinload

from mets import transaction
from mets.models import EscalationEvent, EscalationNotice, Ticket, TicketEvent, User
from mets.models.mail import CRITICAL
from mets.services import hours, outbox, sla
from mets.services.notifications import templates as mail_templates
from mets.services.notifications import variables as mail_variables

HOLD = "escalation.hold"  # transaction.scoped: the escalation event whose notices may be held (None: send now)
DIGEST = "escalation-digest"
SENT, DROPPED = "sent", "dropped"


def opens_at(session, entity, now: datetime) -> datetime | None:
    """When `entity`'s desk next opens, if it is closed at `now` (None: open now, or it never opens)."""
    cal = hours.calendar_for(session, entity)
    if cal.is_open(now):
        return None
    try:
        return cal.next_open(now)
    except ValueError:  # hours with no open time at all: holding would mean never; send now
        return None


def until_words(session, entity, at: datetime) -> str:
    """"Mon 09:00 (America/New_York)": a held notice's instant in the local time of the hours that hold it."""
    tz = hours.calendar_for(session, entity).timezone
    return f"{at.astimezone(ZoneInfo(tz)).strftime('%a %H:%M')} ({tz})"


def hold(session, *, event_id: int, ticket: Ticket, entity, email: str, name: str | None, user_id: int | None,
         level: int, reason: str, template: str, rendered, dedupe_key: str, until: datetime, now: datetime) -> bool:
    """Keep one rendered notice until `until`; False if this event already holds one for this address."""
    exists = session.scalar(select(EscalationNotice.id).where(EscalationNotice.escalation_event_id == event_id,
                                                              EscalationNotice.recipient_email == email))
    if exists:
        return False
    session.execute(insert(EscalationNotice).values(
        ticket_id=ticket.id, escalation_event_id=event_id, entity_id=entity.id, user_id=user_id,
        recipient_email=email, recipient_name=name, level_number=level, reason=reason, template_name=template,
        subject=rendered.subject, body=rendered.text, body_html=rendered.html, dedupe_key=dedupe_key,
        held_at=now, held_until=until))
    return True


# --- sending ------------------------------------------------------------------------------------------

@dataclass
class Sent:
    mails: int = 0  # outbox rows written (one per recipient and run)
    sent: int = 0  # notices in them
    dropped: int = 0


def _resolutions(session, notices: list[EscalationNotice]) -> dict[int, list[datetime]]:
    """When each notice's ticket was resolved or closed since the earliest of these notices was held."""
    since = min(n.held_at for n in notices)
    out: dict[int, list[datetime]] = {}
    for ticket_id, at, changes in session.execute(
            select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.changes)
            .where(TicketEvent.ticket_id.in_({n.ticket_id for n in notices}), TicketEvent.event == "status_changed",
                   TicketEvent.at >= since)):
        status = (changes or {}).get("status")
        if isinstance(status, list) and len(status) == 2 and status[1] in sla.STOPPED_STATUSES:
            out.setdefault(ticket_id, []).append(at)
    return out


def _dropped(notice: EscalationNotice, ticket: Ticket, resolved: dict[int, list[datetime]]) -> bool:
    """Resolved or closed now, or at any time since it was held (reopened since: that round is over)."""
    return (ticket.status in sla.STOPPED_STATUSES
            or any(at >= notice.held_at for at in resolved.get(notice.ticket_id, ())))


def _recipients_gone(session, notices: list[EscalationNotice]) -> set[int]:
    """The staff among these notices' recipients deactivated while the notices waited: nobody to tell any more."""
    ids = {n.user_id for n in notices if n.user_id is not None}
    if not ids:
        return set()
    return set(session.scalars(select(User.id).where(User.id.in_(ids), User.active.is_(False))))


def send_due(session, now: datetime, batch_size: int = 200) -> Sent:
    """Send every held notice due at `now`: one mail per recipient (a digest for several); commits per recipient."""
    result = Sent()
    while True:
        emails = session.scalars(
            select(EscalationNotice.recipient_email)
            .where(EscalationNotice.sent_at.is_(None), EscalationNotice.held_until <= now)
            .group_by(EscalationNotice.recipient_email).order_by(EscalationNotice.recipient_email)
            .limit(batch_size)).all()
        if not emails:
            return result
        for email in emails:
            _send_to(session, email, now, result)
            session.commit()


def _send_to(session, email: str, now: datetime, result: Sent) -> None:
    # The claim: whoever sets sent_at first owns these notices; another claimer waits on the row locks and then
    # matches nothing (PostgreSQL re-checks the WHERE after the wait; SQLite has one writer at a time).
    # On PostgreSQL the rows are locked in id order first, so two claimers never deadlock or split a digest.
    due = (select(EscalationNotice.id).where(EscalationNotice.recipient_email == email,
                                             EscalationNotice.sent_at.is_(None), EscalationNotice.held_until <= now)
           .order_by(EscalationNotice.id))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update()
    ids = session.scalars(
        update(EscalationNotice).where(EscalationNotice.id.in_(due.scalar_subquery()),
                                       EscalationNotice.sent_at.is_(None))
        .values(sent_at=now).returning(EscalationNotice.id)
        .execution_options(synchronize_session=False)).all()
    if not ids:
        return
    notices = session.scalars(select(EscalationNotice).where(EscalationNotice.id.in_(ids))
                              .order_by(EscalationNotice.held_at, EscalationNotice.id)
                              .execution_options(populate_existing=True)).all()
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_({n.ticket_id for n in notices}))
                                                .options(selectinload(Ticket.entity)))}
    resolved = _resolutions(session, notices)
    left = _recipients_gone(session, notices)
    keep = [n for n in notices if not _dropped(n, tickets[n.ticket_id], resolved) and n.user_id not in left]
    gone = [n.id for n in notices if n not in keep]
    if gone:
        session.execute(update(EscalationNotice).where(EscalationNotice.id.in_(gone)).values(outcome=DROPPED)
                        .execution_options(synchronize_session=False))
        result.dropped += len(gone)
    if not keep:
        return
    first = keep[0]
    ticket = tickets[first.ticket_id] if len({n.ticket_id for n in keep}) == 1 else None
    if len(keep) == 1:
        row = outbox.queue_message(
            session, to=email, name=first.recipient_name, subject=first.subject, text=first.body,
            html=first.body_html, audience="staff", priority=CRITICAL, entity=tickets[first.ticket_id].entity,
            ticket=tickets[first.ticket_id], event_name="escalation", template_name=first.template_name,
            dedupe_key=first.dedupe_key, now=now)
    else:
        rendered = render_digest(session, keep, tickets, now)
        row = outbox.queue_message(
            session, to=email, name=first.recipient_name, subject=rendered.subject, text=rendered.text,
            html=rendered.html, audience="staff", priority=CRITICAL, entity=first.entity, ticket=ticket,
            event_name="escalation", template_name=DIGEST,
            template_data={"notices": [n.id for n in keep]},
            dedupe_key=f"escalation-digest:{email}:{first.id}", now=now)
    session.flush()
    session.execute(update(EscalationNotice).where(EscalationNotice.id.in_([n.id for n in keep]))
                    .values(outcome=SENT if row is not None else DROPPED, email_id=row.id if row else None)
                    .execution_options(synchronize_session=False))
    if row is None:  # the address is refused now (the outbox logged why)
        result.dropped += len(keep)
        return
    result.mails += 1
    result.sent += len(keep)


def render_digest(session, notices: list[EscalationNotice], tickets: dict[int, Ticket], now: datetime):
    """The digest for one recipient: each held notice's ticket, level, why, and when (in its desk's time)."""
    events = {e.id: e for e in session.scalars(select(EscalationEvent).where(
        EscalationEvent.id.in_({n.escalation_event_id for n in notices})))}
    items = []
    for n in notices:
        ticket = tickets[n.ticket_id]
        tz = hours.calendar_for(session, n.entity).timezone
        link = mail_variables.recipient_values(ticket, audience="staff", recipient_name=n.recipient_name or "",
                                               recipient_email=n.recipient_email)["ticket_url"]
        event = events.get(n.escalation_event_id)
        items.append({"ticket_number": ticket.number, "ticket_subject": ticket.subject,
                      "escalation_level": n.level_number, "escalation_reason": n.reason,
                      "escalation_policy": event.policy_name if event else "",
                      "escalated_at": f"{n.held_at.astimezone(ZoneInfo(tz)).strftime('%a %Y-%m-%d %H:%M')} {tz}",
                      "priority": ticket.priority.capitalize(), "ticket_url": link})
    variables = {"recipient_name": notices[0].recipient_name or "", "count": len(items), "notices": items,
                 "ticket_numbers": ", ".join(dict.fromkeys(i["ticket_number"] for i in items))}
    # The desk's template: an admin's override of its entity (or above), else the default.
    return mail_templates.render(session, notices[0].entity, DIGEST, variables)


# --- what people see ------------------------------------------------------------------------------

def by_event(session, ticket: Ticket) -> dict[int, list[dict]]:
    """The ticket's held notices by escalation event: recipient and state in words ("held until Mon 09:00 (...)")."""
    out: dict[int, list[dict]] = {}
    for n in session.scalars(select(EscalationNotice).where(EscalationNotice.ticket_id == ticket.id)
                             .order_by(EscalationNotice.id).options(selectinload(EscalationNotice.entity))):
        if n.sent_at is None:
            words = f"held until {until_words(session, n.entity, n.held_until)}"
        elif n.outcome == DROPPED:
            words = "dropped: the ticket was resolved before the desk opened"
        else:
            words = f"held, sent {until_words(session, n.entity, n.sent_at)}"
        out.setdefault(n.escalation_event_id, []).append({"email": n.recipient_email, "words": words,
                                                         "held": n.sent_at is None})
    return out


def current_hold(session) -> int | None:
    """The escalation event whose notices may be held in this block (set by the engine for business-time levels)."""
    return transaction.current(session, HOLD)
