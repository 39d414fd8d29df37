"""Open positions on a chain that is gone (keeper/journal/holder.py): found from where the journal
records them held, written off (never booked as a close: no realized PnL) on the embedded devnet,
refused on a node; hand-built journals, no chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.journal import WRITTEN_OFF, Journal, PositionsHolder
from keeper.journal.holder import find_stranded, write_off_or_refuse
from keeper.pairs_journal import PAIR_WRITTEN_OFF, PairJournal, pairs_realized_since
from keeper.pnl_split import ZERO_PNL, TradeFees
from keeper.status import StatusView, build_status
from keeper.types import Direction
from tests.unit.journal_builders import E18, make_fills, trade
from tests.unit.test_pairs_status import book_open

GONE = "0x00000000000000000000000000000000000000e7"
CHAIN = 31337


def _two_open(journal: Journal) -> None:
    """ETH short and BTC long open, with fees, funding and gas: cash so far that is not zero."""
    trade(journal, "open", make_fills(), 10, -E18, fees=TradeFees(3 * E18, E18), settled_funding_x18=E18 // 4)
    trade(journal, "open", make_fills(perp_base_x18=2 * E18, net_quote_x18=-7 * E18, usdc_raw=2_000_000_000), 12,
          2 * E18, market="BTC", direction=Direction.LONG_PERP)
    journal.record_funding("ETH", block=15, pending_funding_x18=-E18 // 8)


def _no_code(address: str) -> bool:
    return False


# ------------------------------------------------------------------------------ the booking
def test_a_write_off_books_no_realized_pnl_and_keeps_every_row(journal: Journal) -> None:
    # Given two open positions with cash so far, and nothing realized
    _two_open(journal)
    before = {p.position.market: p for p in journal.positions("open")}
    summary = journal.pnl_summary()
    assert summary.realized == ZERO_PNL and summary.open.total_x18 != 0
    # When their chain is gone and they are written off
    with capture_logs() as logs:
        written = journal.write_off(executor=GONE, chain_id=CHAIN)
    # Then none is open, none has a realized PnL, and realized (and today's, for the loss limit) is unchanged
    assert [p.position.market for p in written] == ["BTC", "ETH"] and journal.open_positions() == {}
    assert all(journal.realized(p.id) is None for p in written)
    after = journal.pnl_summary()
    assert after.realized == ZERO_PNL and after.open == ZERO_PNL and journal.realized_today_usd() == 0.0
    # And each is closed as written off at its last block, its pnl the cash so far it had
    for p in written:
        assert (p.status, p.close_reason, p.closed_block) == ("closed", WRITTEN_OFF, before[p.position.market].last_block)
        assert p.pnl == before[p.position.market].pnl
    # And the write-off is in its events, the reconcile log (the chain's value: not readable) and a warning each
    eth = before["ETH"]
    assert journal.position_events(eth.id)[-1].kind == "close"
    assert journal.position_events(eth.id)[-1].detail == f"{WRITTEN_OFF} (executor {GONE} on chain {CHAIN})"
    rows = [(d.market, d.field, d.journal_value, d.chain_value, d.action, d.source) for d in journal.reconcile_log()]
    assert ("ETH", "perp_base_x18", -E18, None, "closed", "write-off") in rows
    assert ("BTC", "perp_base_x18", 2 * E18, None, "closed", "write-off") in rows
    warned = {e["market"]: e for e in logs if e["event"] == "journal.position_written_off"}
    assert set(warned) == {"ETH", "BTC"} and warned["ETH"]["log_level"] == "warning"
    assert (warned["ETH"]["position_id"], warned["ETH"]["executor"], warned["ETH"]["chain_id"]) == (eth.id, GONE, CHAIN)
    assert (warned["ETH"]["total_x18"], warned["ETH"]["fees_x18"], warned["ETH"]["funding_x18"]) == \
        (eth.pnl.total_x18, eth.pnl.fees_x18, eth.pnl.funding_x18)


def test_status_shows_write_offs_apart_from_realized(journal: Journal) -> None:
    # Given two positions written off
    _two_open(journal)
    cash = journal.pnl_summary().open.total_x18
    journal.write_off(executor=GONE, chain_id=CHAIN)
    # When the status is read
    report = journal.status()
    text = StatusView(report, chain_checked="no node", mismatches=()).as_text()
    # Then they are listed as written off with their cash so far, not in realized, not open
    assert [p.position.market for p in report.written_off] == ["ETH", "BTC"] and report.positions == ()
    assert "(realized +0.0000)" in text and "no open positions" in text
    assert (f"written off: the chain that held them is gone: ETH short_perp (position 1, last block 11), BTC long_perp "
            f"(position 2, last block 13); cash so far {cash / E18:+.4f} USD, in no PnL above (not realized)") in text
    assert [p["id"] for p in report.to_json_dict()["written_off"]] == [1, 2]


def test_open_pairs_are_written_off_out_of_the_realized_pnl(journal: Journal) -> None:
    # Given an open pair
    book = PairJournal(journal)
    pair_id = book_open(book)
    # When it is written off
    with capture_logs() as logs:
        journal.write_off(executor=GONE, chain_id=CHAIN)
    # Then it is not open, not closed (not realized), and said so
    assert book.rows("open") == [] and [r["id"] for r in book.rows(PAIR_WRITTEN_OFF)] == [pair_id]
    with journal.read_transaction() as db:
        assert pairs_realized_since(db, 0.0) == ZERO_PNL
    assert [(e["pair_id"], e["markets"]) for e in logs if e["event"] == "journal.pair_written_off"] == \
        [(pair_id, ["ETH", "BTC"])]


def test_status_lists_written_off_pairs_with_the_positions_and_their_cash_so_far(tmp_path: Path) -> None:
    # Given an open position and an open pair, written off
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        trade(journal, "open", make_fills(), 10, -E18, fees=TradeFees(3 * E18, E18))
        pair_id = book_open(PairJournal(journal))
        cash = journal.pnl_summary().open.total_x18
        pair_cash = PairJournal(journal).rows("open")[0]
        journal.write_off(executor=GONE, chain_id=CHAIN)
    booked = int(pair_cash["quote_x18"]) - int(pair_cash["funding_settled_x18"]) - int(pair_cash["gas_x18"])
    # When `keeper status` reads the journal (no node)
    view = build_status(load_config(None, environ={}, overrides={"monitoring": {"journal": str(path)}}))
    # Then the pair is listed as written off beside the position, its cash so far in the line's sum, not open
    text = view.as_text()
    assert view.pairs == () and "no open positions" in text
    assert (f"written off: the chain that held them is gone: ETH short_perp (position 1, last block 11), pair "
            f"{pair_id} short_spread ETH/BTC (entry block 100); cash so far {(cash + booked) / E18:+.4f} USD, in no "
            "PnL above (not realized)") in text
    assert [(p["pair_id"], p["booked_x18"]) for p in view.as_json()["written_off_pairs"]] == [(pair_id, str(booked))]


def test_the_holder_round_trips(journal: Journal) -> None:
    assert journal.positions_holder() is None
    journal.record_positions_holder(CHAIN, GONE, embedded=True)
    journal.record_positions_holder(10, GONE, embedded=False)
    assert journal.positions_holder() == PositionsHolder(10, GONE, False)


# ------------------------------------------------------------------------------ the detection
def _journal_with(tmp_path: Path, holder: PositionsHolder | None = None, recorded: dict[int, str] | None = None,
                  positions: bool = True) -> Path:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        if positions:
            _two_open(journal)
        if holder is not None:
            journal.record_positions_holder(holder.chain_id, holder.executor, embedded=holder.embedded)
        for chain_id, executor in (recorded or {}).items():
            journal.record_executor(chain_id, executor)
    return path


def _refusal(path: Path, chain_id: int = CHAIN, *, embedded: bool, node: str, head: int | None = None) -> str:
    """The one-line refusal of a start on `path`'s journal; the journal untouched."""
    before = path.read_bytes()
    with pytest.raises(ConfigError) as refused:
        write_off_or_refuse(path, chain_id, _no_code, embedded=embedded, node=node,
                            head=None if head is None else lambda: head)
    assert "\n" not in str(refused.value) and path.read_bytes() == before
    return str(refused.value)


