"""services.business_time: hand-checked examples, then properties against a brute-force model.

Pure unit tests: no app, no database, so they run once rather than once per backend.
"""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mets.services.hours.calendar import BusinessCalendar
from tests.factories import ny

UTC = timezone.utc
H = timedelta(hours=1)
WEEKDAYS_9_TO_5 = {day: [(time(9), time(17))] for day in range(5)}



def nine_to_five(**kwargs) -> BusinessCalendar:
    return BusinessCalendar("America/New_York", weekly=WEEKDAYS_9_TO_5, **kwargs)


# -- hand-checked examples ----------------------------------------------------------------------

def test_friday_afternoon_plus_four_hours_is_monday_lunchtime():
    cal = nine_to_five()
    due = cal.add(ny(2026, 1, 16, 16, 55), 4 * H)  # a Friday
    assert due == ny(2026, 1, 19, 12, 55)
    assert due.tzinfo is UTC
    assert cal.between(ny(2026, 1, 16, 16, 55), due) == 4 * H
    # Same across the spring-forward weekend: Monday 12:55 is EDT now.
    assert cal.add(ny(2026, 3, 6, 16, 55), 4 * H) == ny(2026, 3, 9, 12, 55)


def test_lunch_break_splits_the_day():
    cal = BusinessCalendar("Europe/London", weekly={d: [(time(9), time(12)), (time(13), time(17))] for d in range(5)})
    london = ZoneInfo("Europe/London")
    monday = datetime(2026, 1, 12, tzinfo=london)
    assert cal.between(monday + 8 * H, monday + 18 * H) == 7 * H
    assert cal.add(monday + 11 * H, 2 * H) == monday + 14 * H
    assert cal.add(monday + 11 * H, H) == monday + 12 * H  # closing time of the morning block
    assert not cal.is_open(monday + 12.5 * H)
    assert cal.next_open(monday + 12.5 * H) == monday + 13 * H
    assert cal.next_open(monday + 17 * H) == monday + 33 * H  # Tuesday 09:00


def test_overnight_shift_runs_past_midnight():
    cal = BusinessCalendar("America/New_York", weekly={d: [(time(22), time(6))] for d in range(5)})
    monday = ny(2026, 1, 12)
    assert not cal.is_open(monday + 3 * H)  # Sunday has no shift
    assert cal.is_open(monday + 22 * H)
    assert cal.is_open(monday + 29 * H)  # Tuesday 05:00
    assert not cal.is_open(monday + 30 * H)
    assert cal.is_open(ny(2026, 1, 17, 3))  # Saturday 03:00, Friday's shift
    assert cal.between(monday, ny(2026, 1, 17, 12)) == 40 * H
    assert cal.add(monday + 21 * H, 9 * H) == monday + 47 * H  # 8h Mon night, 1h Tue night


def test_interval_ending_at_midnight():
    cal = BusinessCalendar("UTC", weekly={0: [(time(9), time(0))]})
    monday = datetime(2026, 1, 12, tzinfo=UTC)
    assert cal.between(monday, monday + 48 * H) == 15 * H
    assert cal.is_open(monday + timedelta(hours=23, minutes=59, seconds=59))
    assert not cal.is_open(monday + 24 * H)
    assert cal.add(monday, 15 * H) == monday + 24 * H


def test_midnight_to_midnight_is_a_whole_day_and_days_join():
    cal = BusinessCalendar("UTC", weekly={0: [(time(0), time(0))], 1: [(time(0), time(0))]})
    monday = datetime(2026, 1, 12, tzinfo=UTC)
    assert cal.between(monday - H, monday + 72 * H) == 48 * H
    assert cal.add(monday + 23 * H, 2 * H) == monday + 25 * H
    assert not cal.is_open(monday + 48 * H)


def test_overlapping_intervals_count_once():
    cal = BusinessCalendar("UTC", weekly={0: [(time(11), time(14)), (time(9), time(12))]})
    monday = datetime(2026, 1, 12, tzinfo=UTC)
    assert cal.between(monday, monday + 24 * H) == 5 * H


def test_holiday_drops_the_day_but_not_the_previous_nights_shift():
    cal = nine_to_five(holidays=[date(2026, 1, 16)])  # a Friday
    assert cal.add(ny(2026, 1, 15, 16), 2 * H) == ny(2026, 1, 19, 10)
    assert cal.between(ny(2026, 1, 12), ny(2026, 1, 19)) == 32 * H
    night = BusinessCalendar("America/New_York", weekly={d: [(time(22), time(6))] for d in range(7)},
                             holidays=[date(2026, 1, 13)])
    assert night.is_open(ny(2026, 1, 13, 3))  # Monday's shift
    assert not night.is_open(ny(2026, 1, 13, 23))


