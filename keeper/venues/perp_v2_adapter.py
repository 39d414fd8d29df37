"""Perpetual Protocol v2 (Curie) as a perp venue: a market's vAMM and its taker trades (reads:
keeper/venues/perp_v2.py; exact math: perp_v2_math.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from keeper.types import MarketView, PerpMarketState, Unavailable
from keeper.venues.adapter import PerpVenueAdapter, ReceiptFacts, VenueCapabilities
from keeper.venues.perp_v2 import perp_facts_from_receipt
from keeper.venues.perp_v2_math import PerpPriceBand, PerpQuote, quote_perp_close, quote_perp_open
from keeper.venues.perp_v2_reads import PerpV2Reads


class PerpV2(PerpV2Reads, PerpVenueAdapter):  # PerpV2Reads: its reads and its part of a snapshot
    name: ClassVar[str] = "perp_v2"
    capabilities: ClassVar[VenueCapabilities] = VenueCapabilities(
        kind="perp",
        reads=("UniswapV3Pool.slot0 (vAMM)", "UniswapV3Pool.liquidity", "UniswapV3Pool.tickBitmap", "UniswapV3Pool.ticks",
               "AccountBalance.getMarkPrice", "BaseToken.getIndexPrice", "Exchange.getSqrtMarketTwapX96",
               "MarketRegistry.getMarketInfoByTrader", "ClearingHouseConfig.getTwapInterval",
               "Exchange.getMaxTickCrossedWithinBlock", "Exchange storage: the tick band"),
        exact_quotes=True, same_transaction=True,
        executor_leg="PerpOrder / PerpCloseOrder: ClearingHouse openPosition / closePosition")

    def state(self, view: MarketView) -> PerpMarketState | Unavailable:
        return view.perp

    def quote_open(self, state: PerpMarketState, is_short: bool, amount_x18: int, band: PerpPriceBand) -> PerpQuote:
        # short: base -> quote, exact input (exact base in); long: quote -> base, exact output (exact base out)
        return quote_perp_open(state.pool, state.exchange_fee_ratio_ppm, is_short, is_short, amount_x18,
                               insurance_fund_fee_ratio_ppm=state.insurance_fund_fee_ratio_ppm, price_band=band)

    def quote_close(self, state: PerpMarketState, position_base_x18: int, band: PerpPriceBand) -> PerpQuote:
        return quote_perp_close(state.pool, state.exchange_fee_ratio_ppm, position_base_x18, band,
                                insurance_fund_fee_ratio_ppm=state.insurance_fund_fee_ratio_ppm)

    def receipt_facts(self, receipt: dict[str, Any], emitter: str, trader: str) -> ReceiptFacts:
        # the ClearingHouse's PositionChanged.fee and FundingPaymentSettled, for the trader
        if not emitter:
            raise ValueError("perp_v2: decoding a receipt needs the ClearingHouse address")
        fee_x18, settled_x18 = perp_facts_from_receipt(receipt, emitter, trader)
        return ReceiptFacts(fee_x18=fee_x18, settled_funding_x18=settled_x18)
