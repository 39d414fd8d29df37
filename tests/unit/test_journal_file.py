"""The journal's reconcile (the chain wins), its file (WAL, schema versions, status beside the
writer), crash safety under SIGKILL and duplicate transactions. Builders: journal_builders.py."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
from keeper.pnl_split import TradeFees
from keeper.types import Direction, Outcome
from tests.unit.journal_builders import E18, ETH_PRICE_X18, HUGE, REPO, make_fills, make_intent, make_plan, trade


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


def test_a_journal_path_that_is_a_directory_is_refused_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "journal.sqlite"
    folder.mkdir()
    for readonly in (False, True):  # keeper run / keeper status: not "cannot open", not "no such file"
        with pytest.raises(JournalSchemaError, match=r"monitoring.journal: .*journal.sqlite is a directory, not a file"):
            Journal(folder, readonly=readonly)


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
from tests.unit.journal_builders import E18, HUGE, included, make_fills, make_intent, make_plan

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
from tests.unit.journal_builders import ETH_PRICE_X18, included, make_fills, make_intent, make_plan

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
