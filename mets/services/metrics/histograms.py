"""Duration histograms: fixed log-spaced bins of minutes, so the median and 90th percentile of many rows can be had
from the daily rollups (merged by adding counts) instead of sorting every raw value.

Bin 0 holds zero (a response inside closed hours can take 0 business minutes); bin k >= 1 holds the values in
[FLOOR * RATIO**(k-1), FLOOR * RATIO**k): each bin is 2% wide, relative to its values, and values under FLOOR (0.6
seconds) share bin 1. A bin stands for its geometric middle, which lies within RELATIVE_ERROR (0.995%) of every
value in it; a percentile interpolated between two order statistics as `percentile_cont` does is therefore within
RELATIVE_ERROR of the exact one (or within FLOOR * RATIO minutes, for values under FLOOR). Counts and means stay
exact: the rollups keep each measure's count and sum.

A histogram is stored as two integer lists of the same length, the bins present in ascending order and their
counts (`metric_rollups.<measure>_bins`, `<measure>_bin_counts`): a rollup row holds only the bins its rows fell in.
"""
from collections import Counter
from dataclasses import dataclass, field
from math import floor, log, sqrt

RATIO = 1.02  # each bin's upper bound / its lower bound
FLOOR = 0.01  # minutes: the lower bound of bin 1 (values below it share bin 1)
RELATIVE_ERROR = sqrt(RATIO) - 1  # a bin's middle against any value in it: 0.995%
_LOG_RATIO = log(RATIO)
NOTE = ("≈: median and 90th percentile from daily histograms of 2%-wide bins, within 1% of the exact figure; "
        "counts and means are exact.")


def bin_of(minutes: float) -> int:
    """The bin holding a value of minutes (0 for zero and below)."""
    if minutes <= 0:
        return 0
    return 1 + max(0, floor(log(minutes / FLOOR) / _LOG_RATIO))


def middle(index: int) -> float:
    """The value a bin stands for: its geometric middle (0 for bin 0)."""
    if index <= 0:
        return 0.0
    return FLOOR * RATIO ** (index - 1) * sqrt(RATIO)


@dataclass
class Histogram:
    """Counts per bin, with the exact count and sum of the values counted."""

    bins: Counter = field(default_factory=Counter)
    count: int = 0
    total: float = 0.0

    def add_value(self, minutes: float, times: int = 1) -> None:
        self.bins[bin_of(minutes)] += times
        self.count += times
        self.total += minutes * times

    def add_bins(self, bins, counts) -> None:
        """Add stored bins (the count and sum come separately: `add_totals`)."""
        for b, n in zip(bins or (), counts or ()):
            self.bins[b] += n

    def add_totals(self, count: int, total: float) -> None:
        self.count += count
        self.total += total

    def percentile(self, fraction: float) -> float | None:
        """`percentile_cont` over the bins' middles: interpolation at position fraction * (n - 1)."""
        n = sum(self.bins.values())
        if not n:
            return None
        position = fraction * (n - 1)
        low = floor(position)
        high = min(low + 1, n - 1)
        low_value = high_value = None
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if low_value is None and seen > low:
                low_value = middle(b)
            if seen > high:
                high_value = middle(b)
                break
        return low_value + (high_value - low_value) * (position - low)

    def stored(self) -> tuple[list[int], list[int]]:
        """The (bins, counts) lists a rollup row stores."""
        keys = sorted(b for b, n in self.bins.items() if n)
        return keys, [self.bins[b] for b in keys]
