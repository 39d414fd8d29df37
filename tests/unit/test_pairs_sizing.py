"""pairs_spread's sizing (strategies/pairs_spread.py): the size search between notional_usd and the
caps, the caps at the mark holding for legs sized at the vAMM, the stress-margin rule, the
beta-neutral integer legs. Fixtures: tests/unit/test_pairs_spread.py."""

from __future__ import annotations

import dataclasses

import pytest

from keeper.pairs_types import PairIntent
from keeper.stress import PerpLeg, stressed_mark
from keeper.types import ONE_X18, perp_price_from_sqrt_x96
from strategies.pairs_math import beta_neutral_sizes_x18, max_pair_scale_usd, pair_shock_grid
from strategies.pairs_spread import PairContext
from tests.unit.test_pairs_spread import STRESS, limits, pair_context, strategy


def stressed_ratios(decision: PairIntent, pctx: PairContext, value_usd: float) -> list[float]:
    """The account's margin ratio after each of the pair's shocks, the open's fee paid."""
    eth, btc = (pctx.ctx.snapshot.markets[m].perp for m in ("ETH", "BTC"))
    legs = [PerpLeg("ETH", decision.base_change_x18_a / ONE_X18, eth.mark_price_x18 / ONE_X18, eth.index_price_x18 / ONE_X18, 0.1),
            PerpLeg("BTC", decision.base_change_x18_b / ONE_X18, btc.mark_price_x18 / ONE_X18, btc.index_price_x18 / ONE_X18, 0.1)]
    fee = sum(abs(leg.size_base) * leg.mark_usd for leg in legs) * 0.001
    ratios = []
    for shock_a, shock_b in pair_shock_grid(STRESS):
        value, exposure = value_usd - fee, 0.0
        for leg, shock in zip(legs, (shock_a, shock_b)):
            mark = stressed_mark(leg, shock)
            funding = abs(leg.size_base) * mark * STRESS.funding_apr * STRESS.hold_s / (365 * 86_400) if shock.adverse_funding else 0
            value += leg.size_base * (mark - leg.mark_usd) - funding
            exposure += abs(leg.size_base) * mark
        ratios.append(value / exposure)
    return ratios


def test_given_a_small_account_when_sizing_then_the_stress_rule_binds_and_holds_under_every_shock() -> None:
    pctx = pair_context(+0.02, value_usd=2_000.0, max_leverage=50.0)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent) and "stress binds" in decision.reason, decision
    assert min(stressed_ratios(decision, pctx, 2_000.0)) >= limits().min_margin_ratio * (1 - 1e-6)


def with_marks_above_vamm(pctx: PairContext, ratio: float) -> PairContext:
    """The same tick with each market's mark `ratio` x what it was (vAMMs unchanged)."""
    snap = pctx.ctx.snapshot
    markets = {m: dataclasses.replace(v, perp=dataclasses.replace(v.perp, mark_price_x18=int(v.perp.mark_price_x18 * ratio)))
               for m, v in snap.markets.items()}
    return dataclasses.replace(pctx, ctx=dataclasses.replace(pctx.ctx, snapshot=dataclasses.replace(snap, markets=markets)))


def test_given_marks_above_the_vamms_when_sizing_then_the_leverage_and_stress_caps_hold_at_the_mark() -> None:
    # Given a $20,000 account at 3x and deep vAMMs (leverage binds), the marks 3% above the vAMMs
    pctx = with_marks_above_vamm(with_vamm_depth(pair_context(+0.02, value_usd=20_000.0, max_leverage=3.0), 40), 1.03)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent) and "leverage binds" in decision.reason, decision
    markets = pctx.ctx.snapshot.markets
    exposure = sum(abs(base) * markets[m].perp.mark_price_x18 / ONE_X18**2
                   for base, m in ((decision.base_change_x18_a, "ETH"), (decision.base_change_x18_b, "BTC")))
    # Then the position at the mark is within the account's leverage (legs sized at the vAMM)
    assert 3.0 * 20_000.0 * 0.98 < exposure <= 3.0 * 20_000.0 * (1 + 1e-9)
    # and given a small account (the stress rule binds), every shock keeps the guard at the mark
    small = with_marks_above_vamm(pair_context(+0.02, value_usd=2_000.0, max_leverage=50.0), 1.03)
    stressed = strategy().decide_pair(small)
    assert isinstance(stressed, PairIntent) and "stress binds" in stressed.reason, stressed
    assert min(stressed_ratios(stressed, small, 2_000.0)) >= limits().min_margin_ratio * (1 - 1e-6)


