"""Both strategies on hand-built snapshots: entries, exits and skips (each with its numbers), one
position per market, closes first, sizing within every risk limit, and the registry."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import pytest

from keeper.signals import BasisHistory, Signal, compute_signal
from keeper.types import ONE_X18, Direction, Intent, MarketView, PerpAccountState, Position, Unavailable
from strategies import STRATEGIES, BasisConvergence, FundingCarry, load_strategy
from strategies.base import BasisStats, CostModel, RiskLimits, Skip, StrategyContext
from strategies.basis_convergence import BasisConvergenceParams
from strategies.funding_carry import FundingCarryParams, forecast_carry_apr
from strategies.pnl import estimate_open

from .test_pnl_model import costs, limits, market_view, perp_state, snapshot_of

BLOCK = 1000


def signal_for(view: MarketView, venue: str, z: float | None) -> Signal:
    """The signal compute_signals would give for `view`, with the z-score set."""
    perp = view.perp
    assert not isinstance(perp, Unavailable)
    from keeper.signals import spot_price
    spot = spot_price(view, venue)
    assert isinstance(spot, float)
    s = compute_signal(BLOCK, view.name, venue, perp, spot, BasisHistory(5, 2))
    return dataclasses.replace(s, basis_zscore=z)


def context(*views: MarketView, z: Mapping[tuple[str, str], float | None] | None = None,
            stats: Mapping[tuple[str, str], BasisStats] | None = None, positions: Mapping[str, Position] | None = None,
            owner: Mapping[str, str] | None = None, cost_model: CostModel | None = None,
            risk: RiskLimits | None = None, account: PerpAccountState | None = None) -> StrategyContext:
    z = z or {}
    signals = {(v.name, venue): signal_for(v, venue, z.get((v.name, venue))) for v in views
               for venue in ("uniswap_v3", "uniswap_v2")}
    return StrategyContext(snapshot=snapshot_of(*views, block=BLOCK, account=account), signals=signals,
                           positions=positions or {}, costs=cost_model or costs(), limits=risk or limits(),
                           basis_stats=stats or {}, position_owner=owner or {})


def rich_eth(premium: float = 0.02) -> MarketView:
    price = 3000 * (1 + premium)
    return market_view(perp=perp_state(price, 3000.0, market_twap_usd=price, vamm_usd=price))


def only(decisions: list[Intent | Skip], market: str = "ETH") -> Intent | Skip:
    found = [d for d in decisions if d.market == market]
    assert len(found) == 1
    return found[0]


def position(direction: Direction, entry_basis_bps: float, venue: str = "uniswap_v3", size: float = 2.0) -> Position:
    base = int(size * ONE_X18)
    return Position("ETH", direction, venue, direction.perp_sign * base, -direction.perp_sign * base,  # type: ignore[arg-type]
                    BLOCK - 50, 1_699_999_000, entry_basis_bps, net_quote_x18=0)


def account(margin_ratio: float) -> PerpAccountState:
    return PerpAccountState("0x" + "44" * 20, account_value_x18=int(margin_ratio * 100_000 * ONE_X18),
                            free_collateral_raw=0, total_abs_position_value_x18=100_000 * ONE_X18,
                            margin_requirement_for_liquidation_x18=0, markets={})


STATS_AT_ZERO = {("ETH", "uniswap_v3"): BasisStats(0.0, 60.0, 100), ("ETH", "uniswap_v2"): BasisStats(0.0, 60.0, 100)}


# ------------------------------------------------------------------------------ basis convergence
def test_given_a_rich_perp_far_above_its_mean_when_deciding_then_it_opens_short_perp_sized_and_explained() -> None:
    # Given the perp 2% over spot (z = 3.3 against a mean of 0 bps)
    view = rich_eth(0.02)
    ctx = context(view, z={("ETH", "uniswap_v3"): 3.3, ("ETH", "uniswap_v2"): 3.3}, stats=STATS_AT_ZERO)
    # When the strategy decides
    decision = only(BasisConvergence().decide(ctx))
    # Then it opens short perp + long spot with positive expected net PnL, valid for 2 blocks
    assert isinstance(decision, Intent), decision
    assert (decision.kind, decision.direction) == ("open", Direction.SHORT_PERP)
    assert decision.perp_base_x18 > 0 and decision.expected.net_usd >= 5.0
    assert decision.expected.convergence_usd > 0 and decision.expected.fees_usd > 0
    assert (decision.created_block, decision.valid_until_block) == (BLOCK, BLOCK + 2)
    for number in ("z=3.30", "basis 200.0 bps", "centre 0.0 bps", "expected net $", "size "):
        assert number in decision.reason
    # the V3 pool (0.05%) beats the V2 pair (0.3%) here: the chosen venue has the best net
    other = estimate_open(view, Direction.SHORT_PERP, "uniswap_v2", decision.perp_base_x18, costs(),
                          funding_fraction=0.0, exit_basis_bps=0.0, leverage=3.0)
    assert decision.spot_venue == "uniswap_v3" and decision.expected.net_usd > other.net_usd


def test_given_a_cheap_perp_when_deciding_then_it_opens_long_perp() -> None:
    view = rich_eth(-0.02)
    ctx = context(view, z={("ETH", "uniswap_v3"): -3.0}, stats=STATS_AT_ZERO)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Intent) and decision.direction is Direction.LONG_PERP
    assert decision.spot_venue == "uniswap_v3" and "z=-3.00" in decision.reason


def test_given_z_inside_the_band_when_deciding_then_it_skips_with_the_numbers() -> None:
    ctx = context(rich_eth(0.01), z={("ETH", "uniswap_v3"): 1.2, ("ETH", "uniswap_v2"): None}, stats=STATS_AT_ZERO)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip)
    assert "|z|=1.20 < entry 2.00" in decision.reason and "uniswap_v2: z undefined" in decision.reason


def test_given_a_flat_window_then_the_undefined_z_says_the_basis_was_flat_not_that_history_is_missing() -> None:
    flat = {("ETH", "uniswap_v3"): BasisStats(1.5, 0.0, 120)}  # e.g. a warm start over deployment blocks
    ctx = context(rich_eth(0.02), z={("ETH", "uniswap_v3"): None, ("ETH", "uniswap_v2"): None}, stats=flat)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip)
    assert "uniswap_v3: z undefined (basis flat over the window: MAD 0 over 120 samples, centre 1.5 bps)" in decision.reason
    assert "uniswap_v2: z undefined (not enough basis history)" in decision.reason


def test_given_a_large_z_but_a_tiny_basis_when_deciding_then_costs_win_and_it_skips() -> None:
    # z = 5 because the history is calm, but the perp is only 4 bps rich: fees eat it
    view = rich_eth(0.0004)
    stats = {("ETH", v): BasisStats(0.0, 0.8, 100) for v in ("uniswap_v3", "uniswap_v2")}
    ctx = context(view, z={("ETH", "uniswap_v3"): 5.0, ("ETH", "uniswap_v2"): 5.0}, stats=stats)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip)
    assert "expected convergence +4.0 bps + funding" in decision.reason and "no size pays" in decision.reason


@pytest.mark.parametrize("premium", [0.0004, 0.001, 0.002, 0.003, 0.004, 0.005, 0.008, 0.012, 0.02, -0.003, -0.006])
def test_the_no_size_pays_shortcut_only_skips_what_the_full_size_search_would_skip(
        premium: float, monkeypatch: pytest.MonkeyPatch) -> None:
    price = 3000 * (1 + premium)
    view = market_view(perp=perp_state(price, 3000.0, market_twap_usd=price, vamm_usd=price))
    z = 5.0 if premium > 0 else -5.0
    stats = {("ETH", v): BasisStats(0.0, 0.8, 100) for v in ("uniswap_v3", "uniswap_v2")}
    ctx = context(view, z={("ETH", "uniswap_v3"): z, ("ETH", "uniswap_v2"): z}, stats=stats)
    with_shortcut = only(BasisConvergence().decide(ctx))
    monkeypatch.setattr("strategies.basis_convergence.NO_SIZE_FEE_SHARE", -1e9)  # never short-circuits
    full = only(BasisConvergence().decide(ctx))
    assert type(with_shortcut) is type(full)
    if isinstance(full, Intent):  # the same trade; only the other venue's note may read differently
        assert dataclasses.replace(with_shortcut, reason="") == dataclasses.replace(full, reason="")
        assert with_shortcut.reason.split("; others")[0] == full.reason.split("; others")[0]


def test_given_a_position_owned_by_another_strategy_when_deciding_then_no_second_position() -> None:
    ctx = context(rich_eth(0.02), z={("ETH", "uniswap_v3"): 4.0}, stats=STATS_AT_ZERO,
                  positions={"ETH": position(Direction.LONG_PERP, -10.0)}, owner={"ETH": "funding_carry"})
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip) and "one position per market" in decision.reason


@pytest.mark.parametrize("z, basis_premium, margin_ratio, expected_reason", [
    (0.3, 0.001, None, "converged: |z|=0.30 < exit 0.50"),
    (0.9, -0.001, None, "crossed its centre"),
    (3.0, 0.02, 0.05, "margin guard: margin ratio 0.0500 < guard 0.1000"),
])
def test_given_a_short_perp_position_when_an_exit_condition_holds_then_it_closes(
    z: float, basis_premium: float, margin_ratio: float | None, expected_reason: str
) -> None:
    # Given a short perp entered at +150 bps
    ctx = context(rich_eth(basis_premium), z={("ETH", "uniswap_v3"): z}, stats=STATS_AT_ZERO,
                  positions={"ETH": position(Direction.SHORT_PERP, 150.0)},
                  account=account(margin_ratio) if margin_ratio is not None else None)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Intent), decision
    assert (decision.kind, decision.direction, decision.spot_venue) == ("close", Direction.SHORT_PERP, "uniswap_v3")
    assert decision.perp_base_x18 == 2 * ONE_X18
    assert expected_reason in decision.reason
    assert decision.expected.gas_usd == pytest.approx(costs().close_gas_usd)


def test_given_a_hedged_short_perp_when_the_spread_widens_far_past_entry_then_it_holds_no_stop_loss() -> None:
    # Given a short perp entered at +150 bps, the tradable basis now +350 bps (200 bps against)
    ctx = context(rich_eth(0.035), z={("ETH", "uniswap_v3"): 4.0}, stats=STATS_AT_ZERO,
                  positions={"ETH": position(Direction.SHORT_PERP, 150.0)}, account=account(0.5))
    decision = only(BasisConvergence().decide(ctx))
    # Then it does not close: the remaining edge (350 bps back to the centre) is worth more than
    # ever; it adds to the position (a resize in the same direction), never stops out
    assert isinstance(decision, Intent) and decision.kind == "resize", decision
    assert decision.direction is Direction.SHORT_PERP and decision.perp_base_x18 > 0


def test_given_an_edge_left_below_the_cost_of_closing_when_deciding_then_it_holds_the_close_cancels() -> None:
    # Given a short perp entered at +150 bps; the basis is +200 bps but its centre moved to +199 bps
    # (a new regime): one bp of convergence (and funding) is left, less than what closing costs
    stats = {("ETH", v): BasisStats(199.0, 60.0, 100, half_life_s=60.0) for v in ("uniswap_v3", "uniswap_v2")}
    ctx = context(rich_eth(0.02), z={("ETH", "uniswap_v3"): 0.6}, stats=stats,
                  positions={"ETH": position(Direction.SHORT_PERP, 150.0)})
    decision = only(BasisConvergence().decide(ctx))
    # Then it holds: closing now or at the exit pays the same close, and holding still earns
    assert isinstance(decision, Skip) and decision.reason.startswith("holding short_perp"), decision


def test_given_no_edge_left_when_deciding_then_the_thesis_is_broken_and_it_closes() -> None:
    # Given a long perp on a perp 2% rich whose centre is 0.01 bp above the basis: the convergence
    # left (0.01 bp) is worth less than the funding the long pays meanwhile
    stats = {("ETH", v): BasisStats(200.01, 60.0, 100, half_life_s=60.0) for v in ("uniswap_v3", "uniswap_v2")}
    ctx = context(rich_eth(0.02), z={("ETH", "uniswap_v3"): -0.6}, stats=stats,
                  positions={"ETH": position(Direction.LONG_PERP, 150.0)})
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Intent) and decision.kind == "close", decision
    assert "thesis broken: expected remaining edge $-" in decision.reason and "<= 0" in decision.reason


def test_given_a_position_still_away_from_its_mean_when_deciding_then_it_holds() -> None:
    ctx = context(rich_eth(0.015), z={("ETH", "uniswap_v3"): 2.5}, stats=STATS_AT_ZERO,
                  positions={"ETH": position(Direction.SHORT_PERP, 200.0)})
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip) and decision.reason.startswith("holding short_perp: z=2.50")


def test_given_the_margin_guard_trips_then_positions_close_and_nothing_opens() -> None:
    btc = market_view("BTC", decimals=8, spot_usd=60_000.0, perp=perp_state(61_200.0, 60_000.0, vamm_usd=61_200.0))
    z = {("ETH", "uniswap_v3"): 2.5, ("BTC", "uniswap_v3"): 4.0}
    stats = dict(STATS_AT_ZERO) | {("BTC", "uniswap_v3"): BasisStats(0.0, 50.0, 100)}
    ctx = context(rich_eth(0.015), btc, z=z, stats=stats, positions={"ETH": position(Direction.SHORT_PERP, 200.0)},
                  account=account(0.08))
    decisions = BasisConvergence().decide(ctx)
    eth, btc_decision = only(decisions, "ETH"), only(decisions, "BTC")
    assert isinstance(eth, Intent) and eth.kind == "close"
    assert isinstance(btc_decision, Skip) and "no open: margin ratio 0.0800" in btc_decision.reason


@pytest.mark.parametrize("risk, limit_usd", [
    (dict(max_notional_usd_per_market=9_000.0), 9_000.0),
    (dict(remaining_total_notional_usd=6_000.0), 6_000.0),
    (dict(free_collateral_usd=1_000.0, max_leverage=4.0), 4_000.0),
])
def test_given_tight_limits_when_sizing_then_the_open_stays_within_each(risk: dict[str, float], limit_usd: float) -> None:
    # Given a 3% rich perp: the unconstrained best size is far above every one of these limits
    ctx = context(rich_eth(0.03), z={("ETH", "uniswap_v3"): 5.0}, stats=STATS_AT_ZERO, risk=limits(**risk))
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Intent), decision
    notional_usd = decision.perp_base_x18 / ONE_X18 * 3090.0  # at the higher (perp) price
    assert notional_usd <= limit_usd * 1.0001
    assert notional_usd >= limit_usd * 0.95  # and it uses the room: the edge is large


def test_given_an_8_decimal_market_when_opening_then_the_size_is_whole_satoshis() -> None:
    btc = market_view("BTC", decimals=8, spot_usd=60_000.0, perp=perp_state(61_200.0, 60_000.0, vamm_usd=61_200.0,
                                                                              depth_liquidity=10**23))
    ctx = context(btc, z={("BTC", "uniswap_v3"): 4.0}, stats={("BTC", "uniswap_v3"): BasisStats(0.0, 50.0, 100)})
    decision = only(BasisConvergence().decide(ctx), "BTC")
    assert isinstance(decision, Intent), decision
    assert decision.perp_base_x18 % 10**10 == 0


# ------------------------------------------------------------------------------ funding carry
def carry_costs() -> CostModel:
    return costs(holding_horizon_hours=24.0 * 7)


def persistent(premium_bps: float) -> dict[tuple[str, str], BasisStats]:
    """A history where the premium has sat at premium_bps (no decay within a week)."""
    return {("ETH", v): BasisStats(premium_bps, 2.0, 100, half_life_s=7 * 86_400.0) for v in ("uniswap_v3", "uniswap_v2")}


def test_given_longs_paying_well_above_the_hurdle_when_deciding_then_it_opens_short_perp() -> None:
    # Given the market TWAP 0.3% over the index: longs pay ~0.3%/day (~110% APR)
    view = market_view(perp=perp_state(3009.0, 3000.0, market_twap_usd=3009.0, vamm_usd=3009.0))
    ctx = context(view, cost_model=carry_costs(), stats=persistent(30.0))
    decision = only(FundingCarry().decide(ctx))
    assert isinstance(decision, Intent), decision
    assert (decision.kind, decision.direction) == ("open", Direction.SHORT_PERP)
    assert decision.expected.funding_usd > decision.expected.fees_usd > 0
    assert abs(decision.expected.convergence_usd) < 1.0  # the basis sits at its centre
    assert "funding APR +109.50%" in decision.reason and "over 168 h" in decision.reason
    # the carry its rule used (the forecast) is named, beside the carry now
    forecast = forecast_carry_apr(ctx, ctx.signals[("ETH", decision.spot_venue)], Direction.SHORT_PERP)
    assert f"(carry now +109.50%, forecast {forecast:+.2%} APR vs capital" in decision.reason


def test_given_shorts_paying_when_deciding_then_it_opens_long_perp() -> None:
    view = market_view(perp=perp_state(2991.0, 3000.0, market_twap_usd=2991.0, vamm_usd=2991.0))
    decision = only(FundingCarry().decide(context(view, cost_model=carry_costs(), stats=persistent(-30.0))))
    assert isinstance(decision, Intent) and decision.direction is Direction.LONG_PERP


def test_given_no_basis_history_when_deciding_then_carry_does_not_guess_how_long_the_premium_lasts() -> None:
    view = market_view(perp=perp_state(3009.0, 3000.0, market_twap_usd=3009.0, vamm_usd=3009.0))
    decision = only(FundingCarry().decide(context(view, cost_model=carry_costs())))
    assert isinstance(decision, Skip) and "no basis statistics yet" in decision.reason


def test_given_funding_below_the_hurdle_when_deciding_then_it_skips_with_the_numbers() -> None:
    # 0.01%/day = 3.65% APR: under the 5% minimum
    view = market_view(perp=perp_state(3000.3, 3000.0, market_twap_usd=3000.3, vamm_usd=3000.3))
    decision = only(FundingCarry().decide(context(view, cost_model=carry_costs(), stats=persistent(1.0))))
    assert isinstance(decision, Skip) and "carry +3.65% APR < hurdle 5.00%" in decision.reason


def test_given_a_short_horizon_when_deciding_then_fees_beat_the_carry_and_it_skips() -> None:
    view = market_view(perp=perp_state(3003.0, 3000.0, market_twap_usd=3003.0, vamm_usd=3003.0))
    decision = only(FundingCarry().decide(context(view, cost_model=costs(holding_horizon_hours=4.0), stats=persistent(10.0))))
    assert isinstance(decision, Skip) and "< round-trip fees" in decision.reason  # no size search needed


@pytest.mark.parametrize("twap, expected", [(2997.0, "funding flipped"), (3000.1, "below the cost of capital")])
def test_given_a_carry_position_when_funding_fades_then_it_closes(twap: float, expected: str) -> None:
    view = market_view(perp=perp_state(twap, 3000.0, market_twap_usd=twap, vamm_usd=twap))
    ctx = context(view, positions={"ETH": position(Direction.SHORT_PERP, 30.0)}, owner={"ETH": "funding_carry"})
    decision = only(FundingCarry().decide(ctx))
    assert isinstance(decision, Intent) and decision.kind == "close" and expected in decision.reason


def test_given_a_carry_position_still_paid_when_deciding_then_it_holds_and_convergence_leaves_it_alone() -> None:
    view = market_view(perp=perp_state(3009.0, 3000.0, market_twap_usd=3009.0, vamm_usd=3009.0))
    ctx = context(view, z={("ETH", "uniswap_v3"): 0.1}, stats=STATS_AT_ZERO,
                  positions={"ETH": position(Direction.SHORT_PERP, 30.0)}, owner={"ETH": "funding_carry"})
    carry = only(FundingCarry().decide(ctx))
    assert isinstance(carry, Skip) and "holding short_perp: forecast carry +10" in carry.reason
    # basis convergence would call it converged, but it is not its position
    convergence = only(BasisConvergence().decide(ctx))
    assert isinstance(convergence, Skip) and "held by funding_carry" in convergence.reason


def test_given_the_premium_flipped_while_perps_twap_rate_lags_then_carry_exits_and_would_not_take_a_hand_over() -> None:
    # Given Perp's TWAP rate still +0.3%/day (shorts paid) but the vAMM now 1.4% under spot
    view = market_view(perp=perp_state(3009.0, 3000.0, market_twap_usd=3009.0, vamm_usd=2958.0))
    held = position(Direction.SHORT_PERP, 30.0)
    ctx = context(view, positions={"ETH": held}, owner={"ETH": "funding_carry"})
    decision = only(FundingCarry().decide(ctx))
    assert isinstance(decision, Intent) and decision.kind == "close", decision
    assert "funding flipped: forecast carry -" in decision.reason and "current TWAP rate +109.50%" in decision.reason
    assert FundingCarry().would_hold(ctx, held) is None


def test_given_a_long_perp_with_the_basis_far_above_its_centre_then_carry_would_not_take_it_over() -> None:
    # Given a long perp, the vAMM 1.4% over spot (longs pay, and the basis is expected back to its
    # centre of -5 bps within minutes): even with the centre's rate favouring longs, holding loses
    view = market_view(perp=perp_state(3000.0, 3000.0, market_twap_usd=2990.0, vamm_usd=3042.0))
    stats = {("ETH", "uniswap_v3"): BasisStats(-5.0, 3.0, 100, half_life_s=300.0)}
    held = position(Direction.LONG_PERP, -140.0)
    ctx = context(view, stats=stats, positions={"ETH": held}, owner={"ETH": "basis_convergence"})
    assert FundingCarry().hold_edge_usd(ctx, view, held, ctx.signals[("ETH", "uniswap_v3")]) < 0
    assert FundingCarry().would_hold(ctx, held) is None


# ------------------------------------------------------------------------------ registry
def test_given_names_and_params_when_loading_then_strategies_are_built_or_rejected_by_name() -> None:
    assert set(STRATEGIES) == {"basis_convergence", "funding_carry", "pairs_spread"}
    s = load_strategy("basis_convergence", {"entry_z": 3, "valid_for_blocks": 5})
    assert isinstance(s, BasisConvergence) and s.params == BasisConvergenceParams(entry_z=3.0, valid_for_blocks=5)
    assert isinstance(load_strategy("funding_carry"), FundingCarry)
    assert load_strategy("funding_carry", {"min_carry_apr": 0.1}).params == FundingCarryParams(min_carry_apr=0.1)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown strategy 'momentum'"):
        load_strategy("momentum", {})
    with pytest.raises(ValueError, match="unknown parameter.*entry_zz"):
        load_strategy("basis_convergence", {"entry_zz": 2.0})
    with pytest.raises(ValueError, match="parameter valid_for_blocks must be an int"):
        load_strategy("basis_convergence", {"valid_for_blocks": 2.5})
    with pytest.raises(ValueError, match="parameter exit_z must be in"):
        load_strategy("basis_convergence", {"entry_z": 1.0, "exit_z": 1.5})
    with pytest.raises(ValueError, match="funding_persistence"):
        load_strategy("funding_carry", {"funding_persistence": 0})


def test_given_the_valid_for_blocks_param_then_intents_expire_accordingly() -> None:
    ctx = context(rich_eth(0.02), z={("ETH", "uniswap_v3"): 3.3}, stats=STATS_AT_ZERO)
    decision = only(load_strategy("basis_convergence", {"valid_for_blocks": 7}).decide(ctx))
    assert isinstance(decision, Intent) and decision.valid_until_block == BLOCK + 7


# ------------------------------------------------------------------------------ hand-over, funding forecast
def test_given_a_converged_position_whose_side_earns_funding_then_carry_would_hold_it_and_convergence_would_not() -> None:
    # Given a short perp and the market TWAP 0.3% over the index: longs pay ~110% APR
    view = market_view(perp=perp_state(3009.0, 3000.0, market_twap_usd=3009.0, vamm_usd=3009.0))
    held = position(Direction.SHORT_PERP, 150.0)
    ctx = context(view, z={("ETH", "uniswap_v3"): 0.1}, stats=STATS_AT_ZERO, positions={"ETH": held})
    why = FundingCarry().would_hold(ctx, held)
    assert why is not None and "carry +" in why and ">= hurdle" in why
    assert BasisConvergence().would_hold(ctx, held) is None  # z 0.1: no convergence edge left
    # and the long side, which would pay that funding, is not held by carry
    assert FundingCarry().would_hold(ctx, position(Direction.LONG_PERP, -150.0)) is None


def test_given_a_half_life_when_forecasting_funding_then_the_twap_rate_ramps_to_the_vamm_and_decays_to_the_centre() -> None:
    # Given the vAMM 0.3% over the index (the rate it implies: 0.3% a day), Perp's TWAP rate still
    # at 5e-8 per s, a 900 s TWAP, and a basis centre of 8.64 bps with a 600 s half-life
    view = market_view(perp=perp_state(3000.0, 3000.0, vamm_usd=3009.0))
    stats = {("ETH", "uniswap_v3"): BasisStats(8.64, 5.0, 100, half_life_s=600.0)}
    ctx = context(view, stats=stats)
    rate, hold = 5e-8, 6 * 3600.0
    forecast = ctx.funding_forecast_s("ETH", "uniswap_v3", rate, hold)
    instant = ((2**96 * math.sqrt(3009.0)) // 1) ** 2 / 2**192 / 3000.0  # the pool's price, as built
    instant = (instant - 1) / 86_400
    centre = 8.64 / 1e4 / 86_400
    rest = hold - 900
    expected = (rate * 900 + (instant - rate) * 900 / 2
                + centre * rest + (instant - centre) * 600 / math.log(2) * (1 - 2 ** (-rest / 600)))
    assert forecast == pytest.approx(expected, rel=1e-3)
    assert forecast < instant * hold  # the premium is not assumed to persist for the whole hold
    # no statistics: the vAMM's premium persists after the TWAP catches up
    assert context(view).funding_forecast_s("ETH", "uniswap_v3", rate, hold) == pytest.approx(
        rate * 900 + (instant - rate) * 450 + instant * rest, rel=1e-3)



def test_the_funding_forecast_from_the_signals_mids_is_the_one_read_from_the_snapshot_to_the_bit() -> None:
    # Given contexts on the same views and statistics, one with the tick's signals (whose spot and
    # vAMM mids the forecast takes) and one without (it reads them from the snapshot)
    views = [market_view(perp=perp_state(3000.0, 3001.0, vamm_usd=v)) for v in (3009.0, 2991.5)]
    for view in views:
        stats = {("ETH", venue): BasisStats(8.64, 5.0, 100, half_life_s=600.0) for venue in ("uniswap_v3", "uniswap_v2")}
        with_signals, without = context(view, stats=stats), dataclasses.replace(context(view, stats=stats), signals={})
        for venue in ("uniswap_v3", "uniswap_v2"):
            for hold in (600.0, 6 * 3600.0):
                # Then the forecasts are equal to the bit, whichever venue and hold
                assert with_signals.funding_forecast_s("ETH", venue, 5e-8, hold) == \
                    without.funding_forecast_s("ETH", venue, 5e-8, hold)
        # and a signal of other mids moves the forecast: the signal's numbers are the ones read
        moved = dataclasses.replace(with_signals, signals={
            k: dataclasses.replace(s, vamm_price_usd=s.vamm_price_usd * 1.001) for k, s in with_signals.signals.items()})
        assert moved.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0) != \
            without.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0)


def test_given_a_repeated_funding_forecast_then_it_is_the_first_answer_and_a_replaced_context_answers_afresh() -> None:
    # Given a context with a fitted half-life, asked the same forecast twice and another hold once
    view = market_view(perp=perp_state(3000.0, 3000.0, vamm_usd=3009.0))
    ctx = context(view, stats={("ETH", "uniswap_v3"): BasisStats(8.64, 5.0, 100, half_life_s=600.0)})
    first = ctx.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0)
    # Then the repeat is the first answer, and a different hold or half-life is not served from it
    assert ctx.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0) == first
    assert ctx.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 3 * 3600.0) != first
    assert ctx.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0, half_life_s=60.0) != first
    # and a context replaced with other statistics (no decay fitted) forecasts from those
    other = dataclasses.replace(ctx, basis_stats={("ETH", "uniswap_v3"): BasisStats(8.64, 5.0, 100)})
    assert other.funding_forecast_s("ETH", "uniswap_v3", 5e-8, 6 * 3600.0) > first

def test_given_no_fitted_half_life_when_opening_on_convergence_then_funding_decays_with_the_expected_convergence() -> None:
    # Given the perp 2% rich (vAMM and TWAP), no decay seen in the history, a 24 h horizon
    view = rich_eth(0.02)
    ctx = context(view, z={("ETH", "uniswap_v3"): 3.3, ("ETH", "uniswap_v2"): 3.3}, stats=STATS_AT_ZERO)
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Intent), decision
    # Then the funding counted is well below the 2%-a-day premium persisting for the whole day:
    # the premium that converges (and is counted as convergence) stops paying as it does
    notional = decision.perp_base_x18 / ONE_X18 * 3000.0
    assert 0 < decision.expected.funding_usd < 0.5 * notional * 0.02
    assert decision.expected.convergence_usd > decision.expected.funding_usd


def test_given_an_adopted_position_then_its_unknown_entry_basis_reads_unknown_not_nan() -> None:
    adopted = dataclasses.replace(position(Direction.SHORT_PERP, 0.0), entry_basis_bps=float("nan"))
    ctx = context(rich_eth(0.0), z={("ETH", "uniswap_v3"): 0.1, ("ETH", "uniswap_v2"): 0.1}, stats=STATS_AT_ZERO,
                  positions={"ETH": adopted}, owner={"ETH": "basis_convergence"})
    decision = only(BasisConvergence().decide(ctx))
    assert "entry unknown (adopted)" in decision.reason and "nan" not in decision.reason
