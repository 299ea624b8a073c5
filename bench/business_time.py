"""Benchmark: BusinessCalendar.add against pandas' CustomBusinessHour, on the same calls in one run.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/business_time.py

20,000 `add` calls on a Monday-Friday 09:00-17:00 calendar in America/New_York with 10 holidays:
deltas of 1 to 200 whole hours from random (seeded) instants in 2026, with microseconds. pandas
works on naive local times, so its starts are converted to local naive Timestamps and its results
back to real instants before comparing; its offsets (one per hour count) are built before timing.
The two must agree on every call except where pandas rolls a result that lands exactly on
closing time to the next opening, where our contract returns the closing instant.
"""
import argparse
import random
import sys
import time
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
from pandas.tseries.offsets import CustomBusinessHour  # noqa: E402

from mets.services.hours.calendar import BusinessCalendar  # noqa: E402

TARGET = 20
ZONE = "America/New_York"
HOLIDAYS = [date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 5, 25), date(2026, 6, 19),
            date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 11, 27), date(2026, 12, 25)]


def best_of(runs: int, fn) -> float:
    """Fastest of several runs, in seconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return min(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per implementation; the best counts")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    tz = ZoneInfo(ZONE)
    rng = random.Random(args.seed)
    year_start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    year_us = 365 * 24 * 3600 * 10**6
    starts = [year_start + timedelta(microseconds=rng.randrange(year_us)) for _ in range(args.calls)]
    hours = [rng.randint(1, 200) for _ in range(args.calls)]
    deltas = [timedelta(hours=h) for h in hours]

    def make_calendar() -> BusinessCalendar:
        return BusinessCalendar(ZONE, weekly={d: [(clock_time(9), clock_time(17))] for d in range(5)},
                                holidays=HOLIDAYS)

    offsets = {h: CustomBusinessHour(n=h, start="09:00", end="17:00", holidays=HOLIDAYS) for h in set(hours)}
    local_starts = [pd.Timestamp(s.astimezone(tz).replace(tzinfo=None)) for s in starts]
    pandas_calls = [(ts, offsets[h]) for ts, h in zip(local_starts, hours)]

    # First pass on a fresh calendar: includes building the index for the years touched.
    cal = make_calendar()
    add = cal.add
    calls = list(zip(starts, deltas))
    started = time.perf_counter()
    ours = [add(s, d) for s, d in calls]
    cold = time.perf_counter() - started

    ours_time = best_of(args.runs, lambda: [add(s, d) for s, d in calls])
    pandas_time = best_of(args.runs, lambda: [ts + off for ts, off in pandas_calls])
    theirs = [ts + off for ts, off in pandas_calls]

    same = rolled = 0
    mismatches = []
    for start, delta, mine, their in zip(starts, deltas, ours, theirs):
        their_instant = their.to_pydatetime().replace(tzinfo=tz)
        if their_instant == mine:
            same += 1
        elif mine.astimezone(tz).time() == clock_time(17) and their_instant == cal.next_open(mine):
            rolled += 1  # pandas rolls a result on closing time to the next opening; we return closing time
        else:
            mismatches.append((start, delta, mine, their_instant))

    n = args.calls
    ours_us, pandas_us, cold_us = ours_time / n * 1e6, pandas_time / n * 1e6, cold / n * 1e6
    ratio = pandas_us / ours_us
    print(f"pandas {pd.__version__}, {n} add calls, {ZONE}, Mon-Fri 09:00-17:00, {len(HOLIDAYS)} holidays, "
          f"deltas 1-200 h, best of {args.runs} runs")
    print(f"BusinessCalendar.add      {ours_us:8.2f} us/call  (first pass, index built lazily: {cold_us:.2f} us/call)")
    print(f"pandas CustomBusinessHour {pandas_us:8.2f} us/call")
    print(f"agreeing calls: {same + rolled}/{n} ({same} identical, {rolled} differ only by pandas rolling "
          f"a closing-time result to the next opening), {len(mismatches)} disagree")
    for start, delta, mine, their in mismatches[:5]:
        print(f"  disagree: {start.isoformat()} + {delta}: ours {mine.astimezone(tz).isoformat()}, "
              f"pandas {their.isoformat()}")
    print(f"bench business_time: {ratio:.1f}x faster than pandas (target >= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
