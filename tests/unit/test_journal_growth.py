"""Journal growth: a strategy's "no trade" rows are written once per change of reason, old skip
rows and funding readings are pruned by age; decisions that traded are kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from keeper.journal import Journal
from keeper.retention import DAY_S, prune_journal
from keeper.skiplog import SkipLog, reason_shape

from keeper.types import Outcome

from .journal_builders import make_intent, make_plan


def rows(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def test_given_the_same_reason_with_new_numbers_then_one_row_until_the_reason_changes(tmp_path: Path) -> None:
    assert reason_shape("z 0.41 below entry 2.0 (basis -3.5 bps)") == reason_shape("z 1.07 below entry 2.0 (basis 12 bps)")
    journal = Journal(tmp_path / "j.sqlite")
    skips = SkipLog(journal)
    for block in range(1, 101):
        skips.record(block=block, strategy="basis_convergence", market="ETH",
                     reason=f"z {block / 100:.2f} below entry 2.0", timestamp_s=block)
    skips.record(block=101, strategy="basis_convergence", market="ETH", reason="oracle stale", timestamp_s=101)
    skips.record(block=102, strategy="basis_convergence", market="BTC", reason="z 0.10 below entry 2.0", timestamp_s=102)
    journal.close()
    assert rows(tmp_path / "j.sqlite", "SELECT count(*) FROM decisions WHERE status = 'skipped'") == 3
    assert (skips.written, skips.suppressed) == (3, 99)


def test_given_rows_older_than_the_window_then_skips_and_funding_go_and_trades_stay(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    day = 10 * DAY_S
    for t in (day - 3 * DAY_S, day - 2 * DAY_S, day - 1):
        journal.record_skip(block=t, strategy="s", market="ETH", reason="no edge", timestamp_s=t)
    intent = make_intent()
    decision = journal.record_decision(intent, block=1, timestamp_s=day - 5 * DAY_S)
    plan = make_plan(intent)
    # a decision whose simulation reverted is 'skipped' but has a transaction row: kept
    journal.record_outcome(decision, Outcome(plan, "simulation_reverted", None, None, 0, 0, None, "CH_TLRS"))
    for t in (day - 4 * DAY_S, day - 3 * DAY_S, day - 10):
        journal.record_funding("ETH", block=t, pending_funding_x18=t, timestamp_s=t)
    assert prune_journal(journal, day, retention_days=1.5) == (2, 2)
    assert prune_journal(journal, day, retention_days=0) == (0, 0)  # 0: keep everything
    journal.close()
    assert rows(path, "SELECT count(*) FROM decisions WHERE status = 'skipped'") == 2  # the newest skip + the reverted
    assert rows(path, "SELECT count(*) FROM decisions WHERE id = %d" % decision) == 1  # it traded: kept
    assert rows(path, "SELECT count(*) FROM funding") == 1
