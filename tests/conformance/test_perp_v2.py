"""Perp v2 (Curie) passes the perp venue conformance suite."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak

from keeper.types import PerpMarketState
from keeper.venues.registry import perp_adapter

from .chain import DEADLINE_NEVER, read, send
from .conftest import Devnet
from .perp import PerpVenueConformance

pytestmark = pytest.mark.integration

POSITION_CHANGED = keccak(text="PositionChanged(address,address,int256,int256,uint256,int256,int256,uint256)")
NO_REFERRAL = b"\0" * 32
OPEN = "openPosition((address,bool,bool,uint256,uint256,uint256,uint160,bytes32))"
CLOSE = "closePosition((address,uint160,uint256,uint256,bytes32))"


class TestPerpV2Conformance(PerpVenueConformance):
    adapter = perp_adapter("perp_v2")

    def independent_state(self, d: Devnet, market: str, block: int) -> dict[str, Any]:
        base, rpc = d.manifest.market(market).base_token, d.rpc
        (twap_s,) = read(rpc, d.contract("ClearingHouseConfig"), "getTwapInterval()", ["uint32"], block=block)
        (max_funding,) = read(rpc, d.contract("ClearingHouseConfig"), "getMaxFundingRate()", ["uint24"], block=block)
        ((pool, exchange_fee, uniswap_fee, insurance_fee, spread),) = read(
            rpc, d.contract("MarketRegistry"), "getMarketInfo(address)", ["(address,uint24,uint24,uint24,uint24)"], base,
            block=block)
        sqrt_price, tick = read(rpc, pool, "slot0()", ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"],
                                block=block)[:2]
        (liquidity,) = read(rpc, pool, "liquidity()", ["uint128"], block=block)
        (twap_sqrt,) = read(rpc, d.contract("Exchange"), "getSqrtMarketTwapX96(address,uint32)", ["uint160"], base, twap_s,
                            block=block)
        (max_ticks,) = read(rpc, d.contract("Exchange"), "getMaxTickCrossedWithinBlock(address)", ["uint24"], base,
                            block=block)
        return {
            "vamm": (sqrt_price, tick, liquidity),  # the pool MarketRegistry names for the market
            "mark_price_x18": read(rpc, d.contract("AccountBalance"), "getMarkPrice(address)", ["uint256"], base,
                                   block=block)[0],
            "index_price_x18": read(rpc, base, "getIndexPrice(uint256)", ["uint256"], 0, block=block)[0],
            "index_twap_x18": read(rpc, base, "getIndexPrice(uint256)", ["uint256"], twap_s, block=block)[0],
            # Perp's rounding: the sqrt price squared to X96, then to 18 decimals
            "market_twap_x18": (twap_sqrt * twap_sqrt >> 96) * 10**18 >> 96,
            "fees_ppm": (exchange_fee, uniswap_fee, insurance_fee),
            "max_price_spread_ratio_ppm": spread,
            "max_funding_rate_ppm": max_funding,
            "twap_interval_s": twap_s,
            "max_tick_crossed_within_block": max_ticks,
        }

    def adapter_state(self, state: PerpMarketState) -> dict[str, Any]:
        p = state.pool
        return {
            "vamm": (p.sqrt_price_x96, p.tick, p.liquidity),
            "mark_price_x18": state.mark_price_x18,
            "index_price_x18": state.index_price_x18,
            "index_twap_x18": state.index_twap_x18,
            "market_twap_x18": state.market_twap_x18,
            "fees_ppm": (state.exchange_fee_ratio_ppm, state.uniswap_fee_ratio_ppm, state.insurance_fund_fee_ratio_ppm),
            "max_price_spread_ratio_ppm": state.max_price_spread_ratio_ppm,
            "max_funding_rate_ppm": state.max_funding_rate_ppm,
            "twap_interval_s": state.twap_interval_s,
            "max_tick_crossed_within_block": state.max_tick_crossed_within_block,
        }

    def open(self, d: Devnet, trader: str, market: str, is_short: bool, amount_x18: int, bound_x18: int) -> dict[str, Any]:
        base = d.manifest.market(market).base_token
        # short: base -> quote, exact input; long: quote -> base, exact output
        return send(d.rpc, trader, d.contract("ClearingHouse"), OPEN,
                    (base, is_short, is_short, amount_x18, bound_x18, DEADLINE_NEVER, 0, NO_REFERRAL))

    def close(self, d: Devnet, trader: str, market: str, bound_x18: int) -> dict[str, Any]:
        base = d.manifest.market(market).base_token
        return send(d.rpc, trader, d.contract("ClearingHouse"), CLOSE, (base, 0, bound_x18, DEADLINE_NEVER, NO_REFERRAL))

    def position_x18(self, d: Devnet, trader: str, market: str) -> int:
        return read(d.rpc, d.contract("AccountBalance"), "getTakerPositionSize(address,address)", ["int256"], trader,
                    d.manifest.market(market).base_token)[0]

    def event_emitter(self, d: Devnet) -> str:
        return d.contract("ClearingHouse")

    def fill(self, receipt: dict[str, Any]) -> tuple[int, int, int, int]:
        for log in receipt["logs"]:
            if bytes.fromhex(log["topics"][0][2:]) == POSITION_CHANGED:
                size, notional, fee, _open_notional, _pnl, sqrt_price = decode(
                    ["int256", "int256", "uint256", "int256", "int256", "uint256"], bytes.fromhex(log["data"][2:]))
                return size, notional, fee, sqrt_price
        raise AssertionError("no PositionChanged event in the receipt")
