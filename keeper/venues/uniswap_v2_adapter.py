"""Uniswap V2 as a spot venue: the market's spot-token/USDC pair (reads: keeper/venues/uniswap_v2.py;
exact math: uniswap_v2_math.py, UniswapV2Library's 997/1000, so 0.3% pairs only)."""

from __future__ import annotations

from typing import ClassVar

from keeper.types import MarketView, Unavailable, V2PairState, v2_price_usd
from keeper.venues.adapter import QuoteUnavailable, SpotSwap, SpotVenueAdapter, VenueCapabilities, require_state
from keeper.venues.depth import v2_usdc_to_raise_spot
from keeper.venues.uniswap_v2_math import quote_v2_exact_in, quote_v2_exact_out
from keeper.venues.uniswap_v2_reads import UniswapV2Reads

V2_FEE_PIPS = 3000


class UniswapV2Spot(UniswapV2Reads, SpotVenueAdapter):  # UniswapV2Reads: its reads and its part of a snapshot
    name: ClassVar[str] = "uniswap_v2"
    executor_code: ClassVar[int] = 0  # IBasisExecutor.SpotVenue.UniswapV2
    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        kind="spot", reads=("UniswapV2Pair.getReserves",), exact_quotes=True, same_transaction=True,
        executor_leg="SpotOrder(venue=UniswapV2): UniswapV2Router02 swapExactTokensForTokens / swapTokensForExactTokens")

    def state(self, view: MarketView) -> V2PairState | Unavailable:
        return view.spot_v2

    def mid_price_usd(self, view: MarketView) -> float | Unavailable:
        pair = view.spot_v2
        if isinstance(pair, Unavailable):
            return pair
        return v2_price_usd(pair, view.spot_token_decimals)

    def quote_swap(self, view: MarketView, is_buy: bool, amount_raw: int) -> SpotSwap:
        pair: V2PairState = require_state(view, self.name, view.spot_v2)
        if pair.fee_pips != V2_FEE_PIPS:
            raise QuoteUnavailable(f"{view.name}: uniswap_v2 pair fee {pair.fee_pips} pips; the V2 math is for 3000 only")
        mid_usd = v2_price_usd(pair, view.spot_token_decimals)
        if is_buy:
            usdc_raw = quote_v2_exact_out(amount_raw, pair.reserve_usdc_raw, pair.reserve_spot_raw)
            return SpotSwap(True, amount_raw, usdc_raw, usdc_raw * pair.fee_pips // 1_000_000, mid_usd)
        usdc_raw = quote_v2_exact_in(amount_raw, pair.reserve_spot_raw, pair.reserve_usdc_raw)
        return SpotSwap(False, amount_raw, usdc_raw, amount_raw * pair.fee_pips // 1_000_000, mid_usd)

    def fee_pips(self, view: MarketView) -> int | None:
        return view.spot_v2.fee_pips if isinstance(view.spot_v2, V2PairState) else None

    def usdc_to_raise_price(self, view: MarketView, impact: float) -> float | None:
        pair = view.spot_v2
        return v2_usdc_to_raise_spot(pair, impact) if isinstance(pair, V2PairState) else None
