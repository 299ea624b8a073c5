"""What the dashboard reads: SLA compliance per clock and response and resolution times, scoped to the viewer.

Every figure is over the rows completed in [since, until) (by `end_at`: the (entity_id, end_at) index), of the
entities the user may see (`services.directory.access.visible_entity_ids`, the set the ticket list is scoped by:
admins all, staff their entities and departments, customers none), narrowed to the entities asked for (each with
its departments), a priority and an agent. Rows are counted under the entity, priority and agent they had when
they were completed.

Percentiles are `percentile_cont` (linear interpolation between the two nearest values): PostgreSQL computes them
in SQL; SQLite, which has no such aggregate, reads the values and computes the same in Python (`distribution`).

`summary` and `breakdown` read the days the daily rollups cover (`rollups.covered_until`: days rolled up after they
ended, and archived days) from `metric_rollups` and the rest (today) from the raw rows: counts, compliance and means
stay exact, medians and 90th percentiles come from the merged histograms (`histograms`: within 1%), and such a
`Distribution` says so (`approximate`). A range that starts on a day not rolled up is read raw, exactly.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from math import floor

from sqlalchemy import and_, case, false, func, or_, select, true, tuple_, union_all

from mets.models import MetricAgentRollup, MetricEntityRollup, MetricRollup, ResponseMetric
from mets.models.metrics import FIRST_RESPONSE, FULL_RESOLUTION, RESPONSE
from mets.services.directory import access
from mets.services.metrics import rollups
from mets.services.metrics.histograms import FLOOR, RATIO, Histogram

# The rows each SLA clock's compliance is counted from.
COMPLIANCE_ROWS = {"response": FIRST_RESPONSE, "next_reply": RESPONSE, "resolution": FULL_RESOLUTION}
MEASURES = {"business": ResponseMetric.business_minutes, "calendar": ResponseMetric.duration_minutes}
ROLLUP_MEASURES = {"business": "business", "calendar": "duration"}  # the rollup columns' prefix of each measure


@dataclass(frozen=True)
class Distribution:
    """Minutes: how many values, their median, 90th percentile and mean (None when there are none)."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None
    approximate: bool = False  # median and p90 from the rollups' histograms (within histograms.RELATIVE_ERROR)


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
    return [ResponseMetric.end_at.is_not(None), ResponseMetric.end_at >= _instant(since),
            ResponseMetric.end_at < _instant(until),
            *_filters(ResponseMetric, entity_scope(session, user, entity_ids), priority, agent_id)]


def _filters(table, scope, priority, agent_id) -> list:
    """The scope, priority and agent clauses on the raw rows or the rollups (their columns share names)."""
    where = []
    if scope is not None:
        where.append(table.entity_id.in_(scope) if scope else false())
    if priority:
        where.append(table.priority == priority)
    if agent_id is not None:
        where.append(table.agent_id == agent_id)
    return where


@dataclass(frozen=True)
class _Split:
    """A period's days read from the rollups ([since, raw_since)) and the conditions of either part."""

    rolled: list  # on metric_rollups
    raw: list  # on response_metrics
    days: tuple = ()  # (first, raw_since): the days read from the rollups
    scope: set | None = None  # the entity ids (None: every entity)
    priority: str | None = None
    agent_id: int | None = None

    def level(self, keys: tuple[str, ...]):
        """The coarsest rollup level that keeps apart what a figure grouped by `keys` and these filters need."""
        if not self.priority:
            for level in (MetricEntityRollup, MetricAgentRollup):
                if set(keys) <= set(level.KEYS) and (self.agent_id is None or "agent_id" in level.KEYS):
                    return level
        return MetricRollup

    def conditions(self, level) -> list:
        if level is MetricRollup:
            return self.rolled
        agent_id = self.agent_id if "agent_id" in level.KEYS else None
        return [level.day >= self.days[0], level.day < self.days[1], *_filters(level, self.scope, None, agent_id)]


def _split(session, user, entity_ids, since, until, priority, agent_id) -> _Split | None:
    """The period cut where the rollups stop covering it (None: no day of it is covered, read it all raw)."""
    first, after = _day(since), _day(until)
    if first is None or after is None:
        return None  # a period not of whole UTC days: the raw rows alone say what lies in it
    raw_since = rollups.covered_until(session, first, after)
    if raw_since <= first:
        return None
    scope = entity_scope(session, user, entity_ids)
    return _Split(rolled=[MetricRollup.day >= first, MetricRollup.day < raw_since,
                          *_filters(MetricRollup, scope, priority, agent_id)],
                  raw=scoped_conditions(session, user, entity_ids, raw_since, after, priority, agent_id),
                  days=(first, raw_since), scope=scope, priority=priority, agent_id=agent_id)


