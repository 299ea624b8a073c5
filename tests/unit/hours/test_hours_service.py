"""services.hours and services.hours_edit: inheritance, the cache, validation, holidays, exceptions, preview."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mets.models import BusinessHours, Holiday, HoursException
from mets.services import hours
from mets.services.directory import entities
from mets.services.hours import admin as hours_edit
from mets.services.errors import DomainError
from tests.conftest import count_rows
from tests.factories import make_entity

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc



def local(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


def week(session, entity) -> dict[int, list[tuple[time, time]]]:
    return {d: pairs for d, pairs in hours.weekly_of(session, entity).items() if pairs}


@pytest.fixture
def tree(session):
    """Acme (New York) > Billing (Paris) > Refunds (Tokyo); Globex (UTC). Nobody has own hours yet."""
    acme = make_entity("Acme", "acme", timezone="America/New_York")
    billing = make_entity("Acme Billing", "billing", parent=acme, timezone="Europe/Paris")
    refunds = make_entity("Refunds", "refunds", parent=billing, timezone="Asia/Tokyo")
    globex = make_entity("Globex", "globex", timezone="UTC")
    session.commit()
    return {"acme": acme, "billing": billing, "refunds": refunds, "globex": globex}


def own(session, entity, weekly=None):
    """Give `entity` its own hours (optionally replacing the week: {weekday: [("09:00", "17:00")]})."""
    hours_edit.set_custom_hours(session, entity, True)
    for day in range(7) if weekly is not None else ():
        hours_edit.set_weekday(session, entity, day, weekly.get(day, []))
    session.commit()


# --- whose hours apply ---------------------------------------------------------------------

def test_top_level_without_own_hours_gets_mon_fri_9_17_in_its_own_zone(session, tree):
    cal = hours.calendar_for(session, tree["acme"])
    assert cal.timezone == "America/New_York"
    assert hours.hours_source(session, tree["acme"]) is tree["acme"]
    assert week(session, tree["acme"]) == {d: [(time(9), time(17))] for d in range(5)}
    assert cal.is_open(local(NY, 2026, 3, 6, 9, 0))  # a Friday
    assert not cal.is_open(local(NY, 2026, 3, 6, 17, 0))
    assert not cal.is_open(local(NY, 2026, 3, 7, 12, 0))  # Saturday
    assert hours.calendar_for(session, tree["globex"]).timezone == "UTC"


def test_child_inherits_the_parents_whole_calendar_including_its_time_zone(session, tree):
    own(session, tree["acme"], {0: [("08:00", "12:00")]})
    hours_edit.add_holiday(session, tree["acme"], "2026-03-16", "Founders' day")
    session.commit()
    for name in ("billing", "refunds"):  # child and grandchild
        assert hours.hours_source(session, tree[name]) is tree["acme"]
        cal = hours.calendar_for(session, tree[name])
        assert cal.timezone == "America/New_York"  # not Paris or Tokyo: the parent's open instants
        assert cal.is_open(local(NY, 2026, 3, 9, 8, 30))
        assert not cal.is_open(local(NY, 2026, 3, 16, 8, 30))  # the parent's holiday
        assert [h.name for h in hours.holidays_of(session, tree[name])] == ["Founders' day"]
    # The very same calendar object: one build serves every entity that uses these hours.
    assert hours.calendar_for(session, tree["refunds"]) is hours.calendar_for(session, tree["acme"])


def test_child_with_own_hours_uses_them_in_its_own_zone(session, tree):
    own(session, tree["acme"])
    own(session, tree["billing"], {d: [("10:00", "14:00")] for d in range(6)})
    cal = hours.calendar_for(session, tree["billing"])
    assert cal.timezone == "Europe/Paris"
    assert cal.is_open(local(PARIS, 2026, 3, 7, 10, 0))  # Saturday in Paris
    assert not cal.is_open(local(PARIS, 2026, 3, 9, 9, 0))
    assert hours.hours_source(session, tree["refunds"]) is tree["billing"]  # the grandchild takes the nearest
    assert hours.calendar_for(session, tree["refunds"]) is cal


def test_grandchild_of_a_default_top_level_gets_the_default_in_the_top_levels_zone(session, tree):
    assert hours.hours_source(session, tree["refunds"]) is tree["acme"]
    cal = hours.calendar_for(session, tree["refunds"])
    assert cal.timezone == "America/New_York"
    assert cal.is_open(local(NY, 2026, 3, 6, 16, 59)) and not cal.is_open(local(NY, 2026, 3, 6, 17, 0))


# --- the cache ------------------------------------------------------------------------------

def test_a_change_to_the_parents_hours_changes_the_childs_calendar(session, tree):
    own(session, tree["acme"])
    before = hours.calendar_for(session, tree["billing"])
    assert hours.calendar_for(session, tree["billing"]) is before  # cached
    monday_8 = local(NY, 2026, 3, 9, 8, 0)
    assert not before.is_open(monday_8)

    version = tree["acme"].hours_version
    hours_edit.add_interval(session, tree["acme"], 0, "07:00", "08:30")
    session.commit()
    assert tree["acme"].hours_version == version + 1
    after = hours.calendar_for(session, tree["billing"])
    assert after is not before and after.is_open(monday_8)
    assert hours.calendar_for(session, tree["refunds"]) is after


@pytest.mark.parametrize("change", ["holiday", "exception", "remove", "timezone", "inherit", "entity_form"])
def test_every_kind_of_change_reaches_the_cached_calendar(session, tree, change):
    own(session, tree["acme"])
    before = hours.calendar_for(session, tree["refunds"])
    friday_10 = local(NY, 2026, 3, 6, 10, 0)
    assert before.is_open(friday_10)
    acme = tree["acme"]
    if change == "holiday":
        hours_edit.add_holiday(session, acme, date(2026, 3, 6), "Closed")
    elif change == "exception":
        hours_edit.add_exception(session, acme, "2026-03-06", "12:00", "13:00")
    elif change == "remove":
        hours_edit.remove_interval(session, acme, hours.week_of(session, acme)[4][0])
    elif change == "timezone":
        hours_edit.set_timezone(session, acme, "Asia/Tokyo")  # 10:00 New York is midnight in Tokyo
    elif change == "inherit":
        hours_edit.set_custom_hours(session, acme, False)
        hours_edit.set_timezone(session, acme, "Asia/Tokyo")
    else:  # the entity form changes the zone without touching the version: the key holds the zone
        entities.update_entity(session, acme, {"name": "Acme", "timezone": "Asia/Tokyo"})
    session.commit()
    assert not hours.calendar_for(session, tree["refunds"]).is_open(friday_10)


def test_an_uncommitted_change_is_never_cached(session, tree):
    own(session, tree["acme"])
    hours_edit.add_holiday(session, tree["acme"], "2026-03-06", "Maybe")
    inside = hours.calendar_for(session, tree["billing"])  # the transaction sees its own change
    assert not inside.is_open(local(NY, 2026, 3, 6, 10, 0))
    session.rollback()
    # The bumped version number was rolled back too, and the next change reuses it: the calendar
    # built inside the rolled-back transaction must not be what that number finds.
    hours_edit.add_holiday(session, tree["acme"], "2026-04-03", "Another day")
    session.commit()
    cal = hours.calendar_for(session, tree["billing"])
    assert cal.is_open(local(NY, 2026, 3, 6, 10, 0))
    assert not cal.is_open(local(NY, 2026, 4, 3, 10, 0))


def test_a_change_in_a_released_savepoint_is_still_uncommitted_and_never_cached(session, tree):
    own(session, tree["acme"])
    with session.begin_nested():  # released: its change is the transaction's, not yet committed
        hours_edit.add_holiday(session, tree["acme"], "2026-03-06", "Maybe")
    assert not hours.calendar_for(session, tree["billing"]).is_open(local(NY, 2026, 3, 6, 10, 0))
    session.rollback()
    hours_edit.add_holiday(session, tree["acme"], "2026-04-03", "Another day")  # the same version number
    session.commit()
    cal = hours.calendar_for(session, tree["billing"])
    assert cal.is_open(local(NY, 2026, 3, 6, 10, 0))
    assert not cal.is_open(local(NY, 2026, 4, 3, 10, 0))


def test_a_rolled_back_savepoints_calendar_is_not_what_its_version_number_finds_next(session, tree):
    own(session, tree["acme"])
    hours_edit.add_holiday(session, tree["acme"], "2026-03-05", "Closed")
    with pytest.raises(RuntimeError):
        with session.begin_nested():
            hours_edit.add_holiday(session, tree["acme"], "2026-03-06", "Maybe")
            assert not hours.calendar_for(session, tree["billing"]).is_open(local(NY, 2026, 3, 6, 10, 0))
            raise RuntimeError("undone")
    hours_edit.add_holiday(session, tree["acme"], "2026-04-03", "Another day")  # the version the savepoint had
    cal = hours.calendar_for(session, tree["billing"])
    assert cal.is_open(local(NY, 2026, 3, 6, 10, 0))
    assert not cal.is_open(local(NY, 2026, 3, 5, 10, 0)) and not cal.is_open(local(NY, 2026, 4, 3, 10, 0))


def test_inside_the_editing_transaction_a_calendar_is_built_once_per_version(session, tree):
    own(session, tree["acme"])
    hours_edit.add_holiday(session, tree["acme"], "2026-03-06", "Closed")
    inside = hours.calendar_for(session, tree["billing"])
    assert hours.calendar_for(session, tree["acme"]) is inside  # re-timing many tickets builds it once
    hours_edit.add_holiday(session, tree["acme"], "2026-03-05", "Closed too")
    again = hours.calendar_for(session, tree["acme"])
    assert again is not inside and not again.is_open(local(NY, 2026, 3, 5, 10, 0))
    session.commit()
    assert not hours.calendar_for(session, tree["refunds"]).is_open(local(NY, 2026, 3, 5, 10, 0))


def test_a_new_entity_that_reuses_an_id_never_meets_an_old_calendar(session, tree):
    own(session, tree["globex"], {})  # closed every day
    old = (tree["globex"].id, tree["globex"].hours_version)
    assert not hours.calendar_for(session, tree["globex"]).is_open(local(UTC, 2026, 3, 6, 10, 0))
    session.delete(tree["globex"])
    session.commit()
    # SQLite gives the next row the deleted one's id; the same number of edits gives the same version.
    fresh = make_entity("Initech", "initech", timezone="UTC")
    own(session, fresh, {d: [("09:00", "17:00")] for d in range(7)})
    if session.get_bind().dialect.name == "sqlite":
        assert (fresh.id, fresh.hours_version) == old
    assert hours.calendar_for(session, fresh).is_open(local(UTC, 2026, 3, 6, 10, 0))


# --- own or inherited -----------------------------------------------------------------------

def test_defining_own_hours_starts_from_a_copy_of_the_inherited_week(session, tree):
    own(session, tree["acme"], {0: [("08:00", "12:00"), ("13:00", "17:00")], 5: [("22:00", "06:00")]})
    hours_edit.add_holiday(session, tree["acme"], "2026-12-25", "Christmas Day")
    session.commit()
    version = tree["billing"].hours_version
    hours_edit.set_custom_hours(session, tree["billing"], True)
    session.commit()
    assert tree["billing"].custom_hours and tree["billing"].hours_version == version + 1
    assert week(session, tree["billing"]) == week(session, tree["acme"])
    assert hours.holidays_of(session, tree["billing"]) == []  # only the weekly hours are copied
    assert hours.calendar_for(session, tree["billing"]).timezone == "Europe/Paris"  # now in its own zone


def test_going_back_to_inheriting_deletes_own_rows(session, tree):
    own(session, tree["acme"])
    own(session, tree["billing"])
    hours_edit.add_holiday(session, tree["billing"], "2026-05-01", "Labour day")
    hours_edit.add_exception(session, tree["billing"], "2026-05-02")
    session.commit()
    hours_edit.set_custom_hours(session, tree["billing"], False)
    session.commit()
    billing_id = tree["billing"].id
    for model in (BusinessHours, Holiday, HoursException):
        assert session.scalar(select(func.count()).select_from(model).where(model.entity_id == billing_id)) == 0
    assert hours.hours_source(session, tree["billing"]) is tree["acme"]


def test_editing_inherited_hours_is_refused(session, tree):
    with pytest.raises(DomainError) as exc:
        hours_edit.add_interval(session, tree["billing"], 0, "09:00", "10:00")
    assert exc.value.errors == {"": "Acme Billing has no hours of its own yet: define its own hours first."}
    assert count_rows(session, BusinessHours) == 0


# --- weekly intervals -----------------------------------------------------------------------

def test_several_intervals_a_day_and_overnight_shifts(session, tree):
    acme = tree["acme"]
    own(session, acme, {0: [("09:00", "12:00"), ("13:00", "17:00")], 4: [("22:00", "06:00")],
                        6: [("00:00", "00:00")]})
    cal = hours.calendar_for(session, acme)
    assert not cal.is_open(local(NY, 2026, 3, 9, 12, 30))  # lunch
    assert cal.is_open(local(NY, 2026, 3, 9, 13, 0))
    assert cal.is_open(local(NY, 2026, 3, 7, 5, 59))  # Friday's night shift, Saturday morning
    assert cal.between(local(NY, 2026, 3, 1, 0, 0), local(NY, 2026, 3, 2, 0, 0)) == timedelta(hours=24)
    assert [hours_edit.format_interval(r.start_time, r.end_time) for r in hours.week_of(session, acme)[4]] == \
        ["22:00–06:00 (next day)"]
    assert hours_edit.format_interval(time(0), time(0)) == "00:00–24:00"


@pytest.mark.parametrize("existing, start, end, field, message", [
    ([("12:00", "13:00")], "10:00", "10:00", "intervals",
     "10:00–10:00 (next day) overlaps 12:00–13:00 on Tuesday."),
    ([("09:00", "12:00")], "11:00", "13:00", "intervals", "11:00–13:00 overlaps 09:00–12:00 on Tuesday."),
    ([("09:00", "17:00")], "12:00", "13:00", "intervals", "12:00–13:00 overlaps 09:00–17:00 on Tuesday."),
    ([("22:00", "06:00")], "23:00", "23:30", "intervals",
     "23:00–23:30 overlaps 22:00–06:00 (next day) on Tuesday."),
    ([("09:00", "12:00")], "00:00", "00:00", "intervals", "00:00–24:00 overlaps 09:00–12:00 on Tuesday."),
    ([], "9am", "17:00", "start", 'Cannot read "9am" as a time: use HH:MM, such as 09:00.'),
    ([], "09:00", "25:00", "end", 'Cannot read "25:00" as a time: use HH:MM, such as 09:00.'),
    ([], "", "17:00", "start", "Enter a start time."),
    ([], "09:00", "", "end", "Enter an end time."),
    ([], "24:00", "10:00", "start", 'Cannot read "24:00" as a time: use HH:MM, such as 09:00.'),
])
def test_bad_intervals_are_refused_with_a_message_on_the_field(session, tree, existing, start, end, field, message):
    own(session, tree["acme"], {1: existing})
    version = tree["acme"].hours_version
    with pytest.raises(DomainError) as exc:
        hours_edit.add_interval(session, tree["acme"], 1, start, end)
    assert exc.value.errors == {field: message}
    session.rollback()
    assert len(hours.week_of(session, tree["acme"])[1]) == len(existing)
    assert tree["acme"].hours_version == version


@pytest.mark.parametrize("start, end", [("12:00", "13:00"), ("17:00", "18:00"), ("08:00", "09:00"),
                                        ("18:00", "02:00"), ("9:00", "24:00")])
def test_touching_intervals_and_midnight_ends_are_fine(session, tree, start, end):
    own(session, tree["acme"], {1: [("09:00", "12:00"), ("13:00", "17:00")]} if start != "9:00" else {})
    hours_edit.add_interval(session, tree["acme"], 1, start, end)
    session.commit()


def test_set_weekday_replaces_the_day_and_checks_the_whole_list(session, tree):
    own(session, tree["acme"])
    with pytest.raises(DomainError) as exc:
        hours_edit.set_weekday(session, tree["acme"], 2, [("09:00", "12:00"), ("11:30", "14:00")])
    assert exc.value.errors == {"intervals": "11:30–14:00 overlaps 09:00–12:00 on Wednesday."}
    session.rollback()
    hours_edit.set_weekday(session, tree["acme"], 2, [(time(13), time(17)), ("08:00", "12:00")])
    session.commit()
    assert week(session, tree["acme"])[2] == [(time(8), time(12)), (time(13), time(17))]
    with pytest.raises(DomainError) as exc:
        hours_edit.set_weekday(session, tree["acme"], 7, [])
    assert set(exc.value.errors) == {"weekday"}


# --- holidays -------------------------------------------------------------------------------

def test_holidays_add_refuse_duplicates_and_remove(session, tree):
    acme = tree["acme"]
    own(session, acme)
    hours_edit.add_holiday(session, acme, "2026-07-03", "Summer day")
    session.commit()
    with pytest.raises(DomainError) as exc:
        hours_edit.add_holiday(session, acme, date(2026, 7, 3), "Again")
    assert exc.value.errors == {"date": "2026-07-03 is already a holiday (Summer day)."}
    session.rollback()
    with pytest.raises(DomainError) as exc:
        hours_edit.add_holiday(session, acme, "03/07/2026", "  ")
    assert exc.value.errors == {"date": 'Cannot read "03/07/2026" as a date: use YYYY-MM-DD.',
                                "name": "Name is required."}
    session.rollback()
    assert not hours.calendar_for(session, acme).is_open(local(NY, 2026, 7, 3, 10, 0))
    hours_edit.remove_holiday(session, acme, hours.holidays_of(session, acme)[0])
    session.commit()
    assert hours.calendar_for(session, acme).is_open(local(NY, 2026, 7, 3, 10, 0))


def test_import_holidays_for_a_country_and_year(session, tree):
    acme = tree["acme"]
    own(session, acme)
    hours_edit.add_holiday(session, acme, "2026-12-25", "Our own Christmas")
    session.commit()
    added = hours_edit.import_holidays(session, acme, "us", 2026)
    session.commit()
    by_date = {h.date: h.name for h in hours.holidays_of(session, acme)}
    assert by_date[date(2026, 12, 25)] == "Our own Christmas"  # an existing date is skipped
    assert by_date[date(2026, 11, 26)] == "Thanksgiving Day"
    assert added == len(by_date) - 1 >= 10
    assert not hours.calendar_for(session, acme).is_open(local(NY, 2026, 11, 26, 10, 0))
    assert hours_edit.import_holidays(session, acme, "US", "2026") == 0  # nothing new the second time


def test_import_christmas_day_from_the_holidays_package(session, tree):
    own(session, tree["globex"])
    hours_edit.import_holidays(session, tree["globex"], "US", 2026)
    session.commit()
    assert {h.date: h.name for h in hours.holidays_of(session, tree["globex"])}[date(2026, 12, 25)] == "Christmas Day"


def test_import_a_region_in_english(session, tree):
    own(session, tree["globex"])
    assert hours_edit.import_holidays(session, tree["globex"], "DE-BY", 2026) > 0
    names = {h.date: h.name for h in hours.holidays_of(session, tree["globex"])}
    assert names[date(2026, 1, 6)] == "Epiphany"  # Bavaria only, and in English


@pytest.mark.parametrize("country, year, errors", [
    ("XX", 2026, {"country": 'No holidays list for country "XX": use a two-letter code, such as US, GB or DE.'}),
    ("US-ZZ", 2026, {"country": 'The holidays list for US has no region "ZZ".'}),
    ("", 2026, {"country": "Enter a country code, such as US, GB or DE."}),
    ("US", "next", {"year": "Enter a year from 1950 to 2100."}),
    ("US", 1066, {"year": "Enter a year from 1950 to 2100."}),
])
def test_import_refuses_unknown_countries_and_bad_years(session, tree, country, year, errors):
    own(session, tree["globex"])
    with pytest.raises(DomainError) as exc:
        hours_edit.import_holidays(session, tree["globex"], country, year)
    assert exc.value.errors == errors
    assert count_rows(session, Holiday) == 0


# --- exceptions -----------------------------------------------------------------------------

def test_exceptions_close_a_date_or_give_it_several_intervals(session, tree):
    acme = tree["acme"]
    own(session, acme)
    hours_edit.add_exception(session, acme, "2026-03-09", note="Inventory")  # a Monday: closed
    hours_edit.add_exception(session, acme, "2026-03-07", "10:00", "12:00")  # a Saturday: open twice
    hours_edit.add_exception(session, acme, "2026-03-07", "14:00", "15:00", note="  ")
    session.commit()
    cal = hours.calendar_for(session, acme)
    assert not cal.is_open(local(NY, 2026, 3, 9, 10, 0))
    assert cal.between(local(NY, 2026, 3, 7), local(NY, 2026, 3, 8)) == timedelta(hours=3)
    rows = hours.exceptions_of(session, acme)
    assert [(r.date.day, r.start_time, r.note) for r in rows] == [(7, time(10), None), (7, time(14), None),
                                                                  (9, None, "Inventory")]
    hours_edit.remove_exception(session, acme, rows[2])
    session.commit()
    assert hours.calendar_for(session, acme).is_open(local(NY, 2026, 3, 9, 10, 0))


def test_an_exception_wins_over_a_holiday_on_the_same_date(session, tree):
    acme = tree["acme"]
    own(session, acme)
    hours_edit.add_holiday(session, acme, "2026-12-24", "Christmas Eve")
    hours_edit.add_exception(session, acme, "2026-12-24", "09:00", "13:00", note="Half day")
    session.commit()
    cal = hours.calendar_for(session, acme)
    assert cal.is_open(local(NY, 2026, 12, 24, 10, 0))
    assert not cal.is_open(local(NY, 2026, 12, 24, 14, 0))


@pytest.mark.parametrize("first, second, errors", [
    ((None, None), ("09:00", "10:00"), {"date": "2026-12-24 is already closed all day: remove that exception first."}),
    (("09:00", "13:00"), (None, None),
     {"date": "2026-12-24 already has special hours: remove them first to close it."}),
    (("09:00", "13:00"), ("12:00", "14:00"), {"intervals": "12:00–14:00 overlaps 09:00–13:00 on Thu 2026-12-24."}),
    (("09:00", "13:00"), ("14:00", None), {"end": "Enter an end time."}),
])
def test_conflicting_exceptions_are_refused(session, tree, first, second, errors):
    own(session, tree["acme"])
    hours_edit.add_exception(session, tree["acme"], "2026-12-24", *first)
    session.commit()
    with pytest.raises(DomainError) as exc:
        hours_edit.add_exception(session, tree["acme"], "2026-12-24", *second)
    assert exc.value.errors == errors
    session.rollback()
    assert count_rows(session, HoursException) == 1


def test_removing_another_entitys_row_is_refused(session, tree):
    own(session, tree["acme"])
    own(session, tree["globex"])
    row = hours.week_of(session, tree["globex"])[0][0]
    with pytest.raises(DomainError):
        hours_edit.remove_interval(session, tree["acme"], row)


# --- time zone and preview ------------------------------------------------------------------

def test_set_timezone_validates(session, tree):
    with pytest.raises(DomainError) as exc:
        hours_edit.set_timezone(session, tree["acme"], "Mars/Olympus")
    assert exc.value.errors == {"timezone": "Unknown time zone 'Mars/Olympus'. Use an IANA name such as Europe/Paris."}
    with pytest.raises(DomainError) as exc:
        hours_edit.set_timezone(session, tree["acme"], " ")
    assert exc.value.errors == {"timezone": "Enter a time zone, such as Europe/Paris."}
    hours_edit.set_timezone(session, tree["acme"], " Europe/Paris ")
    session.commit()
    assert tree["acme"].timezone == "Europe/Paris"


def test_preview_friday_1655_plus_4h_is_monday_1255_in_new_york(session, tree):
    # 2026-03-08: New York springs forward, so the UTC offset differs between creation and due.
    result = hours.preview(session, tree["acme"], datetime(2026, 3, 6, 16, 55), timedelta(hours=4))
    assert result["created_utc"] == datetime(2026, 3, 6, 21, 55, tzinfo=UTC)
    assert result["due_local"] == local(NY, 2026, 3, 9, 12, 55)
    assert result["due_local"].strftime("%A %H:%M %Z") == "Monday 12:55 EDT"
    assert result["due_utc"] == datetime(2026, 3, 9, 16, 55, tzinfo=UTC)
    assert result["target_text"] == "4h"
    aware = hours.preview(session, tree["acme"], datetime(2026, 3, 6, 21, 55, tzinfo=UTC), timedelta(hours=4))
    assert aware["due_utc"] == result["due_utc"]


def test_preview_of_an_inheriting_child_reads_and_shows_its_own_zone(session, tree):
    # Billing (Paris) inherits New York's default hours: 22:55 in Paris is 16:55 in New York.
    result = hours.preview_from_text(session, tree["billing"], "2026-03-06T22:55", "4h")
    assert result["due_utc"] == datetime(2026, 3, 9, 16, 55, tzinfo=UTC)
    assert result["due_local"] == local(PARIS, 2026, 3, 9, 17, 55)
    assert (result["timezone"], result["hours_timezone"]) == ("Europe/Paris", "America/New_York")
    assert result["due_hours_local"] == local(NY, 2026, 3, 9, 12, 55)


@pytest.mark.parametrize("created, target, errors", [
    ("2026-03-08T02:30", "4h", {"created_at": "2026-03-08 02:30 does not exist in America/New_York "
                                              "(the clocks skip it)."}),
    ("next friday", "4h", {"created_at": 'Cannot read "next friday" as a date and time: use YYYY-MM-DD HH:MM.'}),
    ("", "4x", {"created_at": "Enter a date and time.", "target": 'Unknown unit "x" in "4x": use d, h or m.'}),
    ("2026-03-06T16:55", "0m", {"target": "A duration must be longer than 0 minutes."}),
])
def test_preview_refuses_bad_input(session, tree, created, target, errors):
    with pytest.raises(DomainError) as exc:
        hours.preview_from_text(session, tree["acme"], created, target)
    assert exc.value.errors == errors


def test_preview_on_hours_that_never_open(session, tree):
    own(session, tree["acme"], {})
    with pytest.raises(DomainError) as exc:
        hours.preview(session, tree["acme"], datetime(2026, 3, 6, 16, 55), timedelta(hours=4))
    assert exc.value.errors == {"": "These hours have no open time, so nothing would ever fall due."}
