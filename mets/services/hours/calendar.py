"""Business time: open hours per weekday, holidays and dated exceptions in one IANA time zone.

`BusinessCalendar` answers how much business time lies between two instants, when a given
amount of business time has elapsed, whether an instant is open and when it next opens.

Meaning (docs/architecture.md, "Business time"). Each local date has a list of wall-clock
intervals: its exception if it has one, else nothing if it is a holiday, else its weekday's list.
An interval whose end <= start runs past midnight into the next day ((22:00, 06:00);
(09:00, 00:00) ends at midnight; (00:00, 00:00) is 24 hours). A real instant is open iff its
wall-clock reading lies in one of these intervals, so on a spring-forward day 01:00-04:00 holds
2 real hours and on a fall-back day a repeated open hour counts twice. Overlaps count once.

How: the open set is kept as a sorted index of disjoint UTC intervals in integer microseconds
with running totals (prefix sums), built lazily one 366-day chunk at a time in either direction
as queries need it. Every query is then a bisection, so its cost does not grow with the
length of the span or delta (only the first query in a new year pays for building it). Growing
the index swaps it whole under a lock, so a calendar may be shared between threads.

Choices where the contract is silent:
- start == end is 24 hours from start, as the contract says of end <= start: (00:00, 00:00) is a
  whole day, (09:00, 09:00) a shift from 09:00 to 09:00 the next day.
- An exception with an empty list closes that date, like a holiday.
- `add` with a negative delta raises ValueError (no t >= start has negative business time);
  `add(start, timedelta(0))` returns start (in UTC), open or not.
- "No open time": a calendar with no interval anywhere (weekly and exceptions empty) raises
  ValueError on every `add` and `next_open`. A calendar with exceptions but no weekly hours has
  open time only up to its last exception: `add`/`next_open` raise ValueError when what they
  look for does not exist before that horizon, instead of searching forever.
- Instants must lie in years 2..9997 (ValueError otherwise), clear of datetime's limits.
- zoneinfo does not list a zone's transitions, so offsets are probed every 12 hours and each
  change is bisected to the second. That misses nothing unless a zone changes its offset twice
  within 12 hours; in the tz database (2025b) the closest two changes are 95.7 hours apart
  (Africa/Freetown, 1939).
"""
from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone as _timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_US = timedelta(microseconds=1)
_ZERO = timedelta(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=_timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SECOND = 1_000_000
_HOUR = 3600 * _SECOND
_DAY = 24 * _HOUR
_CHUNK = 366 * _DAY
_MAX_OFFSET = 26 * _HOUR  # no zone is further than this from UTC
_PROBE_SECONDS = 12 * 3600  # see the module docstring
_MIN_US = (datetime(2, 1, 1, tzinfo=_timezone.utc) - _EPOCH) // _US
_MAX_US = (datetime(9998, 1, 1, tzinfo=_timezone.utc) - _EPOCH) // _US
_NO_HORIZON = _MAX_US + _CHUNK

Interval = tuple[time, time]


def _offset_at(tz: ZoneInfo, second: int) -> int:
    """The zone's UTC offset (microseconds) at a UTC instant given in whole seconds since the epoch."""
    return datetime.fromtimestamp(second, tz).utcoffset() // _US


@lru_cache(maxsize=1024)
def _offset_segments(tz: ZoneInfo, lo: int, hi: int) -> tuple[tuple[int, int, int], ...]:
    """(start, end, offset) pieces covering UTC [lo, hi) (microseconds) on which the offset is constant."""
    lo_s, last_s = lo // _SECOND, hi // _SECOND - 1
    segments = []
    seg_start, current = lo_s, _offset_at(tz, lo_s)
    probe = lo_s
    while probe < last_s:
        nxt = min(probe + _PROBE_SECONDS, last_s)
        if _offset_at(tz, nxt) != current:
            a, b = probe, nxt  # offset(a) == current != offset(b): bisect to the first changed second
            while b - a > 1:
                m = (a + b) // 2
                if _offset_at(tz, m) == current:
                    a = m
                else:
                    b = m
            segments.append((seg_start * _SECOND, b * _SECOND, current))
            seg_start, current = b, _offset_at(tz, b)
            nxt = b
        probe = nxt
    segments.append((seg_start * _SECOND, hi, current))
    return tuple(segments)


def _time_us(value: object, where: str) -> int:
    if not isinstance(value, time):
        raise ValueError(f"{where}: expected a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"{where}: times are wall-clock times and must not carry a tzinfo")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _SECOND + value.microsecond


def _day_intervals(pairs: object, where: str) -> tuple[tuple[int, int], ...]:
    """One date's intervals as (start, end) microseconds after local midnight, sorted; end may pass 24h."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise ValueError(f"{where}: expected a list of (start, end) time pairs, got {pairs!r}")
    out = []
    for pair in pairs:
        try:
            start, end = pair
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a (start, end) pair of times, got {pair!r}") from None
        s, e = _time_us(start, where), _time_us(end, where)
        if e <= s:
            e += _DAY  # runs past midnight into the next day: (09:00, 09:00) is a 24-hour shift
        out.append((s, e))
    return tuple(sorted(out))


def _check_date(value: object, where: str) -> int:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"{where}: expected a datetime.date, got {value!r}")
    return value.toordinal()


class BusinessCalendar:
    """Weekly open hours, holidays and dated exceptions in one IANA time zone."""

    def __init__(self, timezone: str, weekly: Mapping[int, Iterable[Interval]] | None = None,
                 holidays: Iterable[date] = (), exceptions: Mapping[date, Iterable[Interval]] | None = None):
        if not isinstance(timezone, str) or not timezone:
            raise ValueError(f"timezone must be an IANA name such as 'America/New_York', got {timezone!r}")
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as "America"
            raise ValueError(f"unknown timezone {timezone!r}") from None
        self.timezone = timezone
        weekly = {} if weekly is None else weekly
        if not isinstance(weekly, Mapping):
            raise ValueError("weekly must map weekday numbers (Monday=0..Sunday=6) to interval lists")
        for day in weekly:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"weekly: weekday must be 0 (Monday) to 6 (Sunday), got {day!r}")
        self._weekly = tuple(_day_intervals(weekly.get(day, ()), f"weekly[{day}]") for day in range(7))
        if isinstance(holidays, (str, bytes)) or not isinstance(holidays, Iterable):
            raise ValueError("holidays must be a list of dates")
        self._holidays = frozenset(_check_date(d, "holidays") for d in holidays)
        exceptions = {} if exceptions is None else exceptions
        if not isinstance(exceptions, Mapping):
            raise ValueError("exceptions must map dates to interval lists")
        self._exceptions = {_check_date(d, "exceptions"): _day_intervals(ivs, f"exceptions[{d}]")
                            for d, ivs in exceptions.items()}
        open_exceptions = [(o, ivs) for o, ivs in self._exceptions.items() if ivs]
        self._never_open = not any(self._weekly) and not open_exceptions
        if any(self._weekly):
            self._horizon = _NO_HORIZON
        elif open_exceptions:
            # Past the last exception's last wall-clock end (shifted by the widest offset) nothing opens.
            last = max((o - _EPOCH_ORDINAL) * _DAY + max(e for _, e in ivs) for o, ivs in open_exceptions)
            self._horizon = last + _MAX_OFFSET
        else:
            self._horizon = -_NO_HORIZON
        # The index: (lo, hi, starts, ends, cum). Disjoint open intervals [starts[i], ends[i]) in UTC
        # microseconds, sorted, covering [lo, hi); cum[i] is the open time before interval i
        # (len(cum) == len(starts) + 1). Growing it builds new lists and swaps the tuple under a
        # lock, so a calendar shared between threads is never read half-extended.
        self._index: tuple[int, int, list[int], list[int], list[int]] = (0, 0, [], [], [0])
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BusinessCalendar(timezone={self.timezone!r})"

    # -- public API -------------------------------------------------------------------------

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); zero if end <= start."""
        a, b = _to_us(start), _to_us(end)
        if b <= a:
            return _ZERO
        lo, hi, starts, ends, cum = self._index
        if not (lo <= a and b < hi):
            lo, hi, starts, ends, cum = self._cover(a, b)
        i = bisect_right(starts, a) - 1
        done_a = cum[i] + min(a, ends[i]) - starts[i] if i >= 0 else 0
        j = bisect_right(starts, b) - 1
        done_b = cum[j] + min(b, ends[j]) - starts[j] if j >= 0 else 0
        return timedelta(microseconds=done_b - done_a)

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The earliest instant t >= start with between(start, t) == delta, in UTC."""
        a = _to_us(start)
        try:
            d = delta // _US
        except TypeError:
            raise TypeError(f"delta must be a timedelta, got {delta!r}") from None
        if d < 0:
            raise ValueError(f"delta must not be negative, got {delta}")
        if self._never_open:
            raise ValueError("calendar has no open time")
        if d == 0:
            return _EPOCH + timedelta(microseconds=a)
        lo, hi, starts, ends, cum = self._index
        if not lo <= a < hi:
            lo, hi, starts, ends, cum = self._cover(a, a)
        i = bisect_right(starts, a) - 1
        target = d + (cum[i] + min(a, ends[i]) - starts[i] if i >= 0 else 0)
        while True:
            k = bisect_left(cum, target, 1)
            if k < len(cum):  # reached inside interval k - 1 (at its end when cum[k] == target)
                return _EPOCH + timedelta(microseconds=starts[k - 1] + target - cum[k - 1])
            if hi > self._horizon:
                raise ValueError(f"calendar has less than {delta} of open time after {start.isoformat()}")
            # Growing to the right keeps every cum value already computed, so target stays valid.
            lo, hi, starts, ends, cum = self._cover(hi, hi)

    def is_open(self, at: datetime) -> bool:
        """Whether the instant lies in business hours."""
        u = _to_us(at)
        lo, hi, starts, ends, _ = self._index
        if not lo <= u < hi:
            lo, hi, starts, ends, _ = self._cover(u, u)
        i = bisect_right(starts, u) - 1
        return i >= 0 and u < ends[i]

    def next_open(self, at: datetime) -> datetime:
        """The earliest open instant >= at, in UTC."""
        u = _to_us(at)
        if self._never_open:
            raise ValueError("calendar has no open time")
        lo, hi, starts, ends, _ = self._index
        if not lo <= u < hi:
            lo, hi, starts, ends, _ = self._cover(u, u)
        while True:
            i = bisect_right(starts, u) - 1
            if i >= 0 and u < ends[i]:
                return _EPOCH + timedelta(microseconds=u)
            if i + 1 < len(starts):
                return _EPOCH + timedelta(microseconds=starts[i + 1])
            if hi > self._horizon:
                raise ValueError(f"calendar has no open time after {at.isoformat()}")
            lo, hi, starts, ends, _ = self._cover(hi, hi)

    # -- the index --------------------------------------------------------------------------

    def _intervals_of(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        if ordinal in self._exceptions:
            return self._exceptions[ordinal]
        if ordinal in self._holidays:
            return ()
        return self._weekly[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) was a Monday

    def _build(self, lo: int, hi: int) -> tuple[list[int], list[int]]:
        """The open set within UTC [lo, hi) as sorted disjoint intervals."""
        segments = _offset_segments(self._tz, lo, hi)
        wall_lo = min(s + o for s, _, o in segments)
        wall_hi = max(e + o for _, e, o in segments)
        # Wall-clock open intervals (microseconds since the naive epoch), merged. Starting from the
        # day before covers overnight intervals; each day's starts lie within that day, so the
        # concatenation is already sorted by start.
        ws: list[int] = []
        we: list[int] = []
        for ordinal in range(wall_lo // _DAY + _EPOCH_ORDINAL - 1, (wall_hi - 1) // _DAY + _EPOCH_ORDINAL + 1):
            base = (ordinal - _EPOCH_ORDINAL) * _DAY
            for s, e in self._intervals_of(ordinal):
                s += base
                e += base
                if we and s <= we[-1]:
                    if e > we[-1]:
                        we[-1] = e
                else:
                    ws.append(s)
                    we.append(e)
        # Map back to real instants: within a piece of constant offset o, wall = utc + o.
        starts: list[int] = []
        ends: list[int] = []
        for seg_lo, seg_hi, o in segments:
            wlo, whi = seg_lo + o, seg_hi + o
            i = bisect_right(we, wlo)
            while i < len(ws) and ws[i] < whi:
                a, b = max(ws[i], wlo) - o, min(we[i], whi) - o
                if b > a:
                    if ends and ends[-1] >= a:  # continues across an offset change
                        ends[-1] = max(ends[-1], b)
                    else:
                        starts.append(a)
                        ends.append(b)
                i += 1
        return starts, ends

    def _cover(self, first: int, last: int) -> tuple[int, int, list[int], list[int], list[int]]:
        """Grow the index a chunk at a time until lo <= first and last < hi; return it."""
        if not (_MIN_US <= first and last < _MAX_US):
            raise ValueError("instant outside the supported range (years 2 to 9997)")
        with self._lock:
            lo, hi, starts, ends, _ = self._index
            if lo == hi:  # empty: grow from the start of the chunk holding `first`
                lo = hi = _chunk(first // _CHUNK)[0]
            if first < lo or last >= hi:  # (another thread may have grown it meanwhile)
                pieces = [(starts, ends)]
                while first < lo:
                    new_lo = _chunk(lo // _CHUNK - 1)[0]
                    pieces.insert(0, self._build(new_lo, lo))
                    lo = new_lo
                while last >= hi:
                    new_hi = _chunk(hi // _CHUNK)[1]
                    pieces.append(self._build(hi, new_hi))
                    hi = new_hi
                self._index = (lo, hi, *_concatenate(pieces))
            return self._index


def _chunk(k: int) -> tuple[int, int]:
    """UTC bounds of index chunk k (366 days times k from the epoch), within the supported range."""
    return max(k * _CHUNK, _MIN_US), min((k + 1) * _CHUNK, _MAX_US)


def _concatenate(pieces: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int], list[int]]:
    """Adjacent interval lists joined into new (starts, ends, cum), fusing intervals cut at a chunk edge."""
    starts: list[int] = []
    ends: list[int] = []
    cum = [0]
    for piece_starts, piece_ends in pieces:
        for s, e in zip(piece_starts, piece_ends):
            if ends and ends[-1] == s:
                ends[-1] = e
                cum[-1] += e - s
            else:
                starts.append(s)
                ends.append(e)
                cum.append(cum[-1] + e - s)
    return starts, ends, cum


def _to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    try:
        return (dt - _EPOCH) // _US
    except TypeError:
        if isinstance(dt, datetime):
            raise ValueError(f"naive datetime {dt.isoformat()}: pass a timezone-aware datetime") from None
        raise TypeError(f"expected a timezone-aware datetime, got {dt!r}") from None
