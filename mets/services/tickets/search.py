"""The staff ticket list: filters, sorting and pagination, always scoped to what the user may see."""
import re
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from markupsafe import Markup, escape
from sqlalchemy import and_, any_, bindparam, case, column, func, literal_column, or_, select, table
from sqlalchemy.orm import selectinload

from mets import clock
from mets.models import PRIORITIES, STATUSES, Ticket, TicketAlias, User
from mets.models.tickets import PRIORITY_RANK
from mets.services.directory import access
from mets.services.html import message_text
from mets.services.statements import Built
from mets.services.tickets import payload
from mets.services.validation import parse_id, parse_int

SORTS = {
    "updated": Ticket.updated_at,
    "created": Ticket.created_at,
    "number": Ticket.id,
    "priority": PRIORITY_RANK,  # served by its indexes (models/tickets.py)
    "status": case({s: i for i, s in enumerate(STATUSES)}, value=Ticket.status),
    "subject": Ticket.subject,
    "sla": Ticket.sla_nearest_due,
    "escalation": Ticket.escalation_level,
}
# SLA filters: "breached" = a running clock is past due; "due_1h"/"due_4h" = due within that wall time.
SLA_FILTERS = {"breached": None, "due_1h": timedelta(hours=1), "due_4h": timedelta(hours=4)}
# Escalation filters: the level reached at least (services/escalation raises it, resolving resets it).
ESCALATION_FILTERS = {"escalated": 1, "level_2": 2, "level_3": 3}
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
    escalation: str = ""
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
        f.escalation = args.get("escalation", "") if args.get("escalation", "") in ESCALATION_FILTERS else ""
        f.sort = args.get("sort", "updated") if args.get("sort") in SORTS else "updated"
        f.direction = "asc" if args.get("dir") == "asc" else "desc"
        f.page = parse_int(args.get("page"), 1)
        return f

    def as_args(self, **overrides) -> dict:
        """Query-string arguments for links (sort headers, pages) that keep the other filters."""
        values = {"entity": self.entity_id or "", "status": self.status, "priority": self.priority,
                  "assignee": self.assignee, "q": self.q, "sla": self.sla,
                  "escalation": self.escalation, "sort": self.sort, "dir": self.direction,
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
    # A search with more than COUNT_LIMIT hits: `total` is COUNT_LIMIT ("more than 1,000"), the pages stop there.
    capped: bool = False
    # With a search: per ticket id, an escaped excerpt of where it matched, the words in <mark>.
    snippets: dict[int, Markup] = field(default_factory=dict)
    pages: int = field(init=False)

    def __post_init__(self):
        self.pages = max(1, -(-self.total // self.per_page))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column, text: str, postgresql: bool):
    """`column` contains `text`, as a trigram index (migration 0002) serves it best. pg_trgm pads the start of each
    word inside a pattern: '%vat invoice%' looks up "  i", which every subject with a word starting with i has
    (60 ms at a million tickets). So on PostgreSQL the index is asked for each piece between separators (3
    characters or more, unpadded: '%vat%', '%invoice%') and strpos, which no index serves, checks the whole."""
    pieces = [piece for piece in re.split(r"[\W_]+", text) if len(piece) >= 3]
    if not postgresql or not pieces or pieces == [text]:
        return column.like(f"%{_escape_like(text)}%", escape="\\")
    return and_(*(column.like(f"%{_escape_like(piece)}%", escape="\\") for piece in pieces),
                func.strpos(column, text) > 0)


# Query words are cut as migration 0010 indexes text: lower case, ASCII punctuation as spaces, "_" dropped.
_WORDS = str.maketrans(string.punctuation.replace("_", ""), " " * (len(string.punctuation) - 1), "_")
MAX_WORDS = 8
# A search counts its hits up to COUNT_LIMIT: past it the list says "more than 1,000", shows the first 1,000 in
# the chosen sort alone (no ranking) and offers no page beyond them. Counting and ranking visit every hit.
COUNT_LIMIT = 1000


def search_words(q: str) -> tuple[list[str], bool]:
    """The words of a query (at most MAX_WORDS) and whether the last one is a prefix: it is when the
    query ends in it, as while typing ("inv" finds "invoice"), and not after punctuation ("100%" is 100)."""
    words = q.lower().translate(_WORDS).split()
    ends_in_word = bool(q) and q[-1] not in string.punctuation.replace("_", "") and not q[-1].isspace()
    return words[:MAX_WORDS], ends_in_word and len(words) <= MAX_WORDS


def _text_match(session, words: list[str], prefix: bool):
    """The full-text index's match for all `words` and its rank: on PostgreSQL two functions of the
    tsvector column; on SQLite the FTS5 query (ticket_id, rank) and None; None on other backends."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        terms = [f"'{w}'" for w in words]  # no ASCII punctuation in a word, so no quote to escape
        if prefix:
            terms[-1] += ":*"
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), " & ".join(terms))
        return (lambda vector: vector.op("@@")(tsquery)), (lambda vector: func.ts_rank(vector, tsquery))
    if dialect == "sqlite":
        terms = ['"' + w.replace('"', '""') + '"' for w in words]
        if prefix:
            terms[-1] += "*"
        fts = table("ticket_search", column("rowid"))
        # bm25 is lower for better matches; the subject and the customer weigh more than the conversation.
        ranked = (select(fts.c.rowid.label("ticket_id"),
                         (-func.bm25(literal_column("ticket_search"), 4.0, 2.0, 1.0, 1.0)).label("rank"))
                  .where(literal_column("ticket_search").op("MATCH")(" ".join(terms))).subquery())
        return ranked, None
    return None


_UNREAD = object()


def filtered_query(session, user: User, f: TicketFilters, now: datetime | None = None, entity_ids=_UNREAD):
    """A select of the tickets matching the filters (not the sort or page), among those `user` may see: the list,
    the views' counts and bulk changes of "all matching" all read through it. `entity_ids`: the user's
    access.visible_entity_ids, when the caller has read them already."""
    return _filtered(session, user, f, now, entity_ids)[0]


def filter_conditions(user: User, f: TicketFilters, now: datetime | None = None) -> list:
    """The WHERE conditions of every filter but the text search `q` (entity, status, priority, assignee, SLA), for a
    select over Ticket that access has scoped."""
    conditions = []
    if f.entity_id:
        conditions.append(Ticket.entity_id == f.entity_id)
    if f.status == "active":
        conditions.append(Ticket.status.notin_(("resolved", "closed")))
    elif f.status != "all":
        conditions.append(Ticket.status == f.status)
    if f.priority:
        conditions.append(Ticket.priority == f.priority)
    if f.assignee == "mine":
        conditions.append(Ticket.assignee_id == user.id)
    elif f.assignee == "unassigned":
        conditions.append(Ticket.assignee_id.is_(None))
    elif f.assignee:
        conditions.append(Ticket.assignee_id == int(f.assignee))
    if f.sla:
        # sla_nearest_due holds only running clocks (paused and stopped ones are None).
        now = now or clock.now()
        window = SLA_FILTERS[f.sla]
        conditions += [Ticket.sla_nearest_due <= now] if window is None else \
            [Ticket.sla_nearest_due > now, Ticket.sla_nearest_due <= now + window]
    if f.escalation:
        conditions.append(Ticket.escalation_level >= ESCALATION_FILTERS[f.escalation])
    return conditions


def _filtered(session, user: User, f: TicketFilters, now: datetime | None, entity_ids=_UNREAD):
    """The filtered select, and with a search the order of relevance (best first) to put before the chosen sort."""
    query = access.scope_tickets(select(Ticket), session, user) if entity_ids is _UNREAD else \
        access.scope_to_entities(select(Ticket), user, entity_ids)
    query = query.where(*filter_conditions(user, f, now))
    relevance = []
    if f.q:
        # Any of: a fragment of the subject or the number (migration 0002's trigram indexes; numbers are stored
        # upper-case), a number the ticket had before it moved, every word somewhere in the subject, body,
        # customer, replies or notes (migration 0010's index). One OR of conditions each served by an index, so
        # that PostgreSQL can combine the indexes (a BitmapOr) for a rare word, or walk the sort's index and test
        # each ticket for a common one: 25 of 80,000 hits are then found in a few hundred rows. The old numbers are
        # an array for that: `id IN (subquery)` among ORed conditions is a hashed filter no index serves, and
        # PostgreSQL would read every ticket.
        postgresql = session.get_bind().dialect.name == "postgresql"
        moved = select(TicketAlias.ticket_id).where(
            TicketAlias.number.like(f"%{_escape_like(f.q.upper())}%", escape="\\"))
        conditions = [_contains(func.lower(Ticket.subject), f.q.lower(), postgresql),
                      _contains(Ticket.number, f.q.upper(), postgresql),
                      Ticket.id == any_(func.array(moved.scalar_subquery())) if postgresql else Ticket.id.in_(moved)]
        relevance.append(case((Ticket.number == f.q.upper(), 1), else_=0).desc())  # the ticket asked for by number
        words, prefix = search_words(f.q)
        text_match = _text_match(session, words, prefix) if words else None
        if text_match is not None:
            match, rank = text_match
            if rank is None:  # SQLite: the FTS5 query, joined by ticket id for its rank
                query = query.outerjoin(match, match.c.ticket_id == Ticket.id)
                matched, rank = match.c.ticket_id.is_not(None), func.coalesce(match.c.rank, 0)
            else:
                vector = literal_column("tickets.search_vector")
                matched, rank = match(vector), rank(vector)
            # First: PostgreSQL tests the ORed conditions in turn on each ticket a BitmapOr brings (the pieces'
            # arms are not exact), and most hits are the words' (a third faster for 125,000 hits).
            conditions.insert(0, matched)
            relevance.append(rank.desc())
        query = query.where(or_(*conditions))
    return query, relevance


def search_tickets(session, user: User, f: TicketFilters, per_page: int = 25,
                   now: datetime | None = None) -> TicketPage:
    """One page of tickets matching the filters, among those `user` may see."""
    query, relevance = _filtered(session, user, f, now)
    counted = query.with_only_columns(Ticket.id)
    if f.q:
        counted = counted.limit(COUNT_LIMIT + 1)  # a common word stops being counted at the cap
    total = session.scalar(select(func.count()).select_from(counted.subquery()))
    capped = bool(f.q) and total > COUNT_LIMIT
    if capped:
        # Relevance among so many says little, and ranking would read every hit: the chosen sort orders them,
        # which PostgreSQL may serve by walking its index. The ticket asked for by number still leads.
        total = COUNT_LIMIT
        asked_for = session.scalar(query.with_only_columns(Ticket.id).where(Ticket.number == f.q.upper()).limit(1))
        relevance = relevance[:1] if asked_for is not None else []
    order = SORTS[f.sort].asc() if f.direction == "asc" else SORTS[f.sort].desc()
    if f.sort == "sla":
        order = order.nulls_last()  # tickets without a running clock after those with one
    pages = max(1, -(-total // per_page))
    page = min(f.page, pages)
    f.page = page
    options = [selectinload(Ticket.entity), selectinload(Ticket.customer), selectinload(Ticket.assignee),
               selectinload(Ticket.sla_rule)]
    if f.q:
        options.append(selectinload(Ticket.replies))  # for the excerpts
    # With a search, the best matches first (relevance); the chosen sort orders those that match alike.
    items = list(session.scalars(
        query.order_by(*relevance, order, Ticket.id.desc()).limit(per_page).offset((page - 1) * per_page)
        .options(*options)
    ))
    snippets = {}
    if f.q:
        words = search_words(f.q)[0]
        snippets = {t.id: s for t in items if (s := snippet(t, words))}
    return TicketPage(items=items, total=total, page=page, per_page=per_page, filters=f, capped=capped,
                      snippets=snippets)


SNIPPET_CHARS = 160


def snippet(ticket: Ticket, words: list[str], width: int = SNIPPET_CHARS) -> Markup | None:
    """Where the words occur in the conversation (body, then replies and notes, newest first): an
    excerpt of about `width` characters, the text escaped and each word's occurrences in <mark>."""
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    finder = re.compile(rf"(?<![^\W_])(?:{alternatives})", re.IGNORECASE)  # at the start of a word
    texts = [(ticket.body, ticket.body_format, "")]
    texts += [(r.body, r.body_format, "Note: " if r.internal else "") for r in reversed(ticket.replies)]
    for body, body_format, label in texts:
        text = " ".join(message_text(body, body_format).split())
        first = finder.search(text)
        if first is None:
            continue
        start = max(0, first.start() - width // 3)
        if start:  # begin at a word
            space = text.find(" ", start, first.start())
            start = space + 1 if space != -1 else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", first.end(), end)
            end = space if space != -1 else end
        excerpt = text[start:end]
        parts = [escape(label)]
        if start:
            parts.append(Markup("…"))
        position = 0
        for m in finder.finditer(excerpt):
            parts += [escape(excerpt[position:m.start()]), Markup("<mark>"), escape(m.group(0)), Markup("</mark>")]
            position = m.end()
        parts.append(escape(excerpt[position:]))
        if end < len(text):
            parts.append(Markup("…"))
        return Markup("").join(parts)
    return None


def matching_ids(session, user: User, f: TicketFilters, limit: int) -> list[int]:
    """The ids of at most `limit` tickets matching the filters, among those `user` may see (bulk "all matching")."""
    return list(session.scalars(filtered_query(session, user, f).with_only_columns(Ticket.id)
                                .order_by(Ticket.id).limit(limit)))


def customer_tickets(session, customer: User) -> list[Ticket]:
    """The portal's list: a customer's own tickets (access scopes them), the latest changed first."""
    query = access.scope_tickets(select(Ticket), session, customer).order_by(Ticket.updated_at.desc())
    return list(session.scalars(query))


MAX_FEED = 100
# The feed's statements, built once per (user, scope, filters): building the select and its cache key cost more
# than running it. A text search or an SLA window is built per request (words are many; a window moves with the
# time). At most FEED_CACHE of them, then they are built afresh.
FEED_CACHE = 256
_FEEDS = Built(FEED_CACHE)


def _feed_statement(session, user: User, f: TicketFilters, entity_ids, now: datetime | None, after_cursor: bool):
    """The feed's select, its cursor (`before_id`) and row count (`rows`) parameters; everything else it depends on
    is in its key: the user (their id: "mine", a customer's own), the scope read for them, the filters."""
    def build():
        query = filtered_query(session, user, f, now, entity_ids)
        if after_cursor:
            query = query.where(Ticket.id < bindparam("before_id"))
        return payload.payload_rows(query.order_by(Ticket.id.desc()).limit(bindparam("rows")))

    if f.q or f.sla:
        return build()
    key = (user.id, user.is_customer, None if entity_ids is None else tuple(sorted(entity_ids)),
           tuple(vars(f).values()), after_cursor)
    return _FEEDS.get(key, build)


def ticket_feed(session, user: User, f: TicketFilters, before_id: int | None, limit: int,
                now: datetime | None = None, entity_ids=_UNREAD) -> tuple[list, int | None]:
    """The API's list, as rows for `payload.row_payload`: tickets matching the filters among those `user` may see,
    newest first by id, after a cursor (`before_id`: the last id of the previous page). Keyset, not offset: ids are
    unique and never reused, so a walk visits each ticket that existed when it began exactly once, however many are
    inserted meanwhile (new ones have higher ids, before the cursor). Answers the page and the id to continue
    before, or None at the end. The text search filters but does not rank here (ranking would reorder pages).
    `entity_ids`: the user's access.visible_entity_ids, when the caller has read them already."""
    if entity_ids is _UNREAD:
        entity_ids = None if user.is_customer else access.visible_entity_ids(session, user)
    statement = _feed_statement(session, user, f, entity_ids, now, before_id is not None)
    # Columns, not Tickets: one statement with the entity, people and rule within, and no ORM objects to build (the
    # API answers many small pages; building 26 tickets and their relations cost more than the query). Run on the
    # session's connection: the rows are plain, and the ORM's execution around them cost as much as the query (its
    # autoflush is the one thing kept: nothing to write, in a request that reads, costs nothing).
    params = {"rows": limit + 1} if before_id is None else {"rows": limit + 1, "before_id": before_id}
    session.flush()
    items = session.connection().execute(statement, params).all()
    more = len(items) > limit
    items = items[:limit]
    return items, (items[-1].id if more else None)
