"""One (market, venue)'s basis observations, oldest first, with the order statistics of a window
of them kept up to date as the window slides: the same floats as sorting the window afresh.

Observations carry absolute indices (0 for the first ever recorded), so a window is a pair
(lo, hi) of them, and a window's statistics depend on nothing but that pair. The window's values
are kept sorted (bisect on a list: an insertion or a removal per block moves a few kilobytes in C,
cheaper at these sizes than a balanced tree), and so are the spacings of its consecutive
timestamps. Then:

- the median is read from the middle of the sorted values, as numpy's median reads it after its
  partition (odd count: the middle one; even: the mean of the two middle ones);
- the median absolute deviation is a selection, not a sort: the deviations |x - m| of the values
  at or above m are, in sorted order, already ascending, and so are those of the values below m
  taken from m downwards (float subtraction of a constant is monotone, and |x - m| = m - x to the
  bit for x < m, rounding being symmetric), so the k-th smallest deviation is the k-th of two
  sorted sequences, found by a binary search over how many come from each, in O(log n) float
  subtractions and without materialising the deviations;
- the values in time order stay in one contiguous numpy buffer, so the AR(1) fit's dot products
  run on a view of it, the same numpy calls on the same numbers as before.

A series whose timestamps go backwards, or that holds a value that is not finite, is answered by
the caller's brute-force path (flag `exact_order = False`): the window of such a series is not a
contiguous, time-ordered run, or its order statistics are numpy's NaN rules, not a sorted list's.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable

import numpy as np


def median_sorted(s: list[float]) -> float:
    """numpy's median of the values in `s` (sorted): the mean of the middle one or two; + 0.0 as
    numpy's mean makes a negative zero positive."""
    n = len(s)
    k = n // 2
    if n % 2:
        return s[k] + 0.0
    return (s[k - 1] + s[k] + 0.0) / 2


class BasisSeries:
    __slots__ = ("blocks", "times", "values", "base", "first", "exact_order", "_buf", "_sorted", "_spacings",
                 "_lo", "_hi", "memo", "mad_split", "answered")

    def __init__(self) -> None:
        self.blocks: list[int] = []   # blocks[i - base] is observation i's block (strictly increasing)
        self.times: list[int] = []
        self.values: list[float] = []
        self.base = 0                 # the absolute index of the lists' first entry
        self.first = 0                # the oldest observation still kept (first >= base)
        self.exact_order = True
        self._buf = np.empty(64, dtype=float)  # _buf[i - base] = values[i - base], contiguous
        self._sorted: list[float] = []    # values of the window [_lo, _hi), sorted
        self._spacings: list[float] = []  # time[i + 1] - time[i] for _lo <= i < _hi - 1, sorted
        self._lo = self._hi = 0
        self.memo: tuple[int, int, object] | None = None  # (lo, hi, the caller's statistics of it)
        self.mad_split: int | None = None  # the last window's MAD split (mad_sorted_from's hint for the next)
        self.answered: tuple[int, int, object, object] | None = None  # the caller's: (block, time, its answer)

    @property
    def end(self) -> int:
        return self.base + len(self.blocks)

    def __len__(self) -> int:
        return self.base + len(self.blocks) - self.first

    def observations(self) -> list[tuple[int, int, float]]:
        i = self.first - self.base
        return list(zip(self.blocks[i:], self.times[i:], self.values[i:]))

    def append(self, block: int, timestamp_s: int, value: float) -> None:
        if self.blocks and timestamp_s < self.times[-1] or not math.isfinite(value):
            self.exact_order = False
        n = len(self.blocks)
        if n == self._buf.size:
            self._buf = np.concatenate([self._buf, np.empty(n, dtype=float)])
        self._buf[n] = value
        self.blocks.append(block)
        self.times.append(timestamp_s)
        self.values.append(value)

    def popleft(self) -> None:
        if self._lo == self.first < self._hi:
            self._move(self.first + 1, self._hi)
        self.first += 1
        self.memo = None if self.memo is not None and self.memo[0] < self.first else self.memo
        drop = self.first - self.base
        if drop >= 1024 and drop * 2 >= len(self.blocks):  # compact, now and then
            del self.blocks[:drop], self.times[:drop], self.values[:drop]
            kept = len(self.blocks)
            self._buf[:kept] = self._buf[drop:drop + kept]
            self.base = self.first

    def window(self, before_block: int, cutoff: float, min_samples: int) -> tuple[int, int]:
        """BasisHistory's window as (lo, hi): the observations of blocks < before_block whose
        timestamp is >= cutoff, or the last min_samples of those blocks when fewer are."""
        b = self.base
        if self.blocks and self.blocks[-1] < before_block:
            hi = self.end
        else:
            hi = bisect_left(self.blocks, before_block, self.first - b) + b
        lo = bisect_left(self.times, cutoff, self.first - b, hi - b) + b
        return (lo, hi) if hi - lo >= min_samples else (max(self.first, hi - min_samples), hi)

    def sorted_window(self, lo: int, hi: int) -> tuple[list[float], list[float]]:
        """The window's values and timestamp spacings, each sorted (owned by the series: read only)."""
        self._move(lo, hi)
        return self._sorted, self._spacings

    def values_view(self, lo: int, hi: int) -> np.ndarray:
        return self._buf[lo - self.base:hi - self.base]

    def time(self, i: int) -> int:
        return self.times[i - self.base]

    def _move(self, lo: int, hi: int) -> None:
        old_lo, old_hi = self._lo, self._hi
        if lo == old_lo and hi == old_hi:
            return
        b, values, times = self.base, self.values, self.times
        step = lo - old_lo  # the common moves, _slide's steps inlined: one more block, the oldest out or not
        if hi == old_hi + 1 and (step == 0 and 8 <= hi - lo or step == 1 and 16 <= hi - lo):
            s, gaps = self._sorted, self._spacings
            if step:
                i = old_lo - b
                del s[bisect_left(s, values[i])]
                del gaps[bisect_left(gaps, float(times[i + 1]) - float(times[i]))]  # spacing(old_lo)
            i = old_hi - b
            insort(s, values[i])
            insort(gaps, float(times[i]) - float(times[i - 1]))  # spacing(old_hi - 1)
            self._lo, self._hi = lo, hi
            return

        def spacing(i: int) -> float:
            return float(times[i + 1 - b]) - float(times[i - b])

        changes = abs(lo - old_lo) + abs(hi - old_hi)
        if lo >= old_hi or hi <= old_lo or changes * 8 > hi - lo:  # little overlap: sort afresh
            self._sorted = sorted(values[lo - b:hi - b])
            self._spacings = sorted(spacing(i) for i in range(lo, hi - 1))
        else:
            _slide(self._sorted, old_lo, old_hi, lo, hi, lambda i: values[i - b])
            _slide(self._spacings, old_lo, old_hi - 1, lo, max(lo, hi - 1), spacing)
        self._lo, self._hi = lo, hi


