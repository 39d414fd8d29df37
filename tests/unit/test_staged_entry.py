"""Staged entry (basis_convergence's first_stage, strategies/staged_entry.py): part of the size on
a departure whose decay is unseen, the rest added once its own path narrows; hand-built states."""

from __future__ import annotations

import math

import pytest

from keeper.types import ONE_X18, Direction, Intent
from strategies import BasisConvergence
from strategies.base import BasisStats, Skip
from strategies.staged_entry import first_stage_limits, observed_half_life_s

from .test_pnl_model import limits
from .test_strategies import STATS_AT_ZERO, context, only, position, rich_eth

Z = {("ETH", "uniswap_v3"): 3.3, ("ETH", "uniswap_v2"): 3.3}
STAGED = {"first_stage": 0.5}


def test_observed_half_life_is_the_pace_of_the_departures_own_narrowing() -> None:
    # 200 -> 100 bps in 600 s: one half-life; 200 -> 50 in 600 s: two
    assert observed_half_life_s(200.0, 100.0, 600.0) == pytest.approx(600.0)
    assert observed_half_life_s(200.0, 50.0, 600.0) == pytest.approx(300.0)
    # a cheap perp (negative excess) narrowing toward the centre reads the same
    assert observed_half_life_s(-200.0, -100.0, 600.0) == pytest.approx(600.0)
    # a slow narrowing reads as a long half-life: 1% in 300 s
    assert observed_half_life_s(200.0, 198.0, 300.0) == pytest.approx(300 * math.log(2) / -math.log(0.99))


@pytest.mark.parametrize(("entry", "now", "elapsed"), [
    (200.0, 210.0, 600.0),  # widened
    (200.0, 200.0, 600.0),  # unchanged
    (200.0, -20.0, 600.0),  # crossed the centre (the exit's business)
    (200.0, 100.0, 0.0),  # no time has passed
    (0.0, 0.0, 600.0),  # no departure at entry
])
def test_no_half_life_is_read_from_a_departure_that_has_not_narrowed(entry: float, now: float, elapsed: float) -> None:
    assert observed_half_life_s(entry, now, elapsed) is None


def test_first_stage_limits_cap_the_market_at_the_share_of_the_best_size_and_never_raise_it() -> None:
    assert first_stage_limits(limits(max_notional_usd_per_market=100_000.0), 0.5, 80_000.0).max_notional_usd_per_market == 40_000.0
    assert first_stage_limits(limits(max_notional_usd_per_market=10_000.0), 0.5, 80_000.0).max_notional_usd_per_market == 10_000.0


def _open(params: dict[str, object], stats: dict[tuple[str, str], BasisStats]) -> Intent:
    ctx = context(rich_eth(0.02), z=Z, stats=stats, risk=limits(max_notional_usd_per_market=60_000.0))
    decision = only(BasisConvergence.from_params(params).decide(ctx))
    assert isinstance(decision, Intent) and decision.kind == "open", decision
    return decision


def test_given_a_departure_with_nothing_to_replay_when_staged_then_it_opens_at_most_the_first_stage() -> None:
    # Given the perp 2% rich and a window with no past departure (the decay model alone)
    full, staged = _open({}, STATS_AT_ZERO), _open(STAGED, STATS_AT_ZERO)
    # Then the staged open is at most half the size the whole search chose, and says so
    assert 0 < staged.perp_base_x18 <= full.perp_base_x18 / 2 + ONE_X18 // 100
    assert staged.expected.net_usd >= 5.0
    assert "first stage: 50% of the best size" in staged.reason and "first stage" not in full.reason


