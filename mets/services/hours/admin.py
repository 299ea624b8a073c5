"""Editing business hours: weekly intervals, holidays (typed or imported), dated exceptions, own or inherited.

Every function validates first and raises DomainError keyed by form field ("start", "end",
"intervals" for overlaps, "date", "name", "note", "country", "year", "timezone"; "" for the
whole box), then changes rows, bumps the entity's `hours_version` and flushes; routes commit.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time

from sqlalchemy import delete, select

from mets.models import BusinessHours, Entity, Holiday, HoursException
from mets.services import sla
from mets.services.errors import DomainError, check
from mets.services.hours import WEEKDAYS, hours_source, mark_changed, weekly_of
from mets.services.validation import text_error, timezone_error

_DAY_SECONDS = 24 * 3600


# --- parsing and checking -------------------------------------------------------------------


def _changed(session, entity: Entity) -> None:
    """Every hours edit ends here: bump the calendar version, then re-time the open tickets it serves."""
    mark_changed(session, entity)
    sla.retime_entities(session, [entity.id])

def parse_time(value, field: str = "start") -> time:
    """A wall-clock time from "09:00" / "9:30" / "09:00:00" (or a time); "24:00" means midnight (end only)."""
    label = "a start" if field == "start" else "an end"
    if isinstance(value, time):
        return value
    text = (value or "").strip()
    if not text:
        raise DomainError({field: f"Enter {label} time."})
    if field != "start" and text in ("24:00", "24:00:00"):
        return time(0)
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) <= 2 for p in parts) or len(parts[1]) != 2:
            raise ValueError
        return time(*(int(p) for p in parts))
    except ValueError:
        raise DomainError({field: f"Cannot read \"{text}\" as a time: use HH:MM, such as 09:00."}) from None


def parse_date(value, field: str = "date") -> date:
    """A date from "2026-12-25" (or a date)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = (value or "").strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        message = "Enter a date." if not text else f"Cannot read \"{text}\" as a date: use YYYY-MM-DD."
        raise DomainError({field: message}) from None


def format_interval(start: time, end: time) -> str:
    """"09:00–17:00"; "22:00–06:00 (next day)"; "09:00–24:00"; "00:00–24:00" for a whole day."""
    def hm(t: time) -> str:
        return t.strftime("%H:%M:%S" if t.second else "%H:%M")
    if end == time(0):
        return f"{hm(start)}–24:00"
    if end <= start:
        return f"{hm(start)}–{hm(end)} (next day)"
    return f"{hm(start)}–{hm(end)}"


def _span(start: time, end: time) -> tuple[int, int]:
    s = start.hour * 3600 + start.minute * 60 + start.second
    e = end.hour * 3600 + end.minute * 60 + end.second
    return s, e + _DAY_SECONDS if e <= s else e


def _check_new(start: time, end: time, existing: Iterable[tuple[time, time]], where: str) -> dict[str, str]:
    """Messages for a new interval overlapping one already on that day (start == end is 24 hours)."""
    s, e = _span(start, end)
    for other_start, other_end in existing:
        os_, oe = _span(other_start, other_end)
        if s < oe and os_ < e:
            return {"intervals": f"{format_interval(start, end)} overlaps {format_interval(other_start, other_end)} "
                                 f"on {where}."}
    return {}


def _require_own(entity: Entity) -> None:
    if not entity.custom_hours:
        raise DomainError({"": f"{entity.name} has no hours of its own yet: define its own hours first."})


# --- editing (services flush, routes commit) -------------------------------------------------

def set_custom_hours(session, entity: Entity, enabled: bool) -> None:
    """Give the entity hours of its own (starting from the weekly hours it inherits) or go back to inheriting.

    Going back deletes its own weekly hours, holidays and exceptions.
    """
    if bool(entity.custom_hours) == bool(enabled):
        return
    for model in (BusinessHours, Holiday, HoursException):
        session.execute(delete(model).where(model.entity_id == entity.id))
    if enabled:
        inherited = weekly_of(session, hours_source(session, entity))
        for day, pairs in inherited.items():
            for start, end in pairs:
                session.add(BusinessHours(entity_id=entity.id, day_of_week=day, start_time=start, end_time=end,
                                          is_active=True))
    entity.custom_hours = bool(enabled)
    _changed(session, entity)


