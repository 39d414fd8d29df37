"""The basis statistics of a pipelined backtest, computed by the snapshot worker (pipeline.py).

The engine's basis history (keeper/basis_history.py) is fed the tradable basis of each block,
which the snapshot alone decides: its z-scores and window statistics depend on the recorded
market data only, never on what the keeper did. So the worker runs the engine's own signal code
(compute_signals, then the window statistics the strategies read) on each snapshot it rebuilds,
with its own BasisHistory, and ships per (market, venue) the basis, the z-score and the window's
statistics, with the window itself as its span (lo, hi) of observation indices.

The worker ships the signals too (the engine takes them instead of computing them again: the
same code on the same snapshot, with the z-scores of the same numbers).

In the main process, `AnsweredBasisHistory` stands where the engine keeps its BasisHistory and
answers the engine's reads of a block from those answers: the same floats (computed by the same
code on the same observations). It keeps the basis values of the answers it is loaded with (an
array, the oldest dropped as the windows move on) to give each statistics object its window,
as the serial history does. A basis the engine computes that is not the worker's is an error,
never a silent mismatch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keeper.basis_history import BasisHistory, BasisStats, _frozen
from keeper.errors import KeeperError
from keeper.signals import Signal, SkippedSignal, compute_signals
from keeper.types import MarketSnapshot

# (basis_bps, z-score, statistics: (center, scale, samples, half-life, spacing, window) or None),
# the window being its span (lo, hi) or, off the incremental path, its values
Answer = tuple[float, float | None, tuple[Any, ...] | None]
Answers = dict[tuple[str, str], Answer]


def compute_answers(snapshot: MarketSnapshot, history: BasisHistory) -> tuple[list[Signal | SkippedSignal], Answers]:
    """The snapshot's signals, and what the engine's basis history answers at this block (the
    worker's side)."""
    block, timestamp_s = snapshot.block_number, snapshot.block_timestamp
    signals = compute_signals(snapshot, history)
    return signals, {(s.market, s.spot_venue): answer_of(history, s.market, s.spot_venue, block, timestamp_s,
                                                         s.basis_bps, s.basis_zscore)
                     for s in signals if isinstance(s, Signal)}


def answer_of(history: BasisHistory, market: str, venue: str, block: int, timestamp_s: int, basis_bps: float,
              zscore: float | None) -> Answer:
    """One (market, venue)'s answer, once its basis was recorded (zscore_then_record gave `zscore`):
    the statistics the strategies read at this block."""
    stats, span = history.stats_and_window(market, venue, block, timestamp_s)
    shipped = None if stats is None else (stats.center_bps, stats.scale_bps, stats.samples, stats.half_life_s,
                                          stats.spacing_s, span if span is not None else np.asarray(stats.window_bps))
    return basis_bps, zscore, shipped


class AnsweredBasisHistory(BasisHistory):
    """The engine's basis history in a pipelined backtest: `load` each block's answers before the
    engine decides on it."""

    def __init__(self, window_s: float, min_samples: int) -> None:
        super().__init__(window_s, min_samples)
        self._block = -1
        self._answers: Answers = {}
        self._stats: dict[tuple[str, str], BasisStats | None] = {}
        self._values: dict[tuple[str, str], _Values] = {}

    def load(self, block: int, answers: Answers) -> None:
        """The worker's answers at `block`, its basis recorded (as the engine's zscore_then_record
        would: the engine may take the worker's signals instead of computing them)."""
        self._block, self._answers, self._stats = block, answers, {}
        for key, (basis_bps, _, _) in answers.items():
            values = self._values.get(key)
            if values is None:
                values = self._values[key] = _Values()
            values.record(block, basis_bps)

    def _answer(self, market: str, venue: str, block: int) -> Answer:
        answer = self._answers.get((market, venue)) if block == self._block else None
        if answer is None:
            raise KeeperError(f"backtest: no basis statistics from the snapshot worker for {market} {venue} at "
                              f"block {block} (it answered block {self._block})")
        return answer

    def zscore_then_record(self, market: str, venue: str, block: int, basis_bps: float,
                           timestamp_s: int | None = None) -> float | None:
        basis, zscore, _ = self._answer(market, venue, block)
        if basis != basis_bps and not (math.isnan(basis) and math.isnan(basis_bps)):
            raise KeeperError(f"backtest: {market} {venue} basis at block {block} is {basis_bps} bps, the snapshot "
                              f"worker's {basis} bps")
        return zscore  # its basis was recorded when loaded

    def stats(self, market: str, venue: str, before_block: int, timestamp_s: int) -> BasisStats | None:
        key = (market, venue)
        if key in self._stats and before_block == self._block:
            return self._stats[key]
        shipped = self._answer(market, venue, before_block)[2]
        found = None
        if shipped is not None:
            center, scale, samples, half_life, spacing, window = shipped
            values = _frozen(window) if isinstance(window, np.ndarray) else self._values[key].window(*window)
            found = BasisStats(center, scale, samples, half_life, values, spacing, self.window_s)
        self._stats[key] = found
        return found

    def stats_and_window(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the worker's history answers windows; this one only replays them")


class _Values:
    """One (market, venue)'s recorded basis values by absolute index, the oldest dropped once no
    window reaches them. A window is a read-only view of the buffer: a value, once recorded, is
    never written again (new values go past every window handed out, and dropping the oldest or
    growing moves the rest to a new buffer), so the view is as good as a copy."""

    __slots__ = ("buf", "read_only", "base", "end", "last_block")

    def __init__(self) -> None:
        self._use(np.empty(256, dtype=float))
        self.base = self.end = 0  # buf[i - base] is observation i, for base <= i < end
        self.last_block = -1

    def _use(self, buf: np.ndarray) -> None:
        """Write into `buf`; hand out windows of its read-only view (a window of it is read-only
        as it is made, not marked so per window)."""
        self.buf, self.read_only = buf, _frozen(buf.view())

    def record(self, block: int, value: float) -> None:
        if block <= self.last_block:  # at most one per block, as BasisHistory records them
            return
        self.last_block = block
        n = self.end - self.base
        if n == self.buf.size:
            self._use(np.concatenate([self.buf, np.empty(n, dtype=float)]))
        self.buf[n] = value
        self.end += 1

    def window(self, lo: int, hi: int) -> np.ndarray:
        if lo < self.base or hi > self.end:
            raise KeeperError(f"backtest: basis window [{lo}, {hi}) is not among the values kept [{self.base}, {self.end})")
        drop = lo - self.base
        if drop >= 1024 and drop * 2 >= self.end - self.base:  # compact, now and then, into a new buffer
            kept = self.end - lo
            buf = np.empty_like(self.buf)
            buf[:kept] = self.buf[drop:drop + kept]
            self._use(buf)
            self.base = lo
        return self.read_only[lo - self.base:hi - self.base]
