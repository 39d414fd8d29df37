"""Uniswap V2 passes the spot venue conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.types import V2PairState
from keeper.venues.registry import spot_adapter

from .chain import DEADLINE_NEVER, read, send
from .conftest import Devnet
from .spot import SpotVenueConformance

pytestmark = pytest.mark.integration


class TestUniswapV2SpotConformance(SpotVenueConformance):
    adapter = spot_adapter("uniswap_v2")
    executor_enum_member = "UniswapV2"

    def venue_address(self, d: Devnet, market: str) -> str:
        return d.manifest.market(market).uniswap_v2_pair

    def independent_state(self, d: Devnet, market: str, block: int) -> dict[str, Any]:
        pair, spot = self.venue_address(d, market), d.manifest.market(market).spot_token
        r0, r1, _ = read(d.rpc, pair, "getReserves()", ["uint112", "uint112", "uint32"], block=block)
        (token0,) = read(d.rpc, pair, "token0()", ["address"], block=block)
        spot_reserve, usdc_reserve = (r0, r1) if token0.lower() == spot.lower() else (r1, r0)
        return {"pair": pair.lower(), "reserve_spot_raw": spot_reserve, "reserve_usdc_raw": usdc_reserve}

    def adapter_state(self, state: V2PairState) -> dict[str, Any]:
        return {"pair": state.pair.lower(), "reserve_spot_raw": state.reserve_spot_raw,
                "reserve_usdc_raw": state.reserve_usdc_raw}

    def swap(self, d: Devnet, trader: str, market: str, is_buy: bool, amount_raw: int, limit_raw: int) -> None:
        m, usdc, router = d.manifest.market(market), d.contract("USDC"), d.contract("UniswapV2Router02")
        if is_buy:  # exact output: amount of spot out, at most limit USDC in
            send(d.rpc, trader, router, "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
                 amount_raw, limit_raw, [usdc, m.spot_token], trader, DEADLINE_NEVER)
        else:  # exact input: amount of spot in, at least limit USDC out
            send(d.rpc, trader, router, "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                 amount_raw, limit_raw, [m.spot_token, usdc], trader, DEADLINE_NEVER)
