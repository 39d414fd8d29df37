"""The journal: exact round trips of every record with huge ints, the position lifecycle, a PnL
split that sums exactly, reconcile (the chain wins), crash safety under SIGKILL, schema versions."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.errors import ConfigError
from keeper.journal import (
    CLOSED_NOT_ON_CHAIN,
    SCHEMA_VERSION,
    ChainPosition,
    Journal,
    JournalError,
    JournalSchemaError,
    ReconcileDifference,
)
from keeper.pnl_split import (
    PnlSplit,
    PnlSplitMismatch,
    TradeFees,
    compute_gas_usd_x18,
    compute_pnl_split,
    compute_spot_fee_x18,
)
from keeper.types import Direction, Intent, Outcome, PnlEstimate, PredictedFills, TxPlan

REPO = Path(__file__).resolve().parents[2]
E18 = 10**18
HUGE = 2**200
INT256_MIN = -(2**255)
ETH_PRICE_X18 = 3_000 * E18
EXECUTOR = "0x00000000000000000000000000000000000000e7"


# ------------------------------------------------------------------------------ builders
def make_intent(kind: str = "open", market: str = "ETH", direction: Direction = Direction.SHORT_PERP,
                perp_base_x18: int = E18, block: int = 100) -> Intent:
    return Intent(strategy="carry", kind=kind, market=market, direction=direction, spot_venue="uniswap_v3",
                  perp_base_x18=perp_base_x18, reason=f"{kind}: basis 42.5 bps, z 2.1",
                  expected=PnlEstimate(12.5, 3.25, 1.5, 0.75, 0.5, 0.125), created_block=block,
                  valid_until_block=block + 3)


def make_fills(perp_base_x18: int = -E18, net_quote_x18: int = 5 * E18, spot_raw: int | None = None,
               usdc_raw: int = -2_995_000_000) -> PredictedFills:
    spot = -perp_base_x18 if spot_raw is None else spot_raw
    perp_quote = net_quote_x18 - usdc_raw * 10**12
    return PredictedFills(perp_base_x18=perp_base_x18, perp_quote_x18=perp_quote, spot_raw=spot, usdc_raw=usdc_raw,
                          residual_base_x18=perp_base_x18 + spot, net_quote_x18=net_quote_x18)


def make_plan(intent: Intent, predicted: PredictedFills | None = None, min_net_quote_x18: int = 0) -> TxPlan:
    return TxPlan(intent=intent, to=EXECUTOR, calldata=bytes.fromhex("deadbeef") + bytes(64), value_wei=0,
                  predicted=predicted or make_fills(), perp_opposite_amount_bound_x18=2_990 * E18,
                  spot_limit_raw=2_999_000_000, max_residual_base_x18=10**12, min_net_quote_x18=min_net_quote_x18,
                  deadline_s=1_700_000_600, gas_limit=1_200_000, gas_cost_wei=1_200_000 * 10**9 * 30,
                  gas_cost_usd=0.108, expected_net_usd=15.0)


def included(plan: TxPlan, fills: PredictedFills, block: int, fee_paid_wei: int = 10**15,
             tx_hash: str = "0x" + "11" * 32) -> Outcome:
    return Outcome(plan, "included", tx_hash, block, 900_000, fee_paid_wei, fills, f"included in block {block}")


def trade(journal: Journal, kind: str, fills: PredictedFills, block: int, after_x18: int | None, *,
          fees: TradeFees = TradeFees(), settled_funding_x18: int = 0, fee_paid_wei: int = 10**15,
          eth_price_x18: int = ETH_PRICE_X18, market: str = "ETH", basis_bps: float | None = 42.5,
          direction: Direction = Direction.SHORT_PERP) -> tuple[int, int]:
    """Decide, send and settle one included trade; (decision id, tx id)."""
    intent = make_intent(kind, market=market, perp_base_x18=abs(fills.perp_base_x18) or E18, block=block,
                         direction=direction)
    decision_id = journal.record_decision(intent, block=block, timestamp_s=1_700_000_000 + block, basis_bps=basis_bps,
                                          inputs={"basis_bps": basis_bps, "z": 2.1})
    tx_hash = "0x" + f"{decision_id:064x}"
    tx_id = journal.record_tx_sent(decision_id, make_plan(intent, fills), tx_hash=tx_hash, nonce=decision_id,
                                   sent_block=block, eth_price_x18=eth_price_x18)
    journal.record_tx_outcome(tx_id, included(make_plan(intent, fills), fills, block + 1, fee_paid_wei, tx_hash),
                              block_timestamp_s=1_700_000_001 + block, position_base_after_x18=after_x18, fees=fees,
                              settled_funding_x18=settled_funding_x18)
    return decision_id, tx_id


@pytest.fixture()
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


# ------------------------------------------------------------------------------ round trips
def test_decision_round_trips_huge_ints_json_inputs_and_its_skip(journal: Journal) -> None:
    # Given an intent bigger than 64 bits and inputs holding a huge int
    intent = make_intent(perp_base_x18=HUGE)
    inputs = {"basis_bps": 42.5, "z": -1.75, "funding_x18": -HUGE, "venue": "uniswap_v3"}
    decision_id = journal.record_decision(intent, block=7, timestamp_s=1_700_000_007, basis_bps=42.5, inputs=inputs)
    # When it is read back
    d = journal.decision(decision_id)
    # Then every field is exact
    assert (d.block, d.timestamp_s, d.strategy, d.market, d.kind) == (7, 1_700_000_007, "carry", "ETH", "open")
    assert d.direction is Direction.SHORT_PERP and d.spot_venue == "uniswap_v3"
    assert d.perp_base_x18 == HUGE and type(d.perp_base_x18) is int
    assert d.expected == intent.expected and d.inputs == inputs and d.basis_bps == 42.5
    assert (d.reason, d.status, d.created_block, d.valid_until_block) == (intent.reason, "planned", 100, 103)
    # And skipping it records the reason; a skipped decision cannot be skipped (or sent) again
    journal.record_skip(block=7, strategy="carry", market="ETH", reason="risk: exposure cap", decision_id=decision_id)
    assert (journal.decision(decision_id).status, journal.decision(decision_id).status_reason) == \
        ("skipped", "risk: exposure cap")
    with pytest.raises(JournalError, match="skipped"):
        journal.record_tx_sent(decision_id, make_plan(intent), tx_hash="0x01", nonce=0, sent_block=7)
    # And a strategy's "no trade" is a decision of its own, without an intent
    no_trade = journal.decision(journal.record_skip(block=8, strategy="carry", market="BTC", reason="basis 3 bps < 10"))
    assert (no_trade.kind, no_trade.status, no_trade.reason, no_trade.expected) == \
        (None, "skipped", "basis 3 bps < 10", None)


def test_transaction_round_trips_bounds_predicted_fills_and_a_revert(journal: Journal) -> None:
    # Given a plan with int256-extreme bounds and predicted fills beyond 64 bits, sent
    predicted = PredictedFills(-HUGE, HUGE + 1, HUGE - 1, -(2**190), -5, INT256_MIN)
    intent = make_intent()
    plan = make_plan(intent, predicted, min_net_quote_x18=INT256_MIN)
    decision_id = journal.record_decision(intent, block=10, timestamp_s=1_700_000_010)
    tx_id = journal.record_tx_sent(decision_id, plan, tx_hash="0xaa", nonce=41, sent_block=10,
                                   eth_price_x18=2_500 * E18 + 1)
    assert [t.id for t in journal.pending_transactions()] == [tx_id]
    assert journal.decision(decision_id).status == "sent"
    # When it is replaced by a fee bump and the replacement reverts
    fee_paid_wei = 2**70 + 3
    journal.record_tx_outcome(tx_id, Outcome(plan, "reverted", "0xbb", 12, 812_345, fee_paid_wei, None,
                                             "ProfitBelowMin(-3, 0)"),
                              block_timestamp_s=1_700_000_012, attempt_hashes=("0xaa", "0xbb"))
    # Then the record is exact, with the gas valued at the ETH price sent with it, rounded up
    t = journal.transaction(tx_id)
    assert (t.status, t.tx_hash, t.attempt_hashes, t.nonce, t.sent_block, t.block_number) == \
        ("reverted", "0xbb", ("0xaa", "0xbb"), 41, 10, 12)
    assert (t.gas_used, t.fee_paid_wei, t.eth_price_x18) == (812_345, fee_paid_wei, 2_500 * E18 + 1)
    assert t.gas_usd_x18 == -(-fee_paid_wei * (2_500 * E18 + 1) // E18)
    assert t.predicted == predicted and t.calldata == plan.calldata and t.to == EXECUTOR
    assert t.bounds.min_net_quote_x18 == INT256_MIN
    assert (t.bounds.perp_opposite_amount_bound_x18, t.bounds.spot_limit_raw, t.bounds.max_residual_base_x18,
            t.bounds.deadline_s, t.bounds.gas_limit, t.bounds.gas_cost_wei) == \
        (plan.perp_opposite_amount_bound_x18, plan.spot_limit_raw, plan.max_residual_base_x18, plan.deadline_s,
         plan.gas_limit, plan.gas_cost_wei)
    assert t.revert_reason == "ProfitBelowMin(-3, 0)" and journal.pending_transactions() == []
    # And a settled transaction cannot be settled again
    with pytest.raises(JournalError, match="already settled"):
        journal.record_tx_outcome(tx_id, Outcome(plan, "dropped", None, None, 0, 0, None, ""))


def test_dry_run_and_simulation_revert_outcomes_are_recorded_without_touching_positions(journal: Journal) -> None:
    intent = make_intent()
    plan = make_plan(intent)
    dry = journal.record_decision(intent, block=1, timestamp_s=1)
    tx_dry = journal.record_outcome(dry, Outcome(plan, "dry_run", None, None, 0, 0, make_fills(), "would open ETH"))
    reverted = journal.record_decision(intent, block=2, timestamp_s=2)
    tx_rev = journal.record_outcome(reverted, Outcome(plan, "simulation_reverted", None, None, 0, 0, None,
                                                      "ResidualDeltaTooLarge(5, 1)"))
    assert (journal.decision(dry).status, journal.decision(dry).status_reason) == ("dry_run", "would open ETH")
    assert (journal.decision(reverted).status, journal.decision(reverted).status_reason) == \
        ("skipped", "simulation reverted: ResidualDeltaTooLarge(5, 1)")
    assert [journal.transaction(t).status for t in (tx_dry, tx_rev)] == ["dry_run", "simulation_reverted"]
    assert journal.open_positions() == {} and journal.pending_transactions() == []


def test_fills_and_funding_round_trip_huge_and_negative_values(journal: Journal) -> None:
    # Given an open whose fills exceed 64 bits, with fees and funding settled in the same tx
    fills = PredictedFills(-HUGE, HUGE * 3000, HUGE, -(HUGE * 3000 // 10**12), 0, -(2**201))
    fees = TradeFees(perp_fee_x18=2**199, spot_fee_x18=2**198 + 1)
    _, tx_id = trade(journal, "open", fills, 20, -HUGE, fees=fees, settled_funding_x18=-(2**150))
    journal.record_funding("ETH", block=30, pending_funding_x18=-HUGE, timestamp_s=1_700_000_030)
    journal.record_funding("BTC", block=30, pending_funding_x18=HUGE)
    # Then
    f = journal.fills(tx_id)
    assert f is not None
    assert (f.fills, f.fees, f.settled_funding_x18, f.position_base_after_x18) == (fills, fees, -(2**150), -HUGE)
    assert (f.event, f.spot_venue, f.block_number, f.market) == ("BasisOpened", "uniswap_v3", 21, "ETH")
    eth = journal.funding_history("ETH")
    assert [(r.kind, r.block, r.amount_x18) for r in eth] == [("settled", 21, -(2**150)), ("pending", 30, -HUGE)]
    assert eth[0].tx_id == tx_id and eth[1].position_id == f.position_id and eth[1].timestamp_s == 1_700_000_030
    assert [(r.amount_x18, r.position_id) for r in journal.funding_history("BTC")] == [(HUGE, None)]
    assert journal.open_positions()["ETH"].funding_paid_x18 == -(2**150) - HUGE


def test_amounts_must_be_ints_and_the_schema_refuses_non_canonical_text(journal: Journal, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pending_funding_x18 must be an int"):
        journal.record_funding("ETH", block=1, pending_funding_x18=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        journal.record_funding("ETH", block=1, pending_funding_x18=True)  # type: ignore[arg-type]
    raw = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        for bad in ("1.5", "1e18", "007", "-0", "-", "", "12a", " 12", 1.5, None):
            with pytest.raises(sqlite3.IntegrityError):
                raw.execute("INSERT INTO funding (market, block, kind, amount_x18, recorded_at_s) "
                            "VALUES ('ETH', 1, 'pending', ?, 0)", (bad,))
        raw.execute("INSERT INTO funding (market, block, kind, amount_x18, recorded_at_s) "
                    "VALUES ('ETH', 1, 'pending', ?, 0)", (str(-HUGE),))
        raw.rollback()
    finally:
        raw.close()


# ------------------------------------------------------------------------------ positions
def test_position_lifecycle_open_funding_resize_close(journal: Journal) -> None:
    # Given an open: short 2 ETH perp, long 2 WETH
    open_fills = make_fills(perp_base_x18=-2 * E18, net_quote_x18=8 * E18, usdc_raw=-5_990_000_000)
    open_decision, open_tx = trade(journal, "open", open_fills, 100, -2 * E18)
    position = journal.open_positions()["ETH"]
    assert (position.direction, position.perp_base_x18, position.spot_raw, position.net_quote_x18) == \
        (Direction.SHORT_PERP, -2 * E18, 2 * E18, 8 * E18)
    assert (position.entry_block, position.entry_timestamp_s, position.entry_basis_bps) == (101, 1_700_000_101, 42.5)
    position_id = journal.transaction(open_tx).position_id
    assert journal.decision(open_decision).position_id == position_id
    # When funding accrues, and a stale reading (older than the latest) arrives late
    journal.record_funding("ETH", block=150, pending_funding_x18=-3 * E18)
    journal.record_funding("ETH", block=140, pending_funding_x18=-1 * E18)
    assert journal.open_positions()["ETH"].funding_paid_x18 == -3 * E18
    # When it grows by 1 ETH (the trade settles the pending funding)
    grow = make_fills(perp_base_x18=-E18, net_quote_x18=3 * E18, usdc_raw=-2_996_000_000)
    trade(journal, "resize", grow, 200, -3 * E18, settled_funding_x18=-3 * E18 - 7)
    position = journal.open_positions()["ETH"]
    assert (position.perp_base_x18, position.spot_raw, position.net_quote_x18, position.funding_paid_x18) == \
        (-3 * E18, 3 * E18, 11 * E18, -3 * E18 - 7)
    # When it closes
    close = make_fills(perp_base_x18=3 * E18, net_quote_x18=-10 * E18, spot_raw=-3 * E18, usdc_raw=8_990_000_000)
    _, close_tx = trade(journal, "close", close, 300, 0, settled_funding_x18=-2 * E18)
    # Then it is closed, with its history and its realized PnL
    assert journal.open_positions() == {}
    record = journal.position(position_id)
    assert (record.status, record.close_reason, record.closed_block) == ("closed", f"closed by tx {close_tx}", 301)
    assert (record.position.perp_base_x18, record.position.spot_raw) == (0, 0)
    assert [e.kind for e in journal.position_events(position_id)] == ["open", "update", "update", "close"]
    assert [e.perp_base_x18 for e in journal.position_events(position_id)] == [-2 * E18, -3 * E18, 0, 0]
    realized = journal.realized(position_id)
    assert realized is not None and realized.complete and realized.split == record.pnl
    assert realized.split.trading_x18 == 8 * E18 + 3 * E18 - 10 * E18
    assert realized.split.funding_x18 == 5 * E18 + 7


def test_a_resize_that_disagrees_with_the_chain_takes_the_chain_size_and_logs_it(journal: Journal) -> None:
    _, _ = trade(journal, "open", make_fills(perp_base_x18=-E18), 10, -E18)
    # The event says the position is -2.5 ETH after a -1 ETH resize (the journal expected -2)
    _, tx_id = trade(journal, "resize", make_fills(perp_base_x18=-E18), 20, -5 * E18 // 2)
    assert journal.open_positions()["ETH"].perp_base_x18 == -5 * E18 // 2
    (difference,) = journal.reconcile_log()
    assert (difference.kind, difference.field, difference.journal_value, difference.chain_value, difference.action,
            difference.source) == ("size_mismatch", "perp_base_x18", -2 * E18, -5 * E18 // 2, "corrected",
                                   f"tx {tx_id}")


def test_a_tx_of_a_position_closed_meanwhile_leaves_its_realized_pnl_alone(journal: Journal) -> None:
    # Given a resize sent, then the position closed by reconcile before the resize settles
    trade(journal, "open", make_fills(), 10, -E18)
    intent = make_intent("resize")
    decision_id = journal.record_decision(intent, block=20, timestamp_s=20)
    tx_id = journal.record_tx_sent(decision_id, make_plan(intent), tx_hash="0xcc", nonce=9, sent_block=20,
                                   eth_price_x18=ETH_PRICE_X18)
    journal.reconcile({"ETH": ChainPosition(0)}, block=21)
    position_id = journal.positions("closed")[0].id
    realized_before = journal.realized(position_id)
    # When the resize reverts, paying gas
    journal.record_tx_outcome(tx_id, Outcome(make_plan(intent), "reverted", "0xcc", 22, 50_000, 10**15, None,
                                             "NoPosition"), block_timestamp_s=22)
    # Then the gas is the market's, not the closed position's
    assert journal.realized(position_id) == realized_before
    assert journal.transaction(tx_id).position_id is None
    assert journal.pnl_summary().markets["ETH"].unattributed.gas_x18 == compute_gas_usd_x18(10**15, ETH_PRICE_X18)


def test_an_open_while_the_journal_still_holds_a_position_closes_the_stale_one(journal: Journal) -> None:
    trade(journal, "open", make_fills(), 10, -E18)
    stale_id = journal.positions("open")[0].id
    _, tx_id = trade(journal, "open", make_fills(perp_base_x18=-2 * E18), 20, -2 * E18)
    stale = journal.position(stale_id)
    assert (stale.status, stale.close_reason) == ("closed", CLOSED_NOT_ON_CHAIN)
    assert journal.open_positions()["ETH"].perp_base_x18 == -2 * E18
    assert [(d.kind, d.journal_value, d.chain_value, d.source) for d in journal.reconcile_log()] == \
        [("journal_only", -E18, 0, f"tx {tx_id}")]


def test_an_included_trade_without_its_block_timestamp_writes_nothing(journal: Journal) -> None:
    # Given a sent open
    intent = make_intent()
    decision_id = journal.record_decision(intent, block=1, timestamp_s=1)
    tx_id = journal.record_tx_sent(decision_id, make_plan(intent), tx_hash="0xdd", nonce=0, sent_block=1,
                                   eth_price_x18=ETH_PRICE_X18)
    # When recording its inclusion fails half-way (the tx row was already updated)
    with pytest.raises(JournalError, match="block timestamp"):
        journal.record_tx_outcome(tx_id, included(make_plan(intent), make_fills(), 2, tx_hash="0xdd"))
    # Then the whole call rolled back: still pending, no fills, no position
    assert journal.transaction(tx_id).status == "pending"
    assert journal.fills(tx_id) is None and journal.open_positions() == {}


# ------------------------------------------------------------------------------ PnL split
def test_pnl_split_sums_exactly_on_hand_made_trades_funding_and_gas(journal: Journal) -> None:
    # Given a short-perp position opened, resized down, then closed, with odd-sized amounts
    nq = [7 * E18 + 123_456_789_012_345_679, -(E18 // 3), -(5 * E18 + 987_654_321)]
    fees = [TradeFees(1_500_000_000_000_000_001, 449_250_000_000_000_000), TradeFees(333, 0),
            TradeFees(2 * E18 + 1, 10**12)]
    settled = [0, -(E18 // 7), 4 * E18 + 11]  # negative: the position received funding
    gas_wei = [812_345 * 31 * 10**9 + 17, 210_001 * 29 * 10**9, 799_999 * 33 * 10**9 + 1]
    prices = [3_001 * E18 + 7, 2_999 * E18 + 13, 3_100 * E18 + 1]
    trade(journal, "open", make_fills(-3 * E18, nq[0]), 100, -3 * E18, fees=fees[0], fee_paid_wei=gas_wei[0],
          eth_price_x18=prices[0])
    journal.record_funding("ETH", block=150, pending_funding_x18=-(E18 // 7))
    trade(journal, "resize", make_fills(E18, nq[1], spot_raw=-E18, usdc_raw=2_999_000_000), 200, -2 * E18,
          fees=fees[1], settled_funding_x18=settled[1], fee_paid_wei=gas_wei[1], eth_price_x18=prices[1])
    # A reverted resize costs gas too
    intent = make_intent("resize")
    did = journal.record_decision(intent, block=250, timestamp_s=250)
    revert_gas_wei, revert_price = 55_555 * 10**9 + 5, 3_050 * E18 + 3
    tid = journal.record_tx_sent(did, make_plan(intent), tx_hash="0xee", nonce=77, sent_block=250,
                                 eth_price_x18=revert_price)
    journal.record_tx_outcome(tid, Outcome(make_plan(intent), "reverted", "0xee", 251, 55_555, revert_gas_wei, None,
                                           "SpotSlippage(1, 2)"), block_timestamp_s=251)
    journal.record_funding("ETH", block=280, pending_funding_x18=4 * E18)
    _, close_tx = trade(journal, "close", make_fills(2 * E18, nq[2], spot_raw=-2 * E18, usdc_raw=5_990_000_000), 300,
                        0, fees=fees[2], settled_funding_x18=settled[2], fee_paid_wei=gas_wei[2],
                        eth_price_x18=prices[2])
    # And a failed open in the same market (gas tied to no position)
    did = journal.record_decision(make_intent(), block=400, timestamp_s=400)
    tid = journal.record_tx_sent(did, make_plan(make_intent()), tx_hash="0xff", nonce=78, sent_block=400,
                                 eth_price_x18=ETH_PRICE_X18)
    journal.record_tx_outcome(tid, Outcome(make_plan(make_intent()), "reverted", "0xff", 401, 40_000, 10**15 + 1, None,
                                           "CH_TLRS"), block_timestamp_s=401)
    # When the PnL is computed by hand: gas per tx rounded up at its own ETH price
    gas_usd = [-(-w * p // E18) for w, p in zip(gas_wei + [revert_gas_wei], prices + [revert_price])]
    funding = -sum(settled)
    trading = sum(nq)
    fee_total = sum(f.perp_fee_x18 + f.spot_fee_x18 for f in fees)
    total = funding + trading - sum(gas_usd)
    # Then the journal's realized PnL is that, and its parts add up to it exactly
    position_id = journal.transaction(close_tx).position_id
    realized = journal.realized(position_id)
    assert realized is not None and realized.complete
    split = realized.split
    assert (split.funding_x18, split.fees_x18, split.gas_x18, split.trading_x18) == \
        (funding, fee_total, sum(gas_usd), trading)
    assert split.convergence_x18 == trading + fee_total
    assert split.total_x18 == total
    assert split.funding_x18 + split.convergence_x18 - split.fees_x18 - split.gas_x18 == total
    # And the summary adds the failed open's gas beside it
    market = journal.pnl_summary().markets["ETH"]
    failed_gas = compute_gas_usd_x18(10**15 + 1, ETH_PRICE_X18)
    assert market.realized == split and market.open == PnlSplit(0, 0, 0, 0, 0)
    assert market.unattributed == PnlSplit(0, 0, 0, failed_gas, -failed_gas)
    assert market.total.total_x18 == total - failed_gas and market.closed_positions == 1


def test_open_position_pnl_counts_pending_funding_and_gas_so_far(journal: Journal) -> None:
    trade(journal, "open", make_fills(-E18, 4 * E18), 10, -E18, fees=TradeFees(E18, 10**17), fee_paid_wei=10**15)
    journal.record_funding("ETH", block=20, pending_funding_x18=-(E18 // 2))
    gas = compute_gas_usd_x18(10**15, ETH_PRICE_X18)
    expected = PnlSplit(E18 // 2, 4 * E18 + E18 + 10**17, E18 + 10**17, gas, E18 // 2 + 4 * E18 - gas)
    assert journal.pnl_summary().markets["ETH"].open == expected
    assert journal.positions("open")[0].pnl == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**255), 2**255 - 1), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 2**200), st.integers(0, 2**200)), max_size=6),
       st.integers(-(2**255), 2**255 - 1), st.lists(st.integers(0, 2**200), max_size=6))
def test_pnl_split_always_sums_to_funding_plus_trading_minus_gas(net_quotes: list[int],
                                                                   fees: list[tuple[int, int]], funding_paid: int,
                                                                   gas: list[int]) -> None:
    split = compute_pnl_split(net_quotes, [TradeFees(*f) for f in fees], funding_paid, gas)
    assert split.total_x18 == -funding_paid + sum(net_quotes) - sum(gas)
    assert split.funding_x18 + split.convergence_x18 - split.fees_x18 - split.gas_x18 == split.total_x18
    assert split.trading_x18 == sum(net_quotes)


def test_a_split_that_does_not_sum_is_refused() -> None:
    with pytest.raises(PnlSplitMismatch, match="does not sum"):
        PnlSplit(funding_x18=1, convergence_x18=10, fees_x18=2, gas_x18=3, total_x18=7)
    with pytest.raises(TypeError):
        PnlSplit(1.0, 0, 0, 0, 1)  # type: ignore[arg-type]


def test_gas_and_spot_fee_conversions_round_up() -> None:
    assert compute_gas_usd_x18(10**15, 3_000 * E18) == 3 * E18
    assert compute_gas_usd_x18(1, 1) == 1  # 1e-18 of a cent still costs a unit
    assert compute_gas_usd_x18(0, 3_000 * E18) == 0
    # Buy: 3,000 USDC in at 0.05% -> 1.5 USDC, exactly
    assert compute_spot_fee_x18(spot_raw=E18, usdc_raw=-3_000_000_000, fee_pips=500) == 15 * 10**17
    # Sell: 1 WETH in at 0.3% -> 0.003 WETH, valued at the trade's 2,990 USDC per WETH
    assert compute_spot_fee_x18(spot_raw=-E18, usdc_raw=2_990_000_000, fee_pips=3_000) == 8_970 * 10**15
    # Sell of 3 raw units at 0.3%: the fee rounds up to one raw unit, valued at 1/3 of the proceeds
    assert compute_spot_fee_x18(spot_raw=-3, usdc_raw=1, fee_pips=3_000) == -(-(10**12) // 3)
    assert compute_spot_fee_x18(spot_raw=0, usdc_raw=0, fee_pips=500) == 0


# ------------------------------------------------------------------------------ reconcile
def test_reconcile_closes_a_position_the_chain_does_not_have(journal: Journal) -> None:
    # Given a journal position, with pending funding, that is gone on chain (liquidated, say)
    trade(journal, "open", make_fills(), 10, -E18)
    journal.record_funding("ETH", block=15, pending_funding_x18=E18 // 10)
    position_id = journal.positions("open")[0].id
    # When reconciling with a flat chain that still holds 0.9 WETH against it
    differences = journal.reconcile({"ETH": ChainPosition(0, spot_raw=9 * E18 // 10)}, block=20, timestamp_s=2_000)
    # Then it is closed as not on chain, both differences returned and logged
    assert differences == [
        ReconcileDifference("ETH", "journal_only", "perp_base_x18", -E18, 0, "closed", position_id, 20, "reconcile"),
        ReconcileDifference("ETH", "journal_only", "spot_raw", E18, 9 * E18 // 10, "closed", position_id, 20,
                            "reconcile"),
    ]
    assert journal.reconcile_log() == differences
    record = journal.position(position_id)
    assert (record.status, record.close_reason, record.closed_block) == ("closed", CLOSED_NOT_ON_CHAIN, 20)
    realized = journal.realized(position_id)
    assert realized is not None and not realized.complete
    assert realized.split.funding_x18 == -(E18 // 10)  # the pending funding counts as paid
    assert journal.open_positions() == {}


def test_reconcile_adopts_a_position_only_the_chain_has(journal: Journal) -> None:
    differences = journal.reconcile({"BTC": ChainPosition(-(HUGE), spot_raw=HUGE // 10**10),
                                     "ETH": ChainPosition(0)}, block=50, timestamp_s=5_000)
    (adopted,) = journal.positions("open")
    assert [(d.market, d.kind, d.field, d.journal_value, d.chain_value, d.action) for d in differences] == [
        ("BTC", "chain_only", "perp_base_x18", None, -HUGE, "adopted"),
        ("BTC", "chain_only", "spot_raw", None, HUGE // 10**10, "adopted"),
    ]
    assert journal.reconcile_log() == differences
    position = journal.open_positions()["BTC"]
    assert position.direction is Direction.SHORT_PERP and not adopted.entry_known
    assert (position.perp_base_x18, position.spot_raw, position.net_quote_x18) == (-HUGE, HUGE // 10**10, 0)
    assert (position.entry_block, position.entry_timestamp_s) == (50, 5_000) and math.isnan(position.entry_basis_bps)
    # A long perp is adopted as LONG_PERP
    journal.reconcile({"BTC": ChainPosition(-HUGE, HUGE // 10**10), "SOL": ChainPosition(7)}, block=51)
    assert journal.open_positions()["SOL"].direction is Direction.LONG_PERP


def test_reconcile_corrects_size_differences_and_a_flipped_direction(journal: Journal) -> None:
    trade(journal, "open", make_fills(-2 * E18), 10, -2 * E18)
    position_id = journal.positions("open")[0].id
    differences = journal.reconcile({"ETH": ChainPosition(-3 * E18 // 2, spot_raw=2 * E18 - 5)}, block=20)
    assert [(d.kind, d.field, d.journal_value, d.chain_value, d.action) for d in differences] == [
        ("size_mismatch", "perp_base_x18", -2 * E18, -3 * E18 // 2, "corrected"),
        ("size_mismatch", "spot_raw", 2 * E18, 2 * E18 - 5, "corrected"),
    ]
    position = journal.open_positions()["ETH"]
    assert (position.perp_base_x18, position.spot_raw, position.direction) == \
        (-3 * E18 // 2, 2 * E18 - 5, Direction.SHORT_PERP)
    # A flip, spot not read: the direction follows the perp sign, the spot is left alone
    (flip,) = journal.reconcile({"ETH": ChainPosition(E18)}, block=30)
    assert (flip.journal_value, flip.chain_value, flip.position_id) == (-3 * E18 // 2, E18, position_id)
    position = journal.open_positions()["ETH"]
    assert (position.direction, position.spot_raw) == (Direction.LONG_PERP, 2 * E18 - 5)
    assert len(journal.reconcile_log()) == 3
    assert [e.kind for e in journal.position_events(position_id)] == ["open", "reconcile", "reconcile"]


def test_reconcile_in_agreement_changes_nothing_and_refuses_a_partial_read(journal: Journal) -> None:
    trade(journal, "open", make_fills(), 10, -E18)
    assert journal.reconcile({"ETH": ChainPosition(-E18, spot_raw=E18), "BTC": ChainPosition(0)}, block=20) == []
    assert journal.reconcile_log() == []
    with pytest.raises(JournalError, match="missing: ETH"):
        journal.reconcile({"BTC": ChainPosition(0)}, block=21)
    assert journal.open_positions()["ETH"].perp_base_x18 == -E18


# ------------------------------------------------------------------------------ file, status
def test_the_journal_runs_wal_with_full_sync(journal: Journal) -> None:
    assert journal._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert journal._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_newer_or_unknown_schema_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    for version, message in ((str(SCHEMA_VERSION + 1), "newer than this keeper"), ("banana", "unknown schema")):
        raw = sqlite3.connect(path)
        raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        raw.commit()
        raw.close()
        with pytest.raises(JournalSchemaError, match=message) as caught:
            Journal(path)
        assert str(path) in str(caught.value) and isinstance(caught.value, ConfigError)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalSchemaError, match="garbage.sqlite"):
        Journal(garbage)
    other = tmp_path / "other.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    with pytest.raises(JournalSchemaError, match="not a keeper journal"):
        Journal(other)
    with pytest.raises(JournalSchemaError, match="no such file"):
        Journal(tmp_path / "absent.sqlite", readonly=True)


def test_status_is_json_serialisable_and_readable_beside_the_writer(journal: Journal, tmp_path: Path) -> None:
    # Given an open position (huge), pending funding, a transaction in flight
    trade(journal, "open", make_fills(-HUGE, HUGE), 10, -HUGE)
    journal.record_funding("ETH", block=15, pending_funding_x18=HUGE)
    intent = make_intent("resize")
    did = journal.record_decision(intent, block=16, timestamp_s=16)
    journal.record_tx_sent(did, make_plan(intent), tx_hash="0x99", nonce=5, sent_block=16, eth_price_x18=ETH_PRICE_X18)
    # When a read-only journal (keeper status) reads it while the writer is open
    with Journal(tmp_path / "journal.sqlite", readonly=True) as reader:
        report = reader.status()
        with pytest.raises(JournalError, match="read-only"):
            reader.record_funding("ETH", block=17, pending_funding_x18=0)
    document = json.loads(json.dumps(report.to_json_dict()))
    # Then big amounts are exact decimal strings and plain numbers stay numbers
    (position,) = document["positions"]
    assert position["position"]["perp_base_x18"] == str(-HUGE)
    assert position["position"]["entry_block"] == 11 and position["position"]["direction"] == "short_perp"
    assert position["funding_pending_x18"] == str(HUGE)
    assert document["pnl"]["total"]["funding_x18"] == str(-HUGE)
    assert [t["tx_hash"] for t in document["pending_transactions"]] == ["0x99"]
    assert document["latest_funding"]["ETH"]["amount_x18"] == str(HUGE)
    assert document["last_block"] == 16 and document["schema_version"] == SCHEMA_VERSION


def test_realized_today_counts_positions_closed_and_failed_gas_since_midnight_utc(journal: Journal) -> None:
    trade(journal, "open", make_fills(-E18, 5 * E18), 10, -E18, fee_paid_wei=0)
    trade(journal, "close", make_fills(E18, -4 * E18, spot_raw=-E18, usdc_raw=2_990_000_000), 20, 0, fee_paid_wei=0)
    assert journal.realized_today_usd() == pytest.approx(1.0)
    assert journal.realized_today_usd(now_s=time.time() + 86_400) == 0.0


# ------------------------------------------------------------------------------ crash safety
_WRITER = """
import sys
from keeper.logs import configure_logging
configure_logging(level="ERROR", json_lines=True, stream=sys.stderr)
from keeper.journal import Journal
from tests.unit.test_journal import E18, HUGE, included, make_fills, make_intent, make_plan

