"""Business hours per entity: whose hours apply, the calendar they make, and the live preview.

An entity with `custom_hours` off uses its parent's whole calendar (weekly hours, holidays,
exceptions and the parent's time zone); a top-level entity without its own hours gets
DEFAULT_WEEKLY in its own time zone. Calendars are cached per process, keyed by the source
entity's id, `hours_version` and time zone: every edit bumps the source's version, so a stale
calendar is never used, and children (who inherit) pick up the change through the source's key.
Change hours only through services.hours_edit (or call mark_changed), never by writing rows.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import event, select

from mets import transaction
from mets.models import BusinessHours, Entity, Holiday, HoursException
from mets.services.hours.calendar import BusinessCalendar
from mets.services.durations import format_minutes, parse_duration
from mets.services.errors import DomainError, check

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_WEEKLY: dict[int, list[tuple[time, time]]] = {day: [(time(9), time(17))] for day in range(5)}

# --- whose hours apply, and the cached calendar ---------------------------------------------

_cache: dict[tuple, BusinessCalendar] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 4096
# The ids of entities whose hours the transaction changed (transaction.state: a savepoint rolled
# back may have undone the change or not, so they stay marked), and the calendars built from
# those uncommitted rows (transaction.cache: a savepoint rolled back gives its version number back).
_DIRTY = "hours.changed"
_UNCOMMITTED = "hours.uncommitted_calendars"


@event.listens_for(Entity, "after_insert")
@event.listens_for(Entity, "after_delete")
def _forget_entity(_mapper, _connection, entity):
    # SQLite hands a deleted row's id to the next row: a new entity must not meet an old calendar.
    _evict(entity.id)


def _evict(entity_id: int) -> None:
    with _cache_lock:
        for key in [k for k in _cache if k[0] == entity_id]:
            del _cache[key]


def clear_cache() -> None:
    """Forget every cached calendar (tests; never needed for correctness)."""
    with _cache_lock:
        _cache.clear()


def hours_source(session, entity: Entity) -> Entity:
    """The entity whose hours apply: the nearest with custom hours, else the top-level ancestor."""
    current, seen = entity, set()
    while not current.custom_hours and current.parent is not None and current.id not in seen:
        seen.add(current.id)
        current = current.parent
    return current


def mark_changed(session, entity: Entity) -> None:
    """Record a change to the entity's hours: bump `hours_version` in SQL (concurrent edits never share a number)."""
    transaction.state(session).setdefault(_DIRTY, set()).add(entity.id)  # see calendar_for
    entity.hours_version = Entity.hours_version + 1
    session.flush()


def calendar_for(session, entity: Entity) -> BusinessCalendar:
    """The entity's effective BusinessCalendar (cached; see the module docstring)."""
    source = hours_source(session, entity)
    # created_at too: with SQLite a reused id must not match a deleted entity's entry in another process.
    key = (source.id, source.hours_version, source.timezone, source.created_at)
    if source.id in transaction.state(session).get(_DIRTY, ()):
        # Changed in this transaction: cache for this session only (re-timing tickets after an edit
        # asks for it many times), since a rollback would let the version number be reused.
        uncommitted = transaction.cache(session).setdefault(_UNCOMMITTED, {})
        if key not in uncommitted:
            uncommitted[key] = _build(session, source)
        return uncommitted[key]
    cached = _cache.get(key)
    if cached is not None:
        return cached
    fresh = _version_of(session, source.id)
    calendar = _build(session, source)
    # Cache only what is known to match `key`: versions only grow and every change bumps the
    # version in the same transaction, so an unchanged version around the reads means the rows
    # read belong to that version (even at READ COMMITTED).
    if fresh == key[1:3] == _version_of(session, source.id):
        _evict(source.id)  # older versions of it are dead
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = calendar
    return calendar


def _version_of(session, entity_id: int) -> tuple[int, str] | None:
    row = session.execute(select(Entity.hours_version, Entity.timezone).where(Entity.id == entity_id)).first()
    return tuple(row) if row else None


def _build(session, source: Entity) -> BusinessCalendar:
    if not source.custom_hours:
        return BusinessCalendar(source.timezone, DEFAULT_WEEKLY)
    exceptions: dict[date, list[tuple[time, time]]] = {}
    for row in exceptions_of(session, source):
        day = exceptions.setdefault(row.date, [])
        if row.start_time is not None and row.end_time is not None:
            day.append((row.start_time, row.end_time))
    return BusinessCalendar(source.timezone, weekly_of(session, source),
                            holidays=[h.date for h in holidays_of(session, source)], exceptions=exceptions)


