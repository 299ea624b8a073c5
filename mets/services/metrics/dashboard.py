"""The KPI dashboard's figures beyond `stats`: who sees it, its filters, volume (created vs resolved per day, week
or month), backlog, agent workload and one agent's trend, and the rows of every table (also its CSV).

Scope: the dashboard is the managers' and admins': `dashboard_scope` is None (every entity) for admins, and for
other staff the entities they manage (a `manager` membership) with their departments. An agent reads only their own
agent page, over the entities they work in. Every figure here and in `stats` is read under one `Scope`: the
entity ids (None: all), narrowed by the filters' entity (with its departments), priority and agent.

Periods are days: `since` is the first day, `until` the first day after the range. They are UTC days, but on the
dashboard filtered to one entity, whose days are that entity's time zone's (`Scope.zone`): the range's bounds are
its local midnights and the buckets its local days, weeks and months. Buckets (day, week from Monday, month) are
computed in SQL (`bucket`), one grouped query per series; SQLite, which has no time zones, counts a zone's series per
UTC quarter hour and puts each in its local bucket (`_counts_per_bucket`). The rollups are of UTC days, so a zoned
scope reads its times from the raw rows (exactly: one entity's rows are an index-only scan).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, case, cast, false, func, literal, not_, or_, select

from mets import clock

from mets.models import PRIORITIES, STATUSES, Entity, Membership, Ticket, User
from mets.models.metrics import (FIRST_RESPONSE, FULL_RESOLUTION, RESPONSE, MetricEntityRollup, MetricRollup,
                                 ResponseMetric, TicketRollup)
from mets.services.directory import access, entities
from mets.services.metrics import rollups, stats
from mets.services.validation import parse_id

PERIODS = ("day", "week", "month")
DEFAULT_DAYS = 30
MAX_DAYS = 731
DUE_SOON = timedelta(hours=4)  # the ticket list's "due within 4 hours" filter
CLOSED = ("resolved", "closed")


# --- who sees what ------------------------------------------------------------------------------------------

def dashboard_scope(session, user: User) -> set[int] | None:
    """The entities whose figures `user` reads on the dashboard: None (all) for admins, the entities they manage
    with their departments for managers, none for anyone else."""
    if not user.is_staff or not user.active:
        return set()
    return access.managed_entity_ids(session, user)


def can_view_dashboard(session, user: User) -> bool:
    return dashboard_scope(session, user) != set()


def agent_scope(session, viewer: User, agent: User) -> set[int] | None | bool:
    """The entities of `agent`'s figures `viewer` reads on the agent page, or False when the page is not theirs:
    admins every entity; an agent their own page, over the entities they work in; a manager the page of an agent
    who works in an entity they manage, over those entities."""
    if not (viewer.is_staff and agent.is_staff):
        return False
    if viewer.is_admin:
        return None
    if viewer.id == agent.id:
        return access.visible_entity_ids(session, viewer)
    managed = dashboard_scope(session, viewer)
    if not managed:
        return False
    works_in = access.visible_entity_ids(session, agent)
    shared = managed if works_in is None else managed & works_in
    return shared or False


def entities_for(session, scope: set[int] | None):
    """(entity, depth) of the entity tree the scope covers: the entity filter's choices."""
    return [(e, depth) for e, depth in entities.entity_tree(session) if scope is None or e.id in scope]


def agents_for(session, scope: set[int] | None) -> list[User]:
    """Staff who work in an entity of the scope (members of it or of an entity above it), by name."""
    query = select(User).where(User.kind == "staff").order_by(User.name, User.id)
    if scope is not None:
        covering = set(scope)
        for entity_id in scope:
            covering |= _ancestor_ids(session, entity_id)
        query = query.where(User.id.in_(select(Membership.user_id).where(Membership.entity_id.in_(covering))))
    return list(session.scalars(query))


def _ancestor_ids(session, entity_id: int) -> set[int]:
    entity = session.get(Entity, entity_id)
    return {e.id for e in access.ancestors(session, entity)} if entity is not None else set()


