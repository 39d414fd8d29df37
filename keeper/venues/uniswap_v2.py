"""Uniswap V2: read a pair's reserves. Exact amounts: keeper/venues/uniswap_v2_math.py."""

from __future__ import annotations

from keeper.artifacts import abi_codec
from keeper.chain.multicall import Call, word_uint
from keeper.types import V2PairState
from keeper.venues.reads import ReadPlan

_PAIR = abi_codec("UniswapV2Pair")
GET_RESERVES = _PAIR.encode("getReserves")


def plan_pair_reserves(pair: str, spot_is_token0: bool) -> ReadPlan[V2PairState]:
    def decode(data: list[bytes]) -> V2PairState:
        r0, r1 = word_uint(data[0], 0), word_uint(data[0], 1)
        spot, usdc = (r0, r1) if spot_is_token0 else (r1, r0)
        if spot == 0 or usdc == 0:
            raise ValueError("empty pair")
        return V2PairState(pair, spot, usdc)

    return ReadPlan([Call(pair, GET_RESERVES, f"UniswapV2Pair({pair}).getReserves")], decode)
