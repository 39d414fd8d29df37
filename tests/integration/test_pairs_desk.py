"""The pair desk on the devnet: a pairs_spread open planned from a snapshot (exact quotes, bounds at
execution.slippage_bps) goes out as ONE openPair through the live executor's sender, and the
chain's fills equal the predicted ones to the wei (journaled with the bounds); the close likewise,
and the pair's books match the Perp account. A market moved by another trader between planning
and sending makes the leg's bound refuse: nothing is sent, nothing changes, no pair is booked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keeper.chain.keys import Signer
from keeper.collect import SnapshotCollector
from keeper.config import load_config
from keeper.execute import DryRunExecutor
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.txs import codec
from keeper.journal import Journal
from keeper.pairs_desk import PairDesk
from keeper.pairs_journal import PairJournal, pairs_pnl
from keeper.pairs_plan import plan_pair
from keeper.pairs_types import PairIntent, SpreadFit
from keeper.status import build_status
from keeper.venues.gas import PAIR_GAS_UNITS
from keeper.types import MarketSnapshot, PerpAccountState, PerpMarketState, PnlEstimate, perp_price_from_sqrt_x96
from strategies import PairsSpread
from strategies.pairs_math import beta_neutral_sizes_x18

from .conftest import Devnet
from .test_execution_pipeline import live  # noqa: F401 - the fixture

ETH = 10**18
BETA_X18 = 1_020_000_000_000_000_000


@pytest.fixture()
def desk(live: Any, tmp_path: Path) -> Iterator[tuple[Devnet, PairDesk, SnapshotCollector, Signer]]:
    """A funded executor operated by a throwaway key (test_execution_pipeline's `live`) and a desk on it."""
    devnet, executor, live_executor, collector, _, signer = live
    config = load_config(None, environ={}, overrides={"execution": {"slippage_bps": 30},
                                                      "strategies": {"enabled": ["pairs_spread"]}})
    with Journal(tmp_path / "journal.sqlite") as journal:
        yield devnet, PairDesk(PairsSpread(), config, executor, live_executor, PairJournal(journal),
                               devnet.contract("ClearingHouse")), collector, signer


def open_intent(snapshot: MarketSnapshot, notional_usd: float = 20_000.0, long_a: bool = False) -> PairIntent:
    eth, btc = snapshot.markets["ETH"].perp, snapshot.markets["BTC"].perp
    assert isinstance(eth, PerpMarketState) and isinstance(btc, PerpMarketState)
    a, b = beta_neutral_sizes_x18(notional_usd, perp_price_from_sqrt_x96(eth.pool.sqrt_price_x96),
                                  perp_price_from_sqrt_x96(btc.pool.sqrt_price_x96), BETA_X18, long_a)
    fit = SpreadFit(1.02, -2.9, 0.002, 0.95, 30, -2.894, 3.0)
    return PairIntent("pairs_spread", "open", "ETH", "BTC", "long_spread" if long_a else "short_spread", a, b, BETA_X18,
                      "test", PnlEstimate(500.0, 0, 0, 0, 0, 0), snapshot.block_number, snapshot.block_number + 2, fit)


def chain_positions(collector: SnapshotCollector) -> tuple[int, int, int]:
    account = collector.fetch_snapshot().account
    assert isinstance(account, PerpAccountState)
    return account.markets["ETH"].position_size_x18, account.markets["BTC"].position_size_x18, account.account_value_x18


def test_a_pair_open_and_close_fill_exactly_as_planned_in_one_transaction_each(desk: Any) -> None:
    devnet, pair_desk, collector, _ = desk
    snapshot = collector.fetch_snapshot()
    value_before = chain_positions(collector)[2]
    intent = open_intent(snapshot)
    plan = plan_pair(pair_desk.config, pair_desk.executor_address, intent, snapshot, None)
    # the bounds are computed from the exact quote: each leg's Perp bound and the net-exposure bound
    assert plan.function == "openPair" and plan.bounds.max_net_exposure_quote_x18 > abs(plan.quote.predicted.net_exposure_quote_x18)

    opened = pair_desk._execute(plan, snapshot, None)

    assert opened["status"] == "included" and opened["fills_equal_predicted"] is True
    (trade,) = pair_desk.book.trades()
    fills = {k: int(v) for k, v in json.loads(trade["fills"]).items()}
    assert fills == {k: int(v) for k, v in json.loads(trade["predicted"]).items()}  # to the wei, journaled
    assert int(json.loads(trade["bounds"])["max_net_exposure_quote_x18"]) == plan.bounds.max_net_exposure_quote_x18
    assert chain_positions(collector)[:2] == (intent.base_change_x18_a, intent.base_change_x18_b)
    held = pair_desk.position()
    assert held is not None and held.base_x18_a == intent.base_change_x18_a and held.entry_beta == 1.02

    # the close, planned on the next snapshot: both legs flat in one closePair, exactly as quoted
    snapshot = collector.fetch_snapshot()
    close = PairIntent("pairs_spread", "close", "ETH", "BTC", held.side, 0, 0, held.hedge_ratio_x18, "test close",
                       PnlEstimate(0, 0, 0, 0, 0, 0), snapshot.block_number, snapshot.block_number + 2)
    plan = plan_pair(pair_desk.config, pair_desk.executor_address, close, snapshot, held)
    closed = pair_desk._execute(plan, snapshot, held)
    assert plan.function == "closePair" and closed["status"] == "included" and closed["fills_equal_predicted"] is True
    eth, btc, value_after = chain_positions(collector)
    assert (eth, btc) == (0, 0) and pair_desk.position() is None
    # the pair's books are what the Perp account lost or gained (gas is the owner's, in ETH), to
    # getAccountValue's precision (it rounds down to USDC's 6 decimals; the simulation's ledger,
    # which reads the parts, checks it exactly)
    split = pairs_pnl(pair_desk.book.journal)
    assert 0 <= (split.total_x18 + split.gas_x18) - (value_after - value_before) < 10**12
    assert split.fees_x18 > 0 and split.total_x18 < 0  # no edge on a quiet devnet: fees and impact


def test_a_moved_market_breaks_a_legs_bound_and_nothing_is_sent_or_booked(desk: Any) -> None:
    devnet, pair_desk, collector, signer = desk
    snapshot = collector.fetch_snapshot()
    plan = plan_pair(pair_desk.config, pair_desk.executor_address, open_intent(snapshot), snapshot, None)
    before = chain_positions(collector)
    nonce_before = int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16)
    # Another trader shorts 300 vETH first: our short ETH leg now gets less quote than its bound.
    trader = devnet.manifest.accounts.traders[0]
    devnet.tx.call_fn(trader, devnet.contract("ClearingHouse"), codec("ClearingHouse"), "openPosition",
                      (devnet.manifest.market("ETH").base_token, True, True, 300 * ETH, 0, DEADLINE_NEVER, 0, b"\0" * 32))

    outcome = pair_desk._execute(plan, snapshot, None)

    assert outcome["status"] == "simulation_reverted"
    (trade,) = pair_desk.book.trades()
    assert trade["status"] == "simulation_reverted" and "CH_TLRS" in trade["detail"]  # Perp's min-quote-out bound
    assert int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16) == nonce_before
    assert chain_positions(collector)[:2] == before[:2] == (0, 0)
    assert pair_desk.position() is None
    # and the same plan at 0 bps on the moved market, re-planned, fills exactly (the bound is what refused)
    moved = collector.fetch_snapshot()
    replanned = plan_pair(pair_desk.config, pair_desk.executor_address, open_intent(moved), moved, None, slippage_bps=0)
    assert pair_desk._execute(replanned, moved, None)["fills_equal_predicted"] is True
    assert replanned.quote.predicted.perp_quote_x18_a < plan.quote.predicted.perp_quote_x18_a  # less quote for the short


