"""Uniswap v3-core's math libraries, exact: TickMath, FullMath, SqrtPriceMath and SwapMath's step,
checked against known values, exact rational references and the contracts' own methods."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from math import isqrt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keeper.venues.uniswap_v3_libraries import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    UINT256_MAX,
    V3SwapReverted,
    compute_swap_step,
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div,
    mul_div_rounding_up,
)

ticks = st.integers(min_value=MIN_TICK, max_value=MAX_TICK)
sqrt_prices = st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1)
uint256 = st.integers(min_value=0, max_value=UINT256_MAX)


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """sqrt(reserve1 / reserve0) as a Q64.96, rounded down (the v3-core tests' helper)."""
    return isqrt(reserve1 * 2**192 // reserve0)


# ------------------------------------------------------------------------------ TickMath
def test_given_tick_zero_when_getting_the_sqrt_ratio_then_it_is_one() -> None:
    assert get_sqrt_ratio_at_tick(0) == Q96
    assert get_tick_at_sqrt_ratio(Q96) == 0


def test_given_the_extreme_ticks_when_getting_the_sqrt_ratio_then_the_bounds_come_out() -> None:
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO) == MIN_TICK
    assert get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1) == MAX_TICK - 1


def test_given_a_tick_beyond_the_bounds_when_getting_the_ratio_then_it_reverts_t() -> None:
    for tick in (MIN_TICK - 1, MAX_TICK + 1):
        with pytest.raises(V3SwapReverted) as err:
            get_sqrt_ratio_at_tick(tick)
        assert err.value.reason == "T"


def test_given_a_price_outside_the_bounds_when_getting_the_tick_then_it_reverts_r() -> None:
    for price in (MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO):
        with pytest.raises(V3SwapReverted) as err:
            get_tick_at_sqrt_ratio(price)
        assert err.value.reason == "R"


@given(st.integers(min_value=MIN_TICK, max_value=MAX_TICK - 1))
def test_given_any_tick_when_round_tripping_through_its_ratio_then_the_tick_comes_back(tick: int) -> None:
    assert get_tick_at_sqrt_ratio(get_sqrt_ratio_at_tick(tick)) == tick


@given(sqrt_prices)
def test_given_any_price_when_getting_its_tick_then_the_tick_brackets_the_price(sqrt_price: int) -> None:
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    assert get_sqrt_ratio_at_tick(tick) <= sqrt_price < get_sqrt_ratio_at_tick(tick + 1)


