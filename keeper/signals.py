"""Signals: pure numbers from one snapshot (and the recent history of basis).

Conventions:
- basis_bps = (perp mark / spot - 1) x 10_000, per spot venue. Positive: perp rich.
- funding rate: the fraction of notional longs pay shorts (negative: shorts pay longs), from Perp
  v2's premium (market TWAP - index TWAP, clamped), paid per day pro rata; per hour and as APR.
- carry APR per direction (funding only, before costs): short perp + long spot earns +funding APR,
  long perp + short spot earns -funding APR.
- z-score: basis against the last `window` observations of the same market and venue.
Floats here are for ranking and statistics only; amounts never pass through this module.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from keeper.types import (
    ONE_X18,
    SECONDS_PER_YEAR,
    MarketSnapshot,
    MarketView,
    PerpMarketState,
    Unavailable,
    V2PairState,
    spot_price_usd,
    v2_price_usd,
)

SPOT_VENUES = ("uniswap_v3", "uniswap_v2")


@dataclass(frozen=True)
class Signal:
    market: str
    spot_venue: str
    block_number: int
    spot_price_usd: float
    mark_price_usd: float
    index_price_usd: float
    basis_bps: float
    funding_rate_per_hour: float
    funding_apr: float
    carry_apr_short_perp: float
    carry_apr_long_perp: float
    basis_zscore: float | None


@dataclass(frozen=True)
class SkippedSignal:
    market: str
    spot_venue: str
    reason: str


class BasisHistory:
    """Rolling basis observations per (market, venue); at most one per block."""

    def __init__(self, window: int = 120, min_samples: int = 20) -> None:
        if window < 2 or min_samples < 2 or min_samples > window:
            raise ValueError(f"need 2 <= min_samples <= window (got window={window}, min_samples={min_samples})")
        self.window = window
        self.min_samples = min_samples
        self._series: dict[tuple[str, str], deque[tuple[int, float]]] = {}

    def observations(self, market: str, venue: str, before_block: int) -> list[float]:
        """The recorded basis (bps) of blocks before `before_block`, oldest first."""
        return [b for blk, b in self._series.get((market, venue), ()) if blk < before_block]

    def zscore_then_record(self, market: str, venue: str, block: int, basis_bps: float) -> float | None:
        """z-score of basis_bps against the history before it, then remember it."""
        series = self._series.setdefault((market, venue), deque(maxlen=self.window))
        past = [b for blk, b in series if blk < block]
        z = None
        if len(past) >= self.min_samples:
            values = np.asarray(past, dtype=float)
            std = float(values.std(ddof=1))
            if std > 0:
                z = (basis_bps - float(values.mean())) / std
        if not series or series[-1][0] < block:
            series.append((block, basis_bps))
        return z


def spot_price(view: MarketView, venue: str) -> float | Unavailable:
    if venue == "uniswap_v3":
        pool = view.spot_v3
        if isinstance(pool, Unavailable):
            return pool
        return spot_price_usd(pool.sqrt_price_x96, view.spot_token_decimals, view.spot_is_token0)
    pair = view.spot_v2
    if isinstance(pair, Unavailable):
        return pair
    assert isinstance(pair, V2PairState)
    return v2_price_usd(pair, view.spot_token_decimals)


def compute_signals(snapshot: MarketSnapshot, history: BasisHistory) -> list[Signal | SkippedSignal]:
    out: list[Signal | SkippedSignal] = []
    for name, view in snapshot.markets.items():
        perp = view.perp
        for venue in SPOT_VENUES:
            if isinstance(perp, Unavailable):
                out.append(SkippedSignal(name, venue, f"perp unavailable: {perp.reason}"))
                continue
            spot = spot_price(view, venue)
            if isinstance(spot, Unavailable):
                out.append(SkippedSignal(name, venue, spot.reason))
                continue
            out.append(compute_signal(snapshot.block_number, name, venue, perp, spot, history))
    return out


def compute_signal(block: int, market: str, venue: str, perp: PerpMarketState, spot_usd: float,
                   history: BasisHistory) -> Signal:
    mark = perp.mark_price_x18 / ONE_X18
    basis_bps = (mark / spot_usd - 1) * 1e4
    rate_per_s = perp.funding_rate_per_s
    funding_apr = rate_per_s * SECONDS_PER_YEAR
    return Signal(
        market=market, spot_venue=venue, block_number=block, spot_price_usd=spot_usd, mark_price_usd=mark,
        index_price_usd=perp.index_price_x18 / ONE_X18, basis_bps=basis_bps,
        funding_rate_per_hour=rate_per_s * 3600, funding_apr=funding_apr,
        carry_apr_short_perp=funding_apr, carry_apr_long_perp=-funding_apr,
        basis_zscore=history.zscore_then_record(market, venue, block, basis_bps),
    )