def set_timezone(session, entity: Entity, name: str) -> None:
    """Change the entity's IANA time zone (its own hours are wall-clock times in it)."""
    name = (name or "").strip()
    if msg := (timezone_error(name) if name else "Enter a time zone, such as Europe/Paris."):
        raise DomainError({"timezone": msg})
    if name != entity.timezone:
        entity.timezone = name
        _changed(session, entity)


def _weekday(weekday) -> int:
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise DomainError({"weekday": f"Weekday must be 0 (Monday) to 6 (Sunday), got {weekday!r}."})
    return weekday


def _own_day(session, entity: Entity, weekday: int) -> list[BusinessHours]:
    return list(session.scalars(select(BusinessHours).where(
        BusinessHours.entity_id == entity.id, BusinessHours.day_of_week == weekday,
        BusinessHours.is_active.is_(True)).order_by(BusinessHours.start_time)))


def _parse_pair(start, end) -> tuple[time, time]:
    errors: dict[str, str] = {}
    parsed = []
    for field, value in (("start", start), ("end", end)):
        try:
            parsed.append(parse_time(value, field))
        except DomainError as exc:
            errors.update(exc.errors)
    check(errors)
    return parsed[0], parsed[1]


def set_weekday(session, entity: Entity, weekday: int, intervals: Iterable[tuple]) -> list[BusinessHours]:
    """Replace one weekday's intervals with `intervals` ((start, end) as times or "HH:MM"); [] closes the day."""
    _require_own(entity)
    weekday = _weekday(weekday)
    accepted: list[tuple[time, time]] = []
    for start, end in intervals:
        pair = _parse_pair(start, end)
        check(_check_new(*pair, accepted, WEEKDAYS[weekday]))
        accepted.append(pair)
    for row in _own_day(session, entity, weekday):
        session.delete(row)
    rows = [BusinessHours(entity_id=entity.id, day_of_week=weekday, start_time=s, end_time=e, is_active=True)
            for s, e in sorted(accepted)]
    session.add_all(rows)
    _changed(session, entity)
    return rows


def add_interval(session, entity: Entity, weekday: int, start, end) -> BusinessHours:
    """Add one open interval to a weekday (end before start: it runs past midnight)."""
    _require_own(entity)
    weekday = _weekday(weekday)
    start, end = _parse_pair(start, end)
    existing = [(r.start_time, r.end_time) for r in _own_day(session, entity, weekday)]
    check(_check_new(start, end, existing, WEEKDAYS[weekday]))
    row = BusinessHours(entity_id=entity.id, day_of_week=weekday, start_time=start, end_time=end, is_active=True)
    session.add(row)
    _changed(session, entity)
    return row


def remove_interval(session, entity: Entity, row: BusinessHours) -> None:
    """Delete one weekly interval of the entity."""
    _require_own(entity)
    _check_owner(entity, row)
    session.delete(row)
    _changed(session, entity)


def add_holiday(session, entity: Entity, day, name: str) -> Holiday:
    """Add a named closed date; a date can be a holiday once."""
    _require_own(entity)
    errors: dict[str, str] = {}
    try:
        day = parse_date(day)
    except DomainError as exc:
        errors.update(exc.errors)
    if msg := text_error(name, "Name", 200):
        errors["name"] = msg
    if "date" not in errors and (other := _holiday_on(session, entity, day)) is not None:
        errors["date"] = f"{day.isoformat()} is already a holiday ({other.name})."
    check(errors)
    holiday = Holiday(entity_id=entity.id, date=day, name=name.strip())
    session.add(holiday)
    _changed(session, entity)
    return holiday


def _holiday_on(session, entity: Entity, day: date) -> Holiday | None:
    return session.scalar(select(Holiday).where(Holiday.entity_id == entity.id, Holiday.date == day))


def remove_holiday(session, entity: Entity, holiday: Holiday) -> None:
    """Delete one holiday of the entity."""
    _require_own(entity)
    _check_owner(entity, holiday)
    session.delete(holiday)
    _changed(session, entity)