@given(ticks)
def test_given_any_tick_when_getting_the_ratio_then_it_is_sqrt_1_0001_pow_tick_to_1e_minus_18(tick: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 80
        exact = Decimal(10001) / Decimal(10000)
        exact = (exact ** tick).sqrt() * Decimal(Q96)
        # Q128.128 products, inverted for positive ticks: at MAX_TICK the inverted ratio is only
        # ~2^64, so the relative error grows to ~1e-19 there; then one Q96 unit of rounding
        assert abs(get_sqrt_ratio_at_tick(tick) - exact) <= exact * Decimal("1e-18") + 1


@given(st.integers(min_value=MIN_TICK, max_value=MAX_TICK - 1))
def test_given_consecutive_ticks_when_getting_ratios_then_they_strictly_increase(tick: int) -> None:
    assert get_sqrt_ratio_at_tick(tick) < get_sqrt_ratio_at_tick(tick + 1)


# ------------------------------------------------------------------------------ FullMath
def test_given_a_zero_denominator_when_mul_div_then_it_reverts() -> None:
    with pytest.raises(V3SwapReverted):
        mul_div(1, 1, 0)


def test_given_a_result_above_uint256_when_mul_div_then_it_reverts() -> None:
    with pytest.raises(V3SwapReverted):
        mul_div(UINT256_MAX, UINT256_MAX, UINT256_MAX - 1)
    with pytest.raises(V3SwapReverted):
        mul_div_rounding_up(535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2)


def test_given_a_phantom_overflow_when_mul_div_then_the_full_precision_result_comes_out() -> None:
    # a * b needs 512 bits but the quotient fits: FullMath's reason to exist
    assert mul_div(UINT256_MAX, UINT256_MAX, UINT256_MAX) == UINT256_MAX
    assert mul_div(Q96 * 2**128, 50 * 2**128, 150 * 2**128) == Q96 * 2**128 // 3
    assert mul_div_rounding_up(Q96 * 2**128, 50 * 2**128, 150 * 2**128) == Q96 * 2**128 // 3 + 1


@given(uint256, uint256, st.integers(min_value=1, max_value=UINT256_MAX))
def test_given_any_operands_when_mul_div_then_it_floors_or_ceils_the_exact_ratio(a: int, b: int, d: int) -> None:
    exact = Fraction(a * b, d)
    assume(exact < UINT256_MAX)
    assert mul_div(a, b, d) == exact.__floor__()
    assert mul_div_rounding_up(a, b, d) == exact.__ceil__()


# ------------------------------------------------------------------------------ SqrtPriceMath
def test_given_the_core_test_vectors_when_moving_the_price_by_input_then_values_match() -> None:
    price_one = encode_price_sqrt(1, 1)
    # 0.1 token1 in at price 1, liquidity 1: sqrt price * 1.1, rounded down
    assert get_next_sqrt_price_from_input(price_one, 10**18, 10**17, False) == 87150978765690771352898345369
    # 0.1 token0 in: sqrt price / 1.1, rounded up
    assert get_next_sqrt_price_from_input(price_one, 10**18, 10**17, True) == 72025602285694852357767227579
    # zero amount leaves the price alone
    assert get_next_sqrt_price_from_input(price_one, 10**17, 0, True) == price_one
    assert get_next_sqrt_price_from_input(price_one, 10**17, 0, False) == price_one


def test_given_the_core_test_vectors_when_moving_the_price_by_output_then_values_match() -> None:
    price_one = encode_price_sqrt(1, 1)
    assert get_next_sqrt_price_from_output(price_one, 10**18, 10**17, False) == 88031291682515930659493278152
    assert get_next_sqrt_price_from_output(price_one, 10**18, 10**17, True) == 71305346262837903834189555302


def test_given_more_output_than_the_liquidity_holds_when_moving_the_price_then_it_reverts() -> None:
    with pytest.raises(V3SwapReverted):
        get_next_sqrt_price_from_output(20282409603651670423947251286016, 1024, 4, False)
    with pytest.raises(V3SwapReverted):
        get_next_sqrt_price_from_output(20282409603651670423947251286016, 1024, 262145, True)


def test_given_zero_liquidity_when_moving_the_price_then_it_reverts() -> None:
    with pytest.raises(V3SwapReverted):
        get_next_sqrt_price_from_input(Q96, 0, 1, True)


def test_given_price_one_to_1_21_when_getting_deltas_then_they_round_as_the_core_tests_say() -> None:
    low, high = encode_price_sqrt(1, 1), encode_price_sqrt(121, 100)
    assert get_amount0_delta(low, high, 10**18, True) == 90909090909090910
    assert get_amount0_delta(low, high, 10**18, False) == 90909090909090909
    assert get_amount1_delta(low, high, 10**18, True) == 100000000000000000
    assert get_amount1_delta(low, high, 10**18, False) == 99999999999999999
    assert get_amount0_delta(high, low, 10**18, True) == get_amount0_delta(low, high, 10**18, True)


@given(sqrt_prices, sqrt_prices, st.integers(min_value=0, max_value=2**128 - 1))
def test_given_any_prices_when_getting_deltas_then_they_bracket_the_exact_amounts(a: int, b: int, liquidity: int) -> None:
    low, high = sorted((a, b))
    exact0 = Fraction(liquidity * Q96 * (high - low), high * low)
    exact1 = Fraction(liquidity * (high - low), Q96)
    assert get_amount0_delta(low, high, liquidity, False) == exact0.__floor__()
    assert get_amount0_delta(low, high, liquidity, True) in (exact0.__ceil__(), exact0.__ceil__() + 1)
    assert get_amount1_delta(low, high, liquidity, False) == exact1.__floor__()
    assert get_amount1_delta(low, high, liquidity, True) == exact1.__ceil__()


# ------------------------------------------------------------------------------ SwapMath
@given(
    sqrt_prices,
    sqrt_prices,
    st.integers(min_value=1, max_value=2**128 - 1),
    st.integers(min_value=-(2**200), max_value=2**200).filter(bool),
    st.sampled_from((0, 100, 500, 3000, 10000, 999_999)),
)
def test_given_any_step_when_computed_then_it_respects_remaining_amount_and_target(
    current: int, target: int, liquidity: int, remaining: int, fee_pips: int
) -> None:
    try:
        price_next, amount_in, amount_out, fee = compute_swap_step(current, target, liquidity, remaining, fee_pips)
    except V3SwapReverted:
        return  # overflow checks of the contract (huge amounts at extreme prices)
    assert min(amount_in, amount_out, fee) >= 0
    low, high = sorted((current, target))
    assert low <= price_next <= high
    if remaining > 0:
        assert amount_in + fee <= remaining
    else:
        assert amount_out <= -remaining
    if price_next == current:
        assert amount_in == 0 and amount_out == 0


def tick_math_log2_tick(sqrt_price_x96: int) -> int:
    """TickMath.getTickAtSqrtRatio's own method (log2 by squaring, then the error bounds), as
    the contract computes it: the reference get_tick_at_sqrt_ratio's shortcut must agree with."""
    ratio = sqrt_price_x96 << 32
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)
    log_2 = (msb - 128) << 64
    for shift in range(63, 49, -1):
        r = (r * r) >> 127
        f = r >> 128
        log_2 |= f << shift
        r >>= f
    log_sqrt10001 = log_2 * 255738958999603826347141
    tick_low = (log_sqrt10001 - 3402992956809132418596140100660247210) >> 128
    tick_high = (log_sqrt10001 + 291339464771989622907027621153398088495) >> 128
    if tick_low == tick_high:
        return tick_low
    return tick_high if get_sqrt_ratio_at_tick(tick_high) <= sqrt_price_x96 else tick_low