def test_an_earlier_embedded_runs_positions_are_written_off_on_the_embedded_devnet_and_refused_on_a_node(
        tmp_path: Path) -> None:
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=True))
    # Then on the next embedded devnet they may be written off
    stranded = find_stranded(path, CHAIN, _no_code, embedded=True)
    assert stranded is not None and stranded.write_off and (stranded.executor, stranded.chain_id) == (GONE, CHAIN)
    # And on a node (whatever code it has there) they are refused: that chain ended with its run
    on_node = find_stranded(path, CHAIN, lambda address: True, embedded=False)
    assert on_node is not None and not on_node.write_off
    assert on_node.why == f"in executor {GONE} on chain {CHAIN} of an earlier embedded devnet run: that chain ended " \
                          "with its run"


def test_a_journal_kept_before_the_holder_with_no_recorded_executor_is_not_known_to_be_an_embedded_runs(
        tmp_path: Path) -> None:
    # Given open positions and no holder, no recorded executor (a dry run's adopted positions, or a node's live run
    # from before 2026-12-01: they may be a real chain's)
    path = _journal_with(tmp_path)
    # Then a start on a node is not refused, whatever code it has (reconcile against its executor, as before)
    assert find_stranded(path, 10, _no_code, embedded=False) is None
    # And the embedded devnet neither writes them off nor starts: refused, naming the ways out, nothing written
    stranded = find_stranded(path, CHAIN, _no_code, embedded=True)
    assert stranded is not None and not stranded.write_off and stranded.executor is None
    assert stranded.markets == ("BTC", "ETH")
    assert _refusal(path, embedded=True, node="the embedded devnet") == (
        f"monitoring.journal: {path} holds open positions (BTC, ETH) whose chain is not recorded (kept before "
        "2026-12-02: a node's, maybe a real chain's, or an earlier embedded run's); the start on the embedded devnet "
        "(chain 31337) would write them off, so nothing was sent: run on the node that holds them, or point "
        "monitoring.journal at another file")


