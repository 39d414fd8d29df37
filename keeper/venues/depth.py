"""Market depth: how much input moves a price by a given fraction (pure; for scan and sizing).

Returned in USD (floats, display and ranking only). None when the move would leave the tick
window the snapshot read (the exact quoter refuses to guess there).
"""

from __future__ import annotations

import math

from keeper.types import ONE_X18, USDC_DECIMALS, PerpMarketState, V2PairState
from keeper.venues.uniswap_v3_math import QuoteOutOfRange, V3PoolState, compute_v3_swap

_HUGE_INPUT = 2**200


def v3_usdc_to_raise_spot(pool: V3PoolState, spot_is_token0: bool, impact: float) -> float | None:
    """USDC (USD) a buyer of spot pays to raise the spot price by `impact` (0.01 = 1%)."""
    # Spot as token0: USDC (token1) in, sqrt price up. Spot as token1: USDC (token0) in, down.
    factor = math.sqrt(1 + impact) if spot_is_token0 else 1 / math.sqrt(1 + impact)
    limit = int(pool.sqrt_price_x96 * factor)
    try:
        quote = compute_v3_swap(pool, not spot_is_token0, _HUGE_INPUT, limit)
    except QuoteOutOfRange:
        return None
    return quote.amount_in_raw / 10**USDC_DECIMALS


def v2_usdc_to_raise_spot(pair: V2PairState, impact: float) -> float:
    """Constant product: the USDC reserve must grow by sqrt(1 + impact); the fee is on input."""
    effective = pair.reserve_usdc_raw * (math.sqrt(1 + impact) - 1)
    return effective * 1000 / 997 / 10**USDC_DECIMALS


def perp_quote_to_raise_mark(perp: PerpMarketState, impact: float) -> float | None:
    """vUSD a long pays to raise the vAMM price by `impact` (Perp's exchange fee instead of the pool's)."""
    pool = perp.pool
    limit = int(pool.sqrt_price_x96 * math.sqrt(1 + impact))
    try:
        quote = compute_v3_swap(pool, False, _HUGE_INPUT, limit, fee_pips=perp.exchange_fee_ratio_ppm)
    except QuoteOutOfRange:
        return None
    return quote.amount_in_raw / ONE_X18
