"""The index's recent volatility per market, from the index prices the snapshots already carry.

Every snapshot reads each perp market's index (BaseToken.getIndexPrice(0)); the engine records it
here once per block, so the estimate needs no read of its own. The estimate is the exponentially
weighted realized variance of the log index over the recorded blocks:

    sigma^2 = sum_i w_i r_i^2 / sum_i w_i dt_i     (variance per second)
    r_i = ln(index_i / index_(i-1)),  dt_i = t_i - t_(i-1),  w_i = 2^(-(t_now - t_i) / H)
    H = max(T / 3, 4 x the median spacing of the records)

For a Brownian index E[r_i^2] = sigma^2 dt_i, so the ratio is unbiased whatever the spacing, and it
averages about 2 H / (ln 2 x spacing) increments (14 at T = 900 s and one record a minute) where
the index's departure from its TWAP is one sample: its relative error is about 1 / sqrt(2 x 14) =
19% instead of 76%. T / 3 is the memory of that departure (index - TWAP over T has variance
sigma^2 T / 3), so both see the same stretch of history; on a chain read every few minutes the
half-life stretches to four records, so an estimate never rests on one increment alone. The newest
increment carries the largest weight: an index that has just jumped by J has sigma^2 >= J^2 ln 2 / H
(J = 5%, H = 300 s: sigma = 0.24% per sqrt(s)), while a calm index keeps sigma at its calm value.
The exit-stress rule (strategies/exit_stress.py) takes the larger of this and the one sample of the
TWAP departure, which still reads a fresh jump at once. Fewer than MIN_INCREMENTS increments in the
window (a keeper just started): no estimate. `keeper stress`, which records nothing, fills an
IndexHistory with the oracle's past rounds instead (keeper/index_rounds.py). Floats: sizing only.

Cost: recording is a log and an append per market and block; the estimate is computed only when
the exit-stress rule asks for it (a size search), once per market and block, on arrays (numpy) of
at most `max_records` records: the tick does not pay for it on blocks where nothing is sized.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from keeper.types import MarketSnapshot, PerpMarketState

MIN_INCREMENTS = 3
RECORDS_PER_HALF_LIFE = 4  # the half-life spans at least this many records


def ewma_variance_per_s(times_s: Sequence[float] | np.ndarray, log_prices: Sequence[float] | np.ndarray,
                        half_life_s: float) -> float | None:
    """sum w r^2 / sum w dt over the increments of (times_s, log_prices), oldest first, weights
    halving every half_life_s back from the newest record (module notes); None with fewer than
    MIN_INCREMENTS increments of positive duration."""
    if half_life_s <= 0:
        raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
    times, logs = np.asarray(times_s, dtype=float), np.asarray(log_prices, dtype=float)
    if times.size < 2:
        return None
    dt, moves = np.diff(times), np.diff(logs)
    positive = dt > 0
    if int(np.count_nonzero(positive)) < MIN_INCREMENTS:
        return None
    weights = np.exp2(-(times[-1] - times[1:][positive]) / half_life_s)
    durations = float(np.dot(weights, dt[positive]))
    return float(np.dot(weights, moves[positive] ** 2)) / durations if durations > 0 else None


def half_life_s(times_s: Sequence[float] | np.ndarray, twap_interval_s: float) -> float:
    """H = max(T / 3, RECORDS_PER_HALF_LIFE x the median spacing of the records)."""
    spacings = np.diff(np.asarray(times_s, dtype=float))
    spacings = spacings[spacings > 0]
    k = len(spacings) // 2  # the upper middle one of the sorted spacings: a selection, no sort
    median = float(np.partition(spacings, k)[k]) if len(spacings) else 0.0
    return max(twap_interval_s / 3, RECORDS_PER_HALF_LIFE * median, 1.0)


class _Series:
    """One market's records (block, time, log index), oldest first, from `first` on; the times
    and log indices also in numpy buffers (`arrays`), so an estimate reads them without
    converting a thousand floats from lists (half the estimate's cost, 2026-11-30)."""

    __slots__ = ("blocks", "times", "logs", "first", "_times_buf", "_logs_buf")

    def __init__(self) -> None:
        self.blocks: list[int] = []
        self.times: list[float] = []
        self.logs: list[float] = []
        self.first = 0
        self._times_buf = np.empty(64, dtype=float)  # _times_buf[i] = times[i], for i < len(times)
        self._logs_buf = np.empty(64, dtype=float)

    def __len__(self) -> int:
        return len(self.blocks) - self.first

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The times and log indices from `first` on: read-only views of the buffers, valid until
        the next append (a compaction writes over the buffers' start)."""
        end = len(self.blocks)
        times, logs = self._times_buf[self.first:end], self._logs_buf[self.first:end]
        times.flags.writeable = logs.flags.writeable = False
        return times, logs

    def append(self, block: int, time_s: float, log_index: float, max_records: int, oldest_s: float) -> None:
        n = len(self.blocks)
        if n == self._times_buf.size:
            self._times_buf = np.concatenate([self._times_buf, np.empty(n, dtype=float)])
            self._logs_buf = np.concatenate([self._logs_buf, np.empty(n, dtype=float)])
        self._times_buf[n], self._logs_buf[n] = time_s, log_index
        self.blocks.append(block)
        self.times.append(time_s)
        self.logs.append(log_index)
        n += 1  # (len(self) is n - first)
        while n - self.first > max_records or n - self.first > MIN_INCREMENTS + 1 and self.times[self.first] < oldest_s:
            self.first += 1
        if self.first >= 1_024 and self.first * 2 >= len(self.blocks):  # compact, now and then
            kept = len(self.blocks) - self.first
            self._times_buf[:kept] = self._times_buf[self.first:self.first + kept].copy()
            self._logs_buf[:kept] = self._logs_buf[self.first:self.first + kept].copy()
            del self.blocks[:self.first], self.times[:self.first], self.logs[:self.first]
            self.first = 0


def index_readings(snapshot: MarketSnapshot) -> tuple[tuple[str, int], ...]:
    """(market, index x 1e18) for each market whose index the snapshot read (> 0)."""
    return tuple((name, view.perp.index_price_x18) for name, view in snapshot.markets.items()
                 if isinstance(view.perp, PerpMarketState) and view.perp.index_price_x18 > 0)


class IndexHistory:
    """The log index per market over the last `window_s` seconds, at most one record per block
    (the newest `max_records` kept); each market's estimate memoised for its newest block."""

    def __init__(self, window_s: float = 7_200.0, max_records: int = 1_024) -> None:
        if window_s <= 0 or max_records < MIN_INCREMENTS + 1:
            raise ValueError(f"need window_s > 0 and max_records > {MIN_INCREMENTS} "
                             f"(got {window_s}, {max_records})")
        self.window_s = window_s
        self._series: dict[str, _Series] = {}
        self._max = max_records
        self._memo: dict[str, tuple[int, float, float | None]] = {}  # market -> (newest block, T, sigma)

    def record(self, snapshot: MarketSnapshot) -> None:
        """Remember each readable market's index at the snapshot's block (once per block)."""
        for name, index_x18 in index_readings(snapshot):
            self.record_price(name, snapshot.block_number, snapshot.block_timestamp, index_x18)

    def record_price(self, market: str, block: int, time_s: int, price: int) -> None:
        """Remember the market's index (> 0, in any fixed unit: only its log moves count) at `block`,
        once per block, blocks in increasing order (`keeper stress` numbers an oracle's past
        rounds in order instead: keeper/index_rounds.py)."""
        series = self._series.get(market)
        if series is None:
            series = self._series[market] = _Series()
        elif series.blocks and series.blocks[-1] >= block:  # (the newest record is never dropped: first < len)
            return
        series.append(block, float(time_s), math.log(price), self._max, time_s - self.window_s)

    def records(self, market: str) -> int:
        """How many of the market's records the estimate reads (inside the window)."""
        series = self._series.get(market)
        return 0 if series is None else len(series)

    def sigma_per_sqrt_s(self, market: str, twap_interval_s: float) -> float | None:
        """The market's index volatility (module notes), None without enough records."""
        series = self._series.get(market)
        if series is None or not len(series):
            return None
        memo = self._memo.get(market)
        if memo is not None and memo[0] == series.blocks[-1] and memo[1] == twap_interval_s:
            return memo[2]
        times, logs = series.arrays()
        variance = ewma_variance_per_s(times, logs, half_life_s(times, twap_interval_s))
        sigma = None if variance is None else math.sqrt(variance)
        self._memo[market] = (series.blocks[-1], twap_interval_s, sigma)
        return sigma

    def sigmas(self, snapshot: MarketSnapshot) -> Mapping[str, float]:
        """Market -> sigma per sqrt(s) for the snapshot's markets with an estimate, each computed
        when first read (most ticks size nothing and read none)."""
        return _LazySigmas(self, {name: float(view.perp.twap_interval_s) for name, view in snapshot.markets.items()
                                  if isinstance(view.perp, PerpMarketState)})


class _LazySigmas(Mapping[str, float]):
    """IndexHistory.sigmas: a read-only mapping whose values are estimated on first read, from the
    history as it is then: valid within the tick it was made for (the engine records the tick's
    index before it builds the tick's contexts, and no context outlives its tick)."""

    def __init__(self, history: IndexHistory, twap_interval_s: dict[str, float]) -> None:
        self._history, self._twap = history, twap_interval_s

    def __getitem__(self, market: str) -> float:
        twap = self._twap.get(market)
        sigma = None if twap is None else self._history.sigma_per_sqrt_s(market, twap)
        if sigma is None:
            raise KeyError(market)
        return sigma

    def __iter__(self) -> Iterator[str]:
        return (m for m in sorted(self._twap) if m in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)
