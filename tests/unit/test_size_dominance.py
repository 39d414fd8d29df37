"""The size search's shortcut (strategies/pnl.py): a search whose answer is provably its smallest
size and a no-trade quotes only the sizes it cannot rule out, and answers exactly as the full
search; the slope bound it rests on holds on exact quotes."""

from __future__ import annotations

import itertools

from types import SimpleNamespace

import pytest

from keeper.errors import SkipOpportunity
from keeper.types import ONE_X18, Direction, Unavailable
from strategies.pnl import SLOPE_SLACK_PER_NOTIONAL, SLOPE_SLACK_USD, edge_slope_bound, estimate_open, optimise_open
from tests.unit.test_pnl_model import costs, limits, market_view, perp_state

PREMIUMS_BPS = (-80.0, -25.0, -6.0, 0.0, 6.0, 25.0, 80.0)
CASES = list(itertools.product(("uniswap_v3", "uniswap_v2"), (Direction.SHORT_PERP, Direction.LONG_PERP), PREMIUMS_BPS,
                               (None, 0.0, -30.0), (18, 8)))


def view_for(premium_bps: float, decimals: int):  # type: ignore[no-untyped-def]
    spot = 3000.0 if decimals == 18 else 60_000.0
    vamm = spot * (1 + premium_bps / 1e4)
    return market_view(decimals=decimals, spot_usd=spot, perp=perp_state(vamm, spot, vamm_usd=vamm))


@pytest.mark.parametrize(("venue", "direction", "premium_bps", "exit_bps", "decimals"), CASES)
def test_given_any_state_when_searching_with_a_bar_then_the_answer_is_the_full_searchs(
    venue: str, direction: Direction, premium_bps: float, exit_bps: float | None, decimals: int
) -> None:
    # Given a market with the perp `premium_bps` over spot, searched without and with the bar
    view = view_for(premium_bps, decimals)
    args = dict(funding_fraction=0.0, exit_basis_bps=exit_bps, min_notional_usd=100.0, max_evaluations=10)
    full = optimise_open(view, direction, venue, costs(), limits(max_notional_usd_per_market=200_000.0), None, **args)
    fast = optimise_open(view, direction, venue, costs(), limits(max_notional_usd_per_market=200_000.0), None,
                         min_profit_usd=5.0, **args)
    assert not isinstance(full, Unavailable) and not isinstance(fast, Unavailable)
    (full_search, _), (fast_search, _) = full, fast
    # Then the best evaluation is the same, to the wei and the float
    assert fast_search.best == full_search.best
    if fast_search.proven_worse:
        # the shortcut answered: a no-trade at the smallest size, with fewer quotes
        assert full_search.best is not None and full_search.best.net_usd < 5.0
        assert fast_search.best is not None and fast_search.best.perp_base_x18 == full_search.low_x18
        assert fast_search.evaluations < full_search.evaluations
    else:
        assert fast_search == full_search  # the full search ran: every field the same


def test_given_the_cases_when_searching_then_the_shortcut_answers_some_and_not_others() -> None:
    # (the comparison above is only meaningful if both branches are taken)
    taken = set()
    for venue, direction, premium_bps, exit_bps, decimals in CASES[::3]:
        found = optimise_open(view_for(premium_bps, decimals), direction, venue, costs(), limits(), None,
                              funding_fraction=0.0, exit_basis_bps=exit_bps, min_notional_usd=100.0, min_profit_usd=5.0)
        assert not isinstance(found, Unavailable)
        taken.add(found[0].proven_worse > 0)
    assert taken == {True, False}


@pytest.mark.parametrize(("venue", "direction", "premium_bps", "exit_bps", "decimals"), CASES[::2])
@pytest.mark.parametrize("funding_fraction", [0.0, 2e-4, -2e-4])
def test_given_exact_quotes_at_many_sizes_then_the_net_never_grows_faster_than_the_slope_bound(
    venue: str, direction: Direction, premium_bps: float, exit_bps: float | None, decimals: int, funding_fraction: float
) -> None:
    view = view_for(premium_bps, decimals)
    price = 3000.0 if decimals == 18 else 60_000.0
    slope = edge_slope_bound(view, direction, venue, costs(), funding_fraction=funding_fraction, exit_basis_bps=exit_bps,
                             leverage=3.0, hold_s=None)
    assert slope is not None
    step = 10 ** (18 - decimals)
    nets = {}
    for notional_usd in (100.0, 100.2, 107.0, 150.0, 400.0, 3_000.0, 40_000.0, 150_000.0):
        size = int(notional_usd / price * ONE_X18) // step * step
        try:
            nets[size] = estimate_open(view, direction, venue, size, costs(), funding_fraction=funding_fraction,
                                       exit_basis_bps=exit_bps, leverage=3.0).net_usd
        except SkipOpportunity:
            continue
    assert len(nets) >= 6
    for a, b in itertools.combinations(sorted(nets), 2):
        slack = SLOPE_SLACK_USD + SLOPE_SLACK_PER_NOTIONAL * (a + b) / ONE_X18 * price * 1.01
        assert nets[b] - nets[a] <= slope * (b - a) / ONE_X18 + slack, (a, b)


@pytest.mark.parametrize(("low", "high", "step", "max_evaluations"), [
    (10**15, 10**21, 1, 10), (10**15, 10**21, 10**10, 10), (10**17, 2 * 10**17, 10**12, 10), (10**15, 10**21, 1, 6),
    (10**17, 10**17 + 3 * 10**12, 10**12, 10), (5 * 10**16, 7 * 10**20, 10**6, 25)])
def test_given_a_net_falling_with_size_when_every_size_is_proven_worse_then_the_shortcut_proves_the_full_searchs_sizes(
        low: int, high: int, step: int, max_evaluations: int) -> None:
    from strategies.pnl import OpenEvaluation
    from strategies.size_search import search_size

    # Given a net that falls with the size (the full search walks from the grid down toward the smallest size)
    def evaluate(size_x18: int) -> OpenEvaluation:
        return SimpleNamespace(net_usd=-size_x18 / 1e18, perp_base_x18=size_x18)  # type: ignore[return-value]

    full = search_size(evaluate, low, high, step, max_evaluations)
    # When every size but the smallest is proven worse without a quote
    fast = search_size(evaluate, low, high, step, max_evaluations, dominated=lambda size, low_x18: True,
                       answer_below_usd=5.0)
    # Then the shortcut proved exactly the sizes the full search quoted after the smallest one, and quoted one
    assert fast.best == full.best and fast.best.perp_base_x18 == full.low_x18
    assert (fast.evaluations, fast.proven_worse) == (1, full.evaluations - 1)