def notional_a_usd(decision: PairIntent, pctx: PairContext) -> float:
    eth = pctx.ctx.snapshot.markets["ETH"].perp
    return abs(decision.base_change_x18_a) * perp_price_from_sqrt_x96(eth.pool.sqrt_price_x96) / ONE_X18**2


def with_vamm_depth(pctx: PairContext, factor: float) -> PairContext:
    """The same tick with both vAMMs' liquidity scaled by `factor` (same prices)."""
    snap = pctx.ctx.snapshot
    markets = {m: dataclasses.replace(v, perp=dataclasses.replace(v.perp, pool=dataclasses.replace(
        v.perp.pool, liquidity=int(v.perp.pool.liquidity * factor)))) for m, v in snap.markets.items()}
    return dataclasses.replace(pctx, ctx=dataclasses.replace(pctx.ctx, snapshot=dataclasses.replace(snap, markets=markets)))


def test_given_an_edge_that_grows_with_size_when_sizing_then_it_trades_up_to_the_cap_that_binds() -> None:
    # 2% of convergence against ~0.4% of round-trip fees and deep vAMMs: every dollar adds to the net
    pctx = with_vamm_depth(pair_context(+0.02), 40)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent), decision
    assert notional_a_usd(decision, pctx) > 5 * 20_000.0  # well above notional_usd, the search's low end
    assert "at the top" in decision.reason and "binds" in decision.reason
    fit = decision.fit
    assert fit is not None
    at_low = strategy()._evaluate(pctx.ctx, fit, "short_spread", 20_000.0)
    assert decision.expected.net_usd > at_low.net_usd > 0
    # max_notional_usd caps it: the old fixed size
    capped = strategy(max_notional_usd=20_000.0).decide_pair(pctx)
    assert isinstance(capped, PairIntent) and "max_notional_usd binds" in capped.reason, capped
    assert notional_a_usd(capped, pctx) == pytest.approx(20_000.0, rel=1e-6)


def test_given_vamms_whose_impact_grows_with_size_when_sizing_then_it_stops_where_the_impact_eats_the_edge() -> None:
    pctx = with_vamm_depth(pair_context(+0.02), 4)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent) and decision.fit is not None, decision
    eth, btc = (pctx.ctx.snapshot.markets[m].perp for m in ("ETH", "BTC"))
    top, _ = strategy()._size_usd(pctx.ctx, decision.fit.beta, "short_spread", eth, btc)
    chosen = notional_a_usd(decision, pctx)
    assert 1.5 * 20_000.0 < chosen < 0.5 * top  # inside the range: neither the low end nor the cap
    for other in (20_000.0, top, chosen * 1.2, chosen / 1.2):  # within the search's tolerance of the best
        evaluated = strategy()._evaluate(pctx.ctx, decision.fit, "short_spread", other)
        assert evaluated.net_usd <= decision.expected.net_usd * (1 + 1e-3)


def test_given_the_stress_scale_when_legs_diverge_then_it_is_below_a_common_move_cap() -> None:
    unit_a = PerpLeg("ETH", -1 / 3000, 3000.0, 3000.0, 0.1)
    unit_b = PerpLeg("BTC", 1 / 60_000, 60_000.0, 60_000.0, 0.1)
    scale, binding = max_pair_scale_usd(10_000.0, [], unit_a, unit_b, 0.001, STRESS, 0.1)
    assert 0 < scale < 10_000 / 0.1 and binding is not None and "A:" in binding
    assert max_pair_scale_usd(10_000.0, [], unit_a, unit_b, 0.001, STRESS, 0.1 * 2)[0] < scale  # a higher guard: smaller


def test_given_beta_and_prices_when_sizing_then_ints_round_down_and_are_signed_by_side() -> None:
    a, b = beta_neutral_sizes_x18(10_000.0, 3000 * ONE_X18, 60_000 * ONE_X18, ONE_X18 * 3 // 2, long_a=True)
    assert a == 10_000 * ONE_X18 * ONE_X18 // (3000 * ONE_X18) and b == -(a * 3000 * 3 // 2 // 60_000)
    assert beta_neutral_sizes_x18(0.0, 1, 1, 1, True) == (0, 0)
