"""Uniswap V3 pool reads: slot0, liquidity, and the initialized ticks around the price.

Initialized ticks are found in two steps: tickBitmap words around the current tick, then
ticks(t).liquidityNet for every set bit. The exact swap math is in uniswap_v3_math.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from eth_abi import encode

from keeper.artifacts import abi_codec
from keeper.chain.multicall import Call, word_int, word_uint
from keeper.frozen import quick_init
from keeper.venues.reads import ReadPlan

_POOL = abi_codec("UniswapV3Pool")
SLOT0 = _POOL.encode("slot0")
LIQUIDITY = _POOL.encode("liquidity")
FEE = _POOL.encode("fee")
TICK_SPACING = _POOL.encode("tickSpacing")
_TICK_BITMAP = _POOL.fn("tickBitmap").selector
_TICKS = _POOL.fn("ticks").selector
TICKS_PER_WORD = 256


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class V3Head:
    sqrt_price_x96: int
    tick: int
    liquidity: int


@dataclass(frozen=True)
class BitmapWindow:
    """tickBitmap words [first_word, last_word] of a pool, and the ticks they cover."""

    first_word: int
    last_word: int
    words: tuple[int, ...]
    tick_spacing: int

    @property
    def tick_range(self) -> tuple[int, int]:
        return (self.first_word * TICKS_PER_WORD * self.tick_spacing,
                ((self.last_word + 1) * TICKS_PER_WORD - 1) * self.tick_spacing)

    def initialized_ticks(self) -> list[int]:
        ticks = []
        for offset, word in enumerate(self.words):
            base = (self.first_word + offset) * TICKS_PER_WORD
            while word:
                low_bit = word & -word
                ticks.append((base + low_bit.bit_length() - 1) * self.tick_spacing)
                word ^= low_bit
        return ticks

    def covers_safely(self, tick: int, margin_words: int = 1) -> bool:
        """Is `tick` at least `margin_words` words away from the window's edges?"""
        word = word_of_tick(tick, self.tick_spacing)
        return self.first_word + margin_words <= word <= self.last_word - margin_words


def word_of_tick(tick: int, tick_spacing: int) -> int:
    compressed = tick // tick_spacing  # floor division rounds toward -inf, like the pool
    return compressed >> 8


@functools.lru_cache(maxsize=4096)  # a window re-centred reads the same words again: eth_abi's encode is ~30 us
def _tick_bitmap_calldata(word: int) -> bytes:
    return _TICK_BITMAP + encode(["int16"], [word])


@functools.lru_cache(maxsize=4096)
def _ticks_calldata(tick: int) -> bytes:
    return _TICKS + encode(["int24"], [tick])


def plan_head(pool: str) -> ReadPlan[V3Head]:
    def decode(data: list[bytes]) -> V3Head:  # word_uint / word_int inlined: four pools a block in a backtest
        slot0 = data[0]
        return V3Head(int.from_bytes(slot0[:32], "big"), int.from_bytes(slot0[32:64], "big", signed=True),
                      int.from_bytes(data[1][:32], "big"))

    return ReadPlan([Call(pool, SLOT0, f"UniswapV3Pool({pool}).slot0"),
                     Call(pool, LIQUIDITY, f"UniswapV3Pool({pool}).liquidity")], decode)


def plan_bitmap(pool: str, tick_spacing: int, center_tick: int, half_width_words: int) -> ReadPlan[BitmapWindow]:
    center = word_of_tick(center_tick, tick_spacing)
    first, last = center - half_width_words, center + half_width_words
    calls = [Call(pool, _tick_bitmap_calldata(w), f"UniswapV3Pool({pool}).tickBitmap({w})")
             for w in range(first, last + 1)]

    def decode(data: list[bytes]) -> BitmapWindow:
        return BitmapWindow(first, last, tuple(word_uint(d) for d in data), tick_spacing)

    return ReadPlan(calls, decode)


def plan_liquidity_net(pool: str, ticks: list[int]) -> ReadPlan[dict[int, int]]:
    """ticks(t) returns (liquidityGross, liquidityNet, ...): keep liquidityNet."""
    calls = [Call(pool, _ticks_calldata(t), f"UniswapV3Pool({pool}).ticks({t})") for t in ticks]

    def decode(data: list[bytes]) -> dict[int, int]:
        return {t: word_int(d, 1) for t, d in zip(ticks, data)}

    return ReadPlan(calls, decode)
