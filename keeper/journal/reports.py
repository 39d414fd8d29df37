"""The journal's reports: PnL per market, realized since a time, the status document."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from keeper.journal.accounting import _position_record, _position_split, _unattributed_split
from keeper.journal.records import WRITTEN_OFF, FundingRecord, MarketPnl, PnlSummary, StatusReport, TxRecord
from keeper.journal.rows import _funding_from_row, _int, _open_position_row, _realized_from_row, _tx_from_row
from keeper.journal.schema import SCHEMA_VERSION
from keeper.pairs_journal import pairs_realized_since
from keeper.pnl_split import ZERO_PNL, PnlSplit, sum_pnl


def pnl_summary(db: sqlite3.Connection) -> PnlSummary:
    """Per market: realized (closed positions), open (to date, pending funding included) and
    unattributed gas; totals over markets on the summary."""
    markets = sorted({r[0] for r in db.execute("SELECT market FROM positions UNION SELECT market FROM transactions")})
    summary: dict[str, MarketPnl] = {}
    for market in markets:
        realized_rows = db.execute("SELECT * FROM realized_pnl WHERE market = ?", (market,)).fetchall()
        open_row = _open_position_row(db, market)
        summary[market] = MarketPnl(
            market=market,
            realized=sum_pnl(_realized_from_row(r).split for r in realized_rows),
            open=_position_split(db, open_row) if open_row is not None else ZERO_PNL,
            unattributed=_unattributed_split(db, market),
            closed_positions=len(realized_rows),
        )
    return PnlSummary(summary)


def realized_since(db: sqlite3.Connection, since_s: float) -> PnlSplit:
    """Realized since a wall-clock time: positions closed since, plus gas tied to no position
    of transactions settled since; the pair trades' likewise (keeper/pairs_journal.py)."""
    rows = db.execute("SELECT * FROM realized_pnl WHERE recorded_at_s >= ?", (since_s,)).fetchall()
    gas = sum(_int(r[0]) for r in db.execute(
        "SELECT gas_usd_x18 FROM transactions WHERE position_id IS NULL AND settled_at_s >= ?", (since_s,)))
    return sum_pnl(_realized_from_row(r).split for r in rows) + PnlSplit(0, 0, 0, gas, -gas) + \
        pairs_realized_since(db, since_s)


def pending_transactions(db: sqlite3.Connection) -> list[TxRecord]:
    rows = db.execute("SELECT * FROM transactions WHERE status = 'pending' ORDER BY id").fetchall()
    return [_tx_from_row(r) for r in rows]


def journal_last_block(db: sqlite3.Connection) -> int | None:
    """The last block the journal recorded anything at (None: nothing recorded)."""
    return db.execute(
        """SELECT max(b) FROM (SELECT max(block) AS b FROM decisions UNION ALL SELECT max(block) FROM funding
           UNION ALL SELECT max(block) FROM transactions UNION ALL SELECT max(last_block) FROM positions)"""
    ).fetchone()[0]


def status_report(db: sqlite3.Connection, journal_path: Path) -> StatusReport:
    open_rows = db.execute("SELECT * FROM positions WHERE status = 'open' ORDER BY market").fetchall()
    latest: dict[str, FundingRecord] = {}
    for row in db.execute("SELECT * FROM funding WHERE id IN (SELECT max(id) FROM funding GROUP BY market)"):
        latest[row["market"]] = _funding_from_row(row)
    return StatusReport(
        journal_path=str(journal_path),
        schema_version=SCHEMA_VERSION,
        last_block=journal_last_block(db),
        positions=tuple(_position_record(db, r) for r in open_rows),
        pnl=pnl_summary(db),
        pending_transactions=tuple(pending_transactions(db)),
        latest_funding=dict(sorted(latest.items())),
        written_off=tuple(_position_record(db, r) for r in db.execute(
            "SELECT * FROM positions WHERE status = 'closed' AND close_reason = ? ORDER BY id", (WRITTEN_OFF,))),
    )
