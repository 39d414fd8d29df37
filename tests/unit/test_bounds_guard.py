"""The planner refuses bounds that protect nothing: a 1-wei perp bound against a fill of thousands,
a zero minimum out, an unlimited maximum in, a residual bound as large as the trade; bounds from
compute_bounds at any configurable slippage pass."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keeper.bounds_guard import UnprotectiveBounds, check_protective_bounds
from keeper.quote_bounds import compute_bounds
from keeper.quotes import BasisTradeQuote, PerpLegQuote, SpotLegQuote
from keeper.types import Direction, PredictedFills
from keeper.venues.perp_v2_math import PerpPriceBand

ONE = 10**18
WETH = "0x" + "11" * 20


def short_open_quote(venue_exact_input: bool = False) -> BasisTradeQuote:
    """Short 2 vETH (exact base in) for 5,994 quote after the fee; buy 2 WETH for 5,990 USDC."""
    perp = PerpLegQuote(
        base_token=WETH, is_close=False, is_base_to_quote=True, is_exact_input=True, amount_x18=2 * ONE,
        base_delta_x18=-2 * ONE, quote_delta_x18=5_994 * ONE, exchanged_notional_x18=6_000 * ONE, fee_x18=6 * ONE,
        is_partial_close=False, sqrt_price_after_x96=0, tick_after=0, mid_price_x18=3_000 * ONE,
        mid_price_usd=3_000.0, fee_usd=6.0, impact_usd=0.0)
    spot = SpotLegQuote(
        venue="uniswap_v3", is_buy=True, is_exact_input=venue_exact_input,
        amount_raw=5_990 * 10**6 if venue_exact_input else 2 * ONE, spot_delta_raw=2 * ONE,
        usdc_delta_raw=-5_990 * 10**6, pool_fee_raw=0, pool_fee_in_usdc=True, mid_price_usd=2_995.0, fee_usd=0.0,
        impact_usd=0.0)
    fills = PredictedFills(-2 * ONE, 5_994 * ONE, 2 * ONE, -5_990 * 10**6, 0, 4 * ONE)
    return BasisTradeQuote("ETH", "open", Direction.SHORT_PERP, "uniswap_v3", 18, perp, spot, fills,
                           PerpPriceBand.refreshed(0, 1_000))


@pytest.mark.parametrize("slippage_bps", [0, 30, 500, 1_000])
@pytest.mark.parametrize("exact_input_spot", [False, True])
def test_bounds_from_compute_bounds_pass_at_every_configurable_slippage(slippage_bps: int, exact_input_spot: bool) -> None:
    quote = short_open_quote(exact_input_spot)
    check_protective_bounds(quote, compute_bounds(quote, slippage_bps))


def test_refuses_a_one_wei_perp_bound_against_a_fill_of_thousands() -> None:
    quote = short_open_quote()
    bounds = replace(compute_bounds(quote, 30), perp_opposite_amount_bound_x18=1)
    with pytest.raises(UnprotectiveBounds, match="perp oppositeAmountBound: minimum 1 "):
        check_protective_bounds(quote, bounds)


def test_refuses_a_zero_minimum_out() -> None:
    quote = short_open_quote(venue_exact_input=True)
    with pytest.raises(UnprotectiveBounds, match="spot min out: minimum 0"):
        check_protective_bounds(quote, replace(compute_bounds(quote, 30), spot_limit_raw=0))


def test_refuses_an_unlimited_maximum_in_and_a_loose_perp_maximum() -> None:
    quote = short_open_quote()
    with pytest.raises(UnprotectiveBounds, match="spot max in"):
        check_protective_bounds(quote, replace(compute_bounds(quote, 30), spot_limit_raw=2**256 - 1))
    long_perp = replace(quote, perp=replace(quote.perp, is_base_to_quote=False, is_exact_input=False,
                                            base_delta_x18=2 * ONE, quote_delta_x18=-6_006 * ONE))
    bounds = compute_bounds(long_perp, 30)
    check_protective_bounds(long_perp, bounds)  # max quote in 6,006 + 0.3%: fine
    with pytest.raises(UnprotectiveBounds, match="perp oppositeAmountBound: maximum"):
        check_protective_bounds(long_perp, replace(bounds, perp_opposite_amount_bound_x18=6_700 * ONE))


def test_refuses_a_bound_just_past_the_largest_slippage() -> None:
    quote = short_open_quote()
    at_limit = compute_bounds(quote, 1_000)  # 10% below 5,994
    check_protective_bounds(quote, at_limit)
    looser = replace(at_limit, perp_opposite_amount_bound_x18=at_limit.perp_opposite_amount_bound_x18 - 10**6)
    with pytest.raises(UnprotectiveBounds):
        check_protective_bounds(quote, looser)


def test_refuses_a_residual_bound_as_large_as_the_trade_on_an_open_not_on_a_close() -> None:
    quote = short_open_quote()
    unhedged = replace(compute_bounds(quote, 30), max_residual_base_x18=2 * ONE)
    with pytest.raises(UnprotectiveBounds, match="residual"):
        check_protective_bounds(quote, unhedged)
    closing = replace(quote, kind="close", perp=replace(quote.perp, is_close=True))
    check_protective_bounds(closing, unhedged)  # a close may unwind a perp held with less spot
