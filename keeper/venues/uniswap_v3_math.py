"""Exact Uniswap V3 swaps (v3-core 1.0.1), in Python ints, to the wei.

Pure functions only: no web3, no I/O. The step loop of `UniswapV3Pool.swap` is reproduced on the
libraries' exact math (uniswap_v3_libraries.py: TickMath, FullMath, SqrtPriceMath, SwapMath), so
a quote here equals what the pool pays (and what QuoterV2 answers) exactly. A condition that
makes the contract revert raises `V3SwapReverted` with the contract's reason.

The pool state is whatever the caller read at one block (`V3PoolState`): slot0, the active
liquidity, and every initialized tick inside the tickBitmap window it read. A swap that would
need bitmap bits outside that window raises `QuoteOutOfRange` instead of guessing.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init
from keeper.venues.uniswap_v3_libraries import (
    FEE_DENOMINATOR_PIPS,
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    UINT128_MAX,
    V3SwapReverted,
    compute_swap_step,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div_rounding_up,
)

TICKS_PER_WORD = 256


# ------------------------------------------------------------------------------ errors
class QuoteOutOfRange(SkipOpportunity):
    """The swap needs tickBitmap bits outside the window the caller read: read a wider window."""

    def __init__(self, needed_tick: int, tick_window: tuple[int, int]) -> None:
        super().__init__(
            f"swap needs the tick bitmap at tick {needed_tick}, outside the window read "
            f"[{tick_window[0]}, {tick_window[1]}]"
        )
        self.needed_tick = needed_tick
        self.tick_window = tick_window


# ------------------------------------------------------------------------------ pool state
# Tick maps already checked, by identity (held, so an id is not reused while kept): a collector
# builds each block's states from the same decoded maps, and a swap's pool_after keeps its map.
# A hit also needs equal contents (a caller may have changed its dict since) and the same spacing
# and window. The states share one private copy behind one read-only proxy (a batch of a
# backtest's snapshots pickles it once: keeper/history/pipeline.py).
_TICK_MAPS_KEPT = 64
_TICK_MAPS_SEEN: dict[int, tuple[Mapping[int, int], tuple[int, int, int], MappingProxyType[int, int], tuple[int, ...]]] = {}
@quick_init
@dataclass(frozen=True)
class V3PoolState:
    """A V3 pool as read at one block.

    liquidity_net_by_tick holds every initialized tick (a set bit in tickBitmap) inside
    tick_window, the inclusive range of ticks whose bitmap bits the caller read (whole words
    give (first_word * 256 * spacing, (last_word * 256 + 255) * spacing)); a swap needing bits
    outside it raises QuoteOutOfRange.
    """

    sqrt_price_x96: int
    tick: int  # slot0.tick: not always get_tick_at_sqrt_ratio(sqrt_price_x96) after a swap down
    liquidity: int
    fee_pips: int
    tick_spacing: int
    liquidity_net_by_tick: Mapping[int, int]
    tick_window: tuple[int, int]
    _compressed_ticks: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tick_spacing <= 0:
            raise ValueError(f"tick_spacing must be positive, got {self.tick_spacing}")
        if not 0 <= self.fee_pips < FEE_DENOMINATOR_PIPS:
            raise ValueError(f"fee_pips must be in [0, 1e6), got {self.fee_pips}")
        if not 0 <= self.liquidity <= UINT128_MAX:
            raise ValueError(f"liquidity must fit uint128, got {self.liquidity}")
        low, high = self.tick_window
        if low > high:
            raise ValueError(f"tick_window {self.tick_window} is empty")
        given = self.liquidity_net_by_tick
        seen = _TICK_MAPS_SEEN.get(id(given))
        if seen is not None and seen[0] is given and seen[1] == (self.tick_spacing, low, high) and seen[2] == given:
            proxy, compressed = seen[2], seen[3]  # the same map (equal content) as a state built before
        else:
            ticks = dict(given)
            for tick in ticks:
                if tick % self.tick_spacing:
                    raise ValueError(f"initialized tick {tick} is not a multiple of the spacing {self.tick_spacing}")
                if not low <= tick <= high:
                    raise ValueError(f"initialized tick {tick} lies outside tick_window {self.tick_window}")
            compressed = tuple(sorted(t // self.tick_spacing for t in ticks))
            if len(_TICK_MAPS_SEEN) >= _TICK_MAPS_KEPT:
                _TICK_MAPS_SEEN.clear()
            proxy = MappingProxyType(ticks)
            _TICK_MAPS_SEEN[id(given)] = (given, (self.tick_spacing, low, high), proxy, compressed)
        object.__setattr__(self, "liquidity_net_by_tick", proxy)
        object.__setattr__(self, "_compressed_ticks", compressed)

    def moved_to(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V3PoolState:
        """The same pool after a swap (which changes only price, tick and active liquidity), or
        read again at a later block with the same ticks: what V3PoolState(...) of these fields
        builds, with this state's fee, spacing, window and tick map (read-only, checked when this
        state was built), so only the new liquidity is checked (a third of the constructor's cost)."""
        if not 0 <= liquidity <= UINT128_MAX:
            raise ValueError(f"liquidity must fit uint128, got {liquidity}")
        state = object.__new__(type(self))
        fields = state.__dict__
        fields.update(self.__dict__)  # (the constructor's field order)
        fields["sqrt_price_x96"], fields["tick"], fields["liquidity"] = sqrt_price_x96, tick, liquidity
        return state

    def after(self, quote: V3SwapQuote) -> V3PoolState:
        """The pool once `quote`'s swap has happened, to quote the next trade against."""
        return self.moved_to(quote.sqrt_price_after_x96, quote.tick_after, quote.liquidity_after)

    def next_initialized_tick_within_one_word(self, tick: int, lte: bool) -> tuple[int, bool]:
        """TickBitmap.nextInitializedTickWithinOneWord over the ticks held here: the next
        initialized tick at or below `tick` (lte) or above it, searching one bitmap word only;
        the word's edge tick (uninitialized) when the word has none."""
        spacing = self.tick_spacing
        compressed = tick // spacing  # floor, as the contract rounds toward negative infinity
        low, high = self.tick_window
        if lte:
            word_start = (compressed >> 8) << 8
            i = bisect_right(self._compressed_ticks, compressed) - 1
            found = i >= 0 and self._compressed_ticks[i] >= word_start
            next_compressed = self._compressed_ticks[i] if found else word_start
            searched_low, searched_high = max(next_compressed * spacing, MIN_TICK), compressed * spacing
        else:
            first = compressed + 1
            word_end = ((first >> 8) << 8) + TICKS_PER_WORD - 1
            i = bisect_left(self._compressed_ticks, first)
            found = i < len(self._compressed_ticks) and self._compressed_ticks[i] <= word_end
            next_compressed = self._compressed_ticks[i] if found else word_end
            searched_low, searched_high = first * spacing, min(next_compressed * spacing, MAX_TICK)
        # Ticks beyond MIN_TICK / MAX_TICK can never be initialized, so they need no reading.
        if searched_low < low:
            raise QuoteOutOfRange(searched_low, self.tick_window)
        if searched_high > high:
            raise QuoteOutOfRange(searched_high, self.tick_window)
        return next_compressed * spacing, found


# ------------------------------------------------------------------------------ swap
@quick_init
@dataclass(frozen=True)
class V3SwapStep:
    """One iteration of the pool's swap loop."""

    sqrt_price_start_x96: int
    sqrt_price_end_x96: int
    liquidity: int  # active during the step
    amount_in_raw: int  # excluding the fee
    amount_out_raw: int
    fee_amount_raw: int
    tick_next: int
    crossed_initialized_tick: bool


@quick_init
@dataclass(frozen=True)
class V3SwapQuote:
    """What UniswapV3Pool.swap does: amounts (non-negative, raw units of the input and output
    token), the pool's signed deltas as swap() returns them (positive = paid into the pool),
    and the pool state after."""

    zero_for_one: bool
    amount_in_raw: int  # including the fee
    amount_out_raw: int
    amount0_delta_raw: int
    amount1_delta_raw: int
    sqrt_price_after_x96: int
    tick_after: int
    liquidity_after: int
    initialized_ticks_crossed: int
    fee_paid_raw: int  # total fee, in the input token (before any protocol share)
    steps: tuple[V3SwapStep, ...]


def default_sqrt_price_limit_x96(zero_for_one: bool) -> int:
    """The limit QuoterV2, SwapRouter and Perp use when given 0: the extreme allowed price."""
    return MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1


def compute_v3_swap(
    pool: V3PoolState,
    zero_for_one: bool,
    amount_specified_raw: int,
    sqrt_price_limit_x96: int = 0,
    fee_pips: int | None = None,
) -> V3SwapQuote:
    """UniswapV3Pool.swap: amount_specified_raw > 0 is exact input, < 0 exact output (as the
    pool takes it). sqrt_price_limit_x96 = 0 means no limit (the extreme price, as QuoterV2
    and SwapRouter pass it). fee_pips overrides the pool's fee (Perp's replay uses this)."""
    if amount_specified_raw == 0:
        raise V3SwapReverted("AS")
    sqrt_price = pool.sqrt_price_x96
    limit = sqrt_price_limit_x96 or (MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1)
    if zero_for_one:
        if not (MIN_SQRT_RATIO < limit < sqrt_price):
            raise V3SwapReverted("SPL")
    elif not (sqrt_price < limit < MAX_SQRT_RATIO):
        raise V3SwapReverted("SPL")
    fee = pool.fee_pips if fee_pips is None else fee_pips
    exact_input = amount_specified_raw > 0

    remaining = amount_specified_raw
    calculated = 0
    tick = pool.tick
    liquidity = pool.liquidity
    crossed = 0
    fee_paid = 0
    steps: list[V3SwapStep] = []
    next_initialized_tick = pool.next_initialized_tick_within_one_word
    while remaining != 0 and sqrt_price != limit:
        price_start = sqrt_price
        tick_next, initialized = next_initialized_tick(tick, zero_for_one)
        tick_next = MIN_TICK if tick_next < MIN_TICK else MAX_TICK if tick_next > MAX_TICK else tick_next
        price_next = get_sqrt_ratio_at_tick(tick_next)
        beyond_limit = price_next < limit if zero_for_one else price_next > limit
        sqrt_price, step_in, step_out, step_fee = compute_swap_step(
            sqrt_price, limit if beyond_limit else price_next, liquidity, remaining, fee)
        if exact_input:
            remaining -= step_in + step_fee
            calculated -= step_out
        else:
            remaining += step_out
            calculated += step_in + step_fee
        fee_paid += step_fee
        step_liquidity = liquidity
        crossed_now = False
        if sqrt_price == price_next:
            if initialized:
                net = pool.liquidity_net_by_tick[tick_next]
                liquidity = _add_liquidity_delta(liquidity, -net if zero_for_one else net)
                crossed += 1
                crossed_now = True
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_price != price_start:
            tick = get_tick_at_sqrt_ratio(sqrt_price)
        steps.append(V3SwapStep(price_start, sqrt_price, step_liquidity, step_in, step_out, step_fee,
                                tick_next, crossed_now))

    spent = amount_specified_raw - remaining
    if zero_for_one == exact_input:
        amount0, amount1 = spent, calculated
    else:
        amount0, amount1 = calculated, spent
    amount_in, amount_out = (amount0, -amount1) if zero_for_one else (amount1, -amount0)
    return V3SwapQuote(zero_for_one, amount_in, amount_out, amount0, amount1, sqrt_price, tick, liquidity,
                       crossed, fee_paid, tuple(steps))


def with_exact_output_fee(quote: V3SwapQuote, fee_pips: int) -> V3SwapQuote:
    """`quote`, an exact-output swap, run again with fee_pips as the fee: an exact output's path
    (prices, ticks, liquidity, amounts in and out per step) does not depend on the fee, only each
    step's fee amount (and so the input) does, so only those are recomputed, step by step as
    compute_swap_step rounds them (its reverts too). Equals compute_v3_swap(..., fee_pips=fee_pips)."""
    if not 0 <= fee_pips < FEE_DENOMINATOR_PIPS:
        raise ValueError(f"fee_pips must be in [0, 1e6), got {fee_pips}")
    kept = FEE_DENOMINATOR_PIPS - fee_pips
    steps = []
    fee_paid = amount_in = 0
    for step in quote.steps:
        step_fee = mul_div_rounding_up(step.amount_in_raw, fee_pips, kept)
        fee_paid += step_fee
        amount_in += step.amount_in_raw + step_fee
        steps.append(V3SwapStep(step.sqrt_price_start_x96, step.sqrt_price_end_x96, step.liquidity, step.amount_in_raw,
                                step.amount_out_raw, step_fee, step.tick_next, step.crossed_initialized_tick))
    if quote.zero_for_one:
        amount0, amount1 = amount_in, quote.amount1_delta_raw
    else:
        amount0, amount1 = quote.amount0_delta_raw, amount_in
    return V3SwapQuote(quote.zero_for_one, amount_in, quote.amount_out_raw, amount0, amount1, quote.sqrt_price_after_x96,
                       quote.tick_after, quote.liquidity_after, quote.initialized_ticks_crossed, fee_paid, tuple(steps))


def _add_liquidity_delta(liquidity: int, delta: int) -> int:
    result = liquidity + delta
    if result < 0:
        raise V3SwapReverted("LS")
    if result > UINT128_MAX:
        raise V3SwapReverted("LA")
    return result


def quote_v3_exact_in(pool: V3PoolState, zero_for_one: bool, amount_in_raw: int, sqrt_price_limit_x96: int = 0) -> V3SwapQuote:
    """Exact input (fee included in amount_in_raw). With a price limit the swap may stop early:
    then amount_in_raw of the result is less than asked, as QuoterV2 reports it."""
    if amount_in_raw <= 0:
        raise ValueError(f"amount_in_raw must be positive, got {amount_in_raw}")
    return compute_v3_swap(pool, zero_for_one, amount_in_raw, sqrt_price_limit_x96)


def quote_v3_exact_out(pool: V3PoolState, zero_for_one: bool, amount_out_raw: int, sqrt_price_limit_x96: int = 0) -> V3SwapQuote:
    """Exact output. With a price limit the swap may stop early: then amount_out_raw of the
    result is less than asked (SwapRouter accepts that only when a limit was given; QuoterV2
    and SwapRouter without a limit revert), so callers that need the full amount must check."""
    if amount_out_raw <= 0:
        raise ValueError(f"amount_out_raw must be positive, got {amount_out_raw}")
    return compute_v3_swap(pool, zero_for_one, -amount_out_raw, sqrt_price_limit_x96)
