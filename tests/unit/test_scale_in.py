"""Adding to a held convergence position when its basis widens (strategies/scale_in.py and
basis_convergence's use of it), on hand-built snapshots."""

from __future__ import annotations

from keeper.types import ONE_X18, Direction, Intent
from strategies import BasisConvergence
from strategies.base import Skip
from strategies.pnl import estimate_open
from strategies.scale_in import estimate_add, widened_bps

from .test_pnl_model import costs, limits
from .test_strategies import STATS_AT_ZERO, context, only, position, rich_eth

Z = {("ETH", "uniswap_v3"): 6.0, ("ETH", "uniswap_v2"): 6.0}


def test_widened_bps_is_signed_by_the_side_that_loses_when_the_basis_moves_away() -> None:
    assert widened_bps(position(Direction.SHORT_PERP, 150.0), 350.0) == 200.0
    assert widened_bps(position(Direction.SHORT_PERP, 150.0), 100.0) == -50.0
    assert widened_bps(position(Direction.LONG_PERP, -150.0), -350.0) == 200.0


def test_given_a_short_perp_whose_basis_widened_past_entry_when_deciding_then_it_adds_within_the_markets_room() -> None:
    # Given a 2 ETH short perp entered at +150 bps; the basis is now +350 bps (scale 60 bps: 200 > 2 x 60)
    room_usd = 30_000.0
    ctx = context(rich_eth(0.035), z=Z, stats=STATS_AT_ZERO, positions={"ETH": position(Direction.SHORT_PERP, 150.0)},
                  risk=limits(max_notional_usd_per_market=room_usd))
    decision = only(BasisConvergence().decide(ctx))
    # Then it grows the position (a resize in the same direction), paying for itself
    assert isinstance(decision, Intent), decision
    assert (decision.kind, decision.direction, decision.spot_venue) == ("resize", Direction.SHORT_PERP, "uniswap_v3")
    assert decision.perp_base_x18 > 0 and decision.expected.net_usd >= 5.0
    assert "widened 200.0 bps since entry 150.0 bps" in decision.reason
    # within what the position leaves of the per-market cap (2 ETH held at ~$3,100)
    held_usd = 2 * 3000 * 1.035
    assert decision.perp_base_x18 / ONE_X18 * 3000 * 1.035 <= room_usd - held_usd + 1


def test_given_the_basis_narrower_than_at_entry_when_deciding_then_it_holds_without_adding() -> None:
    ctx = context(rich_eth(0.014), z=Z, stats=STATS_AT_ZERO, positions={"ETH": position(Direction.SHORT_PERP, 150.0)})
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip) and decision.reason.startswith("holding short_perp"), decision
    assert "no add: widened -10.0 bps since entry (needs 120.0)" in decision.reason


def test_given_the_market_cap_used_up_when_the_basis_widens_then_it_holds_without_adding() -> None:
    ctx = context(rich_eth(0.035), z=Z, stats=STATS_AT_ZERO, positions={"ETH": position(Direction.SHORT_PERP, 150.0)},
                  risk=limits(max_notional_usd_per_market=5_000.0))
    decision = only(BasisConvergence().decide(ctx))
    assert isinstance(decision, Skip), decision
    assert "no add: no size quotable" in decision.reason and "max notional per market $0" in decision.reason


def test_an_add_is_charged_the_marginal_close_of_the_grown_position_and_the_resize_gas_only() -> None:
    view = rich_eth(0.035)
    held = position(Direction.SHORT_PERP, 150.0, size=200.0)
    from keeper.quotes import quote_basis_trade
    now = quote_basis_trade(view, "close", held.direction, held.spot_venue, 0, held)
    size_x18 = 100 * ONE_X18
    add = estimate_add(view, held, size_x18, costs(), funding_fraction=0.0, exit_basis_bps=0.0, leverage=3.0,
                       hold_s=3600.0, close_now=(now.fees_usd, now.impact_usd))
    alone = estimate_open(view, Direction.SHORT_PERP, "uniswap_v3", size_x18, costs(), funding_fraction=0.0,
                          exit_basis_bps=0.0, leverage=3.0, hold_s=3600.0)
    # closing 300 ETH moves the pools further than closing 100 alone: the add pays more impact
    assert add.estimate.price_impact_usd > alone.estimate.price_impact_usd
    # the position is closed once either way: the add's gas is the resize's
    c = costs()
    assert add.estimate.gas_usd == c.tx_cost_usd(c.gas_units_resize) + c.tx_cost_usd(0)
    assert add.estimate.gas_usd < alone.estimate.gas_usd


def test_given_adding_turned_off_when_the_basis_widens_then_it_holds() -> None:
    ctx = context(rich_eth(0.035), z=Z, stats=STATS_AT_ZERO, positions={"ETH": position(Direction.SHORT_PERP, 150.0)})
    strategy = BasisConvergence.from_params({"add_on_widening": False})
    decision = only(strategy.decide(ctx))
    assert isinstance(decision, Skip) and "no add: add_on_widening is off" in decision.reason, decision
