"""What the dashboard reads: SLA compliance per clock and response and resolution times, scoped to the viewer.

Every figure is over the rows completed in [since, until) (by `end_at`: the (entity_id, end_at) index), of the
entities the user may see (`services.directory.access.visible_entity_ids`, the set the ticket list is scoped by:
admins all, staff their entities and departments, customers none), narrowed to the entities asked for (each with
its departments), a priority and an agent. Rows are counted under the entity, priority and agent they had when
they were completed.

Percentiles are `percentile_cont` (linear interpolation between the two nearest values): PostgreSQL computes them
in SQL; SQLite, which has no such aggregate, reads the values and computes the same in Python (`distribution`).
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from math import floor

from sqlalchemy import false, func, select

from mets.models import ResponseMetric
from mets.models.metrics import FIRST_RESPONSE, FULL_RESOLUTION, RESPONSE
from mets.services.directory import access

# The rows each SLA clock's compliance is counted from.
COMPLIANCE_ROWS = {"response": FIRST_RESPONSE, "next_reply": RESPONSE, "resolution": FULL_RESOLUTION}
MEASURES = {"business": ResponseMetric.business_minutes, "calendar": ResponseMetric.duration_minutes}


@dataclass(frozen=True)
class Distribution:
    """Minutes: how many values, their median, 90th percentile and mean (None when there are none)."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None


@dataclass(frozen=True)
class Compliance:
    achieved: int
    breached: int

    @property
    def rate(self) -> float | None:
        """achieved / (achieved + breached); None when no row had a target."""
        total = self.achieved + self.breached
        return self.achieved / total if total else None


@dataclass(frozen=True)
class Summary:
    compliance: dict[str, Compliance]  # by SLA clock: response, next_reply, resolution
    first_response: dict[str, Distribution]  # "business" and "calendar" minutes
    response: dict[str, Distribution]  # every later response (a customer's message -> the next agent reply)
    resolution: dict[str, Distribution]  # full resolution (a reopen extends it)


@dataclass(frozen=True)
class Group:
    """One entity's, agent's or priority's figures for one kind of row."""

    key: int | str | None
    times: Distribution
    compliance: Compliance


GROUPS = {"entity": ResponseMetric.entity_id, "agent": ResponseMetric.agent_id, "priority": ResponseMetric.priority}


def entity_scope(session, user, entity_ids=None) -> set[int] | None:
    """The entity ids whose rows `user` reads: None for every entity (an admin asking for all)."""
    visible = access.visible_entity_ids(session, user) if user.is_staff else set()
    if not entity_ids:
        return visible
    asked = access.with_descendants(session, list(entity_ids))
    return asked if visible is None else asked & visible


def scoped_conditions(session, user, entity_ids, since, until, priority=None, agent_id=None) -> list:
    """The WHERE clauses of every figure: completed in the period, in scope, with the filters."""
    where = [ResponseMetric.end_at.is_not(None), ResponseMetric.end_at >= _instant(since),
             ResponseMetric.end_at < _instant(until)]
    scope = entity_scope(session, user, entity_ids)
    if scope is not None:
        where.append(ResponseMetric.entity_id.in_(scope) if scope else false())
    if priority:
        where.append(ResponseMetric.priority == priority)
    if agent_id is not None:
        where.append(ResponseMetric.agent_id == agent_id)
    return where


