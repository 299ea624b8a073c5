"""Staying current on an open ticket page: what changed since the page was loaded, and who else has it open.

The page polls (`/tickets/<number>/live`) with the version it shows (`tickets.version`, bumped by every change);
an unchanged version costs nothing beyond loading the ticket. A reply form carries the version it was loaded at,
and `unseen_changes` says what others did since (a colleague's or the customer's reply, a note, a status or
assignee change), so the page holds the reply instead of sending a second answer to the customer; `held_reply`
compares under the ticket row's lock, which the reply then keeps until it commits.

Presence is one row per (ticket, staff member), refreshed by each poll. Every read ignores rows older than the
window (`presence_window`), so who counts as viewing never depends on when rows are deleted; the periodic
`presence_prune` job (mets.jobs) deletes them later (`prune_viewers`), and no page does. Only staff are recorded
(the portal never calls this), and only staff names are ever read back.
"""
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

from mets.models import Ticket, TicketEvent, TicketViewer, User
from mets.models.tickets import STATUS_LABELS
from mets.services.directory import access

# Changes by others that hold a public reply: what the customer was told or asked, and who works the ticket.
HOLDING_EVENTS = ("reply_added", "status_changed", "assigned_to_changed")
PRUNE_AFTER = timedelta(minutes=10)  # rows this old are deleted (reads ignore them after the window anyway)
MAX_LIST_IDS = 100  # ticket ids one poll of the list asks about (a page shows TICKETS_PER_PAGE)


def presence_window(poll_seconds: int) -> timedelta:
    """How long a ticket page's viewer counts as there without a poll: three missed polls, at least a minute."""
    return timedelta(seconds=max(60, 3 * poll_seconds))


@dataclass(frozen=True)
class Unseen:
    """One change the replier has not seen: "Bea Billing" "replied" at."""

    who: str
    what: str
    at: datetime
    public_reply: bool = False


def unseen_changes(session, ticket: Ticket, viewer: User, since_version: int | None) -> list[Unseen]:
    """What others (people, rules, the system) did to the ticket after `since_version` that a reply should take
    into account, oldest first; [] when nothing (or the version is unknown: a client that does not say)."""
    if since_version is None or since_version >= ticket.version:
        return []
    rows = session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.version > since_version,
               TicketEvent.event.in_(HOLDING_EVENTS),
               or_(TicketEvent.actor_id.is_(None), TicketEvent.actor_id != viewer.id))
        .options(joinedload(TicketEvent.actor), joinedload(TicketEvent.rule))
        .order_by(TicketEvent.version, TicketEvent.id)).all()
    replies = {(r.actor_id, r.at) for r in rows if r.event == "reply_added"}
    assignee_ids = {r.changes["assignee_id"][1] for r in rows if r.event == "assigned_to_changed"} - {None}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(assignee_ids))).tuples().all()) \
        if assignee_ids else {}
    out = []
    for row in rows:
        if row.event == "status_changed" and (row.actor_id, row.at) in replies:
            continue  # the status the reply itself moved (a customer's reply reopens): the reply says it
        out.append(Unseen(_who(row), _what(row, names), row.at,
                          public_reply=row.event == "reply_added" and not row.changes.get("internal")))
    return out


def lock(session, ticket: Ticket) -> None:
    """Hold the ticket's row until the transaction ends, and read it again as it is now, under that lock: on
    PostgreSQL SELECT ... FOR UPDATE (a concurrent change, which bumps the version, waits, as this waits for it);
    SQLite has no row locks but one writer at a time, so a write takes the database's lock first (the reply would
    take it anyway): `version` set to itself, which no trigger watches (migration 0010's watch subject, body and
    customer)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version)
                        .execution_options(synchronize_session=False))
    session.refresh(ticket, with_for_update=True)


def held_reply(session, ticket: Ticket, viewer: User, since_version: int | None, internal: bool) -> list[Unseen]:
    """Whether a reply from a form loaded at `since_version` is held, compared under the ticket's lock (`lock`), so
    that of two agents sending on one version at the same instant the second sees the first's reply and is held:
    what others did since (`unseen_changes`), or [] to send. Internal notes are never held: they reach no
    customer, so they cannot answer one twice. The caller writes the reply in this transaction, under the lock."""
    lock(session, ticket)
    return [] if internal else unseen_changes(session, ticket, viewer, since_version)


def _who(row: TicketEvent) -> str:
    if row.actor is not None:
        return row.actor.name
    if row.rule is not None:
        return f"Rule “{row.rule.name}”"
    return "METS"


def _what(row: TicketEvent, names: dict[int, str]) -> str:
    if row.event == "reply_added":
        return "added an internal note" if row.changes.get("internal") else "replied"
    if row.event == "status_changed":
        new = row.changes["status"][1]
        return f"set the status to {STATUS_LABELS.get(new, new)}"
    new = row.changes["assignee_id"][1]
    return f"assigned the ticket to {names.get(new, 'someone')}" if new else "unassigned the ticket"


# --- presence ---------------------------------------------------------------------------------------------------

def record_viewer(session, ticket: Ticket, viewer: User, now: datetime) -> None:
    """`viewer` (staff) has the ticket's page open now: one upsert."""
    if not viewer.is_staff:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(TicketViewer.__table__).values(ticket_id=ticket.id, user_id=viewer.id, last_seen=now)
    session.execute(statement.on_conflict_do_update(index_elements=["ticket_id", "user_id"],
                                                    set_={"last_seen": now}))


