"""Uniswap V3 math, exact: TickMath, FullMath, SqrtPriceMath, SwapMath and the swap loop, checked
against known values, exact rational references and properties on generated pools."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from math import isqrt

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keeper.errors import SkipOpportunity
from keeper.venues.uniswap_v3_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    UINT256_MAX,
    QuoteOutOfRange,
    V3PoolState,
    V3SwapReverted,
    compute_swap_step,
    compute_v3_swap,
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div,
    mul_div_rounding_up,
    quote_v3_exact_in,
    quote_v3_exact_out,
    with_exact_output_fee,
)

ticks = st.integers(min_value=MIN_TICK, max_value=MAX_TICK)
sqrt_prices = st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1)
uint256 = st.integers(min_value=0, max_value=UINT256_MAX)
SPACINGS = (1, 10, 60, 200)


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


# ------------------------------------------------------------------------------ pools
def full_range(spacing: int) -> tuple[int, int]:
    return -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing


def make_pool(spacing: int, sqrt_price: int, positions: list[tuple[int, int, int]], fee_pips: int = 3000,
              window: tuple[int, int] | None = None, tick: int | None = None) -> V3PoolState:
    """A pool holding these (lower, upper, liquidity) positions, its active liquidity derived."""
    tick = get_tick_at_sqrt_ratio(sqrt_price) if tick is None else tick
    net: dict[int, int] = {}
    active = 0
    for lower, upper, liquidity in positions:
        net[lower] = net.get(lower, 0) + liquidity
        net[upper] = net.get(upper, 0) - liquidity
        if lower <= tick < upper:
            active += liquidity
    net = {t: n for t, n in net.items() if n != 0}
    if window is None:
        window = ((MIN_TICK // spacing >> 8) * 256 * spacing, ((MAX_TICK // spacing >> 8) * 256 + 255) * spacing)
    return V3PoolState(sqrt_price, tick, active, fee_pips, spacing, net, window)


@st.composite
def pools(draw: st.DrawFn) -> V3PoolState:
    spacing = draw(st.sampled_from(SPACINGS))
    center = draw(st.integers(min_value=-300_000, max_value=300_000))
    sqrt_price = draw(st.integers(min_value=get_sqrt_ratio_at_tick(center), max_value=get_sqrt_ratio_at_tick(center + 1) - 1))
    lo_full, hi_full = full_range(spacing)
    positions = [(lo_full, hi_full, draw(st.integers(min_value=10**12, max_value=10**24)))]
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        a = draw(st.integers(min_value=-400, max_value=400))
        width = draw(st.integers(min_value=1, max_value=400))
        lower = (center // spacing + a) * spacing
        positions.append((lower, lower + width * spacing, draw(st.integers(min_value=1, max_value=10**25))))
    fee = draw(st.sampled_from((100, 500, 3000, 10000)))
    return make_pool(spacing, sqrt_price, positions, fee)


def active_liquidity_at(pool: V3PoolState, tick: int, start_liquidity: int) -> int:
    """Liquidity at `tick` rebuilt from liquidityNet: independent of the swap loop."""
    liquidity = start_liquidity
    for t, net in pool.liquidity_net_by_tick.items():
        if pool.tick < t <= tick:
            liquidity += net
        elif tick < t <= pool.tick:
            liquidity -= net
    return liquidity


amounts_raw = st.integers(min_value=1, max_value=10**27)
pool_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ideal_exact_in_output(pool: V3PoolState, zero_for_one: bool, amount_in: int) -> Fraction:
    """Output with no rounding at all: the fee as an exact fraction, ranges walked by rationals."""
    remaining = Fraction(amount_in) * (10**6 - pool.fee_pips) / 10**6
    price = Fraction(pool.sqrt_price_x96, Q96)
    liquidity = pool.liquidity
    boundaries = sorted(pool.liquidity_net_by_tick)
    if zero_for_one:
        boundaries = [t for t in reversed(boundaries) if t <= pool.tick] + [MIN_TICK]
    else:
        boundaries = [t for t in boundaries if t > pool.tick] + [MAX_TICK]
    out = Fraction(0)
    for t in boundaries:
        edge = Fraction(get_sqrt_ratio_at_tick(t), Q96)
        if liquidity:
            need = liquidity * (1 / edge - 1 / price) if zero_for_one else liquidity * (edge - price)
            if need >= remaining:
                new_price = 1 / (1 / price + remaining / liquidity) if zero_for_one else price + remaining / liquidity
                return out + (liquidity * (price - new_price) if zero_for_one else liquidity * (1 / price - 1 / new_price))
            out += liquidity * (price - edge) if zero_for_one else liquidity * (1 / price - 1 / edge)
            remaining -= need
        price = edge
        if t in pool.liquidity_net_by_tick:
            liquidity += -pool.liquidity_net_by_tick[t] if zero_for_one else pool.liquidity_net_by_tick[t]
    return out


@pool_settings
@given(pools(), st.booleans(), amounts_raw)
def test_given_any_pool_when_swapping_exact_in_then_amounts_and_state_are_consistent(
    pool: V3PoolState, zero_for_one: bool, amount_in: int
) -> None:
    q = quote_v3_exact_in(pool, zero_for_one, amount_in)
    # amounts never negative, and the whole input is used unless the price hit the extreme
    assert q.amount_in_raw >= 0 and q.amount_out_raw >= 0 and q.fee_paid_raw >= 0
    assert q.amount_in_raw <= amount_in
    extreme = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    assert q.amount_in_raw == amount_in or q.sqrt_price_after_x96 == extreme
    # the pool's signed deltas: input paid in, output paid out
    assert (q.amount0_delta_raw, q.amount1_delta_raw) == (
        (q.amount_in_raw, -q.amount_out_raw) if zero_for_one else (-q.amount_out_raw, q.amount_in_raw))
    # the price moved the right way and the tick brackets it
    before = pool.sqrt_price_x96
    assert (q.sqrt_price_after_x96 <= before) if zero_for_one else (q.sqrt_price_after_x96 >= before)
    assert get_sqrt_ratio_at_tick(q.tick_after) <= q.sqrt_price_after_x96 <= get_sqrt_ratio_at_tick(q.tick_after + 1)
    # the active liquidity after equals the one rebuilt from liquidityNet at the final tick
    assert q.liquidity_after == active_liquidity_at(pool, q.tick_after, pool.liquidity)
    assert q.initialized_ticks_crossed == sum(s.crossed_initialized_tick for s in q.steps)
    # never more than the rounding-free answer, and short of it by no more than a few input
    # units per step (converted at the worst price of the swap) and a tiny relative error
    if q.amount_in_raw == amount_in:
        ideal = ideal_exact_in_output(pool, zero_for_one, amount_in)
        assert q.amount_out_raw <= ideal
        prices = (Fraction(pool.sqrt_price_x96, Q96) ** 2, Fraction(q.sqrt_price_after_x96, Q96) ** 2)
        out_per_in = max(prices) if zero_for_one else 1 / min(prices)
        slack = (2 * len(q.steps) + 2) * max(1, out_per_in) + ideal / 10**12
        assert q.amount_out_raw >= ideal - slack


@pool_settings
@given(pools(), st.booleans(), amounts_raw)
def test_given_an_exact_in_quote_when_asking_its_output_exactly_then_no_more_input_is_needed(
    pool: V3PoolState, zero_for_one: bool, amount_in: int
) -> None:
    forward = quote_v3_exact_in(pool, zero_for_one, amount_in)
    assume(forward.amount_out_raw > 0 and forward.amount_in_raw == amount_in)
    backward = quote_v3_exact_out(pool, zero_for_one, forward.amount_out_raw)
    assert backward.amount_out_raw == forward.amount_out_raw
    if backward.amount_in_raw > amount_in:
        # The one way exact output costs more: the rest of forward's last step is worth less
        # than one unit of output, so the floored output of the whole step already equals
        # what is left to deliver, and the pool runs that step to its end (and charges it).
        last = backward.steps[-1]
        assert last.sqrt_price_end_x96 == get_sqrt_ratio_at_tick(last.tick_next)
        low, high = sorted((last.sqrt_price_start_x96, last.sqrt_price_end_x96))
        assert low < forward.sqrt_price_after_x96 < high
    # and paying what exact-output asked buys at least that output
    again = quote_v3_exact_in(pool, zero_for_one, backward.amount_in_raw)
    assert again.amount_out_raw >= forward.amount_out_raw


@pool_settings
@given(pools(), st.booleans(), amounts_raw, amounts_raw)
def test_given_more_input_when_swapping_then_output_and_price_move_do_not_decrease(
    pool: V3PoolState, zero_for_one: bool, a: int, b: int
) -> None:
    small, large = sorted((a, b))
    q_small = quote_v3_exact_in(pool, zero_for_one, small)
    q_large = quote_v3_exact_in(pool, zero_for_one, large)
    assert q_small.amount_out_raw <= q_large.amount_out_raw
    if zero_for_one:
        assert q_large.sqrt_price_after_x96 <= q_small.sqrt_price_after_x96
    else:
        assert q_large.sqrt_price_after_x96 >= q_small.sqrt_price_after_x96


@pool_settings
@given(pools(), st.booleans(), st.booleans(), amounts_raw, st.integers(min_value=1, max_value=2000))
def test_given_a_price_limit_when_swapping_then_the_price_stops_there_or_the_swap_is_unchanged(
    pool: V3PoolState, zero_for_one: bool, exact_input: bool, amount: int, limit_ticks: int
) -> None:
    limit_tick = pool.tick - limit_ticks if zero_for_one else pool.tick + limit_ticks
    limit = get_sqrt_ratio_at_tick(max(MIN_TICK + 1, min(MAX_TICK - 1, limit_tick)))
    assume(limit < pool.sqrt_price_x96 if zero_for_one else limit > pool.sqrt_price_x96)
    specified = amount if exact_input else -amount
    limited = compute_v3_swap(pool, zero_for_one, specified, limit)
    free = compute_v3_swap(pool, zero_for_one, specified)
    assert (limited.sqrt_price_after_x96 >= limit) if zero_for_one else (limited.sqrt_price_after_x96 <= limit)
    if (free.sqrt_price_after_x96 > limit) if zero_for_one else (free.sqrt_price_after_x96 < limit):
        # the limit never binds: the swap is the same, step for step
        assert (limited.amount_in_raw, limited.amount_out_raw, limited.sqrt_price_after_x96, limited.tick_after,
                limited.liquidity_after) == (free.amount_in_raw, free.amount_out_raw, free.sqrt_price_after_x96,
                                             free.tick_after, free.liquidity_after)
    else:
        assert limited.sqrt_price_after_x96 == limit
        assert limited.amount_in_raw <= free.amount_in_raw and limited.amount_out_raw <= free.amount_out_raw


@pool_settings
@given(pools(), st.booleans(), amounts_raw)
def test_given_an_exact_out_swap_when_quoted_then_it_delivers_exactly_the_output(
    pool: V3PoolState, zero_for_one: bool, amount_out: int
) -> None:
    q = quote_v3_exact_out(pool, zero_for_one, amount_out)
    extreme = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    assert q.amount_out_raw == amount_out or q.sqrt_price_after_x96 == extreme
    assert q.amount_in_raw > 0
    assert q.liquidity_after == active_liquidity_at(pool, q.tick_after, pool.liquidity)


# ------------------------------------------------------------------------------ swap: worked cases
def two_range_pool(window: tuple[int, int] | None = None) -> V3PoolState:
    # spacing 60, price 1.0: a wide range plus a narrow one at [-600, 600)
    return make_pool(60, Q96, [(-6000, 6000, 10**20), (-600, 600, 9 * 10**20)], 3000, window)


def test_given_a_narrow_range_when_swapping_through_its_edge_then_one_tick_is_crossed_and_liquidity_drops() -> None:
    pool = two_range_pool()
    assert pool.liquidity == 10**21
    q = quote_v3_exact_in(pool, False, 5 * 10**19)
    assert q.initialized_ticks_crossed == 1
    assert q.liquidity_after == 10**20
    assert q.tick_after > 600


def test_given_a_zero_for_one_swap_ending_on_a_tick_when_quoted_then_tick_is_one_below_it() -> None:
    pool = two_range_pool()
    limit = get_sqrt_ratio_at_tick(-600)
    q = quote_v3_exact_in(pool, True, 10**24, limit)
    # stopped at the limit, which is exactly the initialized tick -600: crossed, so tick is -601
    assert q.sqrt_price_after_x96 == limit
    assert q.tick_after == -601
    assert q.initialized_ticks_crossed == 1
    assert q.liquidity_after == 10**20


def test_given_an_exact_out_swap_when_quoted_then_the_fee_is_rounded_up_on_top_of_the_input() -> None:
    pool = two_range_pool()
    q = quote_v3_exact_out(pool, True, 10**18)
    for step in q.steps:
        assert step.fee_amount_raw == mul_div_rounding_up(step.amount_in_raw, 3000, 10**6 - 3000)
    assert q.amount_in_raw == sum(s.amount_in_raw + s.fee_amount_raw for s in q.steps)
    assert q.fee_paid_raw > 0


def test_given_the_price_exactly_on_a_word_edge_when_swapping_down_then_a_zero_step_moves_the_tick() -> None:
    # At price 1.0 (tick 0, the first tick of bitmap word 0) the pool's first step targets
    # tick 0 itself: nothing is swapped, and the tick becomes -1 before the real step.
    q = quote_v3_exact_out(two_range_pool(), True, 10**18)
    first = q.steps[0]
    assert (first.amount_in_raw, first.amount_out_raw, first.tick_next) == (0, 0, 0)
    assert len(q.steps) == 2


def test_given_a_swap_that_leaves_the_window_when_quoted_then_it_refuses_and_a_wider_window_answers() -> None:
    spacing = 60
    narrow = ((-1) * 256 * spacing, 256 * spacing - 1)  # words -1 and 0
    pool = make_pool(spacing, Q96, [(-6000, 6000, 10**20), (-600, 600, 9 * 10**20)], 3000, narrow)
    small = quote_v3_exact_in(pool, False, 10**18)
    with pytest.raises(QuoteOutOfRange) as err:
        quote_v3_exact_in(pool, False, 10**24)
    assert isinstance(err.value, SkipOpportunity)
    assert err.value.needed_tick > narrow[1]
    wide = two_range_pool()
    assert quote_v3_exact_in(wide, False, 10**18) == small
    assert quote_v3_exact_in(wide, False, 10**24).amount_out_raw > 0


@given(pools(), st.booleans(), amounts_raw, st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=3))
@settings(max_examples=100, deadline=None)
def test_given_any_window_when_quoting_then_the_answer_is_the_full_bitmap_answer_or_a_refusal(
    pool: V3PoolState, zero_for_one: bool, amount: int, words_below: int, words_above: int
) -> None:
    spacing = pool.tick_spacing
    word = (pool.tick // spacing) >> 8
    window = ((word - words_below) * 256 * spacing, ((word + words_above) * 256 + 255) * spacing)
    inside = {t: n for t, n in pool.liquidity_net_by_tick.items() if window[0] <= t <= window[1]}
    narrow = V3PoolState(pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.fee_pips, spacing, inside, window)
    full = compute_v3_swap(pool, zero_for_one, amount)
    try:
        assert compute_v3_swap(narrow, zero_for_one, amount) == full
    except QuoteOutOfRange:
        pass


def test_given_an_invalid_limit_when_swapping_then_it_reverts_spl() -> None:
    pool = two_range_pool()
    with pytest.raises(V3SwapReverted) as err:
        quote_v3_exact_in(pool, True, 10**18, get_sqrt_ratio_at_tick(10))
    assert err.value.reason == "SPL"
    with pytest.raises(V3SwapReverted):
        compute_v3_swap(pool, True, 0)


def test_given_a_malformed_pool_when_building_it_then_it_is_refused() -> None:
    with pytest.raises(ValueError):
        V3PoolState(Q96, 0, 1, 3000, 60, {61: 1}, (-1000, 1000))  # off the spacing
    with pytest.raises(ValueError):
        V3PoolState(Q96, 0, 1, 3000, 60, {1200: 1}, (-1000, 1000))  # outside the window


@pool_settings
@given(pools(), st.booleans(), amounts_raw, st.sampled_from((0, 100, 500, 1000, 3000, 10000, 250_000)))
def test_given_an_exact_output_swap_when_its_fee_is_replaced_then_it_equals_the_swap_run_with_that_fee(
    pool: V3PoolState, zero_for_one: bool, amount_out: int, other_fee_pips: int
) -> None:
    # Given an exact-output swap quoted with the pool's fee (a price limit half the time)
    limit = 0 if amount_out % 2 else get_sqrt_ratio_at_tick(pool.tick + (-3000 if zero_for_one else 3000))
    try:
        direct = compute_v3_swap(pool, zero_for_one, -amount_out, limit, fee_pips=other_fee_pips)
    except SkipOpportunity:
        assume(False)
    # When the same swap's fee is replaced, then it is the swap run with the other fee, field for field
    assert with_exact_output_fee(compute_v3_swap(pool, zero_for_one, -amount_out, limit), other_fee_pips) == direct


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


def test_given_one_tick_map_reused_when_building_states_then_each_checks_and_holds_its_contents() -> None:
    # Given a caller that builds states from one dict, changing it in between (as a collector may)
    net = {-600: 10**20, 600: -(10**20)}
    window = (-256 * 60, 256 * 60 - 1)
    first = V3PoolState(Q96, 0, 10**20, 3000, 60, net, window)
    net[1200] = 5
    second = V3PoolState(Q96, 0, 10**20, 3000, 60, net, window)
    # Then each state holds the contents it was built from, read-only
    assert dict(first.liquidity_net_by_tick) == {-600: 10**20, 600: -(10**20)}
    assert dict(second.liquidity_net_by_tick) == net and second._compressed_ticks == (-10, 10, 20)
    with pytest.raises(TypeError):
        second.liquidity_net_by_tick[0] = 1  # type: ignore[index]
    # and the checks still apply to a map seen before, against the new spacing and window
    with pytest.raises(ValueError, match="not a multiple of the spacing"):
        V3PoolState(Q96, 0, 10**20, 3000, 400, net, window)
    with pytest.raises(ValueError, match="outside tick_window"):
        V3PoolState(Q96, 0, 10**20, 3000, 60, net, (-60, 60))
