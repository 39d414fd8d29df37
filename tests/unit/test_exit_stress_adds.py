"""The exit-stress rule applied to adds (strategies/exit_stress.add_exit_stress_rule, used by
strategies/scale_in.optimise_add): an add is charged the rule's charge of the grown position minus
the charge the position already carries; hand-set pools (tests/unit/test_exit_stress.py's)."""

from __future__ import annotations

import dataclasses

import pytest

from keeper.quotes import quote_basis_trade
from keeper.types import ONE_X18, Direction, Position, Unavailable
from strategies.exit_stress import (
    ExitStressRefused,
    add_exit_stress_rule,
    check_exit_stress,
    check_position_exit_stress,
    exit_stress_probability,
    exit_stress_rule,
    grown_position,
    stressed_exit_states,
)
from strategies.scale_in import estimate_add, optimise_add
from tests.unit.test_exit_stress import _open, jumped, stress, thin_outside_view
from tests.unit.test_pnl_model import costs, limits

VENUE = "uniswap_v2"


def held_after_open(view, size_x18: int) -> Position:
    """The long perp position an open of size_x18 on `view` leaves."""
    entry = _open(view, size_x18).entry
    return Position(market="ETH", direction=Direction.LONG_PERP, spot_venue=VENUE,
                    perp_base_x18=entry.predicted.perp_base_x18, spot_raw=entry.predicted.spot_raw, entry_block=0,
                    entry_timestamp_s=0, entry_basis_bps=entry.mid_basis_bps, net_quote_x18=entry.predicted.net_quote_x18)


def _add(view, position: Position, size_x18: int):
    now = quote_basis_trade(view, "close", position.direction, VENUE, 0, position)
    return estimate_add(view, position, size_x18, costs(), funding_fraction=0.0, exit_basis_bps=300.0, leverage=3.0,
                        hold_s=3_600.0, close_now=(now.fees_usd, now.impact_usd)), now


def _best_add(view, position: Position, weight: float):
    found = optimise_add(view, position, costs(), limits(stress=stress(weight)), None, funding_fraction=0.0,
                         exit_basis_bps=300.0, min_notional_usd=100.0, max_evaluations=14, hold_s=3_600.0)
    assert not isinstance(found, Unavailable)
    search, _ = found
    assert search.best is not None, search.first_failure
    return search.best


def test_given_a_jumped_index_when_an_add_is_evaluated_then_it_carries_the_grown_positions_charge_less_the_held_ones() -> None:
    # Given a 4 ETH long perp on a vAMM thin beyond +-6%, the index 5% off its TWAP (p > 0.8)
    view = jumped(thin_outside_view(), 2850.0)
    held = held_after_open(view, 4 * ONE_X18)
    p = exit_stress_probability(view, stress())
    assert p > 0.8
    # When adding 6 ETH
    plain, now = _add(view, held, 6 * ONE_X18)
    charged = add_exit_stress_rule(view, held, stress(), now)(plain)
    # Then the add's impact grows by p x (extra(held + add) - extra(held)), > 0
    states = stressed_exit_states(view, VENUE, 0.05)
    grown = grown_position(held, plain.entry)
    assert grown.perp_base_x18 == held.perp_base_x18 + plain.entry.predicted.perp_base_x18
    extra_grown = check_position_exit_stress(states, grown, plain.exit).extra_usd
    extra_held = check_position_exit_stress(states, held, now).extra_usd
    assert extra_grown > extra_held > 0
    charge = charged.estimate.price_impact_usd - plain.estimate.price_impact_usd
    assert charge == pytest.approx(p * (extra_grown - extra_held), rel=1e-12)
    assert charged.net_usd == pytest.approx(plain.net_usd - charge)
    # and the open's charge plus the add's is the charge of the grown position as one holding
    opened = _open(view, 4 * ONE_X18)
    open_charge = exit_stress_rule(view, VENUE, stress())(opened).estimate.price_impact_usd - opened.estimate.price_impact_usd
    assert open_charge == pytest.approx(p * check_exit_stress(states, opened.entry, opened.exit).extra_usd)
    assert open_charge + charge == pytest.approx(p * extra_grown, rel=1e-9)


def test_given_a_jumped_index_and_a_thin_vamm_when_sizing_an_add_then_the_stressed_exit_cuts_the_add() -> None:
    view = jumped(thin_outside_view(), 2850.0)
    held = held_after_open(view, 4 * ONE_X18)
    without, with_rule = _best_add(view, held, 0.0), _best_add(view, held, 1.0)
    # the rule off is the add as sized before it applied to adds: larger, and its net uncharged
    assert with_rule.perp_base_x18 < without.perp_base_x18
    assert with_rule.net_usd < without.net_usd


def test_given_a_calm_index_when_sizing_an_add_then_the_rule_changes_nothing() -> None:
    view = thin_outside_view()  # index = its TWAP: p = 0
    held = held_after_open(view, 4 * ONE_X18)
    assert exit_stress_probability(view, stress()) == 0.0
    assert _best_add(view, held, 1.0) == _best_add(view, held, 0.0)


def test_given_a_held_position_whose_stressed_close_is_not_quotable_when_adding_then_every_add_is_refused() -> None:
    # Given a held position too large to close in one block after the stressed move (Perp's tick band)
    view = jumped(thin_outside_view(), 2850.0)
    held = held_after_open(view, 4 * ONE_X18)
    plain, now = _add(view, held, 5 * ONE_X18)
    huge = dataclasses.replace(held, perp_base_x18=10**9 * ONE_X18)
    # Then the add cannot be charged what the position carries, and is refused (conservative)
    with pytest.raises(ExitStressRefused):
        add_exit_stress_rule(view, huge, stress(), now)(plain)


def test_given_a_volatile_index_when_the_strategy_adds_to_a_widened_position_then_the_add_is_charged() -> None:
    # Given basis_convergence's scale-in test state (2 ETH short perp entered at +150 bps, now +350 bps)
    # and an index the recorded history calls volatile (8% a day per sqrt(day): p > 0 over the hold)
    from keeper.stress import StressParams
    from strategies import BasisConvergence
    from tests.unit.test_scale_in import Z
    from tests.unit.test_strategies import STATS_AT_ZERO, context, only, position, rich_eth

    def decide(weight: float):
        params = StressParams(0.05, 0.0, 3_600.0, exit_weight=weight, index_sigma_per_sqrt_s={"ETH": 3e-4})
        ctx = context(rich_eth(0.035), z=Z, stats=STATS_AT_ZERO, risk=limits(stress=params),
                      positions={"ETH": position(Direction.SHORT_PERP, 150.0)})
        return only(BasisConvergence().decide(ctx))

    without, with_rule = decide(0.0), decide(1.0)
    # Then it still adds, but less, and the add's net carries the stressed close's extra cost
    assert without.kind == with_rule.kind == "resize", (without, with_rule)
    assert with_rule.perp_base_x18 < without.perp_base_x18
    assert with_rule.expected.net_usd < without.expected.net_usd
