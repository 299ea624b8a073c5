"""Daily rollups of the response metrics, kept for ever, and the archive of old raw rows.

`roll_up(session, since, until)` rewrites the `metric_rollups` of the UTC days [since, until) from the completed
raw rows (one grouped INSERT ... SELECT): per day, entity, metric type, priority and agent, how many rows, the
count and sum of their business and calendar minutes, how many met and missed their target; then each row's
histogram of either measure (`histograms`, read back from the raw rows in one pass). A day whose raw rows
were archived is never rewritten (its rows are gone); any other day may be, as often as wanted (a reopen takes a
full resolution back, a rebuild rewrites rows), so the periodic job rolls the last few days up again.

Which days the rollups cover (`covered_until`): those before the archive horizon, and the range of days rolled up
after they ended (the app setting `metrics_rolled_up`, "first/after-last" ISO days, grown by each roll_up that
touches or overlaps it). The summary figures read those days from here and the rest (today, at least) raw.

`archive(session, before, path)` rolls up every day before `before` still in the raw table, writes the completed
rows that ended before it to a gzip CSV at `path`, deletes them, and moves the archive horizon
(`archived_before`, the app setting `metrics_archived_before`) to `before`. The trend charts (dashboard.volume,
dashboard.agent_trend) read the days before the horizon from the rollups and the others from the raw rows.
"""
import csv
import gzip
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Date, DateTime, and_, case, cast, delete, func, insert, or_, select, update

from mets import clock, transaction
from mets.models import (AppSetting, MetricAgentRollup, MetricEntityRollup, MetricRollup, ResponseMetric, Ticket,
                         TicketRollup)
from mets.services.metrics.histograms import Histogram

HORIZON_KEY = "metrics_archived_before"
COVERED_KEY = "metrics_rolled_up"
TICKETS_KEY = "tickets_rolled_up"  # "<first day not rolled up>/<instant>": every ticket created before that day is
# in `ticket_rollups` as it was at that instant (minus TICKETS_MARGIN), the tickets changed since read raw
RETIMED_KEY = "tickets_retimed_days"  # "<day>,<day>...": created days whose tickets an SLA edit retimed since then
TICKETS_MARGIN = timedelta(minutes=5)  # a change whose `updated_at` was taken before the roll-up read, committed after
STOPPED = ("resolved", "closed")
LEVELS = (MetricEntityRollup, MetricAgentRollup)  # the coarse levels (their KEYS: what they keep apart)
SUMS = ("count", "business_count", "business_minutes", "duration_count", "duration_minutes", "within_sla", "breached")
MEASURES = ("business", "duration")  # the rollup's column prefixes: business and calendar (duration) minutes
RECENT_DAYS = 3  # the periodic job rolls up today and the days before it (reopens change a past day's rows)
CSV_COLUMNS = ("id", "ticket_id", "metric_type", "seq", "start_at", "end_at", "duration_minutes", "business_minutes",
               "sla_target_minutes", "within_sla", "entity_id", "agent_id", "priority", "reopens", "reopened_at",
               "recorded_at")


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def day_of(session, column):
    """The UTC day of an instant column, as SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def day_bucket(session, column, period: str):
    """The first day of the day / week (from Monday) / month bucket holding a Date column, as SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc(period, cast(column, DateTime)), Date)
    if period == "month":
        return func.strftime("%Y-%m-01", column)
    if period == "week":
        return func.date(column, "-6 days", "weekday 1")
    return func.date(column)


_READ_ONCE = "rollups.read_once"


def _read_once(session, name: str, key, load):
    """`load()`, remembered for the transaction until its next flush (a flush may change what it read): a dashboard
    page asks for the same settings a dozen times and for the changed days twice, and flushes nothing."""
    cache = transaction.cache(session)
    if _READ_ONCE not in cache:
        cache[_READ_ONCE] = {}
        transaction.after_flush(session, _READ_ONCE, lambda s: transaction.cache(s).pop(_READ_ONCE, None))
    found = cache[_READ_ONCE].setdefault(name, {})
    if key not in found:
        found[key] = load()
    return found[key]


