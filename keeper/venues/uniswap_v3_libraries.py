"""Uniswap v3-core 1.0.1's math libraries, in Python ints, to the wei: FullMath, TickMath,
SqrtPriceMath and SwapMath's computeSwapStep.

Pure functions only: no web3, no I/O. Every rounding direction, overflow check and revert of these
libraries is reproduced; a condition that makes the contract revert raises `V3SwapReverted` with
the contract's reason. The pool state and the swap loop built on them are in uniswap_v3_math.py.
"""

from __future__ import annotations

import math
from functools import lru_cache

from keeper.errors import SkipOpportunity


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
    gives the same tick, tests/unit/test_uniswap_v3_libraries.py checks the two agree)."""
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