def test_exception_replaces_the_day_and_beats_a_holiday():
    cal = nine_to_five(holidays=[date(2026, 12, 24), date(2026, 12, 25)],
                       exceptions={date(2026, 12, 24): [(time(9), time(13))],
                                   date(2026, 12, 26): [(time(10), time(12))],
                                   date(2026, 12, 28): []})
    assert cal.between(ny(2026, 12, 24), ny(2026, 12, 25)) == 4 * H
    assert not cal.is_open(ny(2026, 12, 25, 10))
    assert cal.is_open(ny(2026, 12, 26, 11))  # a Saturday opened by exception
    assert cal.between(ny(2026, 12, 28), ny(2026, 12, 29)) == timedelta(0)  # empty exception: closed
    assert cal.add(ny(2026, 12, 24, 12), 4 * H) == ny(2026, 12, 29, 10)


def test_add_landing_on_closing_time_returns_the_closing_instant():
    cal = nine_to_five()
    assert cal.add(ny(2026, 1, 12, 16), H) == ny(2026, 1, 12, 17)
    assert not cal.is_open(ny(2026, 1, 12, 17))
    assert cal.add(ny(2026, 1, 12, 8), 8 * H) == ny(2026, 1, 12, 17)


def test_add_zero_returns_start_even_when_closed():
    cal = nine_to_five()
    start = ny(2026, 1, 17, 3, 4, 5, 6)  # a Saturday
    assert cal.add(start, timedelta(0)) == start
    assert cal.add(start, timedelta(0)).tzinfo is UTC


def test_spring_forward_interval_holds_two_real_hours():
    cal = BusinessCalendar("America/New_York", weekly={6: [(time(1), time(4))]})
    sunday = datetime(2026, 3, 8, 5, tzinfo=UTC)  # 00:00 EST
    assert cal.between(sunday, sunday + 24 * H) == 2 * H
    assert cal.is_open(datetime(2026, 3, 8, 6, 59, tzinfo=UTC))  # 01:59 EST
    assert cal.is_open(datetime(2026, 3, 8, 7, tzinfo=UTC))  # 03:00 EDT
    assert cal.add(sunday, 2 * H) == datetime(2026, 3, 8, 8, tzinfo=UTC)  # 04:00 EDT
    # An interval starting inside the gap opens when the clock reaches it: 03:00 EDT.
    gap = BusinessCalendar("America/New_York", weekly={6: [(time(2, 30), time(5))]})
    assert gap.next_open(sunday) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert gap.between(sunday, sunday + 24 * H) == 2 * H


def test_fall_back_repeated_hour_counts_twice():
    cal = BusinessCalendar("America/New_York", weekly={6: [(time(1), time(2))]})
    sunday = datetime(2026, 11, 1, 4, tzinfo=UTC)  # 00:00 EDT
    assert cal.between(sunday, sunday + 24 * H) == 2 * H
    assert cal.add(sunday, timedelta(minutes=90)) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    part = BusinessCalendar("America/New_York", weekly={6: [(time(1, 30), time(1, 45))]})
    assert part.between(sunday, sunday + 24 * H) == timedelta(minutes=30)  # two separate quarters
    assert part.next_open(datetime(2026, 11, 1, 5, 45, tzinfo=UTC)) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_lord_howe_half_hour_transitions():
    cal = BusinessCalendar("Australia/Lord_Howe", weekly={d: [(time(1), time(3))] for d in range(7)})
    lh = ZoneInfo("Australia/Lord_Howe")
    assert cal.between(datetime(2026, 4, 5, tzinfo=lh), datetime(2026, 4, 6, tzinfo=lh)) == timedelta(hours=2.5)
    assert cal.between(datetime(2026, 10, 4, tzinfo=lh), datetime(2026, 10, 5, tzinfo=lh)) == timedelta(hours=1.5)


def test_microseconds_are_exact():
    cal = nine_to_five()
    start = ny(2026, 1, 12, 9, 0, 0, 1)
    delta = timedelta(hours=7, minutes=59, seconds=59, microseconds=999_998)
    assert cal.add(start, delta) == ny(2026, 1, 12, 16, 59, 59, 999_999)
    assert cal.add(start, delta + timedelta(microseconds=2)) == ny(2026, 1, 13, 9, 0, 0, 1)
    assert cal.between(start, ny(2026, 1, 13, 9, 0, 0, 3)) == timedelta(hours=8, microseconds=2)
    with_seconds = BusinessCalendar("UTC", weekly={0: [(time(9, 0, 30), time(9, 0, 45, 500))]})
    monday = datetime(2026, 1, 12, tzinfo=UTC)
    assert with_seconds.between(monday, monday + 24 * H) == timedelta(seconds=15, microseconds=500)