def _setting(session, key: str) -> str | None:
    """The value of the app setting `key`, one of this module's (None: missing or empty); the three read together."""
    def load():
        found = dict(session.execute(select(AppSetting.key, AppSetting.value).where(
            AppSetting.key.in_((HORIZON_KEY, COVERED_KEY, TICKETS_KEY, RETIMED_KEY)))).all())
        return {k: v or None for k, v in found.items()}
    return _read_once(session, "settings", None, load).get(key)


def archived_before(session) -> date | None:
    """The first day whose raw rows are all still there (None: nothing archived)."""
    value = _setting(session, HORIZON_KEY)
    return date.fromisoformat(value) if value else None


def _set_setting(session, key: str, value: str) -> None:
    setting = session.get(AppSetting, key)
    if setting is None:
        session.add(AppSetting(key=key, value=value))
    else:
        setting.value = value
    session.flush()


def _set_horizon(session, day: date) -> None:
    _set_setting(session, HORIZON_KEY, day.isoformat())


def rolled_up(session) -> tuple[date, date] | None:
    """The days [first, after last) rolled up after they ended (None: none yet)."""
    value = _setting(session, COVERED_KEY)
    if value is None:
        return None
    first, after = value.split("/")
    return date.fromisoformat(first), date.fromisoformat(after)


def covered_until(session, since: date, until: date) -> date:
    """The first day of [since, until) the rollups do not cover, or `until`: the days before it are read from the
    rollups, the rest from the raw rows. `since` itself when the range starts on a day not covered (all raw)."""
    horizon = archived_before(session)
    covered = rolled_up(session)
    end = since
    if horizon is not None and since < horizon:
        end = horizon
    if covered is not None and covered[0] <= end < covered[1]:
        end = covered[1]
    return min(max(end, since), until)


def _note_rolled_up(session, since: date, until: date, now: datetime) -> None:
    """Record that the days [since, until) that had ended by `now` are rolled up: grow the covered range when they
    touch it, else (a range apart from it) keep the later of the two."""
    until = min(until, now.astimezone(timezone.utc).date())
    if since >= until:
        return
    covered = rolled_up(session)
    if covered is not None and since <= covered[1] and until >= covered[0]:
        since, until = min(since, covered[0]), max(until, covered[1])
    elif covered is not None and covered[1] > until:
        return
    _set_setting(session, COVERED_KEY, f"{since.isoformat()}/{until.isoformat()}")


def roll_up(session, since: date, until: date, now: datetime | None = None) -> int:
    """Rewrite the rollups of the days [since, until) (those before the archive horizon left as they are) from the
    raw rows completed then, with their histograms; the number of rollup rows written. The days that had ended by
    `now` count as covered (`covered_until`)."""
    horizon = archived_before(session)
    if horizon is not None and since < horizon:
        since = horizon
    if since >= until:
        return 0
    session.flush()
    fine = _fine_rows(session, since, until)
    session.execute(delete(MetricRollup).where(MetricRollup.day >= since, MetricRollup.day < until))
    if fine:
        session.execute(insert(MetricRollup), [row.values(FINE_KEYS) for row in fine.values()])
    for level in LEVELS:
        _write_level(session, level, fine, since, until)
    now = now or clock.now()
    _note_rolled_up(session, since, until, now)
    roll_up_tickets(session, since, until, now)
    return len(fine)


FINE_KEYS = ("day", "entity_id", "metric_type", "priority", "agent_id")


