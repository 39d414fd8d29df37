"""The shared expected-PnL model, the exact basis-trade quote behind it, and the size search, on
hand-built pool states (no chain). The builders here are reused by test_strategies.py."""

from __future__ import annotations

import math
import time

import pytest

from keeper.quote_bounds import compute_bounds
from keeper.quotes import quote_basis_trade, round_perp_base_to_spot_units
from keeper.types import (
    ONE_X18,
    Q96,
    Direction,
    MarketSnapshot,
    MarketView,
    PerpAccountState,
    PerpMarketState,
    PnlEstimate,
    Position,
    Unavailable,
    V2PairState,
)
from keeper.venues.uniswap_v2_math import quote_v2_exact_in, quote_v2_exact_out
from keeper.venues.uniswap_v3_libraries import get_tick_at_sqrt_ratio
from keeper.venues.uniswap_v3_math import V3PoolState
from strategies.base import CostModel, RiskLimits
from strategies.pnl import (
    combine_pnl,
    compute_size_cap,
    estimate_close,
    estimate_open,
    optimise_open,
)
from strategies.size_search import search_size

USDC = 10**6


# ------------------------------------------------------------------------------ builders
def v3_pool(price_raw: float, liquidity: int, fee_pips: int, spacing: int, width_ticks: int = 20_000) -> V3PoolState:
    """One liquidity position of `liquidity` over +-width_ticks around price_raw (token1 per
    token0, raw units), the tick bitmap read over whole words around it."""
    sqrt_price = int(math.sqrt(price_raw) * Q96)
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    lower = (tick - width_ticks) // spacing * spacing
    upper = (tick + width_ticks) // spacing * spacing
    word = 256 * spacing
    window = ((lower // word - 1) * word, ((upper // word) + 2) * word - spacing)
    return V3PoolState(sqrt_price, tick, liquidity, fee_pips, spacing, {lower: liquidity, upper: -liquidity}, window)


def perp_state(mark_usd: float = 3000.0, index_usd: float = 3000.0, market_twap_usd: float | None = None,
               vamm_usd: float | None = None, depth_liquidity: int = 4 * 10**23) -> PerpMarketState:
    pool = v3_pool(vamm_usd or mark_usd, depth_liquidity, 3000, 60)
    twap = market_twap_usd if market_twap_usd is not None else index_usd
    return PerpMarketState(
        base_token="0x" + "11" * 20, pool=pool, mark_price_x18=int(mark_usd * ONE_X18),
        index_price_x18=int(index_usd * ONE_X18), index_twap_x18=int(index_usd * ONE_X18),
        market_twap_x18=int(twap * ONE_X18), exchange_fee_ratio_ppm=1000, uniswap_fee_ratio_ppm=3000,
        insurance_fund_fee_ratio_ppm=100_000, max_funding_rate_ppm=100_000, twap_interval_s=900,
    )


def market_view(name: str = "ETH", decimals: int = 18, spot_usd: float = 3000.0, perp: PerpMarketState | None = None,
                spot_is_token0: bool = True, v3_liquidity: int | None = None,
                v2_usdc_reserve_usd: float = 5_000_000.0) -> MarketView:
    """A market whose V3 pool (0.05%) and V2 pair both price the spot token at spot_usd."""
    price_raw = spot_usd * USDC / 10**decimals  # USDC raw per spot raw
    if v3_liquidity is None:
        # about 10M USD of virtual USDC reserve at the price: L = y / sqrt(P)
        v3_liquidity = int(10_000_000 * USDC / math.sqrt(price_raw))
    pool = v3_pool(price_raw if spot_is_token0 else 1 / price_raw, v3_liquidity, 500, 10)
    pair = V2PairState("0x" + "22" * 20, reserve_spot_raw=int(v2_usdc_reserve_usd / spot_usd * 10**decimals),
                       reserve_usdc_raw=int(v2_usdc_reserve_usd * USDC))
    return MarketView(name=name, spot_token_decimals=decimals, spot_is_token0=spot_is_token0,
                      perp=perp or perp_state(spot_usd, spot_usd), spot_v2=pair, spot_v3=pool,
                      oracle=Unavailable("not needed"))


def snapshot_of(*views: MarketView, block: int = 1000, account: PerpAccountState | None = None) -> MarketSnapshot:
    return MarketSnapshot(block_number=block, block_timestamp=1_700_000_000, base_fee_wei=10**8,
                          markets={v.name: v for v in views}, account=account, rpc_round_trips=2)


def costs(**overrides: object) -> CostModel:
    values: dict[str, object] = {"gas_price_wei": 10**9 // 10, "eth_price_usd": 3000.0, "cost_of_capital_apr": 0.05,
                                 "holding_horizon_hours": 24.0}
    values.update(overrides)
    return CostModel(**values)  # type: ignore[arg-type]


def limits(**overrides: object) -> RiskLimits:
    values: dict[str, object] = {
        "max_notional_usd_per_market": 1_000_000.0, "remaining_total_notional_usd": 2_000_000.0, "max_leverage": 3.0,
        "free_collateral_usd": 500_000.0, "min_margin_ratio": 0.1,
    }
    values.update(overrides)
    return RiskLimits(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ exact quotes
@pytest.mark.parametrize("venue", ["uniswap_v3", "uniswap_v2"])
@pytest.mark.parametrize("direction", [Direction.SHORT_PERP, Direction.LONG_PERP])
def test_given_an_8_decimal_token_when_quoting_an_open_then_size_rounds_down_and_residual_is_zero(
    venue: str, direction: Direction
) -> None:
    view = market_view("BTC", decimals=8, spot_usd=60_000.0, perp=perp_state(60_000.0, 60_000.0))
    q = quote_basis_trade(view, "open", direction, venue, 123_456_789_012_345_678)  # type: ignore[arg-type]
    assert q.base_abs_x18 == 123_456_780_000_000_000 == round_perp_base_to_spot_units(123_456_789_012_345_678, 8)
    assert q.predicted.spot_raw == -direction.perp_sign * 12_345_678
    assert q.predicted.residual_base_x18 == 0
    assert q.predicted.net_quote_x18 == q.predicted.perp_quote_x18 + q.predicted.usdc_raw * 10**12


def test_given_a_short_perp_open_then_legs_have_the_executor_signs_and_spot_is_exact_output() -> None:
    view = market_view()
    q = quote_basis_trade(view, "open", Direction.SHORT_PERP, "uniswap_v2", 2 * ONE_X18)
    pair = view.spot_v2
    assert isinstance(pair, V2PairState)
    # perp: short exactly 2 (B2Q exact input); quote received, fee included
    assert (q.perp.is_base_to_quote, q.perp.is_exact_input, q.perp.amount_x18) == (True, True, 2 * ONE_X18)
    assert q.predicted.perp_base_x18 == -2 * ONE_X18 and q.predicted.perp_quote_x18 > 0
    assert q.predicted.perp_quote_x18 == q.perp.exchanged_notional_x18 - q.perp.fee_x18
    # spot: buy exactly 2 WETH with USDC (exact output), as UniswapV2Library.getAmountIn rounds it
    assert (q.spot.is_buy, q.spot.is_exact_input, q.spot.amount_raw) == (True, False, 2 * ONE_X18)
    assert q.predicted.usdc_raw == -quote_v2_exact_out(2 * ONE_X18, pair.reserve_usdc_raw, pair.reserve_spot_raw)
    # fees: Perp's 0.1% and V2's 0.3%, in USD; impacts are small and positive
    assert q.perp.fee_usd == pytest.approx(6.0, rel=0.01)
    assert q.spot.fee_usd == pytest.approx(18.0, rel=0.01)
    assert 0 < q.perp.impact_usd < 5 and 0 < q.spot.impact_usd < 10


def test_given_a_long_perp_open_then_perp_is_exact_base_out_and_spot_is_sold_exact_input() -> None:
    view = market_view(spot_is_token0=False)
    q = quote_basis_trade(view, "open", Direction.LONG_PERP, "uniswap_v3", 5 * ONE_X18)
    assert (q.perp.is_base_to_quote, q.perp.is_exact_input) == (False, False)
    assert q.predicted.perp_base_x18 == 5 * ONE_X18 and q.predicted.perp_quote_x18 < 0
    assert (q.spot.is_buy, q.spot.is_exact_input) == (False, True)
    assert q.predicted.spot_raw == -5 * ONE_X18 and q.predicted.usdc_raw > 0
    # spot is token1 here: the mid price is still USDC per WETH
    assert q.spot.mid_price_usd == pytest.approx(3000.0, rel=1e-6)
    assert q.predicted.residual_base_x18 == 0


def test_given_a_position_when_quoting_its_close_then_each_leg_reverses() -> None:
    view = market_view()
    opened = quote_basis_trade(view, "open", Direction.SHORT_PERP, "uniswap_v2", 3 * ONE_X18)
    position = Position("ETH", Direction.SHORT_PERP, "uniswap_v2", opened.predicted.perp_base_x18,
                        opened.predicted.spot_raw, 1, 1, 0.0, opened.predicted.net_quote_x18)
    closing = quote_basis_trade(view, "close", Direction.SHORT_PERP, "uniswap_v2", 0, position)
    pair = view.spot_v2
    assert isinstance(pair, V2PairState)
    assert closing.perp.is_close and closing.predicted.perp_base_x18 == 3 * ONE_X18
    assert closing.predicted.spot_raw == -3 * ONE_X18
    assert closing.predicted.usdc_raw == quote_v2_exact_in(3 * ONE_X18, pair.reserve_spot_raw, pair.reserve_usdc_raw)
    # a round trip on the same state loses fees and impact twice
    assert opened.predicted.net_quote_x18 + closing.predicted.net_quote_x18 < 0
    with pytest.raises(ValueError, match="whole position"):
        quote_basis_trade(view, "close", Direction.SHORT_PERP, "uniswap_v2", ONE_X18, position)


def test_given_a_resize_then_positive_grows_like_an_open_and_negative_shrinks_the_other_way() -> None:
    view = market_view()
    position = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", -4 * ONE_X18, 4 * ONE_X18, 1, 1, 0.0, 0)
    grow = quote_basis_trade(view, "resize", Direction.SHORT_PERP, "uniswap_v3", ONE_X18, position)
    shrink = quote_basis_trade(view, "resize", Direction.SHORT_PERP, "uniswap_v3", -ONE_X18, position)
    assert (grow.predicted.perp_base_x18, grow.predicted.spot_raw) == (-ONE_X18, ONE_X18)
    assert (shrink.predicted.perp_base_x18, shrink.predicted.spot_raw) == (ONE_X18, -ONE_X18)
    assert shrink.perp.is_exact_input is False and shrink.spot.is_exact_input is True
    with pytest.raises(ValueError, match="flip"):
        quote_basis_trade(view, "resize", Direction.SHORT_PERP, "uniswap_v3", -5 * ONE_X18, position)


def test_given_a_quote_when_bounding_then_each_bound_moves_against_us_and_zero_bps_is_the_prediction() -> None:
    q = quote_basis_trade(market_view(), "open", Direction.SHORT_PERP, "uniswap_v3", 2 * ONE_X18)
    exact, loose = compute_bounds(q, 0), compute_bounds(q, 50)
    assert exact.perp_opposite_amount_bound_x18 == q.predicted.perp_quote_x18  # min quote out
    assert exact.spot_limit_raw == -q.predicted.usdc_raw  # max USDC in
    assert exact.min_net_quote_x18 == q.predicted.net_quote_x18 and exact.max_residual_base_x18 == 0
    assert loose.perp_opposite_amount_bound_x18 == q.predicted.perp_quote_x18 * 9950 // 10_000
    assert loose.spot_limit_raw == -(q.predicted.usdc_raw * 10_050 // 10_000)  # rounded up
    assert loose.min_net_quote_x18 == loose.perp_opposite_amount_bound_x18 - loose.spot_limit_raw * 10**12
    with pytest.raises(ValueError, match="slippage_bps"):
        compute_bounds(q, 10_000)


# ------------------------------------------------------------------------------ the model
def test_given_known_inputs_when_combining_then_each_term_follows_the_formula() -> None:
    c = costs(gas_price_wei=2 * 10**9, eth_price_usd=2000.0, l1_data_fee_wei=10**13, cost_of_capital_apr=0.0876,
              holding_horizon_hours=10.0)
    est = combine_pnl(direction=Direction.SHORT_PERP, base=2.0, spot_mid_usd=3000.0, perp_mid_usd=3030.0,
                      index_price_usd=3000.0, entry_basis_bps=100.0, exit_basis_bps=20.0,
                      funding_fraction=1e-7 * 36_000, fees_usd=12.0, impact_usd=3.0, costs=c, leverage=2.0)
    assert est.convergence_usd == pytest.approx(2 * 3000 * 80 / 1e4)  # 48
    assert est.funding_usd == pytest.approx(2 * 3000 * 1e-7 * 36_000)  # 21.6
    assert est.gas_usd == pytest.approx(((1_300_000 + 1_300_000) * 2e9 + 2 * 1e13) / 1e18 * 2000)
    assert est.close_gas_usd == pytest.approx((1_300_000 * 2e9 + 1e13) / 1e18 * 2000)
    assert est.capital_cost_usd == pytest.approx((6000 + 3030) * 0.0876 * 10 / 8760)  # 0.903
    assert est.net_usd == pytest.approx(48 + 21.6 - 12 - 3 - est.gas_usd - est.capital_cost_usd)


def test_given_long_perp_then_convergence_and_funding_signs_flip() -> None:
    args = dict(base=1.0, spot_mid_usd=3000.0, perp_mid_usd=2970.0, index_price_usd=3000.0, fees_usd=0.0,
                impact_usd=0.0, costs=costs(), leverage=3.0)
    long = combine_pnl(direction=Direction.LONG_PERP, entry_basis_bps=-100.0, exit_basis_bps=0.0,
                       funding_fraction=-1e-7 * 86_400, **args)  # type: ignore[arg-type]
    assert long.convergence_usd == pytest.approx(30.0) and long.funding_usd > 0
    no_target = combine_pnl(direction=Direction.LONG_PERP, entry_basis_bps=-100.0, exit_basis_bps=None,
                            funding_fraction=0.0, **args)  # type: ignore[arg-type]
    assert no_target.convergence_usd == 0.0 and no_target.funding_usd == 0.0


def test_given_an_open_when_estimating_then_fees_and_impact_are_entry_plus_quoted_exit() -> None:
    view = market_view(perp=perp_state(3030.0, 3000.0, vamm_usd=3030.0))
    ev = estimate_open(view, Direction.SHORT_PERP, "uniswap_v3", 10 * ONE_X18, costs(), funding_fraction=0.0,
                       exit_basis_bps=0.0, leverage=3.0)
    assert ev.exit.kind == "close" and ev.exit.predicted.perp_base_x18 == 10 * ONE_X18
    assert ev.estimate.fees_usd == pytest.approx(ev.entry.fees_usd + ev.exit.fees_usd)
    assert ev.estimate.price_impact_usd == pytest.approx(ev.entry.impact_usd + ev.exit.impact_usd)
    assert ev.entry.mid_basis_bps == pytest.approx(100.0, abs=0.5)
    assert ev.estimate.convergence_usd == pytest.approx(10 * 3000 * ev.entry.mid_basis_bps / 1e4)
    # at mid prices, open + exit at the same basis would net -(fees + impact): the model agrees
    round_trip_usd = (ev.entry.predicted.net_quote_x18 + ev.exit.predicted.net_quote_x18) / ONE_X18
    assert round_trip_usd == pytest.approx(-(ev.estimate.fees_usd + ev.estimate.price_impact_usd), abs=0.05)


def test_given_a_position_when_estimating_its_close_then_net_is_the_round_trip_less_close_gas() -> None:
    view = market_view()
    position = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", -ONE_X18, ONE_X18, 1, 1, 50.0,
                        net_quote_x18=25 * ONE_X18, funding_paid_x18=-2 * ONE_X18)
    quote, est = estimate_close(view, position, costs())
    expected = (position.net_quote_x18 + quote.predicted.net_quote_x18) / ONE_X18 + 2.0 - costs().close_gas_usd
    assert est.net_usd == pytest.approx(expected)
    assert est.capital_cost_usd == 0.0 and est.funding_usd == 2.0


# ------------------------------------------------------------------------------ sizing
def test_given_limits_when_capping_then_the_tightest_binds() -> None:
    view = market_view()
    cap = compute_size_cap(view, Direction.SHORT_PERP, "uniswap_v3",
                           limits(max_notional_usd_per_market=90_000.0, free_collateral_usd=20_000.0), None)
    assert not isinstance(cap, Unavailable)
    assert cap.max_perp_base_x18 == pytest.approx(20.0 * ONE_X18, rel=1e-3)  # 20k x 3 = 60k at ~3000
    assert "free collateral" in cap.binding
    cap = compute_size_cap(view, Direction.LONG_PERP, "uniswap_v3", limits(spot_inventory_raw={"ETH": 7 * ONE_X18}), None)
    assert not isinstance(cap, Unavailable) and cap.max_perp_base_x18 == 7 * ONE_X18 and "inventory" in cap.binding
    account = PerpAccountState("0x" + "33" * 20, account_value_x18=10_000 * ONE_X18, free_collateral_raw=0,
                               total_abs_position_value_x18=60_000 * ONE_X18,
                               margin_requirement_for_liquidation_x18=0, markets={})
    cap = compute_size_cap(view, Direction.SHORT_PERP, "uniswap_v3", limits(min_margin_ratio=0.125, max_leverage=10.0),
                           account)
    assert not isinstance(cap, Unavailable)
    assert cap.max_perp_base_x18 == pytest.approx(20_000 / 3000 * ONE_X18, rel=1e-3)  # 80k - 60k room
    assert "margin ratio" in cap.binding


def test_given_a_position_in_one_market_when_sizing_another_then_account_leverage_holds_across_both() -> None:
    # Given $30k of account value, max leverage 3 ($90k of positions in all), ETH short already
    # $60k, and free collateral that alone would allow 3 x $24k = $72k more (Perp nets only the
    # initial margin of the open position: the old per-open cap compounded to 4.4x)
    btc = market_view("BTC", decimals=8, spot_usd=60_000.0, perp=perp_state(60_000.0, 60_000.0, vamm_usd=60_000.0))
    account = PerpAccountState("0x" + "33" * 20, account_value_x18=30_000 * ONE_X18, free_collateral_raw=24_000 * 10**6,
                               total_abs_position_value_x18=60_000 * ONE_X18, margin_requirement_for_liquidation_x18=0,
                               markets={})
    cap = compute_size_cap(btc, Direction.SHORT_PERP, "uniswap_v3",
                           limits(free_collateral_usd=24_000.0, max_leverage=3.0, min_margin_ratio=0.1), account)
    # Then the BTC open may add only $30k: both markets together stay at 3x the account value
    assert not isinstance(cap, Unavailable)
    btc_usd = cap.max_perp_base_x18 / ONE_X18 * 60_000.0
    assert btc_usd == pytest.approx(30_000.0, rel=1e-3) and "account leverage 3" in cap.binding
    assert (60_000 + btc_usd) / 30_000 <= 3.0 + 1e-6


def test_given_a_concave_objective_when_searching_then_it_finds_the_peak_within_budget() -> None:
    class Fake:
        def __init__(self, size: int) -> None:
            x = size / ONE_X18
            self.net_usd = 10 * x - 0.25 * x * x  # peak at 20
    calls: list[int] = []

    def evaluate(size: int) -> Fake:
        calls.append(size)
        return Fake(size)
    result = search_size(evaluate, ONE_X18, 200 * ONE_X18, 10**12, max_evaluations=12)  # type: ignore[arg-type]
    assert result.best is not None and result.evaluations == len(calls) <= 12
    best_size = max(calls, key=lambda s: Fake(s).net_usd) / ONE_X18
    assert best_size == pytest.approx(20.0, rel=1e-3)


@pytest.mark.parametrize("venue", ["uniswap_v3", "uniswap_v2"])
def test_given_a_rich_perp_when_optimising_then_the_size_beats_naive_sizes_and_respects_the_cap(venue: str) -> None:
    view = market_view(perp=perp_state(3060.0, 3000.0, vamm_usd=3060.0))  # perp 2% rich
    lim = limits(max_notional_usd_per_market=600_000.0)
    started = time.perf_counter()
    result = optimise_open(view, Direction.SHORT_PERP, venue, costs(), lim, None,  # type: ignore[arg-type]
                           funding_fraction=0.0, exit_basis_bps=0.0, min_notional_usd=100.0, max_evaluations=10)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert not isinstance(result, Unavailable)
    search, cap = result
    assert search.best is not None and search.evaluations <= 10
    best = search.best
    # a dense scan finds nothing better than the search's size (to within a cent)
    dense = max(estimate_open(view, Direction.SHORT_PERP, venue, size, costs(), funding_fraction=0.0,  # type: ignore[arg-type]
                              exit_basis_bps=0.0, leverage=lim.max_leverage).net_usd
                for size in range(ONE_X18 // 4, 20 * ONE_X18, ONE_X18 // 4))
    assert best.net_usd >= dense - 0.01
    assert best.perp_base_x18 <= cap.max_perp_base_x18
    assert best.notional_usd <= 600_000.0 * 1.001
    assert best.net_usd > 0
    for naive_x18 in (ONE_X18, cap.max_perp_base_x18, 50 * ONE_X18):
        naive = estimate_open(view, Direction.SHORT_PERP, venue, naive_x18, costs(), funding_fraction=0.0,  # type: ignore[arg-type]
                              exit_basis_bps=0.0, leverage=lim.max_leverage)
        assert best.net_usd >= naive.net_usd
    assert elapsed_ms < 1000  # 20 exact quotes; see the report for measured times


def test_given_no_edge_when_optimising_then_the_best_is_still_a_loss() -> None:
    view = market_view()
    result = optimise_open(view, Direction.SHORT_PERP, "uniswap_v3", costs(), limits(), None,
                           funding_fraction=0.0, exit_basis_bps=None, min_notional_usd=100.0)
    assert not isinstance(result, Unavailable)
    search, _ = result
    assert search.best is not None and search.best.net_usd < 0
    assert isinstance(search.best.estimate, PnlEstimate)


def test_given_little_executor_usdc_when_capping_a_short_perp_then_the_wallet_binds() -> None:
    view = market_view()
    cap = compute_size_cap(view, Direction.SHORT_PERP, "uniswap_v3", limits(usdc_wallet_usd=30_000.0), None)
    assert not isinstance(cap, Unavailable) and "executor USDC" in cap.binding
    assert cap.max_perp_base_x18 * 3000 / ONE_X18 <= 30_000.0 * 0.95 + 1
    # a long perp sells spot instead: the USDC wallet does not limit it
    long_cap = compute_size_cap(view, Direction.LONG_PERP, "uniswap_v3", limits(usdc_wallet_usd=30_000.0), None)
    assert not isinstance(long_cap, Unavailable) and "executor USDC" not in long_cap.binding


def test_given_two_perp_states_when_quoting_in_turn_then_each_quote_is_its_own_states() -> None:
    # Given two states of the vAMM (different prices) quoted alternately, the same sizes each time
    first, second = market_view(perp=perp_state(3000.0, 3000.0)), market_view(perp=perp_state(3060.0, 3000.0))
    size = 2 * ONE_X18
    fresh = {id(v): quote_basis_trade(v, "open", Direction.SHORT_PERP, "uniswap_v3", size) for v in (first, second)}
    assert fresh[id(first)].perp != fresh[id(second)].perp
    # When quoted again in turn, then each answer is that state's own quote
    for view in (second, first, first, second):
        assert quote_basis_trade(view, "open", Direction.SHORT_PERP, "uniswap_v3", size) == fresh[id(view)]