def _rolled_figures(session, split: _Split, keys: tuple[str, ...], kinds, measures) -> tuple[dict, dict]:
    """From the rollups and the raw rows after them: {(group, measure): Distribution} and {(group, within): count}
    of the rows of `kinds`, grouped by the columns named `keys` (metric_type, agent_id, entity_id, priority; a group
    is the value of one key, the tuple of several). Without a priority or agent filter, and not grouped by either,
    the entity level of the rollups (fewer bins to merge)."""
    r, rm = split.level(keys), ResponseMetric
    coarse = r is not MetricRollup
    rolled = [*split.conditions(r), r.metric_type.in_(kinds)]
    raw = [*split.raw, rm.metric_type.in_(kinds)]
    counts: dict = {}
    found = {measure: {} for measure in measures}
    # One pass over the rollups for the compliance counts and every measure's count and sum (the means, exactly).
    sums = [column for measure in measures for column in (getattr(r, f"{ROLLUP_MEASURES[measure]}_count"),
                                                          getattr(r, f"{ROLLUP_MEASURES[measure]}_minutes"))]
    columns = [getattr(r, k) for k in keys]
    for row in session.execute(select(*columns, func.sum(r.within_sla), func.sum(r.breached), *map(func.sum, sums))
                               .where(*rolled).group_by(*columns)):
        group, (within, breached, *totals) = _group(row, len(keys)), row[len(keys):]
        counts[(group, True)] = int(within or 0)
        counts[(group, False)] = int(breached or 0)
        for i, measure in enumerate(measures):
            if totals[2 * i]:
                found[measure].setdefault(group, Histogram()).add_totals(int(totals[2 * i]), float(totals[2 * i + 1]))
    _add_raw(session, [getattr(rm, k) for k in keys], raw, measures, counts, found)
    times = {}
    for measure in measures:
        prefix = ROLLUP_MEASURES[measure]
        if coarse:  # the running histograms of the period's last day minus those of the day before it
            _merge_running(session, found[measure], r, keys, prefix, kinds, split)
        else:
            _merge_bins(session, found[measure], r, columns, getattr(r, f"{prefix}_bins"),
                        getattr(r, f"{prefix}_bin_counts"), rolled)
        for group, h in found[measure].items():
            if h.count:
                times[(group, measure)] = Distribution(h.count, h.percentile(0.5), h.percentile(0.9),
                                                       h.total / h.count, approximate=True)
    return times, counts


def _group(row, n: int):
    """A row's group: its first column, or the tuple of its first `n`."""
    return row[0] if n == 1 else tuple(row[:n])


def _merge_bins(session, found: dict, table, keys: list, bins, counts, where) -> None:
    """Add the rollups' stored bins to each group's histogram (grouped by the columns `keys`): summed in SQL on
    PostgreSQL (unnest: one row per group and bin comes back), in Python elsewhere."""
    n = len(keys)
    if session.get_bind().dialect.name == "postgresql":
        pairs = func.unnest(bins, counts).table_valued("bin", "n").render_derived(name="h")
        current, into = object(), None
        for row in session.execute(select(*keys, pairs.c.bin, func.sum(pairs.c.n)).select_from(table)
                                   .join(pairs, true()).where(*where).group_by(*keys, pairs.c.bin)):
            group, b, count = _group(row, n), row[n], row[n + 1]
            if group != current:  # rows come grouped: look the histogram up once per run of a group
                current, into = group, found.setdefault(group, Histogram()).bins
            into[b] += int(count)
        return
    for row in session.execute(select(*keys, bins, counts).where(*where)):
        found.setdefault(_group(row, n), Histogram()).add_bins(row[n], row[n + 1])


