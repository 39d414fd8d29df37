"""Uniswap V3 swaps, exact: the pool state and the swap loop, checked against exact rational
references, properties on generated pools and worked cases (the libraries' math beneath them:
test_uniswap_v3_libraries.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keeper.errors import SkipOpportunity
from keeper.venues.uniswap_v3_libraries import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    V3SwapReverted,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div_rounding_up,
)
from keeper.venues.uniswap_v3_math import (
    QuoteOutOfRange,
    V3PoolState,
    compute_v3_swap,
    quote_v3_exact_in,
    quote_v3_exact_out,
    with_exact_output_fee,
)

SPACINGS = (1, 10, 60, 200)


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


def test_moved_to_is_the_constructors_state_with_the_new_head_and_checks_the_new_liquidity() -> None:
    pool = V3PoolState(2**96, 0, 10**18, 3000, 60, {-120: 5, 60: -5}, (-15360, 15299))
    moved = pool.moved_to(2**96 + 7, 3, 10**17)
    built = V3PoolState(2**96 + 7, 3, 10**17, 3000, 60, {-120: 5, 60: -5}, (-15360, 15299))
    assert moved == built and list(moved.__dict__) == list(built.__dict__)
    assert moved._compressed_ticks == built._compressed_ticks == (-2, 1)
    assert moved.liquidity_net_by_tick is pool.liquidity_net_by_tick  # the same read-only map
    assert (pool.sqrt_price_x96, pool.tick, pool.liquidity) == (2**96, 0, 10**18)  # the original is unchanged
    with pytest.raises(ValueError, match="uint128"):
        pool.moved_to(2**96, 0, 2**128)