# --- filters ------------------------------------------------------------------------------------------------

@dataclass
class Filters:
    """The dashboard's filters as the query string gives them; anything that does not parse is not applied."""

    since: date
    until: date  # exclusive: the day after the last
    entity_id: int | None = None
    priority: str = ""
    agent_id: int | None = None
    period: str = "day"
    measure: str = "business"
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args, today: date) -> "Filters":
        errors = []
        until = _date(args.get("to")) or today
        since = _date(args.get("from")) or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            errors.append("The start of the range is after its end: showing the last 30 days.")
            until, since = today, today - timedelta(days=DEFAULT_DAYS - 1)
        if (until - since).days + 1 > MAX_DAYS:
            errors.append(f"A range is at most {MAX_DAYS} days: showing the {MAX_DAYS} days up to its end.")
            since = until - timedelta(days=MAX_DAYS - 1)
        return cls(since=since, until=until + timedelta(days=1), entity_id=parse_id(args.get("entity")),
                   priority=args.get("priority", "") if args.get("priority", "") in PRIORITIES else "",
                   agent_id=parse_id(args.get("agent")),
                   period=args.get("period") if args.get("period") in PERIODS else "day",
                   measure=args.get("measure") if args.get("measure") in stats.MEASURES else "business",
                   errors=errors)

    @property
    def last_day(self) -> date:
        return self.until - timedelta(days=1)

    def as_args(self, **overrides) -> dict:
        """Query-string arguments that give these filters back (links, CSV downloads, the pushed URL)."""
        values = {"from": self.since.isoformat(), "to": self.last_day.isoformat(), "entity": self.entity_id or "",
                  "priority": self.priority, "agent": self.agent_id or "", "period": self.period,
                  "measure": self.measure}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}


def _date(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Scope:
    """What one page reads: the entity ids (None: all), and the filters (the entity already folded in)."""

    entity_ids: set[int] | None
    filters: Filters
    zone: str = "UTC"  # whose days: the one entity's of the dashboard's entity filter, else UTC

    @property
    def asked(self):
        """`entity_ids` for `stats.summary` / `breakdown` (which narrow to what the user may see as well)."""
        return sorted(self.entity_ids) if self.entity_ids is not None else None

    def instant(self, day: date) -> datetime:
        """The start of `day` in the scope's zone, in UTC."""
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(self.zone)).astimezone(timezone.utc)

    @property
    def period(self) -> tuple:
        """The range for `stats` and `csat`: its days when they are UTC days (the rollups cover UTC days), else the
        instants of its local midnights."""
        f = self.filters
        return (f.since, f.until) if self.zone == "UTC" else (self.instant(f.since), self.instant(f.until))


def scope_for(session, allowed: set[int] | None, filters: Filters, local: bool = False) -> Scope:
    """The entities read: `allowed`, narrowed to the filter's entity and its departments when it is in `allowed`
    (an entity out of scope is not applied, like any filter that does not parse); with `local` (the dashboard) the
    days are then that entity's time zone's."""
    if filters.entity_id is not None and (allowed is None or filters.entity_id in allowed):
        below = access.with_descendants(session, [filters.entity_id])
        entity = session.get(Entity, filters.entity_id) if local else None
        zone = (entity.timezone if entity is not None else None) or "UTC"
        return Scope(below if allowed is None else below & allowed, filters, zone)
    if filters.entity_id is not None:
        filters.entity_id = None
    return Scope(allowed, filters)


def _in_scope(column, scope: Scope) -> list:
    if scope.entity_ids is None:
        return []
    return [column.in_(scope.entity_ids)] if scope.entity_ids else [false()]


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


# --- buckets ------------------------------------------------------------------------------------------------