class _Row:
    """One rollup row being written: its sums and a histogram per measure (each row is written once, complete:
    inserted and then updated, a row left two or three dead versions, and a full roll-up tables several times their
    size)."""

    def __init__(self, key: tuple):
        self.key = key
        self.sums = dict.fromkeys(SUMS, 0)
        self.histograms = {m: Histogram() for m in MEASURES}

    def add(self, other: "_Row") -> None:
        for name in SUMS:
            self.sums[name] += other.sums[name]
        for m in MEASURES:
            self.histograms[m].bins.update(other.histograms[m].bins)

    def values(self, keys: tuple, running: dict | None = None) -> dict:
        out = {**dict(zip(keys, self.key)), **self.sums}
        for m in MEASURES:
            out[f"{m}_bins"], out[f"{m}_bin_counts"] = self.histograms[m].stored()
            if running is not None:
                out[f"{m}_run_bins"], out[f"{m}_run_counts"] = running[m].stored()
        return out


def _fine_rows(session, since: date, until: date) -> dict[tuple, _Row]:
    """The `metric_rollups` rows of [since, until) from the completed raw rows, by (day, entity, type, priority,
    agent): the counts in one grouped pass, then each measure's values (equal values counted together)."""
    rm = ResponseMetric
    day = day_of(session, rm.end_at)
    keys = (day, rm.entity_id, rm.metric_type, rm.priority, rm.agent_id)
    completed = (rm.end_at.is_not(None), rm.end_at >= _instant(since), rm.end_at < _instant(until))
    rows: dict[tuple, _Row] = {}
    for day_, *key, count, within, breached in session.execute(
            select(*keys, func.count(), func.coalesce(func.sum(case((rm.within_sla.is_(True), 1), else_=0)), 0),
                   func.coalesce(func.sum(case((rm.within_sla.is_(False), 1), else_=0)), 0))
            .where(*completed).group_by(*keys)):
        row = _Row((_as_day(day_), *key))
        rows[row.key] = row
        row.sums.update(count=count, within_sla=int(within), breached=int(breached))
    for measure in MEASURES:
        column = getattr(rm, f"{measure}_minutes")
        for day_, *key, value, n in session.execute(select(*keys, column, func.count())
                                                    .where(*completed, column.is_not(None)).group_by(*keys, column)
                                                    .execution_options(yield_per=10000)):
            row = rows[(_as_day(day_), *key)]
            row.histograms[measure].add_value(value, n)
            row.sums[f"{measure}_count"] += n
            row.sums[f"{measure}_minutes"] += value * n
    return rows


def _write_level(session, level, fine: dict[tuple, _Row], since: date, until: date) -> None:
    """Rewrite a coarse level's rows of [since, until): the fine rows summed per (day, *level.KEYS), each with its
    running histograms (those of its key's last row before `since`, plus each day's in turn); the running ones of
    any later day follow (`fill_running`)."""
    picks = [FINE_KEYS.index(k) for k in ("day", *level.KEYS)]
    rows: dict[tuple, _Row] = {}
    for key, row in fine.items():
        coarse = tuple(key[i] for i in picks)
        (rows.get(coarse) or rows.setdefault(coarse, _Row(coarse))).add(row)
    running = _running_before(session, level, since)
    out = []
    for key in sorted(rows, key=lambda k: (tuple((v is None, v) for v in k[1:]), k[0])):
        histograms = running.setdefault(key[1:], {m: Histogram() for m in MEASURES})
        for m in MEASURES:
            histograms[m].bins.update(rows[key].histograms[m].bins)
        out.append(rows[key].values(("day", *level.KEYS), histograms))
    session.execute(delete(level).where(level.day >= since, level.day < until))
    if out:
        session.execute(insert(level), out)
    if session.scalar(select(func.count()).where(level.day >= until)):
        fill_running(session, level, until)


