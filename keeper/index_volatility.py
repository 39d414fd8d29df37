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
window (a keeper just started, `keeper stress`): no estimate. Floats: sizing only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from keeper.types import MarketSnapshot, PerpMarketState

MIN_INCREMENTS = 3
RECORDS_PER_HALF_LIFE = 4  # the half-life spans at least this many records


def ewma_variance_per_s(times_s: Sequence[float], log_prices: Sequence[float], half_life_s: float) -> float | None:
    """sum w r^2 / sum w dt over the increments of (times_s, log_prices), oldest first, weights
    halving every half_life_s back from the newest record (module notes); None with fewer than
    MIN_INCREMENTS increments of positive duration."""
    if half_life_s <= 0:
        raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
    now = times_s[-1] if times_s else 0.0
    squares = durations = 0.0
    increments = 0
    for i in range(1, len(times_s)):
        dt = times_s[i] - times_s[i - 1]
        if dt <= 0:
            continue
        weight = 2.0 ** (-(now - times_s[i]) / half_life_s)
        squares += weight * (log_prices[i] - log_prices[i - 1]) ** 2
        durations += weight * dt
        increments += 1
    return None if increments < MIN_INCREMENTS or durations <= 0 else squares / durations


def half_life_s(times_s: Sequence[float], twap_interval_s: float) -> float:
    """H = max(T / 3, RECORDS_PER_HALF_LIFE x the median spacing of the records)."""
    spacings = sorted(b - a for a, b in zip(times_s, times_s[1:]) if b > a)
    median = spacings[len(spacings) // 2] if spacings else 0.0
    return max(twap_interval_s / 3, RECORDS_PER_HALF_LIFE * median, 1.0)


class IndexHistory:
    """The log index per market over the last `window_s` seconds, at most one record per block
    (the newest `max_records` kept)."""

    def __init__(self, window_s: float = 7_200.0, max_records: int = 1_024) -> None:
        if window_s <= 0 or max_records < MIN_INCREMENTS + 1:
            raise ValueError(f"need window_s > 0 and max_records > {MIN_INCREMENTS} "
                             f"(got {window_s}, {max_records})")
        self.window_s = window_s
        self._records: dict[str, deque[tuple[int, int, float]]] = {}
        self._max = max_records

    def record(self, snapshot: MarketSnapshot) -> None:
        """Remember each readable market's index at the snapshot's block (once per block)."""
        block, now = snapshot.block_number, snapshot.block_timestamp
        for name, view in snapshot.markets.items():
            perp = view.perp
            if not isinstance(perp, PerpMarketState) or perp.index_price_x18 <= 0:
                continue
            records = self._records.setdefault(name, deque(maxlen=self._max))
            if records and records[-1][0] >= block:
                continue
            records.append((block, now, math.log(perp.index_price_x18)))
            while len(records) > MIN_INCREMENTS + 1 and records[0][1] < now - self.window_s:
                records.popleft()

    def sigma_per_sqrt_s(self, market: str, twap_interval_s: float) -> float | None:
        """The market's index volatility (module notes), None without enough records."""
        records = self._records.get(market)
        if not records:
            return None
        times = [float(t) for _, t, _ in records]
        variance = ewma_variance_per_s(times, [x for _, _, x in records], half_life_s(times, twap_interval_s))
        return None if variance is None else math.sqrt(variance)

    def sigmas(self, snapshot: MarketSnapshot) -> tuple[tuple[str, float], ...]:
        """(market, sigma per sqrt(s)) for each market of the snapshot with an estimate."""
        out = []
        for name, view in sorted(snapshot.markets.items()):
            if isinstance(view.perp, PerpMarketState):
                sigma = self.sigma_per_sqrt_s(name, float(view.perp.twap_interval_s))
                if sigma is not None:
                    out.append((name, sigma))
        return tuple(out)
