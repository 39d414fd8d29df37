"""The journal: exact round trips of every record with huge ints, the position lifecycle, a PnL
split that sums exactly. Reconcile, the file, crash safety and schema versions:
test_journal_file.py; the builders: journal_builders.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.journal import CLOSED_NOT_ON_CHAIN, ChainPosition, Journal, JournalError
from keeper.pnl_split import (
    PnlSplit,
    PnlSplitMismatch,
    TradeFees,
    compute_gas_usd_x18,
    compute_pnl_split,
    compute_spot_fee_x18,
)
from keeper.types import Direction, Outcome, PredictedFills
from tests.unit.journal_builders import E18, ETH_PRICE_X18, EXECUTOR, HUGE, INT256_MIN, included, make_fills, make_intent, make_plan, trade


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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ETH", "BTC", "SOL"]), st.integers(90, 130), st.integers(-10 * E18, 10 * E18),
                          st.none() | st.integers(0, 2**40)), max_size=12))
def test_readings_recorded_together_are_those_recorded_one_by_one(tmp_path_factory: pytest.TempPathFactory,
                                                                   readings: list[tuple[str, int, int, int | None]]) -> None:
    # Given two journals with the same open ETH and BTC positions (opened at blocks 100 and 110) and none in SOL
    one, many = (Journal(tmp_path_factory.mktemp("funding") / "journal.sqlite") for _ in range(2))
    for journal in (one, many):
        trade(journal, "open", make_fills(perp_base_x18=-2 * E18), 99, -2 * E18)
        trade(journal, "open", make_fills(), 109, -E18, market="BTC")
        journal.record_funding("ETH", block=105, pending_funding_x18=E18)  # a reading before: late ones are not taken
    # When the readings (any order of blocks, late ones too) are recorded one by one, and together
    ids = [one.record_funding(m, block=b, pending_funding_x18=p, timestamp_s=t) for m, b, p, t in readings]
    # Then the rows, their ids and each position's pending funding are the same
    assert many.record_fundings(readings) == ids
    for market in ("ETH", "BTC", "SOL"):
        assert many.funding_history(market) == one.funding_history(market)
    assert many.open_positions() == one.open_positions()
    one.close()
    many.close()


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