journal = Journal(sys.argv[1])
start = int(sys.argv[2])
for i in range(start, start + 10**9):
    kind = "open" if i % 2 == 0 else "close"
    fills = make_fills(-HUGE - i, HUGE + i) if kind == "open" else make_fills(HUGE + i, -HUGE, spot_raw=-HUGE - i)
    intent = make_intent(kind, perp_base_x18=HUGE + i, block=i)
    decision_id = journal.record_decision(intent, block=i, timestamp_s=i, inputs={"i": i, "big": HUGE + i})
    journal.record_funding("ETH", block=i, pending_funding_x18=-HUGE - i)
    outcome = included(make_plan(intent, fills), fills, i, 10**15 + i, "0x%064x" % i)
    after = 0 if kind == "close" else -HUGE - i
    tx_id = journal.record_outcome(decision_id, outcome, nonce=i, block_timestamp_s=i, position_base_after_x18=after,
                                   settled_funding_x18=-i, eth_price_x18=3000 * E18)
    print(decision_id, tx_id, i, flush=True)
"""


def test_committed_rows_survive_sigkill_and_the_file_stays_consistent(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    committed: list[tuple[int, int, int]] = []
    for run, kill_after_s in enumerate((0.4, 0.9, 0.25)):
        # Given a writer committing multi-row trades as fast as it can
        start = run * 1_000_000  # fresh tx hashes: the kill may have committed a trade it never reported
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        first = child.stdout.readline()  # wait until it writes
        assert first, child.stderr.read() if child.stderr else "writer died"
        # When it is killed at an arbitrary point, mid-transaction as likely as not
        time.sleep(kill_after_s)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        # only whole lines count: the kill may cut the writer's last report short
        lines = [first, *out.split("\n")[:-1]]
        committed += [tuple(int(x) for x in line.split()) for line in lines if line.strip()]  # type: ignore[misc]
        # Then the file is consistent and every row the writer reported as committed is there
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
            decisions = {r[0] for r in raw.execute("SELECT id FROM decisions")}
            txs = {r[0]: r[1] for r in raw.execute("SELECT id, status FROM transactions")}
            fills = {r[0] for r in raw.execute("SELECT tx_id FROM fills")}
            # No half-written call: every included tx has its fills, every closed position its PnL
            assert all(status == "included" for status in txs.values()) and set(txs) == fills
            assert raw.execute("SELECT count(*) FROM positions p LEFT JOIN realized_pnl r ON r.position_id = p.id "
                               "WHERE p.status = 'closed' AND r.position_id IS NULL").fetchone()[0] == 0
            assert raw.execute("SELECT count(*) FROM positions WHERE status = 'open'").fetchone()[0] <= 1
        finally:
            raw.close()
        assert {d for d, _, _ in committed} <= decisions and {t for _, t, _ in committed} <= set(txs)
        assert len(committed) > 5 * (run + 1)
    # And the journal reopens and reads its books (running totals cross-checked with the fills)
    with Journal(path) as journal:
        last_d, last_t, last_i = committed[-1]
        assert journal.decision(last_d).inputs == {"i": last_i, "big": HUGE + last_i}
        assert journal.transaction(last_t).fee_paid_wei == 10**15 + last_i
        summary = journal.pnl_summary()
        assert summary.markets["ETH"].closed_positions >= len(committed) // 2 - 3
        # A journal left with a position open by the kill is reconciled with the chain
        journal.reconcile({"ETH": ChainPosition(0)}, block=10**9)
        assert journal.open_positions() == {}


_KILLED_INSIDE_A_WRITE = """
import sys, time
from keeper.logs import configure_logging
configure_logging(level="ERROR", json_lines=True, stream=sys.stderr)
import keeper.journal as journal_module
from tests.unit.test_journal import ETH_PRICE_X18, included, make_fills, make_intent, make_plan