@settings(max_examples=3000, deadline=None)
@given(sqrt_prices)
def test_given_any_sqrt_price_when_finding_its_tick_then_it_is_tick_maths_log2_answer(sqrt_price: int) -> None:
    assert get_tick_at_sqrt_ratio(sqrt_price) == tick_math_log2_tick(sqrt_price)


@settings(max_examples=1500, deadline=None)
@given(st.integers(min_value=MIN_TICK + 1, max_value=MAX_TICK - 1), st.integers(min_value=-2, max_value=1))
def test_given_a_price_at_a_tick_edge_when_finding_its_tick_then_it_is_tick_maths_log2_answer(tick: int, nudge: int) -> None:
    # Given a price on, just below or just above a tick's exact sqrt ratio (where a float estimate errs)
    price = get_sqrt_ratio_at_tick(tick) + nudge
    assume(MIN_SQRT_RATIO <= price < MAX_SQRT_RATIO)
    # Then the tick is the contract's
    assert get_tick_at_sqrt_ratio(price) == tick_math_log2_tick(price)


def reference_swap_step(current: int, target: int, liquidity: int, remaining: int, fee_pips: int) -> tuple[int, int, int, int]:
    """SwapMath.computeSwapStep line for line on the public (either-order) amount functions: the
    reference the swap loop's ordered shortcut must equal."""
    zero_for_one, exact_in = current >= target, remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        less_fee = mul_div(remaining, 10**6 - fee_pips, 10**6)
        amount_in = (get_amount0_delta(target, current, liquidity, True) if zero_for_one
                     else get_amount1_delta(current, target, liquidity, True))
        nxt = target if less_fee >= amount_in else get_next_sqrt_price_from_input(current, liquidity, less_fee, zero_for_one)
    else:
        amount_out = (get_amount1_delta(target, current, liquidity, False) if zero_for_one
                      else get_amount0_delta(current, target, liquidity, False))
        nxt = target if -remaining >= amount_out else get_next_sqrt_price_from_output(current, liquidity, -remaining, zero_for_one)
    reached = nxt == target
    if not (reached and exact_in):
        amount_in = (get_amount0_delta(nxt, current, liquidity, True) if zero_for_one
                     else get_amount1_delta(current, nxt, liquidity, True))
    if not (reached and not exact_in):
        amount_out = (get_amount1_delta(nxt, current, liquidity, False) if zero_for_one
                      else get_amount0_delta(current, nxt, liquidity, False))
    if not exact_in and amount_out > -remaining:
        amount_out = -remaining
    fee = remaining - amount_in if exact_in and not reached else mul_div_rounding_up(amount_in, fee_pips, 10**6 - fee_pips)
    return nxt, amount_in, amount_out, fee


@settings(max_examples=2000, deadline=None)
@given(
    sqrt_prices,
    sqrt_prices,
    st.integers(min_value=1, max_value=2**128 - 1),
    st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=-(2**255), max_value=2**255)).filter(bool),
    st.sampled_from((0, 100, 500, 3000, 10000, 999_999)),
)
def test_given_any_step_when_computed_then_it_equals_swap_maths_reference_reverts_included(
    current: int, target: int, liquidity: int, remaining: int, fee_pips: int
) -> None:
    try:
        expected: tuple[int, int, int, int] | str = reference_swap_step(current, target, liquidity, remaining, fee_pips)
    except V3SwapReverted as exc:
        expected = exc.reason
    try:
        got: tuple[int, int, int, int] | str = compute_swap_step(current, target, liquidity, remaining, fee_pips)
    except V3SwapReverted as exc:
        got = exc.reason
    assert got == expected
