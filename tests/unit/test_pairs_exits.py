"""pairs_spread's exits on snapshots (strategies/pairs_spread.py): reverted on the position's own
model, held while the spread is wide, the edge spent (remaining convergence plus funding less the
capital cost, the close's cost not counted), the thesis broken, the margin guard. Fixtures:
tests/unit/test_pairs_spread.py."""

from __future__ import annotations

import dataclasses
import math

import pytest

from keeper.pairs_types import PairIntent, PairPosition
from keeper.types import ONE_X18, PerpAccountState, PerpMarketState
from strategies.base import Skip, StrategyContext
from strategies.pairs_spread import PairContext, pair_funding_usd
from tests.unit.test_pairs_spread import BTC_USD, ETH_USD, NOW, pair_context, strategy, views
from tests.unit.test_pnl_model import costs, limits, snapshot_of


def held_pair(pctx_shift_at_entry: float = 0.02) -> PairPosition:
    """A short spread entered when ETH was 2% rich: model beta 1, mean log(3000/60000), scale 0.0005."""
    return PairPosition(1, "ETH", "BTC", "short_spread", -6 * ONE_X18, 3 * ONE_X18 // 10, ONE_X18, 900, NOW - 600,
                        1.0, pctx_shift_at_entry / 0.0005, math.log(ETH_USD / BTC_USD) + pctx_shift_at_entry, 0,
                        math.log(ETH_USD / BTC_USD), 0.0005)


def test_given_the_spread_back_at_its_entry_mean_when_deciding_then_it_closes_as_reverted() -> None:
    decision = strategy().decide_pair(pair_context(0.0, held=held_pair()))
    assert isinstance(decision, PairIntent) and decision.kind == "close" and decision.reason.startswith("reverted")


def test_given_the_spread_still_wide_when_deciding_then_it_holds() -> None:
    decision = strategy().decide_pair(pair_context(+0.015, held=held_pair()))
    assert isinstance(decision, Skip) and decision.reason.startswith("hold short_spread")


def with_eth_funding(pctx: PairContext, market_twap_gap: float) -> PairContext:
    """The same tick with ETH's market TWAP `market_twap_gap` (fraction) off its index TWAP: funding
    (< 0: shorts pay longs)."""
    snap = pctx.ctx.snapshot
    eth = snap.markets["ETH"]
    assert isinstance(eth.perp, PerpMarketState)
    perp = dataclasses.replace(eth.perp, market_twap_x18=int(eth.perp.index_twap_x18 * (1 + market_twap_gap)))
    markets = {**snap.markets, "ETH": dataclasses.replace(eth, perp=perp)}
    ctx = dataclasses.replace(pctx.ctx, snapshot=dataclasses.replace(snap, markets=markets))
    return dataclasses.replace(pctx, ctx=ctx)


def test_given_a_small_edge_left_below_the_close_cost_when_deciding_then_it_holds_since_the_close_is_paid_anyway() -> None:
    # z 1.8 on the entry model, exit band 0.5, scale 5 bps: 6.5 bps of the 18,000 USD leg A left (~12 USD),
    # less than the close's fees alone (~36 USD); closing now or at the band pays the same close: hold
    pctx = pair_context(+0.0009, held=held_pair())
    decision = strategy(exit_z=0.5).decide_pair(pctx)
    assert isinstance(decision, Skip) and decision.reason.startswith("hold short_spread"), decision


def test_given_adverse_funding_above_the_edge_left_when_deciding_then_it_closes_as_edge_spent() -> None:
    # the same ~12 USD left; ETH's funding now makes the short A leg pay 5%/day of 18,000 USD over the
    # 3,000 s left of hold_s (~31 USD): the remaining edge is negative
    pctx = with_eth_funding(pair_context(+0.0009, held=held_pair()), -0.05)
    decision = strategy(exit_z=0.5).decide_pair(pctx)
    assert isinstance(decision, PairIntent) and decision.reason.startswith("edge spent"), decision
    assert "funding -" in decision.reason and "3000 s left" in decision.reason
    # held past hold_s, nothing is left to pay: it holds for the convergence (max_hold_s still applies)
    late = strategy(exit_z=0.5, hold_s=600.0).decide_pair(pctx)
    assert isinstance(late, Skip) and late.reason.startswith("hold short_spread"), late


def test_given_funding_when_forecasting_the_pair_then_the_sign_follows_the_side() -> None:
    eth, btc = views()
    assert isinstance(eth.perp, PerpMarketState) and isinstance(btc.perp, PerpMarketState)
    longs_pay = dataclasses.replace(eth.perp, market_twap_x18=eth.perp.index_twap_x18 * 101 // 100)
    assert pair_funding_usd(longs_pay, btc.perp, "long_spread", 10_000.0, 10_000.0, 86_400.0) == pytest.approx(-100.0)
    assert pair_funding_usd(longs_pay, btc.perp, "short_spread", 10_000.0, 10_000.0, 86_400.0) == pytest.approx(100.0)
    assert pair_funding_usd(btc.perp, longs_pay, "short_spread", 10_000.0, 10_000.0, 86_400.0) == pytest.approx(-100.0)


def test_given_the_correlation_broken_when_deciding_then_it_closes_as_thesis_broken() -> None:
    decision = strategy().decide_pair(pair_context(+0.015, held=held_pair(), common=False))
    assert isinstance(decision, PairIntent) and decision.kind == "close" and "thesis broken" in decision.reason


def test_given_the_margin_guard_when_deciding_then_the_pair_closes_and_nothing_opens() -> None:
    pctx = pair_context(+0.02)
    low = PerpAccountState("0x" + "33" * 20, 5 * ONE_X18, 0, 100 * ONE_X18, 0, {})
    ctx = StrategyContext(snapshot=snapshot_of(*pctx.ctx.snapshot.markets.values(), account=low), signals={},
                          positions={}, costs=costs(), limits=limits())
    opened = strategy().decide_pair(PairContext(ctx, pctx.times_s, pctx.log_a, pctx.log_b))
    assert isinstance(opened, Skip) and "margin ratio" in opened.reason
    closed = strategy().decide_pair(PairContext(ctx, pctx.times_s, pctx.log_a, pctx.log_b, held_pair()))
    assert isinstance(closed, PairIntent) and closed.kind == "close" and closed.reason.startswith("risk")