def stall(*args, **kwargs):
    print("inside", flush=True)
    time.sleep(60)

journal = journal_module.Journal(sys.argv[1])
intent = make_intent()
decision_id = journal.record_decision(intent, block=1, timestamp_s=1)
print(decision_id, flush=True)
journal_module.accounting._apply_trade = stall  # the outcome's tx row is written, its fills are next
journal.record_outcome(decision_id, included(make_plan(intent), make_fills(), 2),
                       block_timestamp_s=2, position_base_after_x18=-10**18, eth_price_x18=ETH_PRICE_X18)
"""


def test_a_kill_inside_a_write_leaves_none_of_it(tmp_path: Path) -> None:
    # Given a writer stopped half-way through recording an included trade (tx row written, no fills yet)
    path = tmp_path / "journal.sqlite"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_INSIDE_A_WRITE, str(path)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    decision_id = int(child.stdout.readline())
    assert child.stdout.readline().strip() == "inside"
    # When it is killed there
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    # Then the decision (committed before) is there, and nothing of the interrupted call is
    with Journal(path) as journal:
        assert journal._conn.execute("PRAGMA integrity_check").fetchall()[0][0] == "ok"
        assert journal.decision(decision_id).status == "planned"
        assert journal._conn.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0
        assert journal.open_positions() == {}


def test_a_transaction_hash_recorded_twice_is_a_journal_error_and_writes_nothing(journal: Journal) -> None:
    intent = make_intent()
    first = journal.record_decision(intent, block=1, timestamp_s=1)
    journal.record_tx_sent(first, make_plan(intent), tx_hash="0xab", nonce=0, sent_block=1)
    second = journal.record_decision(intent, block=2, timestamp_s=2)
    with pytest.raises(JournalError, match="UNIQUE"):
        journal.record_tx_sent(second, make_plan(intent), tx_hash="0xab", nonce=1, sent_block=2)
    assert journal.decision(second).status == "planned" and len(journal.pending_transactions()) == 1


def test_an_outcome_carrying_its_receipt_facts_needs_no_extra_arguments(journal: Journal) -> None:
    # Given an included open whose Outcome holds what its receipt showed
    intent = make_intent()
    fills = make_fills(-E18, 6 * E18)
    outcome = Outcome(make_plan(intent, fills), "included", "0x" + "ab" * 32, 31, 850_000, 10**15, fills, "ok",
                      nonce=12, block_timestamp_s=1_700_000_031, position_base_after_x18=-E18,
                      perp_fee_x18=3 * 10**15, settled_funding_x18=-11, attempt_hashes=("0x01", "0x" + "ab" * 32))
    decision_id = journal.record_decision(intent, block=30, timestamp_s=1_700_000_030, basis_bps=12.0)
    # When it is recorded in one call
    tx_id = journal.record_outcome(decision_id, outcome, eth_price_x18=ETH_PRICE_X18)
    # Then the receipt facts are booked
    t, f = journal.transaction(tx_id), journal.fills(tx_id)
    assert (t.nonce, t.block_timestamp_s, t.attempt_hashes) == (12, 1_700_000_031, ("0x01", "0x" + "ab" * 32))
    assert f is not None and (f.fees, f.settled_funding_x18, f.position_base_after_x18) == \
        (TradeFees(3 * 10**15, 0), -11, -E18)
    position = journal.open_positions()["ETH"]
    assert (position.entry_timestamp_s, position.entry_basis_bps, position.funding_paid_x18) == \
        (1_700_000_031, 12.0, -11)
