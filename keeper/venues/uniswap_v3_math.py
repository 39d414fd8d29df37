"""Exact Uniswap V3 swap math (v3-core 1.0.1), in Python ints, to the wei.

Pure functions only: no web3, no I/O. Every rounding direction, overflow check and revert of
TickMath, FullMath, SqrtPriceMath, SwapMath and the step loop of `UniswapV3Pool.swap` is
reproduced, so a quote here equals what the pool pays (and what QuoterV2 answers) exactly.
A condition that makes the contract revert raises `V3SwapReverted` with the contract's reason.

The pool state is whatever the caller read at one block (`V3PoolState`): slot0, the active
liquidity, and every initialized tick inside the tickBitmap window it read. A swap that would
need bitmap bits outside that window raises `QuoteOutOfRange` instead of guessing.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init

# ------------------------------------------------------------------------------ constants
MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739  # get_sqrt_ratio_at_tick(MIN_TICK)
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342  # get_sqrt_ratio_at_tick(MAX_TICK)
Q96 = 1 << 96
Q128 = 1 << 128
FEE_DENOMINATOR_PIPS = 1_000_000
UINT128_MAX = (1 << 128) - 1
UINT160_MAX = (1 << 160) - 1
UINT256_MAX = (1 << 256) - 1
INT256_MAX = (1 << 255) - 1
TICKS_PER_WORD = 256

# sqrt(1.0001^-(2^i)) as Q128.128 for i = 1..19; bit 0 selects the starting value.
_RATIO_BIT0 = 0xFFFCB933BD6FAD37AA2D162D1A594001
_RATIO_FACTORS = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)
_LN_SQRT_10001 = math.log(1.0001) / 2  # ln sqrt(1.0001): a tick's step of ln(sqrt price)


# ------------------------------------------------------------------------------ errors
class V3SwapReverted(SkipOpportunity):
    """The pool (or a library it uses) would revert; `reason` is the contract's reason string,
    or a short description where the contract reverts without one (overflow checks)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Uniswap V3 math would revert: {reason}")
        self.reason = reason


class QuoteOutOfRange(SkipOpportunity):
    """The swap needs tickBitmap bits outside the window the caller read: read a wider window."""

    def __init__(self, needed_tick: int, tick_window: tuple[int, int]) -> None:
        super().__init__(
            f"swap needs the tick bitmap at tick {needed_tick}, outside the window read "
            f"[{tick_window[0]}, {tick_window[1]}]"
        )
        self.needed_tick = needed_tick
        self.tick_window = tick_window


# ------------------------------------------------------------------------------ FullMath
def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a * b / denominator); reverts when the denominator is 0 or the result needs > 256 bits."""
    if denominator == 0:
        raise V3SwapReverted("mulDiv: zero denominator")
    result = a * b // denominator
    if result > UINT256_MAX:
        raise V3SwapReverted("mulDiv: result overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """ceil(a * b / denominator), with mul_div's reverts and one more at uint256 max."""
    if denominator == 0:
        raise V3SwapReverted("mulDiv: zero denominator")
    quotient, remainder = divmod(a * b, denominator)
    if quotient > UINT256_MAX:
        raise V3SwapReverted("mulDiv: result overflows uint256")
    if remainder:
        if quotient == UINT256_MAX:
            raise V3SwapReverted("mulDivRoundingUp: result overflows uint256")
        quotient += 1
    return quotient


