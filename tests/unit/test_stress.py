"""Stress sizing, the margin ladder and the cooldown, with hand-set states."""

from __future__ import annotations

import dataclasses

import pytest

from keeper.margin_ladder import BUYBACK_MARGIN_BPS, buyback_reserve_raw, plan_ladder_step
from keeper.risk import cooldown_reason
from keeper.stress import (
    MAINTENANCE_MARGIN_RATIO,
    PerpLeg,
    Shock,
    StressParams,
    max_stressed_size_base,
    shock_grid,
    stress_account,
    worst_margin_ratio,
)
from keeper.types import ONE_X18, Direction, PerpAccountState, Position, Unavailable
from tests.unit.test_pnl_model import market_view

PARAMS = StressParams(index_move=0.05, funding_apr=1.0, hold_s=3600.0)


def short_eth(base: float = 10.0, band: float = 0.10) -> PerpLeg:
    return PerpLeg("ETH", -base, mark_usd=3000.0, index_usd=3000.0, band_ratio=band)


def test_given_a_short_leg_when_the_index_rises_and_the_vamm_hits_the_upper_edge_then_that_is_the_worst_row() -> None:
    rows = stress_account(10_000.0, [short_eth()], PARAMS)
    worst = min(rows, key=lambda r: r.margin_ratio or 1e9)
    assert (worst.shock.index_move, worst.shock.edge, worst.shock.adverse_funding) == (0.05, 1, True)
    mark = 3000 * 1.05 * 1.10
    funding = 10 * mark * 1.0 * 3600 / (365 * 86400)
    assert worst.perp_pnl_usd == pytest.approx(-10 * (mark - 3000) - funding)
    assert worst.margin_ratio == pytest.approx((10_000 - 10 * (mark - 3000) - funding) / (10 * mark))
    assert worst.hedge_pnl_usd == pytest.approx(10 * 3000 * 0.05)  # the spot bought gains what the index does
    assert len(rows) == len(shock_grid(PARAMS)) == 18


def test_given_the_largest_stressed_size_then_the_worst_ratio_sits_exactly_on_the_guard() -> None:
    # Given $10k of account value and an ETH short already open, sizing a BTC long
    held = [short_eth(5.0)]
    new = PerpLeg("BTC", 1.0, mark_usd=60_000.0, index_usd=60_000.0, band_ratio=0.10)
    base, shock = max_stressed_size_base(10_000.0, held, new, fee_ratio=0.001, params=PARAMS, guard=0.15)
    assert shock is not None and base > 0
    # Then at that size (its fee paid) the worst ratio over the grid is the guard, and above it the guard breaks
    def worst_at(size: float) -> float:
        fee = size * 60_000 * 0.001
        legs = held + [PerpLeg("BTC", size, 60_000.0, 60_000.0, 0.10)]
        ratio = worst_margin_ratio(stress_account(10_000.0 - fee, legs, PARAMS))
        assert ratio is not None
        return ratio
    assert worst_at(base) == pytest.approx(0.15, abs=1e-9)
    assert worst_at(base * 1.01) < 0.15


def test_given_an_account_already_below_the_guard_under_stress_then_no_new_size() -> None:
    base, shock = max_stressed_size_base(1_000.0, [short_eth(10.0)], short_eth(1.0), 0.001, PARAMS, 0.15)
    assert base == 0.0 and shock is not None


def test_given_a_leg_when_solving_for_liquidation_then_the_ratio_there_is_perps_maintenance() -> None:
    rows = stress_account(10_000.0, [short_eth()], PARAMS, shocks=[Shock(0.0, 0, False)])
    move = rows[0].liquidation_index_move
    assert move is not None and move > 0  # a short is liquidated by a rise
    at = stress_account(10_000.0, [short_eth()], PARAMS, shocks=[Shock(move, 0, False)])[0]
    assert at.margin_ratio == pytest.approx(MAINTENANCE_MARGIN_RATIO, abs=1e-6)


# ------------------------------------------------------------------------------ margin ladder
def account(value_usd: float, held_usd: float) -> PerpAccountState:
    return PerpAccountState("0x" + "55" * 20, int(value_usd * ONE_X18), 0, int(held_usd * ONE_X18), 0, {})


def pos(market: str, base: float) -> Position:
    return Position(market, Direction.SHORT_PERP, "uniswap_v3", int(-base * ONE_X18), int(base * ONE_X18), 1, 1, 0.0, 0)