def bucket(session, column, period: str, zone: str = "UTC"):
    """A SQL expression: the day, the Monday of the week, or the first of the month of `column` (UTC; any `zone` on
    PostgreSQL, `_counts_per_bucket` for SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc(period, func.timezone(zone, column)), Date)
    if period == "month":
        return func.strftime("%Y-%m-01", column)
    if period == "week":
        return func.date(column, "-6 days", "weekday 1")
    return func.date(column)


def _counts_per_bucket(session, column, where: list, scope: Scope) -> dict[date, int]:
    """How many rows matching `where` fall in each bucket of the scope's zone, by `column`."""
    period = scope.filters.period
    if scope.zone == "UTC" or session.get_bind().dialect.name == "postgresql":
        key = bucket(session, column, period, scope.zone)
        return {_as_date(k): n for k, n in session.execute(select(key, func.count()).where(*where).group_by(key))}
    # SQLite knows no time zones: count per UTC quarter hour (every zone's offset is a whole number of quarters),
    # then put each quarter in the local bucket it starts.
    hour, quarter = func.strftime("%Y-%m-%d %H", column), cast(func.strftime("%M", column), Integer) / 15
    zone, out = ZoneInfo(scope.zone), {}
    for h, q, n in session.execute(select(hour, quarter, func.count()).where(*where).group_by(hour, quarter)):
        at = datetime.strptime(h, "%Y-%m-%d %H").replace(tzinfo=timezone.utc) + timedelta(minutes=15 * int(q))
        start = _bucket_of(at.astimezone(zone).date(), period)
        out[start] = out.get(start, 0) + n
    return out


def buckets(since: date, until: date, period: str) -> list[date]:
    """Every bucket's first day from the one holding `since` to the one holding the day before `until`."""
    first = _bucket_of(since, period)
    out, current = [], first
    while current < until:
        out.append(current)
        current = _next_bucket(current, period)
    return out


def _bucket_of(day: date, period: str) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day


def _next_bucket(day: date, period: str) -> date:
    if period == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=7 if period == "week" else 1)


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# --- figures ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumePoint:
    start: date
    created: int
    resolved: int


def volume(session, scope: Scope, counts: "TicketCounts | None" = None) -> list[VolumePoint]:
    """Tickets created (by their entity, priority and assignee now) and resolved (full-resolution rows completed,
    under the entity, priority and agent they had then) per bucket of the range; every bucket, zeros included.
    `counts`: `ticket_counts`, when the caller has it."""
    f = scope.filters
    since, until = scope.instant(f.since), scope.instant(f.until)
    period = f.period
    created = (counts or ticket_counts(session, scope, clock.now())).created
    # The rollups' UTC days serve a UTC scope; a zoned one reads them only where the raw rows were archived.
    raw_since, rolled = _split_at_horizon(session, scope, f.agent_id, FULL_RESOLUTION, covered=scope.zone == "UTC")
    resolved_where = [ResponseMetric.metric_type == FULL_RESOLUTION, ResponseMetric.end_at >= max(since, raw_since),
                      ResponseMetric.end_at < until, *_in_scope(ResponseMetric.entity_id, scope)]
    if f.priority:
        resolved_where.append(ResponseMetric.priority == f.priority)
    if f.agent_id is not None:
        resolved_where.append(ResponseMetric.agent_id == f.agent_id)
    resolved = rolled
    for k, n in _counts_per_bucket(session, ResponseMetric.end_at, resolved_where, scope).items():
        resolved[k] = resolved.get(k, 0) + n
    return [VolumePoint(start, created.get(start, 0), resolved.get(start, 0))
            for start in buckets(f.since, f.until, period)]


def _ticket_filters(scope: Scope) -> list:
    """The tickets in scope, of the priority and assignee filters (their own now)."""
    f = scope.filters
    where = [*_in_scope(Ticket.entity_id, scope)]
    if f.priority:
        where.append(Ticket.priority == f.priority)
    if f.agent_id is not None:
        where.append(Ticket.assignee_id == f.agent_id)
    return where


