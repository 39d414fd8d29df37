"""Reconcile: the journal's open positions aligned with what the chain holds (the chain wins),
every difference logged in reconcile_log with both values (Journal.reconcile, in its write
transaction); or, when their chain is gone, written off (Journal.write_off: never booked as closed
against a chain that never held them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from keeper.journal.accounting import _adopt, _close_position, _event, _log_difference, _position_record, _set_position
from keeper.journal.records import (
    CLOSED_NOT_ON_CHAIN,
    WRITTEN_OFF,
    ChainPosition,
    DifferenceAction,
    DifferenceKind,
    JournalError,
    PositionRecord,
    ReconcileDifference,
    held_in,
)
from keeper.journal.rows import _int, _position_row
from keeper.pnl_split import require_int
from keeper.types import SpotVenue


def reconcile_positions(db: sqlite3.Connection, chain_positions: Mapping[str, ChainPosition], *, block: int,
                        timestamp_s: int | None, adopt_spot_venue: SpotVenue) -> list[ReconcileDifference]:
    """The differences between the journal's open positions and `chain_positions`, each written
    to reconcile_log and applied (see Journal.reconcile for the rules)."""
    differences: list[ReconcileDifference] = []
    journal = {r["market"]: r for r in db.execute("SELECT * FROM positions WHERE status = 'open'")}
    missing = sorted(set(journal) - set(chain_positions))
    if missing:
        raise JournalError(f"reconcile needs the chain's position in every market the journal holds; "
                           f"missing: {', '.join(missing)}")
    for market in sorted(set(journal) | set(chain_positions)):
        chain = chain_positions[market]
        row = journal.get(market)
        chain_perp = require_int(chain.perp_base_x18, "perp_base_x18")
        chain_spot = None if chain.spot_raw is None else require_int(chain.spot_raw, "spot_raw")
        if row is None:
            if chain_perp != 0:
                differences += _adopt(db, market, chain_perp, chain_spot, block, timestamp_s,
                                      adopt_spot_venue, source="reconcile", detail="adopted from the chain")
            continue
        perp, spot = _int(row["perp_base_x18"]), _int(row["spot_raw"])
        new_spot = spot if chain_spot is None else chain_spot
        kind: DifferenceKind = "journal_only" if chain_perp == 0 else "size_mismatch"
        action: DifferenceAction = "closed" if chain_perp == 0 else "corrected"
        found = []
        if perp != chain_perp:
            found.append(("perp_base_x18", perp, chain_perp))
        if new_spot != spot:
            found.append(("spot_raw", spot, chain_spot))
        for name, journal_value, chain_value in found:
            differences.append(_log_difference(db, market, kind, name, journal_value, chain_value, action,
                                               row["id"], block, timestamp_s, "reconcile"))
        if found or chain_perp == 0:
            _set_position(db, row, perp_base_x18=chain_perp, spot_raw=new_spot, block=block,
                          timestamp_s=timestamp_s, tx_id=None, event="reconcile",
                          detail="corrected to the chain" if chain_perp else "flat on chain")
        if chain_perp == 0:
            _close_position(db, _position_row(db, row["id"]), block, timestamp_s, CLOSED_NOT_ON_CHAIN,
                            complete=False)
    return differences


def write_off_positions(db: sqlite3.Connection, *, executor: str | None, chain_id: int | None) -> list[PositionRecord]:
    """Every open position written off: its chain is gone, so nothing of it can be closed or read.
    Each is closed with reason WRITTEN_OFF as of its last block (the last its chain was seen at) and
    no realized PnL; a 'close' event and reconcile_log rows (source "write-off", the chain's value
    None: not readable) record it. Returns them as written off, their pnl the cash so far."""
    written = []
    for row in db.execute("SELECT * FROM positions WHERE status = 'open' ORDER BY market").fetchall():
        block, source = row["last_block"], "write-off"
        _log_difference(db, row["market"], "journal_only", "perp_base_x18", _int(row["perp_base_x18"]), None,
                        "closed", row["id"], block, None, source)
        if _int(row["spot_raw"]):
            _log_difference(db, row["market"], "journal_only", "spot_raw", _int(row["spot_raw"]), None, "closed",
                            row["id"], block, None, source)
        db.execute("""UPDATE positions SET status = 'closed', closed_block = ?, closed_timestamp_s = NULL,
                      close_reason = ? WHERE id = ?""", (block, WRITTEN_OFF, row["id"]))
        _event(db, row["id"], "close", block, None, None, f"{WRITTEN_OFF} ({held_in(executor, chain_id)})")
        written.append(_position_record(db, _position_row(db, row["id"])))
    return written