def test_a_dry_run_pair_reports_the_exact_would_be_fills_and_sends_nothing(live: Any, tmp_path: Path) -> None:
    devnet, executor, _, collector, _, signer = live
    config = load_config(None, environ={}, overrides={"strategies": {"enabled": ["pairs_spread"]}})
    with Journal(tmp_path / "journal.sqlite") as journal:
        dry = PairDesk(PairsSpread(), config, executor, DryRunExecutor(devnet.rpc, signer.address), PairJournal(journal),
                       devnet.contract("ClearingHouse"))
        snapshot = collector.fetch_snapshot()
        nonce_before = int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16)
        plan = plan_pair(config, executor, open_intent(snapshot, long_a=True), snapshot, None)
        outcome = dry._execute(plan, snapshot, None)
        assert outcome["status"] == "dry_run" and outcome["fills_equal_predicted"] is True
        held = dry.position()
        assert held is not None and held.base_x18_a == plan.quote.predicted.position_base_x18_after_a > 0
        assert set(dry.held_markets()) == {"ETH", "BTC"}
        assert int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16) == nonce_before
        assert chain_positions(collector)[:2] == (0, 0) and dry.book.trades() == []  # nothing sent, nothing booked


def test_the_gas_table_covers_what_open_pair_and_close_pair_use_on_chain(desk: Any) -> None:
    """keeper/venues/gas.py's pair rows against the chain: two open/close cycles on a fresh executor
    (the first one deposits and touches cold storage); every transaction within the upper column,
    the warm cycle at most 10% above the typical one (an estimate for the gate, not a bound: the warm
    open's gas moves with the ticks the legs cross, 1.53-1.61M as measured)."""
    _, pair_desk, collector, _ = desk
    used: list[tuple[str, int]] = []
    for _cycle in range(2):
        snapshot = collector.fetch_snapshot()
        plan = plan_pair(pair_desk.config, pair_desk.executor_address, open_intent(snapshot), snapshot, None)
        assert plan.gas_units == PAIR_GAS_UNITS["open"].typical  # the planner's gate charges the table's row
        assert pair_desk._execute(plan, snapshot, None)["status"] == "included"
        held = pair_desk.position()
        assert held is not None
        snapshot = collector.fetch_snapshot()
        close = PairIntent("pairs_spread", "close", "ETH", "BTC", held.side, 0, 0, held.hedge_ratio_x18, "test close",
                           PnlEstimate(0, 0, 0, 0, 0, 0), snapshot.block_number, snapshot.block_number + 2)
        plan = plan_pair(pair_desk.config, pair_desk.executor_address, close, snapshot, held)
        assert pair_desk._execute(plan, snapshot, held)["status"] == "included"
    used = [(str(t["kind"]), int(t["gas_used"])) for t in pair_desk.book.trades()]
    print("pair gas used:", used)
    assert [kind for kind, _ in used] == ["open", "close", "open", "close"]
    for kind, gas in used:
        assert 0 < gas <= PAIR_GAS_UNITS[kind].upper
    for kind, gas in used[2:]:
        assert gas <= PAIR_GAS_UNITS[kind].typical * 11 // 10