def test_a_nodes_positions_are_refused_where_its_executor_has_no_code_and_kept_where_it_has(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=False))
    asked: list[str] = []
    gone = find_stranded(path, CHAIN, lambda address: asked.append(address) or False, embedded=False)
    assert asked == [GONE] and gone is not None and not gone.write_off
    assert gone.why == (f"in executor {GONE} on chain {CHAIN}, which has no code on this node: a node not yet synced "
                        "to the executor's deployment, or the chain that held them is gone (a devnet or fork started "
                        "afresh?)")
    assert find_stranded(path, CHAIN, lambda address: True, embedded=False) is None
    # And the embedded devnet never writes off a node's positions
    embedded = find_stranded(path, CHAIN, lambda address: True, embedded=True)
    assert embedded is not None and not embedded.write_off


def test_a_journal_kept_before_the_holder_uses_the_executor_recorded_for_the_chain(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, recorded={CHAIN: GONE})
    stranded = find_stranded(path, CHAIN, _no_code, embedded=False)
    assert stranded is not None and (stranded.executor, stranded.chain_id, stranded.write_off) == (GONE, CHAIN, False)


def test_nothing_open_or_a_chain_with_the_executor_is_left_alone(tmp_path: Path) -> None:
    empty = _journal_with(tmp_path / "a", PositionsHolder(CHAIN, GONE, embedded=False), positions=False)
    assert find_stranded(empty, CHAIN, _no_code, embedded=False) is None
    assert find_stranded(empty, CHAIN, _no_code, embedded=True) is None


def test_an_open_pair_alone_is_stranded_too(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=False), positions=False)
    with Journal(path) as journal:
        book_open(PairJournal(journal))
    stranded = find_stranded(path, CHAIN, _no_code, embedded=False)
    assert stranded is not None and (stranded.markets, stranded.pairs) == ((), ("ETH/BTC",))
    assert stranded.held() == "open pairs (ETH/BTC)"