def test_long_spans_and_queries_before_the_first_one():
    cal = nine_to_five()
    start = ny(2026, 6, 1, 9)
    far = cal.add(start, 2000 * 8 * H)  # 2000 working days: about eight years
    assert cal.between(start, far) == 2000 * 8 * H
    assert cal.between(ny(2018, 6, 1), start) == cal.between(ny(2018, 6, 1), ny(2022, 1, 1)) + cal.between(
        ny(2022, 1, 1), start)
    always = BusinessCalendar("UTC", weekly={d: [(time(0), time(0))] for d in range(7)})
    a, b = datetime(2031, 7, 1, 12, 34, tzinfo=UTC), datetime(2019, 1, 1, 1, tzinfo=UTC)
    assert always.between(b, a) == a - b  # chunks joined without gaps, built forwards and backwards
    assert always.add(b, a - b) == a


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_overnight_intervals_across_index_chunks(zone):
    """Open around the clock through overnight intervals, so every chunk edge cuts through one."""
    cal = BusinessCalendar(zone, weekly={d: [(time(12), time(6)), (time(6), time(12))] for d in range(7)})
    a, b = datetime(2019, 5, 5, 3, tzinfo=UTC), datetime(2033, 2, 1, 17, tzinfo=UTC)
    assert cal.between(a, b) == b - a
    assert cal.is_open(datetime(2026, 2, 12, tzinfo=UTC))  # 1970-01-01 + 56 * 366 days: a chunk edge


@pytest.mark.parametrize("zone, year", [
    ("Africa/Casablanca", 2026),  # four changes a year around Ramadan
    ("Pacific/Apia", 2011),  # skipped 30 December 2011
    ("America/Caracas", 2007), ("America/Caracas", 2016),  # -04:00 <-> -04:30
    ("Antarctica/Troll", 2026),  # +00:00 <-> +02:00
    ("Pacific/Chatham", 2026), ("Europe/Dublin", 2026), ("Australia/Lord_Howe", 2026),
])
def test_offsets_found_by_probing_match_the_zone(zone, year):
    """The index learns UTC offsets by probing every 12 hours; check them against a 10-minute scan."""
    from mets.services.hours.calendar import _offset_segments

    tz = ZoneInfo(zone)
    lo = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 10**6
    hi = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) * 10**6
    segments = _offset_segments(tz, lo, hi)
    assert segments[0][0] == lo and segments[-1][1] == hi
    for (_, end, offset), (start, _, next_offset) in zip(segments, segments[1:]):
        assert end == start and offset != next_offset
    for seg_start, seg_end, offset in segments:
        for u in [*range(seg_start, seg_end, 600 * 10**6), seg_end - 10**6]:
            assert datetime.fromtimestamp(u // 10**6, tz).utcoffset() == timedelta(microseconds=offset)


def test_naive_input_is_rejected():
    cal = nine_to_five()
    naive, aware = datetime(2026, 1, 12, 9), ny(2026, 1, 12, 9)
    for call in (lambda: cal.between(naive, aware), lambda: cal.between(aware, naive), lambda: cal.add(naive, H),
                 lambda: cal.is_open(naive), lambda: cal.next_open(naive)):
        with pytest.raises(ValueError, match="naive"):
            call()


def test_calendar_without_open_time():
    empty = BusinessCalendar("UTC", weekly={})
    start = datetime(2026, 1, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="no open time"):
        empty.add(start, H)
    with pytest.raises(ValueError, match="no open time"):
        empty.next_open(start)
    assert empty.between(start, start + 1000 * H) == timedelta(0)
    assert not empty.is_open(start)
    # Only exceptions: open time runs out after the last one, and add says so instead of looping.
    few = BusinessCalendar("America/New_York", exceptions={date(2026, 12, 24): [(time(9), time(13))]})
    assert few.add(start, 3 * H) == ny(2026, 12, 24, 12)
    assert few.next_open(start) == ny(2026, 12, 24, 9)
    with pytest.raises(ValueError, match="less than"):
        few.add(start, 5 * H)
    with pytest.raises(ValueError, match="no open time after"):
        few.next_open(ny(2026, 12, 24, 13))
    with pytest.raises(ValueError, match="negative"):
        few.add(start, -H)


@pytest.mark.parametrize("kwargs, message", [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone"),
    ({"timezone": "../etc/passwd"}, "unknown timezone"),
    ({"timezone": "America"}, "unknown timezone"),
    ({"timezone": ""}, "IANA"),
    ({"weekly": {7: [(time(9), time(17))]}}, "weekday"),
    ({"weekly": {-1: []}}, "weekday"),
    ({"weekly": {0: [(9, 17)]}}, "datetime.time"),
    ({"weekly": {0: [(time(9),)]}}, "pair"),
    ({"weekly": {0: [(time(9, tzinfo=UTC), time(17))]}}, "tzinfo"),
    ({"holidays": [datetime(2026, 12, 25)]}, "datetime.date"),
])
def test_constructor_rejects_bad_input(kwargs, message):
    args = {"timezone": "UTC", "weekly": WEEKDAYS_9_TO_5, **kwargs}
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**args)