def _running_before(session, level, since: date) -> dict[tuple, dict[str, Histogram]]:
    """Per key of `level`, the running histograms of its last row before `since`."""
    keys = [getattr(level, k) for k in level.KEYS]
    last = select(*keys, func.max(level.day).label("day")).where(level.day < since).group_by(*keys).subquery()
    on = and_(level.day == last.c.day, *(_same(getattr(level, k), last.c[k]) for k in level.KEYS))
    run_columns = [getattr(level, f"{m}_run_{p}") for m in MEASURES for p in ("bins", "counts")]
    running: dict = {}
    for row in session.execute(select(*keys, *run_columns).join(last, on)):
        histograms = running[tuple(row[:len(keys)])] = {m: Histogram() for m in MEASURES}
        stored = row[len(keys):]
        for i, m in enumerate(MEASURES):
            histograms[m].add_bins(stored[2 * i], stored[2 * i + 1])
    return running


def fill_running(session, level, since: date) -> int:
    """Rewrite the running histograms of a coarse level from `since` on (every later day's includes the days
    rewritten): per key (`level.KEYS`), the running one of its last day before `since`, plus each day's in turn."""
    keys = [getattr(level, k) for k in level.KEYS]
    running = _running_before(session, level, since)
    changes = []
    day_columns = [getattr(level, f"{m}_{p}") for m in MEASURES for p in ("bins", "bin_counts")]
    for row in session.execute(select(level.id, *keys, *day_columns).where(level.day >= since)
                               .order_by(*keys, level.day)):
        histograms = running.setdefault(tuple(row[1:1 + len(keys)]), {m: Histogram() for m in MEASURES})
        stored = row[1 + len(keys):]
        change = {"id": row[0]}
        for i, m in enumerate(MEASURES):
            histograms[m].add_bins(stored[2 * i], stored[2 * i + 1])
            change[f"{m}_run_bins"], change[f"{m}_run_counts"] = histograms[m].stored()
        changes.append(change)
    if changes:
        session.execute(update(level), changes)
    return len(changes)


def _same(column, other):
    """column = other, NULLs equal (no agent is a key like any other)."""
    return or_(column == other, and_(column.is_(None), other.is_(None)))