def _add_raw(session, keys: list, raw: list, measures, counts: dict, found: dict) -> None:
    """Add the raw rows after the rollups (today, at least) to the compliance `counts` {(group, within): n} and to
    each measure's histograms in `found`, grouped by the columns `keys`. PostgreSQL reads them once, binned in SQL
    (one grouping set for the compliance, one per measure); elsewhere one query each, binned here."""
    rm, measures, k = ResponseMetric, list(measures), len(keys)
    if session.get_bind().dialect.name != "postgresql":
        for row in session.execute(select(*keys, rm.within_sla, func.count())
                                   .where(*raw, rm.within_sla.is_not(None)).group_by(*keys, rm.within_sla)):
            key = (_group(row, k), row[k])
            counts[key] = counts.get(key, 0) + row[k + 1]
        for measure in measures:
            column = MEASURES[measure]
            for row in session.execute(select(*keys, column, func.count())
                                       .where(*raw, column.is_not(None)).group_by(*keys, column)):
                found[measure].setdefault(_group(row, k), Histogram()).add_value(row[k], row[k + 1])
        return
    bins = [_sql_bin(MEASURES[m]) for m in measures]
    sets = [tuple_(*keys, rm.within_sla), *(tuple_(*keys, b) for b in bins)]
    rows = session.execute(select(*keys, func.grouping(rm.within_sla, *bins), rm.within_sla, *bins, func.count(),
                                  *(func.sum(MEASURES[m]) for m in measures))
                           .where(*raw).group_by(func.grouping_sets(*sets)))
    # grouping() has a bit for each of within_sla and the bins, set when a grouping set leaves it out.
    whole = (1 << len(bins) + 1) - 1
    compliance = whole ^ (1 << len(bins))
    measure_of = {whole ^ (1 << len(bins) - 1 - i): i for i in range(len(bins))}
    for row in rows:
        group, left_out, within, rest = _group(row, k), row[k], row[k + 1], row[k + 2:]
        n = rest[len(bins)]
        if left_out == compliance:
            if within is not None:
                counts[(group, within)] = counts.get((group, within), 0) + n
            continue
        i = measure_of[left_out]
        if rest[i] is not None:  # NULL: rows without this measure
            histogram = found[measures[i]].get(group) or found[measures[i]].setdefault(group, Histogram())
            histogram.bins[int(rest[i])] += n
            histogram.add_totals(n, float(rest[len(bins) + 1 + i]))


def _sql_bin(column):
    """`histograms.bin_of` in SQL (PostgreSQL's ln is the C library's log, as Python's: the same bins)."""
    return case((column.is_(None), None), (column <= 0, 0),
                else_=1 + func.greatest(0, func.floor(func.ln(column / FLOOR) / func.ln(RATIO)))).label(None)


def _merge_running(session, found: dict, level, keys: tuple[str, ...], prefix: str, kinds, split: _Split) -> None:
    """Add the running histograms of a coarse level as they stood before the period's last rolled-up day, and take
    away those before its first (each level key's last row before either, in scope and of the agent filter), per
    group: the columns named `keys`. One statement on PostgreSQL."""
    level_keys = [getattr(level, k) for k in level.KEYS]
    agent_id = split.agent_id if "agent_id" in level.KEYS else None
    bins, counts = getattr(level, f"{prefix}_run_bins"), getattr(level, f"{prefix}_run_counts")
    groups, n = [getattr(level, k) for k in keys], len(keys)

    def last_rows(before: date):
        last = select(*level_keys, func.max(level.day).label("day")) \
            .where(level.day < before, level.metric_type.in_(kinds), *_filters(level, split.scope, None, agent_id)) \
            .group_by(*level_keys).subquery()
        return last, and_(level.day == last.c.day,
                          *(or_(getattr(level, k) == last.c[k], and_(getattr(level, k).is_(None), last.c[k].is_(None)))
                            if k == "agent_id" else getattr(level, k) == last.c[k] for k in level.KEYS))

    signed = ((split.days[1], 1), (split.days[0], -1))
    if session.get_bind().dialect.name == "postgresql":
        pairs = func.unnest(bins, counts).table_valued("bin", "n").render_derived(name="h")
        parts = []
        for before, sign in signed:
            last, on = last_rows(before)
            parts.append(select(*(g.label(f"g{i}") for i, g in enumerate(groups)), pairs.c.bin,
                                (sign * pairs.c.n).label("n")).select_from(level).join(last, on).join(pairs, true()))
        both = union_all(*parts).subquery()
        by = [both.c[f"g{i}"] for i in range(n)]
        for row in session.execute(select(*by, both.c.bin, func.sum(both.c.n)).group_by(*by, both.c.bin)):
            if row[n + 1]:
                group = _group(row, n)
                (found.get(group) or found.setdefault(group, Histogram())).bins[row[n]] += int(row[n + 1])
        return
    for before, sign in signed:
        last, on = last_rows(before)
        for row in session.execute(select(*groups, bins, counts).join(last, on)):
            histogram = found.setdefault(_group(row, n), Histogram())
            for b, count in zip(row[n] or (), row[n + 1] or ()):
                histogram.bins[b] += sign * count