def _div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp: EVM division, so a zero divisor gives 0 rather than a revert."""
    if y == 0:
        return 0
    return -(-x // y)


# ------------------------------------------------------------------------------ TickMath
@lru_cache(maxsize=8192)
def get_sqrt_ratio_at_tick(tick: int) -> int:
    """sqrt(1.0001^tick) as a Q64.96, rounded up, exactly as TickMath computes it."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise V3SwapReverted("T")
    ratio = _RATIO_BIT0 if abs_tick & 0x1 else Q128
    for bit, factor in _RATIO_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = UINT256_MAX // ratio
    # Q128.128 -> Q64.96, rounding up so that get_tick_at_sqrt_ratio of the result is the tick.
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """The greatest tick whose sqrt ratio is <= sqrt_price_x96 (TickMath.getTickAtSqrtRatio's
    definition): a float logarithm's estimate, then corrected exactly against
    get_sqrt_ratio_at_tick (the estimate is off by at most one tick; TickMath's own log2 method
    gives the same tick, tests/unit/test_uniswap_v3_math.py checks the two agree)."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise V3SwapReverted("R")
    tick = math.floor(math.log(sqrt_price_x96 / Q96) / _LN_SQRT_10001)
    tick = MIN_TICK if tick < MIN_TICK else MAX_TICK - 1 if tick > MAX_TICK - 1 else tick
    while tick > MIN_TICK and get_sqrt_ratio_at_tick(tick) > sqrt_price_x96:
        tick -= 1
    while tick < MAX_TICK - 1 and get_sqrt_ratio_at_tick(tick + 1) <= sqrt_price_x96:
        tick += 1
    return tick


# ------------------------------------------------------------------------------ SqrtPriceMath
def get_next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96: int, liquidity: int, amount0_raw: int, add: bool) -> int:
    """Price after adding (add) or removing token0 at constant liquidity; rounds up."""
    if amount0_raw == 0:
        return sqrt_price_x96
    numerator1 = liquidity << 96
    product = amount0_raw * sqrt_price_x96
    if add:
        if product <= UINT256_MAX and numerator1 + product <= UINT256_MAX:
            return mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 + product) & UINT160_MAX
        # The contract's fallback form when the precise one would overflow.
        divisor = numerator1 // sqrt_price_x96 + amount0_raw
        if divisor > UINT256_MAX:
            raise V3SwapReverted("SqrtPriceMath: amount0 addition overflows")
        return _div_rounding_up(numerator1, divisor) & UINT160_MAX
    if product > UINT256_MAX or numerator1 <= product:
        raise V3SwapReverted("SqrtPriceMath: not enough token0 liquidity")
    result = mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 - product)
    if result > UINT160_MAX:
        raise V3SwapReverted("SafeCast: uint160 overflow")
    return result


def get_next_sqrt_price_from_amount1_rounding_down(sqrt_price_x96: int, liquidity: int, amount1_raw: int, add: bool) -> int:
    """Price after adding (add) or removing token1 at constant liquidity; rounds down."""
    if add:
        if amount1_raw <= UINT160_MAX:
            quotient = (amount1_raw << 96) // liquidity
        else:
            quotient = mul_div(amount1_raw, Q96, liquidity)
        result = sqrt_price_x96 + quotient
        if result > UINT160_MAX:
            raise V3SwapReverted("SafeCast: uint160 overflow")
        return result
    if amount1_raw <= UINT160_MAX:
        quotient = _div_rounding_up(amount1_raw << 96, liquidity)
    else:
        quotient = mul_div_rounding_up(amount1_raw, Q96, liquidity)
    if sqrt_price_x96 <= quotient:
        raise V3SwapReverted("SqrtPriceMath: not enough token1 liquidity")
    return sqrt_price_x96 - quotient


def get_next_sqrt_price_from_input(sqrt_price_x96: int, liquidity: int, amount_in_raw: int, zero_for_one: bool) -> int:
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise V3SwapReverted("SqrtPriceMath: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96, liquidity, amount_in_raw, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_price_x96, liquidity, amount_in_raw, True)


def get_next_sqrt_price_from_output(sqrt_price_x96: int, liquidity: int, amount_out_raw: int, zero_for_one: bool) -> int:
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise V3SwapReverted("SqrtPriceMath: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_price_x96, liquidity, amount_out_raw, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96, liquidity, amount_out_raw, False)


def get_amount0_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """token0 held by `liquidity` between two sqrt prices (either order)."""
    lower, upper = sorted((sqrt_ratio_a_x96, sqrt_ratio_b_x96))
    if lower <= 0:
        raise V3SwapReverted("SqrtPriceMath: zero price")
    numerator1 = liquidity << 96
    numerator2 = upper - lower
    if round_up:
        return _div_rounding_up(mul_div_rounding_up(numerator1, numerator2, upper), lower)
    return mul_div(numerator1, numerator2, upper) // lower


def get_amount1_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """token1 held by `liquidity` between two sqrt prices (either order)."""
    lower, upper = sorted((sqrt_ratio_a_x96, sqrt_ratio_b_x96))
    if round_up:
        return mul_div_rounding_up(liquidity, upper - lower, Q96)
    return mul_div(liquidity, upper - lower, Q96)


# ------------------------------------------------------------------------------ SwapMath
def _amount0_between(lower_x96: int, upper_x96: int, liquidity: int, round_up: bool) -> int:
    """get_amount0_delta for prices already in order (lower <= upper): the swap step's form."""
    if lower_x96 <= 0:
        raise V3SwapReverted("SqrtPriceMath: zero price")
    product = (liquidity << 96) * (upper_x96 - lower_x96)
    if round_up:
        quotient = -(-product // upper_x96)
        if quotient > UINT256_MAX:  # FullMath's overflow: the contract's reason
            mul_div_rounding_up(liquidity << 96, upper_x96 - lower_x96, upper_x96)
        return -(-quotient // lower_x96)
    quotient = product // upper_x96
    if quotient > UINT256_MAX:
        raise V3SwapReverted("mulDiv: result overflows uint256")
    return quotient // lower_x96


def _amount1_between(lower_x96: int, upper_x96: int, liquidity: int, round_up: bool) -> int:
    """get_amount1_delta for prices already in order (lower <= upper): the swap step's form."""
    product = liquidity * (upper_x96 - lower_x96)
    if round_up:
        quotient = -(-product // Q96)
        if quotient > UINT256_MAX:  # FullMath's overflow: the contract's reason
            mul_div_rounding_up(liquidity, upper_x96 - lower_x96, Q96)
        return quotient
    quotient = product // Q96
    if quotient > UINT256_MAX:
        raise V3SwapReverted("mulDiv: result overflows uint256")
    return quotient


def compute_swap_step(
    sqrt_price_current_x96: int,
    sqrt_price_target_x96: int,
    liquidity: int,
    amount_remaining_raw: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """One step toward the target price: (sqrt_price_next_x96, amount_in_raw, amount_out_raw,
    fee_amount_raw). amount_remaining_raw > 0 is exact input (fee included), < 0 exact output.
    (A step moves the price from the current one toward the target, so the amounts are taken
    between prices already in order: down for zero_for_one, up otherwise.)"""
    current, target = sqrt_price_current_x96, sqrt_price_target_x96
    zero_for_one = current >= target
    exact_in = amount_remaining_raw >= 0
    if exact_in:
        remaining_less_fee = amount_remaining_raw * (FEE_DENOMINATOR_PIPS - fee_pips) // FEE_DENOMINATOR_PIPS
        if remaining_less_fee > UINT256_MAX:
            raise V3SwapReverted("mulDiv: result overflows uint256")
        if zero_for_one:
            amount_in = _amount0_between(target, current, liquidity, True)
        else:
            amount_in = _amount1_between(current, target, liquidity, True)
        if remaining_less_fee >= amount_in:
            sqrt_price_next = target
        else:
            sqrt_price_next = get_next_sqrt_price_from_input(current, liquidity, remaining_less_fee, zero_for_one)
        amount_out = 0
    else:
        wanted_out = -amount_remaining_raw
        if zero_for_one:
            amount_out = _amount1_between(target, current, liquidity, False)
        else:
            amount_out = _amount0_between(current, target, liquidity, False)
        if wanted_out >= amount_out:
            sqrt_price_next = target
        else:
            sqrt_price_next = get_next_sqrt_price_from_output(current, liquidity, wanted_out, zero_for_one)
        amount_in = 0

    reached_target = sqrt_price_next == target
    # Amounts for the distance actually travelled; the ones computed above are reused only
    # when the step went all the way to the target on the side that was specified.
    if zero_for_one:
        if not (reached_target and exact_in):
            amount_in = _amount0_between(sqrt_price_next, current, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = _amount1_between(sqrt_price_next, current, liquidity, False)
    else:
        if not (reached_target and exact_in):
            amount_in = _amount1_between(current, sqrt_price_next, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = _amount0_between(current, sqrt_price_next, liquidity, False)

    if not exact_in and amount_out > -amount_remaining_raw:
        amount_out = -amount_remaining_raw

    if exact_in and not reached_target:
        # The target was not reached: everything left of the input beyond amount_in is fee.
        fee_amount = amount_remaining_raw - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, FEE_DENOMINATOR_PIPS - fee_pips)
    return sqrt_price_next, amount_in, amount_out, fee_amount


# ------------------------------------------------------------------------------ pool state
# Tick maps already checked, by identity (held, so an id is not reused while kept): a collector
# builds each block's states from the same decoded maps, and a swap's pool_after keeps its map.
# A hit also needs equal contents (a caller may have changed its dict since) and the same spacing
# and window. The states share one private copy, each behind its own read-only proxy.
_TICK_MAPS_KEPT = 64
_TICK_MAPS_SEEN: dict[int, tuple[Mapping[int, int], tuple[int, int, int], dict[int, int], tuple[int, ...]]] = {}
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
            ticks, compressed = seen[2], seen[3]  # the same map (equal content) as a state built before
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
            _TICK_MAPS_SEEN[id(given)] = (given, (self.tick_spacing, low, high), ticks, compressed)
        object.__setattr__(self, "liquidity_net_by_tick", MappingProxyType(ticks))
        object.__setattr__(self, "_compressed_ticks", compressed)

    def moved_to(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V3PoolState:
        """The same pool after a swap (which changes only price, tick and active liquidity)."""
        return V3PoolState(sqrt_price_x96, tick, liquidity, self.fee_pips, self.tick_spacing,
                           self.liquidity_net_by_tick, self.tick_window)

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
