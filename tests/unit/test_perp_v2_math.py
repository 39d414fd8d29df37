"""Perp v2 trade quotes, exact: chain-verified values on the devnet's vETH pool, fee scaling,
and properties of opens and closes from varied prices."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keeper.errors import SkipOpportunity
from keeper.venues.perp_v2_math import (
    PerpPriceBand,
    PerpSwapReverted,
    quote_perp_close,
    quote_perp_open,
    replace_fee_ratio,
    scale_amount_by_fee_ratio,
    scaled_pool_amount,
)
from keeper.venues.uniswap_v3_libraries import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from keeper.venues.uniswap_v3_math import V3PoolState

ETH = 10**18
USD = 10**18  # vUSD has 18 decimals
FEE_PPM = 1000  # MarketRegistry feeRatio on the devnet
INSURANCE_PPM = 100_000
MAKER_RANGES = ((76500, 83700, 133138987157080457173630), (79500, 80580, 1235004651036457864977350))
WINDOW = (15360, 153540)  # tickBitmap words 1..9 at spacing 60


def perp_pool(sqrt_price_x96: int = 4339505179874779489431521786241, tick: int | None = None) -> V3PoolState:
    """The devnet's vETH/vUSD pool (maker ranges as deployed), at any price."""
    tick = get_tick_at_sqrt_ratio(sqrt_price_x96) if tick is None else tick
    net: dict[int, int] = {}
    active = 0
    for lower, upper, liquidity in MAKER_RANGES:
        net[lower], net[upper] = liquidity, -liquidity
        active += liquidity if lower <= tick < upper else 0
    return V3PoolState(sqrt_price_x96, tick, active, 3000, 60, net, WINDOW)


def open_(pool: V3PoolState, short: bool, exact_input: bool, amount: int, limit: int = 0, band: PerpPriceBand | None = None):
    return quote_perp_open(pool, FEE_PPM, short, exact_input, amount, limit,
                           insurance_fund_fee_ratio_ppm=INSURANCE_PPM, price_band=band)


# ------------------------------------------------------------------------------ known values
@pytest.mark.parametrize(
    ("short", "exact_input", "amount", "base", "quote"),
    [
        (True, True, ETH, ETH, 2996880022919752995530),
        (True, False, 3000 * USD, 1001041116791987985, 3000 * USD),
        (False, True, 3000 * USD, 998960047630678358, 3000 * USD),
        (False, False, ETH, ETH, 3003123230023772814218),
    ],
    ids=["short-exact-base", "short-exact-quote", "long-exact-quote", "long-exact-base"],
)
def test_given_the_devnet_pool_when_opening_then_base_and_quote_equal_what_clearinghouse_returned(
    short: bool, exact_input: bool, amount: int, base: int, quote: int
) -> None:
    # (base, quote) as ClearingHouse.openPosition returned them (eth_call) on the prebuilt devnet
    q = open_(perp_pool(), short, exact_input, amount)
    assert (q.base_abs_raw, q.quote_abs_raw) == (base, quote)