def weekly_of(session, entity: Entity) -> dict[int, list[tuple[time, time]]]:
    """Weekday (0-6) -> the (start, end) intervals that apply to the entity."""
    return {day: [(r.start_time, r.end_time) for r in rows] for day, rows in week_of(session, entity).items()}


def week_of(session, entity: Entity) -> dict[int, list[BusinessHours]]:
    """Weekday (0-6) -> the open intervals that apply, sorted; defaults are unsaved rows (id None)."""
    source = hours_source(session, entity)
    week: dict[int, list[BusinessHours]] = {day: [] for day in range(7)}
    if not source.custom_hours:
        for day, pairs in DEFAULT_WEEKLY.items():
            week[day] = [BusinessHours(day_of_week=day, start_time=s, end_time=e) for s, e in pairs]
        return week
    rows = session.scalars(select(BusinessHours).where(BusinessHours.entity_id == source.id,
                                                       BusinessHours.is_active.is_(True))
                           .order_by(BusinessHours.day_of_week, BusinessHours.start_time, BusinessHours.id))
    for row in rows:
        week[row.day_of_week].append(row)
    return week


def holidays_of(session, entity: Entity) -> list[Holiday]:
    """The holidays that apply to the entity, by date."""
    source = hours_source(session, entity)
    if not source.custom_hours:
        return []
    return list(session.scalars(select(Holiday).where(Holiday.entity_id == source.id).order_by(Holiday.date)))


def exceptions_of(session, entity: Entity) -> list[HoursException]:
    """The dated exceptions that apply to the entity, by date and start time (closed dates first)."""
    source = hours_source(session, entity)
    if not source.custom_hours:
        return []
    rows = session.scalars(select(HoursException).where(HoursException.entity_id == source.id)
                           .order_by(HoursException.date, HoursException.id))
    return sorted(rows, key=lambda r: (r.date, r.start_time is not None, r.start_time or time(0), r.id))


# --- the live preview ------------------------------------------------------------------------

def preview(session, entity: Entity, created_at: datetime, target: timedelta) -> dict:
    """When a ticket created at `created_at` (naive: wall-clock in the entity's zone) with `target` falls due.

    Returns created/due as aware datetimes in the entity's zone (`created_local`, `due_local`),
    in the zone the hours run in (`due_hours_local`), and in UTC (`created_utc`, `due_utc`).
    """
    zone = ZoneInfo(entity.timezone)
    if created_at.tzinfo is None:
        local = created_at.replace(tzinfo=zone)
        # A wall-clock time skipped by a spring-forward change does not exist: say so, do not guess.
        if local.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != created_at:
            raise DomainError({"created_at": f"{created_at:%Y-%m-%d %H:%M} does not exist in {entity.timezone} "
                                             "(the clocks skip it)."})
    else:
        local = created_at.astimezone(zone)
    if not isinstance(target, timedelta) or target <= timedelta(0):
        raise DomainError({"target": "The target must be longer than 0 minutes."})
    calendar = calendar_for(session, entity)
    try:
        due = calendar.add(local, target)
    except ValueError:
        raise DomainError({"": "These hours have no open time, so nothing would ever fall due."}) from None
    return {"created_local": local, "created_utc": local.astimezone(timezone.utc), "target": target,
            "target_text": format_minutes(int(target.total_seconds() // 60)), "timezone": entity.timezone,
            "hours_timezone": calendar.timezone, "due_utc": due, "due_local": due.astimezone(zone),
            "due_hours_local": due.astimezone(ZoneInfo(calendar.timezone)),
            "open_at_creation": calendar.is_open(local)}


def preview_from_text(session, entity: Entity, created_at: str, target: str) -> dict:
    """preview() from form text: a datetime-local value ("2026-03-06T16:55") and a duration ("4h 30m")."""
    errors: dict[str, str] = {}
    text = (created_at or "").strip()
    moment = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors["created_at"] = "Enter a date and time." if not text else \
            f"Cannot read \"{text}\" as a date and time: use YYYY-MM-DD HH:MM."
    try:
        minutes = parse_duration(target)
    except ValueError as exc:
        errors["target"] = str(exc)
    check(errors)
    return preview(session, entity, moment, timedelta(minutes=minutes))


@dataclass
class HoursView:
    """The hours that apply to an entity as integrators read them: whose they are (its own, or inherited from the
    entity above whose hours it follows), the time zone, the week, holidays and exceptions."""

    entity: Entity
    source: Entity
    weekly: dict[int, list[tuple[time, time]]]
    holidays: list[Holiday]
    exceptions: list[HoursException]


def hours_views(session, entities) -> list[HoursView]:
    return [HoursView(e, hours_source(session, e), weekly_of(session, e), holidays_of(session, e),
                      exceptions_of(session, e)) for e in entities]