@dataclass(frozen=True)
class _TicketSplit:
    """Where the ticket rollups serve a page: their rows of the created days they hold that no ticket changed since
    (`rolled`, on ticket_rollups) and the tickets left to read raw (`raw`, on tickets: those created since the last
    roll-up, today at least, and those created on a day a ticket changed since), both in scope and of the filters."""

    rolled: list
    raw: list
    mark: datetime  # the roll-up's instant: its rows count the clocks due by then (`due_by_mark`)


def _ticket_split(session, scope: Scope) -> _TicketSplit | None:
    """None before any ticket roll-up: every ticket is read raw."""
    found = rollups.tickets_rolled_up(session)
    if found is None:
        return None
    after, mark = found
    ranges: list[list[date]] = []
    for day in sorted(rollups.changed_days(session, after, mark)):
        if ranges and ranges[-1][1] == day:
            ranges[-1][1] = day + timedelta(days=1)
        else:
            ranges.append([day, day + timedelta(days=1)])
    tr, f = TicketRollup, scope.filters
    rolled = [tr.created_day < after, *_in_scope(tr.entity_id, scope),
              *(not_(and_(tr.created_day >= a, tr.created_day < b)) for a, b in ranges)]
    if f.priority:
        rolled.append(tr.priority == f.priority)
    if f.agent_id is not None:
        rolled.append(tr.assignee_id == f.agent_id)
    fresh = or_(Ticket.created_at >= _instant(after),
                *(and_(Ticket.created_at >= _instant(a), Ticket.created_at < _instant(b)) for a, b in ranges))
    return _TicketSplit(rolled, [*_ticket_filters(scope), fresh], mark)


@dataclass(frozen=True)
class TicketCounts:
    """The tickets in scope and of the filters (their own entity, priority and assignee now) created per bucket of
    the range, and those resolved or closed now per bucket of their resolution; and both from the range's end to
    now (the backlog trend counts back from the open tickets now)."""

    created: dict[date, int]
    resolved: dict[date, int]
    created_after: int = 0
    resolved_after: int = 0


def ticket_counts(session, scope: Scope, now: datetime) -> TicketCounts:
    """`TicketCounts` from the ticket rollups (UTC days) and the tickets they leave raw; a zoned scope, or a
    database not rolled up yet, counts the tickets (one entity's: an index-only scan)."""
    f = scope.filters
    since, until = scope.instant(f.since), scope.instant(f.until)
    split = _ticket_split(session, scope) if scope.zone == "UTC" else None
    raw = split.raw if split is not None else _ticket_filters(scope)
    stopped = Ticket.status.in_(CLOSED)
    created = _counts_per_bucket(session, Ticket.created_at,
                                 [*raw, Ticket.created_at >= since, Ticket.created_at < until], scope)
    resolved = _counts_per_bucket(session, Ticket.resolved_at,
                                  [*raw, stopped, Ticket.resolved_at >= since, Ticket.resolved_at < until], scope)
    later = until <= now
    created_after = resolved_after = 0
    if later:
        created_after = session.scalar(select(func.count()).where(*raw, Ticket.created_at >= until)) or 0
        resolved_after = session.scalar(select(func.count()).where(*raw, stopped, Ticket.resolved_at >= until)) or 0
    if split is not None:
        tr = TicketRollup
        for column, where in ((tr.created_day, []), (tr.resolved_day, [tr.status.in_(CLOSED)])):
            key = rollups.day_bucket(session, column, f.period)
            into = created if column is tr.created_day else resolved
            for k, n in session.execute(select(key, func.sum(tr.count)).where(
                    *split.rolled, *where, column >= f.since, column < f.until).group_by(key)):
                into[_as_date(k)] = into.get(_as_date(k), 0) + int(n or 0)
        if later:
            created_after += int(session.scalar(select(func.sum(tr.count)).where(
                *split.rolled, tr.created_day >= f.until)) or 0)
            resolved_after += int(session.scalar(select(func.sum(tr.count)).where(
                *split.rolled, tr.status.in_(CLOSED), tr.resolved_day >= f.until)) or 0)
    return TicketCounts(created, resolved, created_after, resolved_after)