def test_a_refusal_names_executor_chain_positions_and_ways_out_and_writes_nothing(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=False))
    assert _refusal(path, embedded=False, node="http://127.0.0.1:8545") == (
        f"monitoring.journal: {path} holds open positions (BTC, ETH) in executor {GONE} on chain {CHAIN}, which has "
        "no code on this node: a node not yet synced to the executor's deployment, or the chain that held them is "
        f"gone (a devnet or fork started afresh?); the start on http://127.0.0.1:8545 (chain {CHAIN}) would book them "
        "closed, so nothing was sent: wait for the node to sync, or run against the chain that holds them; only if "
        "that chain is gone (a devnet or fork started afresh), point monitoring.journal at another file")
    with Journal(path, readonly=True) as journal:
        assert sorted(journal.open_positions()) == ["BTC", "ETH"]


def test_the_embedded_devnet_writes_an_earlier_embedded_runs_positions_off(tmp_path: Path) -> None:
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=True))
    stranded = write_off_or_refuse(path, CHAIN, _no_code, embedded=True, node="the embedded devnet")
    assert stranded is not None
    with Journal(path, readonly=True) as journal:
        assert journal.open_positions() == {} and journal.pnl_summary().realized == ZERO_PNL
        assert [p.close_reason for p in journal.status().written_off] == [WRITTEN_OFF, WRITTEN_OFF]


def test_the_embedded_devnet_refuses_a_nodes_positions_naming_them(tmp_path: Path) -> None:
    # Given a journal whose open positions a node's live run holds (chain 10: they may be real)
    path = _journal_with(tmp_path, PositionsHolder(10, GONE, embedded=False))
    # When the embedded devnet starts on it, then it is refused, nothing written off
    with pytest.raises(ConfigError, match=rf"holds open positions \(BTC, ETH\) in executor {GONE} on chain 10, a "
                                          r"node's, not an embedded devnet's; the start on the embedded devnet \(chain "
                                          r"31337\) would write them off, so nothing was sent"):
        write_off_or_refuse(path, CHAIN, _no_code, embedded=True, node="the embedded devnet")
    with Journal(path, readonly=True) as journal:
        assert sorted(journal.open_positions()) == ["BTC", "ETH"] and journal.status().written_off == ()


def test_a_nodes_positions_on_another_chain_id_are_refused_where_their_executor_has_no_code(tmp_path: Path) -> None:
    # Given positions held on chain 31337 (a devnet), and a start on chain 10 where that executor has no code
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=False))
    asked: list[str] = []
    stranded = find_stranded(path, 10, lambda address: asked.append(address) or False, embedded=False)
    # Then they are refused (not booked closed as realized PnL), naming both chain ids
    assert asked == [GONE] and stranded is not None and not stranded.write_off
    assert stranded.why == f"in executor {GONE} on chain {CHAIN}, which has no code on this node (chain 10)"
    # And a fork with another chain id that has the executor's code is trusted
    assert find_stranded(path, 10, lambda address: True, embedded=False) is None


def test_a_node_behind_the_journal_is_said_to_be_maybe_not_synced_and_another_journal_comes_last(
        tmp_path: Path) -> None:
    # Given a node's positions (the journal's last block 15) and a node without the executor's code
    path = _journal_with(tmp_path, PositionsHolder(CHAIN, GONE, embedded=False))
    # When the node's head is below the journal's last block
    # Then the message says the node may not be synced, its head and the journal's last block
    assert _refusal(path, embedded=False, node="http://127.0.0.1:8545", head=9) == (
        f"monitoring.journal: {path} holds open positions (BTC, ETH) in executor {GONE} on chain {CHAIN}, which has "
        "no code on this node, whose head 9 is below the journal's last block 15: a node not yet synced to the "
        "executor's deployment, or the chain that held them is gone (a devnet or fork started afresh?); the start on "
        f"http://127.0.0.1:8545 (chain {CHAIN}) would book them closed, so nothing was sent: wait for the node to "
        "sync, or run against the chain that holds them; only if that chain is gone (a devnet or fork started "
        "afresh), point monitoring.journal at another file")
    # And past it, the node is not behind: the chain is gone, another journal still last
    past = _refusal(path, embedded=False, node="http://127.0.0.1:8545", head=40)
    assert ("which has no code on this node, whose head 40 is past the journal's last block 15: the chain that held "
            "them is gone (a devnet or fork started afresh?); the start on") in past
    assert past.endswith("so nothing was sent: run against the chain that holds them; only if that chain is gone (a "
                         "devnet or fork started afresh), point monitoring.journal at another file")
