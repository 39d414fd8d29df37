"""The stressed exit's cost (strategies/exit_stress.py): pools moved through their ticks to the
stressed prices, the close quoted there, and the sizing rule that caps a size by it; hand-set pools."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest

from keeper.stress import StressParams
from keeper.types import ONE_X18, Q96, Direction, Unavailable, V2PairState
from keeper.venues.uniswap_v3_libraries import get_tick_at_sqrt_ratio
from keeper.venues.uniswap_v3_math import V3PoolState
from strategies.exit_stress import (
    ExitStressRefused,
    check_exit_stress,
    exit_stress_rule,
    move_v2_pair,
    move_v3_pool,
    stress_move_probability,
    stressed_exit_states,
)
from strategies.pnl import estimate_open, optimise_open
from tests.unit.test_pnl_model import costs, limits, market_view, perp_state, v3_pool

THICK_L, THIN_L = 4 * 10**23, 2 * 10**22


def thick_then_thin(price_raw: float, fee_pips: int, spacing: int, thick_width_ticks: int) -> V3PoolState:
    """A thick range of +-thick_width_ticks around the price over a thin one of +-20,000 ticks."""
    thick = v3_pool(price_raw, THICK_L, fee_pips, spacing, thick_width_ticks)
    thin = v3_pool(price_raw, THIN_L, fee_pips, spacing)
    ticks = dict(thin.liquidity_net_by_tick)
    for tick, net in thick.liquidity_net_by_tick.items():
        ticks[tick] = ticks.get(tick, 0) + net
    return V3PoolState(thick.sqrt_price_x96, thick.tick, THICK_L + THIN_L, fee_pips, spacing, ticks, thin.tick_window)


def thin_outside_view(thick_width_ticks: int = 600):
    """ETH at $3,000 whose vAMM is thick only within about +-6% (600 ticks) of the price."""
    perp = dataclasses.replace(perp_state(), pool=thick_then_thin(3000.0, 3000, 60, thick_width_ticks))
    return market_view(perp=perp)


def stress(weight: float = 1.0, hold_s: float = 3_600.0) -> StressParams:
    return StressParams(index_move=0.05, funding_apr=0.0, hold_s=hold_s, exit_weight=weight)


def test_given_a_move_past_the_thick_range_when_moving_the_pool_then_only_the_thin_liquidity_is_left() -> None:
    pool = thick_then_thin(3000.0, 3000, 60, 600)
    target = int(3300 ** 0.5 * Q96)
    moved = move_v3_pool(pool, target)
    assert moved.sqrt_price_x96 == target
    assert moved.liquidity == THIN_L  # the thick range's upper tick was crossed
    assert moved.tick == get_tick_at_sqrt_ratio(target)
    back = move_v3_pool(moved, pool.sqrt_price_x96)
    assert back.liquidity == THICK_L + THIN_L


def test_given_a_v2_pair_when_moving_its_price_then_the_price_moves_by_the_factor_on_the_same_product() -> None:
    pair = V2PairState("0x" + "22" * 20, reserve_spot_raw=1_000 * 10**18, reserve_usdc_raw=3_000_000 * 10**6)
    moved = move_v2_pair(pair, Fraction(95, 100))
    price, moved_price = pair.reserve_usdc_raw / pair.reserve_spot_raw, moved.reserve_usdc_raw / moved.reserve_spot_raw
    assert moved_price / price == pytest.approx(0.95, rel=1e-9)
    k, moved_k = pair.reserve_spot_raw * pair.reserve_usdc_raw, moved.reserve_spot_raw * moved.reserve_usdc_raw
    assert moved_k <= k and moved_k == pytest.approx(k, rel=1e-12)


@pytest.mark.parametrize("venue", ["uniswap_v3", "uniswap_v2"])
def test_given_the_margin_stress_when_building_the_exit_states_then_prices_sit_at_the_band_edges(venue: str) -> None:
    view = thin_outside_view()
    states = stressed_exit_states(view, venue, 0.05)  # type: ignore[arg-type]
    assert [s.unreachable for s in states] == [None, None]
    vamm = [s.view.perp.pool.sqrt_price_x96 ** 2 / 2**192 for s in states]  # type: ignore[union-attr]
    assert vamm == pytest.approx([3000 * 0.95 * 0.9, 3000 * 1.05 * 1.1], rel=1e-9)  # band 10%
    spot = [s.view.spot_v2.reserve_usdc_raw / s.view.spot_v2.reserve_spot_raw * 10**12  # type: ignore[union-attr]
            if venue == "uniswap_v2" else
            s.view.spot_v3.sqrt_price_x96 ** 2 / 2**192 * 10**12 for s in states]  # type: ignore[union-attr]
    assert spot == pytest.approx([3000 * 0.95, 3000 * 1.05], rel=1e-6)


def _open(view, size_x18: int = 10 * ONE_X18):
    return estimate_open(view, Direction.LONG_PERP, "uniswap_v2", size_x18, costs(), funding_fraction=0.0,
                         exit_basis_bps=300.0, leverage=3.0)


def test_given_a_thin_vamm_outside_its_range_when_closing_after_stress_then_it_costs_more_than_at_entry() -> None:
    view = thin_outside_view()
    evaluation = _open(view)
    check = check_exit_stress(stressed_exit_states(view, "uniswap_v2", 0.05), evaluation.entry, evaluation.exit)
    assert check.stressed_exit_cost_usd > 3 * check.normal_exit_cost_usd
    # the same view with thick liquidity everywhere: the stressed close costs about the same
    even = market_view()
    evaluation = _open(even)
    check = check_exit_stress(stressed_exit_states(even, "uniswap_v2", 0.05), evaluation.entry, evaluation.exit)
    assert check.stressed_exit_cost_usd < 1.3 * check.normal_exit_cost_usd


def jumped(view, index_usd: float, twap_usd: float = 3000.0):
    """The view with the index at index_usd against its TWAP at twap_usd (twap interval 900 s)."""
    perp = dataclasses.replace(view.perp, index_price_x18=int(index_usd * ONE_X18), index_twap_x18=int(twap_usd * ONE_X18))
    return dataclasses.replace(view, perp=perp)


def test_given_the_index_vs_its_twap_when_estimating_the_stress_probability_then_calm_is_zero_and_a_jump_is_likely() -> None:
    perp = perp_state()  # index = its TWAP
    assert stress_move_probability(perp, 0.05, 86_400) == 0.0
    small = dataclasses.replace(perp, index_price_x18=int(3003 * ONE_X18))  # 0.1% off a 900 s TWAP
    big = dataclasses.replace(perp, index_price_x18=int(2850 * ONE_X18))  # 5% off: a jump
    p_small, p_big = stress_move_probability(small, 0.05, 3_600), stress_move_probability(big, 0.05, 3_600)
    assert 0 < p_small < 0.01 < 0.8 < p_big <= 1
    # sigma = |ln(3003/3000)| x sqrt(pi/2) / sqrt(300); p = erfc(0.05 / (sigma x sqrt(3600) x sqrt(2)))
    sigma = math.log(3003 / 3000) * math.sqrt(math.pi / 2) / math.sqrt(300)
    assert p_small == pytest.approx(math.erfc(0.05 / (sigma * 60 * math.sqrt(2))), rel=1e-9)
    assert stress_move_probability(small, 0.05, 7_200) > p_small  # a longer hold, more chance


def _best(view, weight: float, hold_s: float = 3_600.0):
    found = optimise_open(view, Direction.LONG_PERP, "uniswap_v2", costs(), limits(stress=stress(weight, hold_s)), None,
                          funding_fraction=0.0, exit_basis_bps=300.0, min_notional_usd=100.0, max_evaluations=14,
                          hold_s=hold_s)
    assert not isinstance(found, Unavailable)
    search, _ = found
    assert search.best is not None
    return search.best


def test_given_a_jumped_index_and_a_vamm_thin_beyond_the_stress_when_sizing_then_the_stressed_exit_cuts_the_size() -> None:
    view = jumped(thin_outside_view(), 2850.0)
    without, with_rule = _best(view, 0.0), _best(view, 1.0)
    assert with_rule.perp_base_x18 < without.perp_base_x18
    # the chosen size's estimate carries p x the stressed close's extra cost, as impact
    plain = _open(view, with_rule.perp_base_x18)
    check = check_exit_stress(stressed_exit_states(view, "uniswap_v2", 0.05), plain.entry, plain.exit)
    p = stress_move_probability(view.perp, 0.05, 3_600)  # type: ignore[arg-type]
    assert with_rule.estimate.price_impact_usd == pytest.approx(plain.estimate.price_impact_usd + p * check.extra_usd)
    assert with_rule.net_usd < plain.net_usd


def test_given_a_calm_index_when_sizing_then_the_rule_changes_nothing() -> None:
    view = thin_outside_view()  # index = its TWAP: p = 0
    assert _best(view, 1.0) == _best(view, 0.0)


def test_given_a_tick_window_short_of_the_stressed_price_when_sizing_then_every_size_is_refused_and_says_why() -> None:
    view = jumped(thin_outside_view(), 2850.0)
    pool = view.perp.pool  # type: ignore[union-attr]
    spacing = pool.tick_spacing  # a window of +-900 ticks (about 9%): the stress needs about 15%
    narrow = ((pool.tick - 900) // spacing * spacing, (pool.tick + 900) // spacing * spacing)
    ticks = {t: n for t, n in pool.liquidity_net_by_tick.items() if narrow[0] <= t <= narrow[1]}
    assert len(ticks) == 2  # the thick range's two ticks; the thin one's lie outside
    short = V3PoolState(pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.fee_pips, spacing, ticks, narrow)
    view = dataclasses.replace(view, perp=dataclasses.replace(view.perp, pool=short))
    states = stressed_exit_states(view, "uniswap_v2", 0.05)
    assert any(s.unreachable and "tick window" in s.unreachable for s in states)
    evaluation = _open(view, ONE_X18)
    with pytest.raises(ExitStressRefused, match="refused to be safe"):
        exit_stress_rule(view, "uniswap_v2", stress(1.0, 3_600.0))(evaluation)
    assert exit_stress_rule(view, "uniswap_v2", stress(0.0, 3_600.0))(evaluation) is evaluation  # off