# -- properties against a brute-force model -----------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


def _transitions_2026(zone: str) -> list[datetime]:
    """UTC instants in 2026 where the zone's offset changes (found by a plain half-hourly scan)."""
    tz, found = ZoneInfo(zone), []
    u = datetime(2026, 1, 1, tzinfo=UTC)
    previous = u.astimezone(tz).utcoffset()
    while u.year == 2026:
        offset = u.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(u)
        previous, u = offset, u + timedelta(minutes=30)
    return found


# Anchors: each zone's DST transitions, a plain date, and 2026-02-12 00:00 UTC, where the
# calendar's 366-day index chunks happen to meet (1970-01-01 + 56 * 366 days).
ANCHORS = {zone: _transitions_2026(zone) + [datetime(2026, 2, 12, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)]
           for zone in ZONES}

minute_of_day = st.one_of(st.sampled_from([0, 60, 90, 120, 150, 180, 9 * 60, 17 * 60, 22 * 60]),
                          st.integers(0, 24 * 60 - 1))
interval = st.tuples(minute_of_day, minute_of_day).filter(lambda p: p[0] != p[1] or p[0] == 0).map(
    lambda p: (time(p[0] // 60, p[0] % 60), time(p[1] // 60, p[1] % 60)))
day_intervals = st.lists(interval, max_size=3)


@st.composite
def scenarios(draw):
    """A calendar spec, a zone and a whole-minute start within a few days of a 2026 anchor."""
    zone = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(ANCHORS[zone]))
    start = anchor + timedelta(minutes=draw(st.integers(-4 * 24 * 60, 24 * 60)))
    weekly = draw(st.one_of(st.just({}), st.dictionaries(st.integers(0, 6), day_intervals, max_size=7)))
    around = st.dates(min_value=start.date() - timedelta(days=3), max_value=start.date() + timedelta(days=12))
    holidays = draw(st.lists(around, max_size=4))
    exceptions = draw(st.dictionaries(around, day_intervals, max_size=3))
    return zone, weekly, holidays, exceptions, start


def model_open_minutes(zone, weekly, holidays, exceptions, start, minutes) -> list[bool]:
    """Minute by minute in UTC: is the wall-clock reading in an interval starting that date or the day before?"""
    tz, holiday_set, walls = ZoneInfo(zone), set(holidays), {}

    def wall_intervals(day: date):
        if day not in walls:
            if day in exceptions:
                pairs = exceptions[day]
            else:
                pairs = [] if day in holiday_set else weekly.get(day.weekday(), [])
            # end <= start runs into the next day; (00:00, 00:00) is the whole day.
            walls[day] = [(datetime.combine(day, s), datetime.combine(day + timedelta(days=1) if e <= s else day, e))
                          for s, e in pairs]
        return walls[day]

    out, minute, one_day = [], timedelta(minutes=1), timedelta(days=1)
    instant = start
    for _ in range(minutes):
        wall = instant.astimezone(tz).replace(tzinfo=None)
        today = wall.date()
        inside = False
        for day in (today, today - one_day):
            for a, b in wall_intervals(day):
                if a <= wall < b:
                    inside = True
        out.append(inside)
        instant += minute
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 10 * 24 * 60), st.data())
def test_matches_brute_force_model(scenario, span, data):
    zone, weekly, holidays, exceptions, start = scenario
    cal = BusinessCalendar(zone, weekly=weekly, holidays=holidays, exceptions=exceptions)
    is_open = model_open_minutes(zone, weekly, holidays, exceptions, start, span)
    at = [start + timedelta(minutes=m) for m in range(span + 1)]
    cum = [0]
    for flag in is_open:
        cum.append(cum[-1] + flag)

    # Query the end first so that the index is also built backwards. is_open at every minute;
    # the other queries around every change of state and at every 7th minute.
    assert cal.between(at[0], at[span]) == timedelta(minutes=cum[span])
    assert [cal.is_open(t) for t in at[:span]] == is_open
    changes = {m for m in range(1, span) if is_open[m] != is_open[m - 1]}
    probes = sorted({p for m in changes for p in (m - 1, m, m + 1)} | set(range(0, span + 1, 7)) | {span})
    assert [cal.between(at[0], at[m]) for m in probes] == [timedelta(minutes=cum[m]) for m in probes]
    i, j = sorted(data.draw(st.lists(st.integers(0, span), min_size=2, max_size=2)))
    assert cal.between(at[j], at[i]) == timedelta(0)
    assert cal.between(at[i], at[j]) == timedelta(minutes=cum[j] - cum[i])

    if not any(weekly.values()) and not any(exceptions.values()):
        with pytest.raises(ValueError, match="no open time"):
            cal.add(at[0], timedelta(0))
        return
    # add: the earliest minute at which the running total reaches d.
    first_reaching = {}
    for m, c in enumerate(cum):
        first_reaching.setdefault(c, m)
    for total, m in first_reaching.items():
        if m in changes or total % 7 == 0 or m == span:
            assert cal.add(at[0], timedelta(minutes=total)) == at[m]

    # next_open, wherever the next open minute lies inside the window.
    upcoming = None
    for m in range(span - 1, -1, -1):
        if is_open[m]:
            upcoming = m
        if upcoming is not None and (m in changes or m + 1 in changes or m % 7 == 0):
            assert cal.next_open(at[m]) == at[upcoming]


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.integers(0, 10 * 24 * 3600 * 10**6), st.integers(0, 3 * 24 * 3600 * 10**6),
       st.integers(-10**6, 10**6))
