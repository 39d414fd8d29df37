"""A small Uniswap V3 pool-state loader for the exact-quote tests, pinned to one block: three
batched eth_call round trips (slot0/liquidity/fee/tickSpacing, the bitmap words, then ticks(t)
for every set bit). The production reader is keeper/venues/uniswap_v3.py."""

from __future__ import annotations

from typing import Any

from eth_abi import decode

from keeper.chain.rpc import JsonRpc
from keeper.devnet.txs import codec
from keeper.venues.uniswap_v3_math import TICKS_PER_WORD, V3PoolState

POOL = codec("UniswapV3Pool")


def _eth_call(to: str, data: bytes, block: str) -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": "0x" + data.hex()}, block]


def _word(hex_data: str, types: list[str]) -> tuple[Any, ...]:
    return tuple(decode(types, bytes.fromhex(hex_data[2:])))


def load_v3_pool(rpc: JsonRpc, pool: str, half_width_words: int = 4, block: str = "latest") -> V3PoolState:
    """The pool at `block` with every initialized tick in the bitmap words around its tick."""
    block = block if block != "latest" else hex(rpc.block_number())
    head = rpc.batch([_eth_call(pool, POOL.encode(fn), block) for fn in ("slot0", "liquidity", "fee", "tickSpacing")])
    sqrt_price_x96, tick = _word(head[0], ["uint160", "int24"])
    (liquidity,) = _word(head[1], ["uint128"])
    (fee_pips,) = _word(head[2], ["uint24"])
    (spacing,) = _word(head[3], ["int24"])
    center = (tick // spacing) >> 8
    first, last = center - half_width_words, center + half_width_words
    words = rpc.batch([_eth_call(pool, POOL.encode("tickBitmap", w), block) for w in range(first, last + 1)])
    initialized = []
    for offset, data in enumerate(words):
        (bits,) = _word(data, ["uint256"])
        base = (first + offset) * TICKS_PER_WORD
        initialized += [(base + bit) * spacing for bit in range(TICKS_PER_WORD) if bits >> bit & 1]
    nets = rpc.batch([_eth_call(pool, POOL.encode("ticks", t), block) for t in initialized])
    liquidity_net = {t: _word(data, ["uint128", "int128"])[1] for t, data in zip(initialized, nets)}
    window = (first * TICKS_PER_WORD * spacing, ((last + 1) * TICKS_PER_WORD - 1) * spacing)
    return V3PoolState(sqrt_price_x96, tick, liquidity, fee_pips, spacing, liquidity_net, window)