def check_in(session, ticket: Ticket, viewer: User, now: datetime, window: timedelta) -> list[tuple[int, str]]:
    """A poll: record `viewer` and answer who else is viewing (one upsert, one indexed read)."""
    record_viewer(session, ticket, viewer, now)
    return viewers(session, ticket, viewer, now, window)


def prune_viewers(session, now: datetime, window: timedelta = PRUNE_AFTER) -> int:
    """Delete presence rows nobody has refreshed for PRUNE_AFTER, or for the presence `window` if that is longer
    (a row still inside it is someone viewing): an indexed range on last_seen. The periodic job's work."""
    result = session.execute(delete(TicketViewer).where(TicketViewer.last_seen < now - max(PRUNE_AFTER, window)))
    return result.rowcount or 0


def _viewers_query(viewer: User, now: datetime, window: timedelta):
    return (select(TicketViewer.ticket_id, User.id, User.name)
            .join(User, User.id == TicketViewer.user_id)
            .where(TicketViewer.last_seen >= now - window, TicketViewer.user_id != viewer.id,
                   User.kind == "staff", User.active.is_(True))
            .order_by(User.name, User.id))


def viewers(session, ticket: Ticket, viewer: User, now: datetime, window: timedelta) -> list[tuple[int, str]]:
    """(id, name) of the other staff with this ticket open (seen within `window`), by name: one indexed query."""
    rows = session.execute(_viewers_query(viewer, now, window).where(TicketViewer.ticket_id == ticket.id))
    return [(user_id, name) for _, user_id, name in rows]


def viewers_by_ticket(session, ticket_ids, viewer: User, now: datetime, window: timedelta) -> dict[int, list[str]]:
    """For the list: the names of the other staff viewing each of these (already scoped) tickets, in one query."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    out: dict[int, list[str]] = {}
    for ticket_id, _, name in session.execute(_viewers_query(viewer, now, window)
                                              .where(TicketViewer.ticket_id.in_(ids))):
        out.setdefault(ticket_id, []).append(name)
    return out


def list_viewers(session, user: User, ticket_ids, now: datetime, window: timedelta) -> dict[int, list[str]]:
    """For the list's poll: each of these tickets that `user` may see, with the names of the other staff viewing it
    ([] for none). Ids out of the user's scope (or of no ticket) are left out, as if never asked: two reads."""
    ids = sorted(set(ticket_ids))[:MAX_LIST_IDS]
    if not ids:
        return {}
    visible = list(session.scalars(access.scope_tickets(select(Ticket.id).where(Ticket.id.in_(ids)), session, user)))
    names = viewers_by_ticket(session, visible, user, now, window)
    return {ticket_id: names.get(ticket_id, []) for ticket_id in visible}


def badges_key(viewing: dict[int, list[str]]) -> str:
    """What the list remembers of the viewer badges it shows, to tell a change: a short digest ("" for none)."""
    shown = sorted((ticket_id, names) for ticket_id, names in viewing.items() if names)
    return hashlib.blake2s(repr(shown).encode(), digest_size=8).hexdigest() if shown else ""


def viewers_key(others: list[tuple[int, str]]) -> str:
    """What the page remembers of who else is viewing, to tell a change in presence: their ids."""
    return ",".join(str(user_id) for user_id in sorted(user_id for user_id, _ in others))