def summary(session, user, entity_ids, since, until, priority: str | None = None,
            agent_id: int | None = None) -> Summary:
    """SLA compliance per clock, and first response and resolution times, for what `user` may see."""
    kinds = (FIRST_RESPONSE, RESPONSE, FULL_RESOLUTION)
    empty = Distribution(0, None, None, None)
    split = _split(session, user, entity_ids, since, until, priority, agent_id)
    if split is not None:
        found, counts = _rolled_figures(session, split, ("metric_type",), kinds, MEASURES)

        def rolled_times(kind):
            return {name: found.get((kind, name), empty) for name in MEASURES}

        return Summary(compliance={clock: Compliance(counts.get((kind, True), 0), counts.get((kind, False), 0))
                                   for clock, kind in COMPLIANCE_ROWS.items()},
                       first_response=rolled_times(FIRST_RESPONSE), response=rolled_times(RESPONSE),
                       resolution=rolled_times(FULL_RESOLUTION))
    where = scoped_conditions(session, user, entity_ids, since, until, priority, agent_id)
    counts = {(kind, within): n for kind, within, n in session.execute(
        select(ResponseMetric.metric_type, ResponseMetric.within_sla, func.count())
        .where(*where, ResponseMetric.metric_type.in_(list(COMPLIANCE_ROWS.values())),
               ResponseMetric.within_sla.is_not(None))
        .group_by(ResponseMetric.metric_type, ResponseMetric.within_sla))}
    compliance = {clock: Compliance(counts.get((kind, True), 0), counts.get((kind, False), 0))
                  for clock, kind in COMPLIANCE_ROWS.items()}

    # One grouped distribution per measure: the three kinds' times in two queries.
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
    return breakdowns(session, user, entity_ids, since, until, by, (kind,), measure, priority, agent_id)[kind]


def breakdowns(session, user, entity_ids, since, until, by: str, kinds: tuple[str, ...],
               measure: str = "business", priority: str | None = None,
               agent_id: int | None = None) -> dict[str, list[Group]]:
    """`breakdown` for each of `kinds` (read together from the rollups: one pass for them all)."""
    if by not in GROUPS or measure not in MEASURES:
        raise ValueError(f"breakdown by one of {sorted(GROUPS)}, measure one of {sorted(MEASURES)}")
    key = GROUPS[by]
    times: dict = {kind: {} for kind in kinds}
    counts: dict = {kind: {} for kind in kinds}
    split = _split(session, user, entity_ids, since, until, priority, agent_id)
    if split is not None:
        found, flat = _rolled_figures(session, split, ("metric_type", key.key), kinds, (measure,))
        for ((kind, group), _), d in found.items():
            times[kind][group] = d
        for ((kind, group), within), n in flat.items():
            counts[kind].setdefault(group, {})[within] = n
    else:
        for kind in kinds:
            where = [*scoped_conditions(session, user, entity_ids, since, until, priority, agent_id),
                     ResponseMetric.metric_type == kind]
            times[kind] = distributions_by(session, MEASURES[measure], key, *where)
            for group, within, n in session.execute(
                    select(key, ResponseMetric.within_sla, func.count())
                    .where(*where, ResponseMetric.within_sla.is_not(None)).group_by(key, ResponseMetric.within_sla)):
                counts[kind].setdefault(group, {})[within] = n
    empty = Distribution(0, None, None, None)

    def groups(kind):
        found, counted = times[kind], counts[kind]
        return [Group(group, found.get(group, empty), Compliance(counted.get(group, {}).get(True, 0),
                                                                  counted.get(group, {}).get(False, 0)))
                for group in sorted(set(found) | set(counted),
                                    key=lambda g: (g is None, str(g) if g is not None else ""))]
    return {kind: groups(kind) for kind in kinds}


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


def _day(value) -> date | None:
    """The UTC day a period bound starts (None: an instant within a day)."""
    instant = _instant(value).astimezone(timezone.utc)
    return instant.date() if instant.time() == time(0) else None


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