def summary(session, user, entity_ids, since, until, priority: str | None = None,
            agent_id: int | None = None) -> Summary:
    """SLA compliance per clock, and first response and resolution times, for what `user` may see."""
    where = scoped_conditions(session, user, entity_ids, since, until, priority, agent_id)
    counts = {(kind, within): n for kind, within, n in session.execute(
        select(ResponseMetric.metric_type, ResponseMetric.within_sla, func.count())
        .where(*where, ResponseMetric.metric_type.in_(list(COMPLIANCE_ROWS.values())),
               ResponseMetric.within_sla.is_not(None))
        .group_by(ResponseMetric.metric_type, ResponseMetric.within_sla))}
    compliance = {clock: Compliance(counts.get((kind, True), 0), counts.get((kind, False), 0))
                  for clock, kind in COMPLIANCE_ROWS.items()}

    # One grouped distribution per measure: the three kinds' times in two queries.
    kinds = (FIRST_RESPONSE, RESPONSE, FULL_RESOLUTION)
    empty = Distribution(0, None, None, None)
    by_measure = {name: distributions_by(session, column, ResponseMetric.metric_type, *where,
                                         ResponseMetric.metric_type.in_(kinds))
                  for name, column in MEASURES.items()}

    def times(kind):
        return {name: found.get(kind, empty) for name, found in by_measure.items()}

    return Summary(compliance=compliance, first_response=times(FIRST_RESPONSE), response=times(RESPONSE),
                   resolution=times(FULL_RESOLUTION))


def breakdown(session, user, entity_ids, since, until, by: str, kind: str = FIRST_RESPONSE,
              measure: str = "business", priority: str | None = None, agent_id: int | None = None) -> list[Group]:
    """One kind of row's times and compliance per entity, agent or priority (`by`), in scope; by key."""
    if by not in GROUPS or measure not in MEASURES:
        raise ValueError(f"breakdown by one of {sorted(GROUPS)}, measure one of {sorted(MEASURES)}")
    key = GROUPS[by]
    where = [*scoped_conditions(session, user, entity_ids, since, until, priority, agent_id),
             ResponseMetric.metric_type == kind]
    times = distributions_by(session, MEASURES[measure], key, *where)
    counts: dict = {}
    for group, within, n in session.execute(
            select(key, ResponseMetric.within_sla, func.count()).where(*where, ResponseMetric.within_sla.is_not(None))
            .group_by(key, ResponseMetric.within_sla)):
        counts.setdefault(group, {})[within] = n
    empty = Distribution(0, None, None, None)
    return [Group(group, times.get(group, empty), Compliance(counts.get(group, {}).get(True, 0),
                                                              counts.get(group, {}).get(False, 0)))
            for group in sorted(set(times) | set(counts), key=lambda g: (g is None, str(g) if g is not None else ""))]


def distribution(session, column, *where) -> Distribution:
    """Count, median, p90 and mean of `column` over the rows matching `where` (NULLs left out)."""
    return distributions_by(session, column, None, *where).get(None, Distribution(0, None, None, None))


def distributions_by(session, column, key, *where) -> dict:
    """`distribution` per value of `key` (None: one group, keyed None), groups without a value of `column` left out.

    The one place percentiles are computed: `percentile_cont` in SQL on PostgreSQL, the same in Python on SQLite.
    """
    where = (*where, column.is_not(None))
    keys = [] if key is None else [key]
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(select(
            *keys, func.count(column), func.percentile_cont(0.5).within_group(column),
            func.percentile_cont(0.9).within_group(column), func.avg(column)).where(*where).group_by(*keys))
        found = {}
        for row in rows:
            group, (count, median, p90, mean) = (row[0] if keys else None), row[len(keys):]
            if count:
                found[group] = Distribution(count, _float(median), _float(p90), _float(mean))
        return found
    grouped: dict = {}
    for row in session.execute(select(*keys, column).where(*where).order_by(*keys, column)):
        grouped.setdefault(row[0] if keys else None, []).append(row[-1])
    return {group: Distribution(len(values), percentile_cont(values, 0.5), percentile_cont(values, 0.9),
                                sum(values) / len(values)) for group, values in grouped.items()}


def percentile_cont(ordered: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont over sorted values: linear interpolation at position fraction * (n - 1)."""
    position = fraction * (len(ordered) - 1)
    low = floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _instant(value) -> datetime:
    """A date is its midnight UTC; datetimes must be aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("metrics periods take aware datetimes")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    raise ValueError("a metrics period needs a since and an until")
