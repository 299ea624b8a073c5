"""The SLA tick: find tickets whose warning or breach point has passed and act once.

Run every minute (jobs.sla_tick; `flask --app wsgi mets tick` once). It reads only tickets with
`sla_next_check_at <= now` (an indexed column `sla.refresh` keeps at the earliest pending
point), in batches, so an idle tick costs one index lookup however many tickets are open.

At most once: each point is inserted into `sla_firings`, whose unique key (ticket, clock,
point, cycle) refuses a second insert; only the rows this tick actually inserted emit events.
On PostgreSQL, batches are also claimed with FOR UPDATE SKIP LOCKED, so ticks running at once
split the work instead of colliding.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from mets import clock, events
from mets.models import SlaFiring, SlaPause, Ticket, TicketEvent
from mets.services import bulk_ids, sla

EVENTS = {"breach": "sla_breach_occurred"}  # anything else is a warning
WARNING_EVENT = "sla_breach_warning"

@dataclass
class TickResult:
    tickets: int = 0
    fired: list[tuple[int, str, str]] = field(default_factory=list)  # (ticket id, clock, point)


def due_batches(session, due_at, now: datetime, batch_size: int, *options):
    """The tickets whose due instant `due_at` (an indexed column of tickets) has passed, in batches: each locked on
    PostgreSQL with SKIP LOCKED, so that ticks running at once share the work, and committed once the caller has
    handled it. The SLA tick, escalation levels and satisfaction surveys all find their work this way. It ends when
    nothing is due, or when a batch holds only tickets already handled (a due instant that did not move: never
    loop)."""
    seen: set[int] = set()
    while True:
        query = select(Ticket).where(due_at <= now).order_by(due_at, Ticket.id).limit(batch_size).options(*options)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Ticket)
        batch = session.scalars(query).all()
        if not batch or {t.id for t in batch} <= seen:
            return
        yield batch
        seen.update(t.id for t in batch)
        session.commit()


def tick(session, now: datetime | None = None, batch_size: int = 500) -> TickResult:
    """Act on every point due at `now`; commits after each batch."""
    now = now or clock.now()
    result = TickResult()
    for batch in due_batches(session, Ticket.sla_next_check_at, now, batch_size,
                             selectinload(Ticket.sla_rule), selectinload(Ticket.entity)):
        _process(session, batch, now, result)
    events.emit(events.TICK, session, now)  # escalation levels (and whatever else keeps its own due instants)
    return result


def _process(session, batch: list[Ticket], now: datetime, result: TickResult) -> None:
    ids = [t.id for t in batch]
    pauses = pauses_by_ticket(session, ids)
    fired = sla.fired_keys(session, ids)
    due_points = []
    for ticket in batch:
        pending = sla.refresh(session, ticket, now, pauses=pauses[ticket.id], fired=fired[ticket.id])
        due_points += [(ticket, p) for p in pending if p.at <= now]
        later = next((p.at for p in pending if p.at > now), None)
        if ticket.sla_next_check_at != later:
            # Every point up to now is done. Set before the handlers run, so a rule that changes the ticket
            # re-times it last, and the ticket's columns go out in one UPDATE with what refresh changed.
            ticket.sla_next_check_at = later
    inserted = _insert_firings(session, due_points, now)
    for ticket, point in due_points:  # inserted now or by another tick: either way, done
        fired[ticket.id].add(point.key)
    by_id = {t.id: t for t in batch}
    emitted = [_event(ticket_id, clock_name, point_name, due_at, now)
               for ticket_id, clock_name, point_name, _cycle, due_at in inserted]
    if emitted:
        table = TicketEvent.__table__
        if ids := bulk_ids.take(session, table, len(emitted)):  # PostgreSQL: the ids first, then one executemany
            for event, event_id in zip(emitted, ids):
                event["id"] = event_id
            session.connection().execute(insert(table), emitted)
        else:  # RETURNING makes SQLAlchemy send many rows per INSERT instead of one statement per row.
            ids = session.connection().execute(
                insert(table).returning(TicketEvent.id, sort_by_parameter_order=True), emitted).scalars()
            for event, event_id in zip(emitted, ids):
                event["id"] = event_id  # handlers key what they write on it (e.g. the outbox's dedupe key)
        # An open ticket page polls the version: the new lines of its activity trail show up there. Moved here, not
        # by an UPDATE ... version + 1 of its own: the batch's rows are locked (FOR UPDATE on PostgreSQL; SQLite's
        # one writer), so the loaded version is the row's, and it goes out in the ticket's one UPDATE of the flush
        # (a second UPDATE per ticket cost as much again at a million tickets: every index of the row, each time).
        for ticket_id in {e["ticket_id"] for e in emitted}:
            by_id[ticket_id].version += 1
    for event in emitted:
        events.emit(event["event"], session, by_id[event["ticket_id"]], event)  # notify, automation, ...
        result.fired.append((event["ticket_id"], event["changes"]["clock"], event["changes"]["point"]))
    result.tickets += len(batch)
    session.flush()


def pauses_by_ticket(session, ids) -> dict[int, list]:
    """Each ticket's SLA pauses ((started, ended), oldest first) in one query: the tick's batches read them so."""
    out: dict[int, list] = {i: [] for i in ids}
    rows = session.execute(select(SlaPause.ticket_id, SlaPause.started_at, SlaPause.ended_at)
                           .where(SlaPause.ticket_id.in_(ids)).order_by(SlaPause.started_at))
    for ticket_id, started, ended in rows:
        out[ticket_id].append((started, ended))
    return out


def _insert_firings(session, due_points, now: datetime) -> list:
    """Insert the points; the unique key drops any another tick already recorded. Returns the new ones."""
    if not due_points:
        return []
    rows = [{"ticket_id": t.id, "clock": p.clock, "point": p.name, "cycle": p.cycle, "due_at": p.at,
             "fired_at": now, "suppressed": False} for t, p in due_points]
    table = SlaFiring.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=["ticket_id", "clock", "point", "cycle"])
    key = (table.c.ticket_id, table.c.clock, table.c.point, table.c.cycle, table.c.due_at)
    if ids := bulk_ids.take(session, table, len(rows)):
        # PostgreSQL: the ids first, the rows in one executemany (pipelined), then which of those ids exist: the
        # points this tick inserted (an id is the sequence's, never another tick's; a conflicting row is skipped).
        for row, row_id in zip(rows, ids):
            row["id"] = row_id
        session.connection().execute(statement, rows)
        return session.connection().execute(select(*key).where(table.c.id.in_(ids)).order_by(table.c.id)).all()
    # Core executemany: one compiled statement, rows sent in pages ("insertmanyvalues").
    return session.connection().execute(statement.returning(*key), rows).all()


def _event(ticket_id: int, clock_name: str, point_name: str, due_at: datetime, now: datetime) -> dict:
    """The ticket_events row for one fired point (written in bulk; the audit trail shows it)."""
    return {"ticket_id": ticket_id, "event": EVENTS.get(point_name, WARNING_EVENT), "actor_id": None, "at": now,
            "changes": {"clock": clock_name, "point": point_name, "due": due_at.isoformat()}}