LADDER = dict(topup_ratio=0.25, min_ratio=0.15, reduce_fraction=0.5, min_unit_x18={"ETH": 1, "BTC": 10**10})


def test_given_margin_above_the_topup_ratio_then_the_ladder_does_nothing() -> None:
    assert plan_ladder_step(account(30_000, 100_000), {"ETH": pos("ETH", 30)}, 10**12, **LADDER) is None  # type: ignore[arg-type]


def test_given_margin_below_topup_and_enough_usdc_then_it_tops_up_and_sheds_a_thousandth() -> None:
    step = plan_ladder_step(account(20_000, 100_000), {"ETH": pos("ETH", 30)}, 50_000 * 10**6, **LADDER)  # type: ignore[arg-type]
    assert step is not None and step.market == "ETH"
    assert step.deposit_usdc_raw == int(5_000 * 1.05 * 10**6)  # 0.25 x 100k - 20k, with 5% room
    assert step.margin_ratio_after_deposit >= 0.25 and step.reduce_base_x18 == 30 * ONE_X18 // 1000
    assert "top up $5,250.00" in step.reason and "ratio 0.2000 < top-up 0.2500" in step.reason


def test_given_margin_below_topup_and_too_little_usdc_then_it_tops_up_what_it_can_and_reduces_the_largest() -> None:
    step = plan_ladder_step(account(20_000, 100_000), {"ETH": pos("ETH", 30), "BTC": pos("BTC", 0.5)},
                            1_000 * 10**6, **LADDER)  # type: ignore[arg-type]
    assert step is not None and step.market == "ETH"
    assert step.deposit_usdc_raw == 900 * 10**6  # 90% of the wallet
    assert step.reduce_base_x18 == 15 * ONE_X18  # half the largest position
    assert "reduce ETH by 15 base (50%)" in step.reason


def test_given_margin_below_the_guard_then_the_ladder_leaves_it_to_the_unwind() -> None:
    assert plan_ladder_step(account(10_000, 100_000), {"ETH": pos("ETH", 30)}, 10**12, **LADDER) is None  # type: ignore[arg-type]


def test_the_long_perps_buy_backs_are_reserved_at_the_index_with_a_margin_and_short_perps_need_none() -> None:
    views = {"ETH": market_view("ETH", 18, 3000.0), "BTC": market_view("BTC", 8, 60_000.0)}
    long_eth = Position("ETH", Direction.LONG_PERP, "uniswap_v3", 2 * ONE_X18, -2 * 10**18, 1, 1, 0.0, 0)
    long_btc = Position("BTC", Direction.LONG_PERP, "uniswap_v3", ONE_X18 // 10, -10**7, 1, 1, 0.0, 0)
    reserve = buyback_reserve_raw(views, {"ETH": long_eth, "BTC": long_btc, "SOL": pos("SOL", 5)})
    assert reserve == (2 * 3000 + 6_000) * (10_000 + BUYBACK_MARGIN_BPS) // 10_000 * 10**6  # the short perp (SOL) adds 0
    assert buyback_reserve_raw(views, {"ETH": pos("ETH", 30)}) == 0
    # a long perp whose perp cannot be read: its spot venue's mid; neither: nothing is spare
    eth = views["ETH"]
    no_perp = {"ETH": dataclasses.replace(eth, perp=Unavailable("down"))}
    assert buyback_reserve_raw(no_perp, {"ETH": long_eth}) == pytest.approx(
        2 * 3000 * (10_000 + BUYBACK_MARGIN_BPS) // 10_000 * 10**6, rel=1e-6)
    nothing = {"ETH": dataclasses.replace(eth, perp=Unavailable("down"), spot_v3=Unavailable("down"))}
    assert buyback_reserve_raw(nothing, {"ETH": long_eth}) is None


# ------------------------------------------------------------------------------ cooldown
def test_given_a_recent_exit_then_the_same_side_cools_down_and_then_reopens() -> None:
    assert cooldown_reason("ETH", "short_perp", None, 1_000, 300) is None
    reason = cooldown_reason("ETH", "short_perp", (1_000, "short_perp"), 1_100, 300)
    assert reason is not None and "200 s left" in reason
    assert cooldown_reason("ETH", "short_perp", (1_000, "short_perp"), 1_300, 300) is None


def test_given_a_recent_exit_then_the_other_side_may_open_at_once() -> None:
    # a premium that flipped is a new trade, not churn
    assert cooldown_reason("ETH", "long_perp", (1_000, "short_perp"), 1_010, 300) is None