def test_keeper_status_lists_the_open_pair_matching_the_chain_and_values_it_at_the_exact_close(
        desk: Any, tmp_path: Path) -> None:
    devnet, pair_desk, collector, _ = desk
    snapshot = collector.fetch_snapshot()
    plan = plan_pair(pair_desk.config, pair_desk.executor_address, open_intent(snapshot), snapshot, None)
    assert pair_desk._execute(plan, snapshot, None)["status"] == "included"
    config = devnet.keeper_config(tmp_path, account={"executor": pair_desk.executor_address})

    view = build_status(config)

    # the chain holds exactly the pair's legs: no mismatch, although no basis position is open
    assert view.chain_checked.startswith("yes") and view.mismatches == ()
    (pair,) = view.pairs
    held = pair_desk.position()
    assert held is not None and (pair.base_x18_a, pair.base_x18_b) == (held.base_x18_a, held.base_x18_b)
    assert pair.unrealised_x18 is not None and f"pair {held.pair_id} short_spread ETH/BTC" in view.as_text()
    # closing now books exactly that, less the close's own gas and the funding it settles
    snapshot = collector.fetch_snapshot()
    close = PairIntent("pairs_spread", "close", "ETH", "BTC", held.side, 0, 0, held.hedge_ratio_x18, "test close",
                       PnlEstimate(0, 0, 0, 0, 0, 0), snapshot.block_number, snapshot.block_number + 2)
    closed = pair_desk._execute(plan_pair(pair_desk.config, pair_desk.executor_address, close, snapshot, held),
                                snapshot, held)
    assert closed["fills_equal_predicted"] is True
    (_, close_trade) = pair_desk.book.trades()
    split = pairs_pnl(pair_desk.book.journal)
    assert split.total_x18 + int(close_trade["gas_x18"]) + int(close_trade["settled_funding_x18"]) == pair.unrealised_x18
