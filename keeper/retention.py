"""Journal retention by age (block time, so that pinned-clock devnets behave like real chains):
a strategy's "no trade" rows and the funding readings older than `monitoring.journal_retention_days`
are deleted. Decisions that led to a transaction or a position, transactions, fills, positions,
realized PnL and the reconcile log are kept forever. SQLite reuses the freed pages, so the file
stops growing once the window is full."""

from __future__ import annotations

import sqlite3
from typing import Any

from keeper.logs import get_logger

log = get_logger("keeper.journal")
DAY_S = 86_400


def prune_journal(journal: Any, now_s: int, retention_days: float) -> tuple[int, int]:
    """Delete what is older than the window; returns (decisions, funding readings) deleted."""
    if retention_days <= 0:
        return 0, 0
    cutoff_s = now_s - int(retention_days * DAY_S)
    db = sqlite3.connect(journal.path, timeout=30)
    try:
        with db:
            decisions = db.execute(
                """DELETE FROM decisions WHERE status = 'skipped' AND position_id IS NULL AND timestamp_s < ?
                   AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.decision_id = decisions.id)""",
                (cutoff_s,)).rowcount
            funding = db.execute(
                """DELETE FROM funding WHERE kind = 'pending' AND timestamp_s < ?
                   AND tx_id IS NULL AND id NOT IN (SELECT max(id) FROM funding GROUP BY market)""",
                (cutoff_s,)).rowcount
    finally:
        db.close()
    if decisions or funding:
        log.info("journal.pruned", decisions=decisions, funding_readings=funding, older_than_s=cutoff_s)
    return decisions, funding