def test_add_and_between_are_inverse(scenario, span_us, delta_us, jitter_us):
    zone, weekly, holidays, exceptions, start = scenario
    cal = BusinessCalendar(zone, weekly=weekly, holidays=holidays, exceptions=exceptions)
    if not any(weekly.values()) and not any(exceptions.values()):
        return  # add raises on a calendar with no open time at all: test_calendar_without_open_time
    start += timedelta(microseconds=jitter_us)
    end = start + timedelta(microseconds=span_us)
    elapsed = cal.between(start, end)
    reached = cal.add(start, elapsed)
    assert start <= reached <= end
    assert cal.between(start, reached) == elapsed
    delta = timedelta(microseconds=delta_us)
    try:
        due = cal.add(start, delta)
    except ValueError:
        # Only when the calendar really runs out: a few weeks past its last exception.
        assert not weekly or not any(weekly.values())
        assert cal.between(start, start + timedelta(days=60)) < delta
    else:
        assert due >= start
        assert cal.between(start, due) == delta
        assert due == start or cal.between(start, due - timedelta(microseconds=1)) < delta
        opens = cal.next_open(start) if cal.between(start, start + timedelta(days=60)) else None
        assert opens is None or (cal.is_open(opens) and cal.between(start, opens) == timedelta(0))


def test_an_interval_ending_at_its_start_is_a_24_hour_shift():
    """(09:00, 09:00) runs to 09:00 the next day, as every end <= start does (the contract)."""
    cal = BusinessCalendar(timezone="America/New_York", weekly={0: [(time(9), time(9))]},
                           exceptions={date(2026, 12, 24): [(time(13), time(13))]})
    monday = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("America/New_York"))
    assert not cal.is_open(monday - timedelta(seconds=1))
    assert cal.is_open(monday) and cal.is_open(monday + timedelta(hours=23, minutes=59))
    assert not cal.is_open(monday + timedelta(hours=24))
    assert cal.between(monday - timedelta(hours=1), monday + timedelta(hours=30)) == timedelta(hours=24)
    assert cal.add(monday, timedelta(hours=24)) == (monday + timedelta(hours=24)).astimezone(UTC)
    christmas_eve = datetime(2026, 12, 24, 13, tzinfo=ZoneInfo("America/New_York"))  # an exception, too
    assert cal.between(christmas_eve, christmas_eve + timedelta(days=2)) == timedelta(hours=24)
