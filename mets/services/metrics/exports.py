"""CSV exports of the ticket list (its filters, its scope) and the SLA report, streamed.

Both read one statement through a server-side cursor (`yield_per`, `BATCH` rows at a time, newest first) and yield
lines as they go, so a million tickets never sit in memory: a batch is read, written and dropped before the next.
The lines come from `tables.csv_lines` (one CSV writer, spreadsheet formulas neutralised), fed a `Table` whose rows
are a generator.
Scoping is the list's own: `search.filtered_query` under `directory.access`.
"""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased, selectinload

from mets.models import Entity, SlaPause, Ticket, User
from mets.services import sla
from mets.services.metrics.tables import Column, Table, csv_lines
from mets.services.tickets import payload
from mets.services.tickets.search import TicketFilters, filtered_query

BATCH = 1000
CLOCKS = ("response", "next_reply", "resolution")

TICKET_COLUMNS = (Column("Number", "text"), Column("Entity", "text"), Column("Subject", "text"),
                  Column("Status", "text"), Column("Priority", "text"), Column("Category", "text"),
                  Column("Customer", "text"), Column("Assignee", "text"), Column("Escalation level"),
                  Column("SLA nearest due", "instant"), Column("Created", "instant"), Column("Updated", "instant"),
                  Column("Resolved", "instant"))


def _matching_ids(session, user: User, f: TicketFilters, now: datetime):
    """The select of the matching ids, built now, in the request: the user's scope is read into it (the stream runs
    after the request's session is gone, so it must not need the user's row)."""
    return filtered_query(session, user, f, now).with_only_columns(Ticket.id)


def _batches(session, ids, columns, joins=()):
    """Rows of `columns` for the tickets `ids` selects, newest first, BATCH at a time, from one statement read through
    a server-side cursor on PostgreSQL (`yield_per`: the rows come as they are written, never all at once)."""
    query = select(*columns).select_from(Ticket)
    for target, on in joins:
        query = query.outerjoin(target, on)
    result = session.execute(query.where(Ticket.id.in_(ids)).order_by(Ticket.id.desc())
                             .execution_options(yield_per=BATCH))
    yield from result.partitions()


def ticket_csv(session, user: User, f: TicketFilters, now: datetime):
    """The filtered ticket list as CSV lines (a generator: the caller streams it)."""
    customer, assignee = aliased(User), aliased(User)
    columns = (Ticket.id, Ticket.number, Entity.slug, Ticket.subject, Ticket.status, Ticket.priority,
               Ticket.category, customer.email, assignee.email, Ticket.escalation_level, Ticket.sla_nearest_due,
               Ticket.created_at, Ticket.updated_at, Ticket.resolved_at)
    joins = ((Entity, Entity.id == Ticket.entity_id), (customer, customer.id == Ticket.customer_id),
             (assignee, assignee.id == Ticket.assignee_id))

    ids = _matching_ids(session, user, f, now)

    def rows():
        for batch in _batches(session, ids, columns, joins):
            for row in batch:
                yield tuple(row)[1:]
    return csv_lines(Table("tickets", "Tickets", TICKET_COLUMNS, rows()))


SLA_COLUMNS = (Column("Number", "text"), Column("Entity", "text"), Column("Status", "text"),
               Column("Priority", "text"), Column("SLA rule", "text"),
               *(c for clock in CLOCKS for c in (
                   Column(f"{sla.CLOCK_LABELS[clock]} due", "instant"),
                   Column(f"{sla.CLOCK_LABELS[clock]} result", "text"),
                   Column(f"{sla.CLOCK_LABELS[clock]} business", "minutes"))))


def sla_report_csv(session, user: User, f: TicketFilters, now: datetime):
    """Per matching ticket: its SLA rule, and per clock its due instant, met or breached and the business minutes
    used, as the ticket page's SLA panel computes them (`sla.clocks`), as CSV lines (a generator)."""
    matching = _matching_ids(session, user, f, now)

    def rows():
        for batch in _batches(session, matching, (Ticket.id,)):
            ids = [row.id for row in batch]
            tickets = session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id.desc())
                                      .options(selectinload(Ticket.entity), selectinload(Ticket.sla_rule))).all()
            pauses: dict[int, list] = {}
            for pause in session.execute(select(SlaPause.ticket_id, SlaPause.started_at, SlaPause.ended_at)
                                         .where(SlaPause.ticket_id.in_(ids)).order_by(SlaPause.started_at)):
                pauses.setdefault(pause.ticket_id, []).append((pause.started_at, pause.ended_at))
            for ticket in tickets:
                states = {s.name: s for s in sla.clocks(session, ticket, now, pauses=pauses.get(ticket.id, []))}
                cells = [ticket.number, ticket.entity.slug, ticket.status, ticket.priority,
                         ticket.sla_rule.name if ticket.sla_rule else None]
                for clock in CLOCKS:
                    state = states.get(clock)
                    cells += [None, None, None] if state is None else \
                        [state.due, payload.clock_state(state), state.used.total_seconds() / 60]
                yield tuple(cells)
            for ticket in tickets:  # written: let them go (the session would keep every ticket of the export)
                session.expunge(ticket)
    return csv_lines(Table("sla_report", "SLA report", SLA_COLUMNS, rows()))