def _split_at_horizon(session, scope: Scope, agent_id: int | None, *kinds: str,
                      covered: bool = False) -> tuple[datetime, dict]:
    """The first instant read from the raw rows, and the rows of `kinds` per bucket before it, counted from the
    rollups: the days before the archive horizon (their raw rows are gone), or with `covered` every day the rollups
    cover (`rollups.covered_until`: a count from ~40 thousand rollup rows instead of millions of raw ones)."""
    f = scope.filters
    since = scope.instant(f.since)
    if covered:
        rolled_until = rollups.covered_until(session, f.since, f.until)
    else:
        horizon = rollups.archived_before(session)
        rolled_until = f.since if horizon is None else max(f.since, min(horizon, f.until))
    if rolled_until <= f.since:
        return since, {}
    # Without a priority or agent filter the entity level holds the same counts in far fewer rows.
    r = MetricRollup if f.priority or agent_id is not None else MetricEntityRollup
    key = rollups.day_bucket(session, r.day, f.period)
    where = [r.metric_type.in_(kinds), r.day >= f.since, r.day < rolled_until, *_in_scope(r.entity_id, scope)]
    if f.priority:
        where.append(r.priority == f.priority)
    if agent_id is not None:
        where.append(r.agent_id == agent_id)
    counted = {_as_date(k): int(n or 0) for k, n in session.execute(
        select(key, func.sum(r.count)).where(*where).group_by(key))}
    return _instant(rolled_until), counted


@dataclass(frozen=True)
class BacklogRow:
    status: str
    count: int
    oldest: datetime | None


@dataclass(frozen=True)
class OpenNow:
    """The tickets not resolved or closed now: per status how many and the oldest one's creation; per assignee how
    many, how many have a running clock due within DUE_SOON, and past due."""

    statuses: dict[str, tuple[int, datetime | None]]
    assignees: dict[int | None, tuple[int, int, int]]

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.statuses.values())


def open_now(session, scope: Scope, now: datetime) -> OpenNow:
    """The tickets not resolved or closed now, in scope and of the priority and agent filters: what the backlog and
    the workload read. Counted from the ticket rollups and the tickets they leave raw. The clocks due move with the
    time: a rolled-up group keeps how many were due by the roll-up's mark, and those that fell due since (or fall due
    within DUE_SOON) come from the tickets (`ix_tickets_sla_nearest_due`, covering on PostgreSQL: `sla_nearest_due`
    is set only while a clock runs), a range of hours whatever the backlog; an SLA edit that retimes tickets makes
    their days raw until the next roll-up (`rollups.tickets_retimed`)."""
    due = Ticket.sla_nearest_due
    soon = func.sum(case((and_(due > now, due <= now + DUE_SOON), 1), else_=0))
    breached = func.sum(case((due <= now, 1), else_=0))
    split = _ticket_split(session, scope)
    if split is not None and now < split.mark:
        split = None  # an instant before the roll-up's mark (a clock set back): its clocks due do not hold, read raw
    groups = []  # (status, assignee, count, oldest)
    dues: dict = {}  # assignee: [due soon, breached]

    def add_due(assignee, s, b) -> None:
        counted = dues.setdefault(assignee, [0, 0])
        counted[0] += int(s or 0)
        counted[1] += int(b or 0)

    tickets_open = Ticket.status.notin_(CLOSED)
    if split is None:  # one pass over every open ticket
        raw, soon_raw, breached_raw = _ticket_filters(scope), soon, breached
    else:  # the tickets read raw: only their clocks due by the mark (those due since are counted below)
        raw, soon_raw, breached_raw = split.raw, literal(0), func.sum(case((due <= split.mark, 1), else_=0))
    for status, assignee, n, oldest, s, b in session.execute(
            select(Ticket.status, Ticket.assignee_id, func.count(), func.min(Ticket.created_at), soon_raw, breached_raw)
            .where(tickets_open, *raw).group_by(Ticket.status, Ticket.assignee_id)):
        groups.append((status, assignee, n, oldest))
        add_due(assignee, s, b)
    if split is not None:
        # The rolled-up groups with their clocks due by the mark; then, for every ticket, the clocks that fell due
        # since the mark or fall due within DUE_SOON: a few hours of the index, however many are breached.
        tr = TicketRollup
        for status, assignee, n, oldest, by_mark in session.execute(
                select(tr.status, tr.assignee_id, func.sum(tr.count), func.min(tr.oldest), func.sum(tr.due_by_mark))
                .where(*split.rolled, tr.status.notin_(CLOSED)).group_by(tr.status, tr.assignee_id)):
            groups.append((status, assignee, n, oldest))
            add_due(assignee, 0, by_mark)
        for assignee, s, b in session.execute(
                select(Ticket.assignee_id, soon, breached)
                .where(due > split.mark, due <= now + DUE_SOON, tickets_open, *_ticket_filters(scope))
                .group_by(Ticket.assignee_id)):
            add_due(assignee, s, b)
    statuses: dict = {}
    assignees: dict = {}
    for status, assignee, n, oldest in groups:
        n = int(n or 0)
        count, first = statuses.get(status, (0, None))
        statuses[status] = (count + n, oldest if first is None or (oldest is not None and oldest < first) else first)
        assignees[assignee] = assignees.get(assignee, 0) + n
    return OpenNow(statuses, {a: (n, *dues.get(a, (0, 0))) for a, n in assignees.items()})


