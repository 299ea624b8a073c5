"""The staff ticket list: filters, sorting and pagination, always scoped to what the user may see."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import PRIORITIES, STATUSES, Ticket, TicketAlias, User
from mets.services.directory import access
from mets.services.validation import parse_id, parse_int

SORTS = {
    "updated": Ticket.updated_at,
    "created": Ticket.created_at,
    "number": Ticket.id,
    "priority": case({p: i for i, p in enumerate(PRIORITIES)}, value=Ticket.priority),
    "status": case({s: i for i, s in enumerate(STATUSES)}, value=Ticket.status),
    "subject": Ticket.subject,
    "sla": Ticket.sla_nearest_due,
}
# SLA filters: "breached" = a running clock is past due; "due_1h"/"due_4h" = due within that wall time.
SLA_FILTERS = {"breached": None, "due_1h": timedelta(hours=1), "due_4h": timedelta(hours=4)}
# "active" is the default view: everything not yet resolved or closed.
STATUS_FILTERS = ("active", *STATUSES, "all")


@dataclass
class TicketFilters:
    entity_id: int | None = None
    status: str = "active"
    priority: str = ""
    assignee: str = ""  # "", "mine", "unassigned" or a user id
    q: str = ""
    sla: str = ""
    sort: str = "updated"
    direction: str = "desc"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "TicketFilters":
        """Read query-string arguments, dropping anything unknown instead of failing."""
        f = cls()
        f.entity_id = parse_id(args.get("entity"))
        f.status = args.get("status", "active") if args.get("status", "active") in STATUS_FILTERS else "active"
        f.priority = args.get("priority", "") if args.get("priority", "") in PRIORITIES else ""
        assignee = args.get("assignee", "")
        f.assignee = assignee if assignee in {"mine", "unassigned"} else str(parse_id(assignee) or "")
        f.q = args.get("q", "").strip()[:100]
        f.sla = args.get("sla", "") if args.get("sla", "") in SLA_FILTERS else ""
        f.sort = args.get("sort", "updated") if args.get("sort") in SORTS else "updated"
        f.direction = "asc" if args.get("dir") == "asc" else "desc"
        f.page = parse_int(args.get("page"), 1)
        return f

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (sort headers, pages) that keep the other filters."""
        values = {"entity": self.entity_id or "", "status": self.status, "priority": self.priority,
                  "assignee": self.assignee, "q": self.q, "sla": self.sla, "sort": self.sort, "dir": self.direction,
                  "page": self.page}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}


@dataclass
class TicketPage:
    items: list[Ticket]
    total: int
    page: int
    per_page: int
    filters: TicketFilters
    pages: int = field(init=False)

    def __post_init__(self):
        self.pages = max(1, -(-self.total // self.per_page))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered_query(session, user: User, f: TicketFilters, now: datetime | None = None):
    """A select of the tickets matching the filters (not the sort or page), among those `user` may see: the list,
    the views' counts and bulk changes of "all matching" all read through it."""
    query = access.scope_tickets(select(Ticket), session, user)
    if f.entity_id:
        query = query.where(Ticket.entity_id == f.entity_id)
    if f.status == "active":
        query = query.where(Ticket.status.notin_(("resolved", "closed")))
    elif f.status != "all":
        query = query.where(Ticket.status == f.status)
    if f.priority:
        query = query.where(Ticket.priority == f.priority)
    if f.assignee == "mine":
        query = query.where(Ticket.assignee_id == user.id)
    elif f.assignee == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    elif f.assignee:
        query = query.where(Ticket.assignee_id == int(f.assignee))
    if f.sla:
        # sla_nearest_due holds only running clocks (paused and stopped ones are None).
        now = now or clock.now()
        window = SLA_FILTERS[f.sla]
        query = query.where(Ticket.sla_nearest_due <= now) if window is None else \
            query.where(Ticket.sla_nearest_due > now, Ticket.sla_nearest_due <= now + window)
    if f.q:
        # Shapes that PostgreSQL's trigram indexes serve (migration 0002): numbers are stored upper-case.
        pattern = f"%{_escape_like(f.q)}%"
        moved = select(TicketAlias.ticket_id).where(TicketAlias.number.like(pattern.upper(), escape="\\"))
        query = query.where(or_(func.lower(Ticket.subject).like(pattern.lower(), escape="\\"),
                                Ticket.number.like(pattern.upper(), escape="\\"), Ticket.id.in_(moved)))
    return query


def search_tickets(session, user: User, f: TicketFilters, per_page: int = 25,
                   now: datetime | None = None) -> TicketPage:
    """One page of tickets matching the filters, among those `user` may see."""
    query = filtered_query(session, user, f, now)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    order = SORTS[f.sort].asc() if f.direction == "asc" else SORTS[f.sort].desc()
    if f.sort == "sla":
        order = order.nulls_last()  # tickets without a running clock after those with one
    pages = max(1, -(-total // per_page))
    page = min(f.page, pages)
    f.page = page
    rows = session.scalars(
        query.order_by(order, Ticket.id.desc()).limit(per_page).offset((page - 1) * per_page)
        .options(selectinload(Ticket.entity), selectinload(Ticket.customer), selectinload(Ticket.assignee),
                 selectinload(Ticket.sla_rule))
    )
    return TicketPage(items=list(rows), total=total, page=page, per_page=per_page, filters=f)


def matching_ids(session, user: User, f: TicketFilters, limit: int) -> list[int]:
    """The ids of at most `limit` tickets matching the filters, among those `user` may see (bulk "all matching")."""
    return list(session.scalars(filtered_query(session, user, f).with_only_columns(Ticket.id)
                                .order_by(Ticket.id).limit(limit)))


def customer_tickets(session, customer: User) -> list[Ticket]:
    """The portal's list: a customer's own tickets (access scopes them), the latest changed first."""
    query = access.scope_tickets(select(Ticket), session, customer).order_by(Ticket.updated_at.desc())
    return list(session.scalars(query))