def _as_day(value) -> date:
    """A UTC day as the database gives it back (SQLite's date() is a string)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- the tickets ---------------------------------------------------------------------------------------------

def tickets_rolled_up(session) -> tuple[date, datetime] | None:
    """(the first created day not in `ticket_rollups`, the instant from which changed tickets are read raw), or None:
    nothing rolled up yet (the dashboard counts the tickets raw)."""
    value = _setting(session, TICKETS_KEY)
    if value is None:
        return None
    day, at = value.split("/")
    return date.fromisoformat(day), datetime.fromisoformat(at)


def changed_days(session, until: date, since: datetime) -> set[date]:
    """The UTC days before `until` on which the tickets changed at or after `since` were created (the ticket's
    `updated_at` index), and those whose tickets an SLA edit retimed since the last roll-up: their rows in
    `ticket_rollups` may be stale."""
    day = day_of(session, Ticket.created_at)
    changed = _read_once(session, "changed_days", (until, since), lambda: {_as_day(d) for d in session.scalars(
        select(day).where(Ticket.updated_at >= since, Ticket.created_at < _instant(until)).distinct())})
    return changed | {d for d in retimed_days(session) if d < until}


def roll_up_tickets(session, since: date, until: date, now: datetime) -> int:
    """Rewrite `ticket_rollups` for the tickets created on the days [since, until) before today, on the days between
    the last roll-up and them, and on the days of the tickets changed since the last roll-up (the first time: every
    day before today); the number of rows written."""
    today = now.astimezone(timezone.utc).date()
    found = tickets_rolled_up(session)
    until = min(until, today)
    if found is None:
        first = session.scalar(select(func.min(Ticket.created_at)))
        since = min(since, first.astimezone(timezone.utc).date() if first is not None else since)
        ranges, after = [(since, until)], until
    else:
        after, mark = found
        # The days asked for, and those between the last roll-up and them (a later range leaves no gap).
        ranges = [(min(since, after), until) if until >= after else (since, until)]
        ranges += [(d, d + timedelta(days=1)) for d in sorted(changed_days(session, after, mark))
                   if not ranges[0][0] <= d < ranges[0][1]]
        after = max(after, until)
    mark = now - TICKETS_MARGIN
    written = sum(_write_ticket_days(session, start, end, mark) for start, end in ranges if start < end)
    _set_setting(session, TICKETS_KEY, f"{after.isoformat()}/{mark.isoformat()}")
    if retimed_days(session):  # every retimed day was among the changed ones: written again
        _set_setting(session, RETIMED_KEY, "")
    return written


def _write_ticket_days(session, since: date, until: date, mark: datetime) -> int:
    """Rewrite the `ticket_rollups` of the tickets created on the days [since, until) (one grouped INSERT ... SELECT
    on `ix_tickets_created_at`), their clocks due by `mark` counted."""
    t, tr = Ticket, TicketRollup
    session.execute(delete(tr).where(tr.created_day >= since, tr.created_day < until))
    created = day_of(session, t.created_at)
    resolved = case((t.status.in_(STOPPED), day_of(session, t.resolved_at)), else_=None)
    query = (select(created, t.status, resolved, t.entity_id, t.priority, t.assignee_id, func.count(),
                    func.min(t.created_at), func.count(case((t.sla_nearest_due <= mark, 1))))
             .where(t.created_at >= _instant(since), t.created_at < _instant(until))
             .group_by(created, t.status, resolved, t.entity_id, t.priority, t.assignee_id))
    result = session.execute(insert(tr).from_select(
        ("created_day", "status", "resolved_day", "entity_id", "priority", "assignee_id", "count", "oldest",
         "due_by_mark"), query))
    return result.rowcount or 0


def tickets_retimed(session, tickets, now: datetime) -> None:
    """An SLA rule or hours edit moved these tickets' clocks without changing them (their `updated_at` stays): the
    days they were created on count as changed (`changed_days`) until the next roll-up writes them again, so the
    dashboard reads their tickets raw and their clocks due as they are now."""
    found = tickets_rolled_up(session)
    if found is None:
        return
    days = retimed_days(session)
    more = {t.created_at.astimezone(timezone.utc).date() for t in tickets} - days
    more = {day for day in more if day < found[0]}
    if more:
        _set_setting(session, RETIMED_KEY, ",".join(sorted(d.isoformat() for d in days | more)))


def retimed_days(session) -> set[date]:
    value = _setting(session, RETIMED_KEY)
    return {date.fromisoformat(d) for d in value.split(",")} if value else set()


def roll_up_recent(session, today: date, days: int = RECENT_DAYS) -> int:
    """The periodic job's work: roll up today and the `days` - 1 days before it."""
    return roll_up(session, today - timedelta(days=days - 1), today + timedelta(days=1))


def archive(session, before: date, path) -> int:
    """Roll up, write to a gzip CSV at `path` and delete the completed raw rows that ended before `before`; move
    the archive horizon there. Returns how many rows were archived. Rows still open are kept."""
    horizon = archived_before(session)
    if horizon is not None and before <= horizon:
        return 0
    rm = ResponseMetric
    old = (rm.end_at.is_not(None), rm.end_at < _instant(before))
    first = session.scalar(select(func.min(rm.end_at)).where(*old))
    start = horizon or (first.date() if first is not None else before)
    roll_up(session, min(start, before), before)
    written = 0
    with gzip.open(path, "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in session.execute(select(*(getattr(rm, c) for c in CSV_COLUMNS)).where(*old).order_by(rm.id)
                                   .execution_options(yield_per=5000)):
            writer.writerow([_cell(v) for v in row])
            written += 1
    session.execute(delete(rm).where(*old))
    _set_horizon(session, before)
    return written


def read_archive(path) -> list[dict]:
    """The rows of an archive file, as dicts of strings (CSV_COLUMNS)."""
    with gzip.open(path, "rt", newline="", encoding="utf-8") as src:
        return list(csv.DictReader(src))


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