def backlog(session, scope: Scope, found: OpenNow | None = None) -> list[BacklogRow]:
    """The tickets not resolved or closed now, per status (with the oldest one's creation), in scope and of the
    priority and assignee filters; the date range does not apply (a backlog is now). `found`: `open_now`."""
    if found is None:
        found = open_now(session, scope, clock.now())
    return [BacklogRow(status, *found.statuses.get(status, (0, None))) for status in STATUSES if status not in CLOSED]


@dataclass(frozen=True)
class BacklogPoint:
    start: date
    open: int  # not resolved or closed at the end of the bucket (or now, for the bucket holding today)


def backlog_trend(session, scope: Scope, now: datetime, counts: TicketCounts | None = None,
                  open_total: int | None = None) -> list[BacklogPoint]:
    """How many tickets were open at the end of each bucket, from each ticket's current state (created before
    that instant, and still open or resolved at or after it: a reopened ticket counts as open since it was
    created): counted back from the open ones now, minus those created after the bucket, plus those resolved
    after it (`counts`: `ticket_counts`; `open_total`: `open_now`'s, when the caller has them). The priority and
    assignee filters are the tickets' own now."""
    f = scope.filters
    if counts is None:
        counts = ticket_counts(session, scope, now)
    if open_total is None:
        open_total = open_now(session, scope, now).total
    shown = [start for start in buckets(f.since, f.until, f.period) if scope.instant(start) <= now]
    out, later_created, later_resolved = [], counts.created_after, counts.resolved_after
    for start in buckets(f.since, f.until, f.period)[::-1]:
        if start in shown:
            out.append(BacklogPoint(start, open_total - later_created + later_resolved))
        later_created += counts.created.get(start, 0)
        later_resolved += counts.resolved.get(start, 0)
    return out[::-1]


@dataclass(frozen=True)
class WorkloadRow:
    agent_id: int | None
    name: str
    open: int
    due_soon: int
    breached: int


def workload(session, scope: Scope, now: datetime, found: OpenNow | None = None) -> list[WorkloadRow]:
    """Per assignee (unassigned last): open tickets now, those with a running SLA clock due within DUE_SOON, and
    those with one past due (the ticket list's "due within 4 hours" and "breached" filters). `found`: `open_now`."""
    if found is None:
        found = open_now(session, scope, now)
    ids = [k for k in found.assignees if k is not None]
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    out = [WorkloadRow(agent_id, names.get(agent_id) or "Unassigned", n, s, b)
           for agent_id, (n, s, b) in found.assignees.items()]
    return sorted(out, key=lambda r: (r.agent_id is None, -r.open, r.name.lower()))