def test_given_a_window_that_replays_a_past_departure_when_staged_then_it_opens_the_whole_size() -> None:
    # Given a window holding one past departure of 250 bps that the exit rule resolved (back to 0)
    window = [0.0] * 10 + [250.0, 0.0] + [0.0] * 10
    stats = {key: BasisStats(0.0, 60.0, len(window), 60.0, window_bps=window, spacing_s=60.0) for key in Z}
    full, staged = _open({}, stats), _open(STAGED, stats)
    # Then the decay has been seen on this market: no staging
    assert staged.perp_base_x18 == full.perp_base_x18
    assert "departure(s) in the window replayed" in staged.reason and "first stage" not in staged.reason


def test_given_a_staged_position_whose_departure_narrowed_when_deciding_then_it_adds_at_its_own_pace() -> None:
    # Given a 2 ETH short perp entered at +250 bps, 1,000 s ago; the basis is now ~+200 bps, still z 3.3
    held = position(Direction.SHORT_PERP, 250.0)
    ctx = context(rich_eth(0.02), z=Z, stats=STATS_AT_ZERO, positions={"ETH": held},
                  risk=limits(max_notional_usd_per_market=60_000.0))
    decision = only(BasisConvergence.from_params(STAGED).decide(ctx))
    # Then it adds (a resize in the same direction) priced on the half-life the path shows
    assert isinstance(decision, Intent), decision
    assert (decision.kind, decision.direction) == ("resize", Direction.SHORT_PERP)
    assert decision.perp_base_x18 > 0 and decision.expected.net_usd >= 5.0
    excess_now = float(decision.reason.split("basis ")[1].split(" bps")[0])
    own = observed_half_life_s(250.0, excess_now, 1_000.0)
    assert own is not None and f"(its own half-life {own:.0f} s)" in decision.reason


def test_given_the_same_narrowing_without_staging_then_it_holds() -> None:
    held = position(Direction.SHORT_PERP, 250.0)
    ctx = context(rich_eth(0.02), z=Z, stats=STATS_AT_ZERO, positions={"ETH": held})
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip) and decision.reason.startswith("holding short_perp"), decision
    assert "no add: widened" in decision.reason and "narrowed" not in decision.reason


def test_given_a_staged_position_whose_departure_widened_a_little_then_it_holds_without_adding() -> None:
    # entered at +190 bps, now ~+200: wider, but by less than entry_z x scale (120 bps)
    held = position(Direction.SHORT_PERP, 190.0)
    ctx = context(rich_eth(0.02), z=Z, stats=STATS_AT_ZERO, positions={"ETH": held})
    decision = only(BasisConvergence.from_params(STAGED).decide(ctx))
    assert isinstance(decision, Skip), decision
    assert "not narrowed either" in decision.reason


def test_first_stage_outside_its_range_is_refused() -> None:
    for bad in (0.0, 1.5):
        with pytest.raises(Exception, match="first_stage"):
            BasisConvergence.from_params({"first_stage": bad})


def test_given_a_position_whose_entry_is_unknown_then_neither_add_fires() -> None:
    """An adopted position (journal/accounting.py: entry basis unknown, read back as NaN; entry time
    0) is not added to: no widening can be measured from an unknown entry, nor a pace."""
    import dataclasses

    adopted = dataclasses.replace(position(Direction.SHORT_PERP, math.nan), entry_timestamp_s=0)
    for params in ({}, STAGED):
        ctx = context(rich_eth(0.02), z=Z, stats=STATS_AT_ZERO, positions={"ETH": adopted},
                      risk=limits(max_notional_usd_per_market=60_000.0))
        decision = only(BasisConvergence.from_params(params).decide(ctx))
        assert isinstance(decision, Skip) and "no add" in decision.reason, (params, decision)
    narrowed_at_unknown_time = dataclasses.replace(position(Direction.SHORT_PERP, 250.0), entry_timestamp_s=0)
    ctx = context(rich_eth(0.02), z=Z, stats=STATS_AT_ZERO, positions={"ETH": narrowed_at_unknown_time},
                  risk=limits(max_notional_usd_per_market=60_000.0))
    assert isinstance(only(BasisConvergence.from_params(STAGED).decide(ctx)), Skip)