def holiday_countries() -> list[tuple[str, str]]:
    """(code, name) of every country the `holidays` package knows, by name (for a datalist)."""
    import holidays  # here, not at the top: 0.1 s to import, and only this admin page needs it

    try:  # an internal module of `holidays`, so it may move; imported here to fall back when it does
        from holidays.registry import COUNTRIES
        pairs = [(spec[1], spec[0]) for spec in COUNTRIES.values()]
    except (ImportError, AttributeError, IndexError):  # fall back to bare codes
        pairs = [(code, code) for code in holidays.list_supported_countries() if len(code) == 2]
    return sorted(pairs, key=lambda p: p[1])


def import_holidays(session, entity: Entity, country: str, year) -> int:
    """Add the public holidays of `country` ("US", or "US-CA" for a region) in `year`; returns how many were new."""
    import holidays  # see holiday_countries

    _require_own(entity)
    errors: dict[str, str] = {}
    code, _, subdiv = (country or "").strip().upper().partition("-")
    try:
        year = int(str(year).strip())
        if not 1950 <= year <= 2100:
            raise ValueError
    except ValueError:
        errors["year"] = "Enter a year from 1950 to 2100."
    if not code:
        errors["country"] = "Enter a country code, such as US, GB or DE."
    check(errors)
    try:
        found = holidays.country_holidays(code, subdiv=subdiv or None, years=year, language=_english(code))
    except NotImplementedError:
        if subdiv and code in holidays.list_supported_countries():
            raise DomainError({"country": f"The holidays list for {code} has no region \"{subdiv}\"."}) from None
        raise DomainError({"country": f"No holidays list for country \"{code}\": use a two-letter code, "
                                      "such as US, GB or DE."}) from None
    taken = set(session.scalars(select(Holiday.date).where(Holiday.entity_id == entity.id)))
    added = 0
    for day, name in sorted(found.items()):
        if day not in taken:
            session.add(Holiday(entity_id=entity.id, date=day, name=str(name)[:200]))
            added += 1
    if added:
        _changed(session, entity)
    return added


def _english(code: str) -> str | None:
    """An English language for the holiday names where the country offers one (DE defaults to German)."""
    import holidays  # see holiday_countries

    cls = getattr(holidays, code, None)
    languages = getattr(cls, "supported_languages", ()) or ()
    return next((lang for lang in ("en_US", "en_GB") if lang in languages), None)


def add_exception(session, entity: Entity, day, start=None, end=None, note: str | None = None) -> HoursException:
    """Special hours on one date (start and end), or closed all day (neither); several calls add several intervals."""
    _require_own(entity)
    errors: dict[str, str] = {}
    try:
        day = parse_date(day)
    except DomainError as exc:
        errors.update(exc.errors)
    closed = _blank(start) and _blank(end)
    pair = None
    if not closed:
        try:
            pair = _parse_pair(start, end)
        except DomainError as exc:
            errors.update(exc.errors)
    note = (note or "").strip() or None
    if msg := text_error(note, "Note", 200, required=False):
        errors["note"] = msg
    check(errors)
    same_day = list(session.scalars(select(HoursException).where(HoursException.entity_id == entity.id,
                                                                 HoursException.date == day)))
    if any(r.start_time is None for r in same_day):
        raise DomainError({"date": f"{day.isoformat()} is already closed all day: remove that exception first."})
    if closed and same_day:
        raise DomainError({"date": f"{day.isoformat()} already has special hours: remove them first to close it."})
    if pair is not None:
        check(_check_new(*pair, [(r.start_time, r.end_time) for r in same_day], day.strftime("%a %Y-%m-%d")))
    row = HoursException(entity_id=entity.id, date=day, start_time=pair[0] if pair else None,
                         end_time=pair[1] if pair else None, note=note)
    session.add(row)
    _changed(session, entity)
    return row


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def remove_exception(session, entity: Entity, row: HoursException) -> None:
    """Delete one exception row (one interval, or a closed date)."""
    _require_own(entity)
    _check_owner(entity, row)
    session.delete(row)
    _changed(session, entity)


def _check_owner(entity: Entity, row) -> None:
    if row.entity_id != entity.id:
        raise DomainError({"": "That entry belongs to another entity."})