@dataclass(frozen=True)
class TrendPoint:
    start: date
    responses: int  # first responses and later responses the agent gave
    median: float | None  # their median minutes (the filters' measure)
    resolved: int


def agent_trend(session, user: User, scope: Scope, agent_id: int) -> list[TrendPoint]:
    """One agent's responses (first and later), their median time and the tickets they resolved, per bucket."""
    f = scope.filters
    key = bucket(session, ResponseMetric.end_at, f.period)
    where = [*stats.scoped_conditions(session, user, scope.asked, f.since, f.until, f.priority, agent_id)]
    if scope.entity_ids is not None and not scope.entity_ids:
        where.append(false())
    # Days whose raw rows were archived: counts from the rollups (a median needs the rows: none there).
    raw_since, rolled_responses = _split_at_horizon(session, scope, agent_id, FIRST_RESPONSE, RESPONSE)
    _, resolved = _split_at_horizon(session, scope, agent_id, FULL_RESOLUTION)
    where.append(ResponseMetric.end_at >= raw_since)
    times = stats.distributions_by(session, stats.MEASURES[f.measure], key, *where,
                                   ResponseMetric.metric_type.in_((FIRST_RESPONSE, RESPONSE)))
    times = {_as_date(k): v for k, v in times.items()}
    for k, n in session.execute(
            select(key, func.count()).where(*where, ResponseMetric.metric_type == FULL_RESOLUTION).group_by(key)):
        resolved[_as_date(k)] = resolved.get(_as_date(k), 0) + n
    return [TrendPoint(start, (times[start].count if start in times else 0) + rolled_responses.get(start, 0),
                       times[start].median if start in times else None, resolved.get(start, 0))
            for start in buckets(f.since, f.until, f.period)]


def summary(session, user: User, scope: Scope, agent_id: int | None = None) -> stats.Summary:
    """`stats.summary` under the page's scope (an empty scope reads nothing)."""
    f = scope.filters
    entity_ids = scope.asked
    if entity_ids == []:
        entity_ids = [0]  # no entity has id 0: nothing, never "every entity I may see"
    return stats.summary(session, user, entity_ids, *scope.period, f.priority,
                         agent_id if agent_id is not None else f.agent_id)


def own_summary(session, user: User, filters: Filters) -> tuple[stats.Summary, Scope]:
    """The summary `user` reads on their own metrics page (the API's): the dashboard's scope for admins and managers,
    else their own agent page's (their figures, over the entities they work in)."""
    allowed = dashboard_scope(session, user)
    if allowed != set():
        scope = scope_for(session, allowed, filters)
        return summary(session, user, scope), scope
    scope = scope_for(session, agent_scope(session, user, user) or set(), filters)
    return summary(session, user, scope, agent_id=user.id), scope


def agent_breakdown(session, user: User, scope: Scope) -> list[tuple[User | None, stats.Group, stats.Group]]:
    """Per agent: first response and resolution times and compliance, in scope, by agent name."""
    f = scope.filters
    entity_ids = scope.asked if scope.asked != [] else [0]
    both = stats.breakdowns(session, user, entity_ids, *scope.period, "agent", (FIRST_RESPONSE, FULL_RESOLUTION),
                            f.measure, f.priority, f.agent_id)
    first = {g.key: g for g in both[FIRST_RESPONSE]}
    resolution = {g.key: g for g in both[FULL_RESOLUTION]}
    ids = [k for k in set(first) | set(resolution) if k is not None]
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    empty = stats.Group(None, stats.Distribution(0, None, None, None), stats.Compliance(0, 0))
    keys = sorted(set(first) | set(resolution),
                  key=lambda k: (k is None, people[k].name.lower() if k in people else ""))
    return [(people.get(k), first.get(k, empty), resolution.get(k, empty)) for k in keys]