def _slide(s: list[float], old_lo: int, old_hi: int, lo: int, hi: int, item: Callable[[int], float]) -> None:
    """Turn `s`, the sorted items of indices [old_lo, old_hi), into those of [lo, hi) (overlapping)."""
    for i in range(old_lo, lo):
        del s[bisect_left(s, item(i))]
    for i in range(hi, old_hi):
        del s[bisect_left(s, item(i))]
    for i in range(lo, old_lo):
        insort(s, item(i))
    for i in range(old_hi, hi):
        insort(s, item(i))


def median_abs_deviation_sorted(s: list[float], center: float) -> float:
    """numpy's median of |x - center| over the sorted values `s`, by selection (see the module)."""
    return mad_sorted_from(s, center, None)[0]


def mad_sorted_from(s: list[float], center: float, hint: int | None) -> tuple[float, int]:
    """median_abs_deviation_sorted, and the split it found (how many of the smallest deviations
    come from above the centre), starting the search at `hint` (the split of the window before:
    a window that slid by one block moves it by a step or two, found in as many comparisons
    instead of a binary search's ~log2(n)). The split is the smallest i where a monotone
    predicate holds, so any start finds the same one: the same float, whatever the hint."""
    n = len(s)
    m = bisect_left(s, center)  # s[m:] >= center: deviations s[m + i] - center, ascending in i
    n_above = n - m  # s[:m] < center: deviations center - s[m - 1 - j], ascending in j
    k = n // 2  # the k-th smallest deviation (0-based), and for an even n the (k-1)-th too
    lo, hi = max(0, k + 1 - m), min(n_above, k + 1)
    if hint is not None and lo < hi:  # walk from the hint, a few steps; then the binary search
        # "enough at i": above(i) reaches below(k - i), i.e. not s[a] - center < center - s[b]
        # with a = m + i, b = m - 1 - (k - i); False, then True, as i grows
        i = min(max(hint, lo), hi)
        a, b = m + i, m - 1 - k + i
        if i == hi or not s[a] - center < center - s[b]:  # the split is at or below i
            for _ in range(_HINT_STEPS):
                if i == lo or s[a - 1] - center < center - s[b - 1]:  # not enough at i - 1
                    lo = hi = i
                    break
                i, a, b = i - 1, a - 1, b - 1
            else:
                hi = i
        else:  # above i
            for _ in range(_HINT_STEPS):
                i, a, b = i + 1, a + 1, b + 1
                if i == hi or not s[a] - center < center - s[b]:
                    lo = hi = i
                    break
            else:
                lo = i + 1
    while lo < hi:  # the smallest i (taken from above) with above(i) >= below(k - i)
        i = (lo + hi) // 2
        if s[m + i] - center < center - s[m - 1 - (k - i)]:
            lo = i + 1
        else:
            hi = i
    split = lo
    # the k + 1 smallest deviations: the first `lo` above and the first `j` below
    j = k + 1 - lo
    above = s[m + lo - 1] - center if lo else None
    below = center - s[m - j] if j else None
    if below is None or above is not None and above >= below:  # the k-th is above's lo-th
        kth, rest_above, rest_below = above, lo - 1, j
    else:
        kth, rest_above, rest_below = below, lo, j - 1
    assert kth is not None
    if n % 2:
        return kth + 0.0, split
    # the (k-1)-th: the largest of the k smallest, i.e. of the first rest_above and rest_below
    prev = max(s[m + rest_above - 1] - center if rest_above else -math.inf,
               center - s[m - rest_below] if rest_below else -math.inf)
    return (prev + kth + 0.0) / 2, split


_HINT_STEPS = 4  # steps walked from a hint before the binary search takes over
