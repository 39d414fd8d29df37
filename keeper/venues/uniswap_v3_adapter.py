"""Uniswap V3 as a spot venue: the market's spot-token/USDC pool (reads: keeper/venues/uniswap_v3.py;
exact math: uniswap_v3_math.py)."""

from __future__ import annotations

from typing import ClassVar

from keeper.types import MarketView, Unavailable, spot_price_usd
from keeper.venues.adapter import QuoteUnavailable, SpotSwap, SpotVenueAdapter, VenueCapabilities, require_state
from keeper.venues.depth import v3_usdc_to_raise_spot
from keeper.venues.uniswap_v3_math import V3PoolState, quote_v3_exact_in, quote_v3_exact_out
from keeper.venues.uniswap_v3_reads import UniswapV3Reads


class UniswapV3Spot(UniswapV3Reads, SpotVenueAdapter):  # UniswapV3Reads: its reads and its part of a snapshot
    name: ClassVar[str] = "uniswap_v3"
    executor_code: ClassVar[int] = 1  # IBasisExecutor.SpotVenue.UniswapV3
    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        kind="spot",
        reads=("UniswapV3Pool.slot0", "UniswapV3Pool.liquidity", "UniswapV3Pool.fee", "UniswapV3Pool.tickSpacing",
               "UniswapV3Pool.tickBitmap", "UniswapV3Pool.ticks"),
        exact_quotes=True, same_transaction=True,
        executor_leg="SpotOrder(venue=UniswapV3): SwapRouter exactInputSingle / exactOutputSingle")

    def state(self, view: MarketView) -> V3PoolState | Unavailable:
        return view.spot_v3

    def mid_price_usd(self, view: MarketView) -> float | Unavailable:
        pool = view.spot_v3
        if isinstance(pool, Unavailable):
            return pool
        return spot_price_usd(pool.sqrt_price_x96, view.spot_token_decimals, view.spot_is_token0)

    def quote_swap(self, view: MarketView, is_buy: bool, amount_raw: int) -> SpotSwap:
        pool: V3PoolState = require_state(view, self.name, view.spot_v3)
        mid_usd = spot_price_usd(pool.sqrt_price_x96, view.spot_token_decimals, view.spot_is_token0)
        # selling spot moves token0 -> token1 when the spot token is token0
        zero_for_one = view.spot_is_token0 != is_buy
        q = quote_v3_exact_out(pool, zero_for_one, amount_raw) if is_buy else quote_v3_exact_in(pool, zero_for_one, amount_raw)
        if (q.amount_out_raw if is_buy else q.amount_in_raw) != amount_raw:
            raise QuoteUnavailable(f"{view.name}: uniswap_v3 cannot fill {amount_raw} raw (pool price limit)")
        return SpotSwap(is_buy, amount_raw, q.amount_in_raw if is_buy else q.amount_out_raw, q.fee_paid_raw, mid_usd)

    def fee_pips(self, view: MarketView) -> int | None:
        return None if isinstance(view.spot_v3, Unavailable) else view.spot_v3.fee_pips

    def usdc_to_raise_price(self, view: MarketView, impact: float) -> float | None:
        pool = view.spot_v3
        return None if isinstance(pool, Unavailable) else v3_usdc_to_raise_spot(pool, view.spot_is_token0, impact)
