"""Signals: pure numbers from one snapshot (and the recent history of basis).

Conventions:
- basis_bps = (perp vAMM mid / spot mid - 1) x 10_000, per spot venue: the TRADABLE basis, the
  prices a trade starts from (the size-dependent part comes from the exact quotes in sizing).
  Positive: perp rich. mark_basis_bps uses Perp's margin mark (a median including a 30-minute
  TWAP that trails the vAMM by minutes): kept for margin and logs, never for decisions.
- funding rate: the fraction of notional longs pay shorts (negative: shorts pay longs), from Perp
  v2's premium (market TWAP - index TWAP, clamped), paid per day pro rata; per hour and as APR.
- carry APR per direction (funding only, before costs): short perp + long spot earns +funding APR,
  long perp + short spot earns -funding APR.
- z-score: robust (median / MAD) z of the tradable basis against the same market and venue's
  history over a window in seconds (keeper/basis_history.py).
Floats here are for ranking and statistics only; amounts never pass through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.basis_history import BasisHistory
from keeper.frozen import quick_init
from keeper.index_volatility import index_readings
from keeper.types import (
    ONE_X18,
    Q192,
    SECONDS_PER_DAY,
    SPOT_VENUES,
    SECONDS_PER_YEAR,
    MarketSnapshot,
    MarketView,
    PerpMarketState,
    Unavailable,
)
from keeper.venues.registry import spot_adapter


@quick_init  # four per block (keeper/frozen.py)
@dataclass(frozen=True)
class Signal:
    market: str
    spot_venue: str
    block_number: int
    spot_price_usd: float
    mark_price_usd: float
    index_price_usd: float
    basis_bps: float  # tradable: vAMM mid vs spot mid
    funding_rate_per_hour: float
    funding_apr: float
    carry_apr_short_perp: float
    carry_apr_long_perp: float
    basis_zscore: float | None
    vamm_price_usd: float = 0.0
    mark_basis_bps: float = 0.0  # Perp's margin mark vs spot: for margin and logs only


@dataclass(frozen=True)
class SkippedSignal:
    market: str
    spot_venue: str
    reason: str


def spot_price(view: MarketView, venue: str) -> float | Unavailable:
    """The venue's mid, USD per spot token (its adapter reads it from the snapshot)."""
    return spot_adapter(venue).mid_price_usd(view)


def compute_signals(snapshot: MarketSnapshot, history: BasisHistory) -> list[Signal | SkippedSignal]:
    out: list[Signal | SkippedSignal] = []
    block, timestamp_s = snapshot.block_number, snapshot.block_timestamp
    for name, view in snapshot.markets.items():
        perp = view.perp
        if isinstance(perp, Unavailable):
            out.extend(SkippedSignal(name, venue, f"perp unavailable: {perp.reason}") for venue in SPOT_VENUES)
            continue
        parts = _perp_parts(perp)  # the market's numbers, shared by its spot venues
        for venue in SPOT_VENUES:
            spot = spot_price(view, venue)
            if isinstance(spot, Unavailable):
                out.append(SkippedSignal(name, venue, spot.reason))
                continue
            out.append(_signal(block, name, venue, parts, spot, history, timestamp_s))
    return out


@dataclass(frozen=True)
class PastBlock:
    """What a tick records of a block (its tradable basis per market and venue, its index per
    market, the vAMM mids the pair desk records), without the snapshot it came from: the warm start
    holds these, a few hundred bytes each, while it reads back (keeper/warm_start.py;
    Engine.record_past)."""

    block_number: int
    block_timestamp: int
    basis: tuple[tuple[str, str, float], ...]  # (market, venue, tradable basis bps)
    index: tuple[tuple[str, int], ...]  # keeper.index_volatility.index_readings
    vamm: tuple[tuple[str, float], ...]  # each readable perp's vAMM mid (keeper/pairs_desk.py observe)


def past_block(snapshot: MarketSnapshot) -> PastBlock:
    """The PastBlock of `snapshot`: per (market, venue) the tradable basis compute_signals would
    record, the same numbers; per readable perp its vAMM mid; per market its index."""
    basis, vamms = [], []
    for name, view in snapshot.markets.items():
        if isinstance(view.perp, Unavailable):
            continue
        vamm = vamm_price_usd(view.perp)
        vamms.append((name, vamm))
        for venue in SPOT_VENUES:
            spot = spot_price(view, venue)
            if not isinstance(spot, Unavailable):
                basis.append((name, venue, tradable_basis_bps(vamm, spot)))
    return PastBlock(snapshot.block_number, snapshot.block_timestamp, tuple(basis), index_readings(snapshot),
                     tuple(vamms))


def tradable_basis_bps(vamm_usd: float, spot_usd: float) -> float:
    return (vamm_usd / spot_usd - 1) * 1e4


def compute_signal(block: int, market: str, venue: str, perp: PerpMarketState, spot_usd: float,
                   history: BasisHistory, timestamp_s: int | None = None) -> Signal:
    return _signal(block, market, venue, _perp_parts(perp), spot_usd, history, timestamp_s)


def _perp_parts(perp: PerpMarketState) -> tuple[float, float, float, float, float]:
    """(mark, vAMM mid, index, funding rate per s, funding APR): one market's, whatever the venue."""
    rate_per_s = perp.funding_rate_per_s
    return (perp.mark_price_x18 / ONE_X18, vamm_price_usd(perp), perp.index_price_x18 / ONE_X18, rate_per_s,
            rate_per_s * SECONDS_PER_YEAR)


def _signal(block: int, market: str, venue: str, parts: tuple[float, float, float, float, float], spot_usd: float,
            history: BasisHistory, timestamp_s: int | None) -> Signal:
    mark, vamm, index, rate_per_s, funding_apr = parts
    basis_bps = tradable_basis_bps(vamm, spot_usd)
    zscore = history.zscore_then_record(market, venue, block, basis_bps, timestamp_s)
    # positional, in Signal's field order (four a block: a keyword call costs about 1 us more)
    return Signal(market, venue, block, spot_usd, mark, index, basis_bps,  # market .. basis_bps
                  rate_per_s * 3600, funding_apr, funding_apr, -funding_apr,  # funding per hour, APR, carry short / long
                  zscore, vamm, (mark / spot_usd - 1) * 1e4)  # basis_zscore, vamm_price_usd, mark_basis_bps


def vamm_price_usd(perp: PerpMarketState) -> float:
    """The vAMM's mid price (vBase is token0, both 18 decimals): where a trade starts."""
    return perp.pool.sqrt_price_x96 ** 2 / Q192


def instant_funding_rate_per_s(perp: PerpMarketState, reference_usd: float | None = None,
                               vamm_usd: float | None = None) -> float:
    """The funding rate the vAMM's price now implies (premium vAMM / reference - 1, clamped like
    Perp's): where Perp's TWAP-based rate is heading within one TWAP interval. The reference is
    the index by default; pass the spot price to look through an index that lags spot (a stale or
    slow oracle catches up, so the gap it makes is not a premium that lasts). `vamm_usd`:
    vamm_price_usd(perp) when the caller has it already (a signal's)."""
    reference = perp.index_price_x18 / ONE_X18 if reference_usd is None else reference_usd
    cap = perp.max_funding_rate_ppm / 1e6
    premium = max(-cap, min(cap, (vamm_price_usd(perp) if vamm_usd is None else vamm_usd) / reference - 1))
    return premium / SECONDS_PER_DAY