def test_given_a_short_of_one_eth_when_quoting_then_the_fee_is_taken_from_the_proceeds() -> None:
    q = open_(perp_pool(), True, True, ETH)
    assert q.base_delta_raw == -ETH
    assert q.fee_quote_raw == 2999879902822575572  # ceil(0.1% of the gross quote out)
    assert q.quote_delta_raw == q.exchanged_notional_raw - q.fee_quote_raw
    assert q.insurance_fund_fee_quote_raw == -(-q.fee_quote_raw // 10)


def test_given_fee_ratios_when_scaling_amounts_then_rounding_follows_swapmath() -> None:
    assert scale_amount_by_fee_ratio(ETH, 3000, True) == 1003009027081243732  # ceil(1e18 / 0.997)
    assert scale_amount_by_fee_ratio(ETH, 3000, False) == 997 * 10**15
    assert replace_fee_ratio(ETH, 3000, 1000) == 1002006018054162488  # ceil(1e18 * 0.999 / 0.997)
    # the pool gets: short exact base -> base / (1 - uniswap fee); short exact quote -> quote /
    # (1 - exchange fee); long exact quote -> quote with the fee replaced; long exact base -> as is
    assert scaled_pool_amount(True, True, ETH, 1000, 3000) == 1003009027081243732
    assert scaled_pool_amount(True, False, ETH, 1000, 3000) == -(-ETH * 10**6 // 999000)
    assert scaled_pool_amount(False, True, ETH, 1000, 3000) == 1002006018054162488
    assert scaled_pool_amount(False, False, ETH, 1000, 3000) == ETH


# ------------------------------------------------------------------------------ properties
starting_ticks = st.integers(min_value=79500, max_value=80579)  # inside the deep maker range
base_amounts = st.integers(min_value=10**9, max_value=300 * ETH)
quote_amounts = st.integers(min_value=10**12, max_value=900_000 * USD)
perp_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pools_at_varied_prices(draw: st.DrawFn) -> V3PoolState:
    tick = draw(starting_ticks)
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    return perp_pool(draw(st.integers(min_value=low, max_value=high - 1)))


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), st.booleans(), st.data())
def test_given_any_open_when_quoted_then_the_specified_side_is_exact_and_signs_follow_the_side(
    pool: V3PoolState, short: bool, exact_input: bool, data: st.DataObject
) -> None:
    amount = data.draw(base_amounts if short == exact_input else quote_amounts)
    q = open_(pool, short, exact_input, amount)
    if short:
        assert q.base_delta_raw < 0 < q.quote_delta_raw
        assert q.sqrt_price_after_x96 < pool.sqrt_price_x96
    else:
        assert q.quote_delta_raw < 0 < q.base_delta_raw
        assert q.sqrt_price_after_x96 > pool.sqrt_price_x96
    if short and exact_input:
        assert q.base_delta_raw == -amount
    elif short:
        # quote out = pool output / (1 - fee) less the fee summed per step (each rounded up)
        assert amount - 4 <= q.quote_delta_raw <= amount + 1
    elif exact_input:
        assert q.quote_delta_raw == -amount
    else:
        assert q.base_delta_raw == amount
    assert q.fee_quote_raw > 0 and 0 < q.insurance_fund_fee_quote_raw <= q.fee_quote_raw


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), st.booleans(), st.data())
def test_given_any_open_when_quoted_then_the_fee_is_the_exchange_ratio_of_the_notional(
    pool: V3PoolState, short: bool, exact_input: bool, data: st.DataObject
) -> None:
    amount = data.draw(base_amounts if short == exact_input else quote_amounts)
    q = open_(pool, short, exact_input, amount)
    notional = abs(q.exchanged_notional_raw)
    # a short pays the fee out of its proceeds (fee = r * notional); a long pays it on top of
    # the notional it buys (fee = r / (1 - r) * notional); each step rounds up by < 1 wei
    expected = Fraction(notional * FEE_PPM, 10**6 if short else 10**6 - FEE_PPM)
    assert abs(q.fee_quote_raw - expected) <= 4
    assert abs(q.insurance_fund_fee_quote_raw - Fraction(q.fee_quote_raw, 10)) <= 4


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), st.booleans(), st.data())
def test_given_a_larger_order_when_quoted_then_base_quote_and_price_move_do_not_shrink(
    pool: V3PoolState, short: bool, exact_input: bool, data: st.DataObject
) -> None:
    amounts = base_amounts if short == exact_input else quote_amounts
    small, large = sorted((data.draw(amounts), data.draw(amounts)))
    q_small, q_large = open_(pool, short, exact_input, small), open_(pool, short, exact_input, large)
    assert q_small.base_abs_raw <= q_large.base_abs_raw
    assert q_small.quote_abs_raw <= q_large.quote_abs_raw
    assert q_small.fee_quote_raw <= q_large.fee_quote_raw
    moved = abs(q_small.sqrt_price_after_x96 - pool.sqrt_price_x96), abs(q_large.sqrt_price_after_x96 - pool.sqrt_price_x96)
    assert moved[0] <= moved[1]


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), base_amounts)
def test_given_an_open_position_when_closing_it_then_the_size_returns_to_zero_and_fees_are_paid_twice(
    pool: V3PoolState, long: bool, size: int
) -> None:
    # both trades in one block: the band stays centred on the tick before the open
    band = PerpPriceBand.refreshed(pool.tick, 1000)
    try:
        opened = open_(pool, not long, not long, size, band=band)  # long: exact base out; short: exact base in
    except PerpSwapReverted:
        assume(False)  # the open alone would leave the band (thin liquidity below tick 79500)
    assert opened.base_delta_raw == (size if long else -size)
    after = opened.pool_after(pool)
    closed = quote_perp_close(after, FEE_PPM, opened.base_delta_raw, band, insurance_fund_fee_ratio_ppm=INSURANCE_PPM)
    assert not closed.is_partial_close
    assert opened.base_delta_raw + closed.base_delta_raw == 0
    # the round trip costs about the two fees: the price impact comes back on the way out
    cost = -(opened.quote_delta_raw + closed.quote_delta_raw)
    fees = opened.fee_quote_raw + closed.fee_quote_raw
    assert fees <= cost <= fees * 1.01 + 10**6


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), st.integers(min_value=10, max_value=60))
def test_given_a_tight_band_when_closing_a_large_position_then_the_close_is_partial_at_the_band_edge(
    pool: V3PoolState, long: bool, band_ticks: int
) -> None:
    band = PerpPriceBand(pool.tick, band_ticks)
    size = 500 * ETH
    edge = pool.tick - band_ticks if long else pool.tick + band_ticks
    try:
        closed = quote_perp_close(pool, FEE_PPM, size if long else -size, band,
                                  insurance_fund_fee_ratio_ppm=INSURANCE_PPM)
    except PerpSwapReverted as err:
        # Selling down onto an edge that is also a step boundary (an initialized tick, or the
        # first tick of a bitmap word) leaves the pool's tick at edge - 1: outside the band, so
        # the contract reverts its own close.
        assert err.reason == "EX_OPLAS"
        assert long and (edge in pool.liquidity_net_by_tick or (edge // 60) % 256 == 0)
        return
    assert closed.is_partial_close
    assert 0 < closed.base_abs_raw < size
    assert closed.sqrt_price_after_x96 == get_sqrt_ratio_at_tick(edge)
    assert band.contains(closed.tick_after)


@perp_settings
@given(pools_at_varied_prices(), st.booleans(), st.integers(min_value=1, max_value=200))
def test_given_a_band_when_an_open_would_end_beyond_it_then_it_reverts_ex_oplas(
    pool: V3PoolState, short: bool, band_ticks: int
) -> None:
    band = PerpPriceBand(pool.tick, band_ticks)
    amount = 400 * ETH if short else 1_000_000 * USD
    q = open_(pool, short, True, amount)
    assume(not band.contains(q.tick_after))
    with pytest.raises(PerpSwapReverted) as err:
        open_(pool, short, True, amount, band=band)
    assert err.value.reason == "EX_OPLAS"
    assert isinstance(err.value, SkipOpportunity)


def test_given_a_price_limit_when_opening_then_the_trade_stops_there_and_is_smaller() -> None:
    pool = perp_pool()
    limit = get_sqrt_ratio_at_tick(pool.tick + 100)
    limited = open_(pool, False, True, 1_000_000 * USD, limit)
    free = open_(pool, False, True, 1_000_000 * USD)
    assert limited.sqrt_price_after_x96 == limit
    assert limited.base_abs_raw < free.base_abs_raw
    assert limited.quote_abs_raw < 1_000_000 * USD


def test_given_an_exact_output_beyond_the_liquidity_when_quoting_then_it_does_not_invent_a_number() -> None:
    with pytest.raises(SkipOpportunity):
        open_(perp_pool(), False, False, 10_000 * ETH)


def test_given_no_position_when_closing_then_it_reverts_ch_psz() -> None:
    with pytest.raises(PerpSwapReverted) as err:
        quote_perp_close(perp_pool(), FEE_PPM, 0, PerpPriceBand(80067, 1000))
    assert err.value.reason == "CH_PSZ"


def test_given_a_band_when_computing_the_closing_limit_then_the_tighter_limit_wins() -> None:
    band = PerpPriceBand(80000, 1000)
    lower_edge, upper_edge = get_sqrt_ratio_at_tick(79000), get_sqrt_ratio_at_tick(81000)
    # selling base (closing a long) moves the price down to the band's lower edge at most;
    # buying base back (closing a short) up to its upper edge
    assert band.closing_sqrt_price_limit_x96(True, 0) == lower_edge
    assert band.closing_sqrt_price_limit_x96(False, 0) == upper_edge
    assert band.closing_sqrt_price_limit_x96(True, lower_edge + 1) == lower_edge + 1
    assert band.closing_sqrt_price_limit_x96(True, lower_edge - 1) == lower_edge
    assert band.closing_sqrt_price_limit_x96(False, upper_edge - 1) == upper_edge - 1
    assert band.closing_sqrt_price_limit_x96(False, upper_edge + 1) == upper_edge
