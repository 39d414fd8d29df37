"""Uniswap V3 passes the spot venue conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.venues.registry import spot_adapter
from keeper.venues.uniswap_v3_math import V3PoolState

from .chain import DEADLINE_NEVER, read, send
from .conftest import Devnet
from .spot import SpotVenueConformance

pytestmark = pytest.mark.integration


class TestUniswapV3SpotConformance(SpotVenueConformance):
    adapter = spot_adapter("uniswap_v3")
    executor_enum_member = "UniswapV3"

    def venue_address(self, d: Devnet, market: str) -> str:
        return d.manifest.market(market).uniswap_v3_pool

    def independent_state(self, d: Devnet, market: str, block: int) -> dict[str, Any]:
        pool = self.venue_address(d, market)
        sqrt_price, tick = read(d.rpc, pool, "slot0()", ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"],
                                block=block)[:2]
        (liquidity,) = read(d.rpc, pool, "liquidity()", ["uint128"], block=block)
        (fee,) = read(d.rpc, pool, "fee()", ["uint24"], block=block)
        (spacing,) = read(d.rpc, pool, "tickSpacing()", ["int24"], block=block)
        # every initialized tick within 2 bitmap words of the price, with its liquidityNet
        word = (tick // spacing) >> 8
        nets = {}
        for w in range(word - 2, word + 3):
            (bits,) = read(d.rpc, pool, "tickBitmap(int16)", ["uint256"], w, block=block)
            for bit in range(256):
                if bits >> bit & 1:
                    t = (w * 256 + bit) * spacing
                    nets[t] = read(d.rpc, pool, "ticks(int24)", ["uint128", "int128"] + ["uint256"] * 2 + ["int56", "uint160", "uint32", "bool"],
                                   t, block=block)[1]
        return {"sqrt_price_x96": sqrt_price, "tick": tick, "liquidity": liquidity, "fee_pips": fee,
                "tick_spacing": spacing, "liquidity_net_near": nets}

    def adapter_state(self, state: V3PoolState) -> dict[str, Any]:
        spacing = state.tick_spacing
        word = (state.tick // spacing) >> 8
        low, high = (word - 2) * 256 * spacing, ((word + 3) * 256 - 1) * spacing
        near = {t: n for t, n in state.liquidity_net_by_tick.items() if low <= t <= high}
        return {"sqrt_price_x96": state.sqrt_price_x96, "tick": state.tick, "liquidity": state.liquidity,
                "fee_pips": state.fee_pips, "tick_spacing": spacing, "liquidity_net_near": near}

    def swap(self, d: Devnet, trader: str, market: str, is_buy: bool, amount_raw: int, limit_raw: int) -> None:
        m, usdc, router = d.manifest.market(market), d.contract("USDC"), d.contract("SwapRouter")
        fee = m.uniswap_v3_fee_pips
        if is_buy:  # exact output: amount of spot out, at most limit USDC in
            send(d.rpc, trader, router,
                 "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                 (usdc, m.spot_token, fee, trader, DEADLINE_NEVER, amount_raw, limit_raw, 0))
        else:  # exact input: amount of spot in, at least limit USDC out
            send(d.rpc, trader, router,
                 "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                 (m.spot_token, usdc, fee, trader, DEADLINE_NEVER, amount_raw, limit_raw, 0))
