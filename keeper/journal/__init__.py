"""The keeper's journal: every decision, transaction, fill, funding reading and position, in SQLite.

Durability: WAL mode, `synchronous=FULL`, and every public write is one `BEGIN IMMEDIATE ...
COMMIT` transaction, so a call that returned is on disk and a crash (even SIGKILL, even mid-write)
leaves either all of a call's rows or none of them. A transaction's outcome, its fills and the
position change they cause are written by one call, in one transaction.

Amounts: ints end to end. Every `_x18` / `_raw` / `_wei` column is TEXT holding a canonical
decimal integer (x18 amounts exceed 64 bits; SQLite's INTEGER would silently turn them into
floats), checked by the schema, converted back with int(). Floats appear only for decision
statistics (basis bps, the expected PnlEstimate) and for the risk module's `realized_today_usd`.
PnL is USD x18 throughout (see keeper/pnl_split.py for the split and why it sums exactly).

The chain wins: `reconcile` aligns the open positions with what Perp and the executor hold, and
every difference (there, or met while applying a trade) is logged in `reconcile_log` with both
values. Schema versioned in `meta`: an older journal is upgraded in place when it is opened
(schema.py's MIGRATIONS, one transaction); a newer or unknown version is refused with its path.

By concern: schema.py (DDL, version, migrations, opening the file), records.py (the record types,
errors, constants), rows.py (rows <-> records), accounting.py (trades applied to positions,
funding, gas, realized PnL, reconcile rows), reconcile.py (open positions aligned with the chain),
reports.py (PnL summary, status), store.py (the Journal: the public API, one transaction per write).
"""

from keeper.journal.records import (
    CLOSED_NOT_ON_CHAIN,
    HANDOVER_PREFIX,
    ChainPosition,
    DecisionRecord,
    DecisionStatus,
    DifferenceAction,
    DifferenceField,
    DifferenceKind,
    FillsRecord,
    FundingRecord,
    JournalError,
    JournalSchemaError,
    MarketPnl,
    PlanBounds,
    PnlSummary,
    PositionEvent,
    PositionLeg,
    PositionRecord,
    PositionsHolder,
    RealizedPnl,
    ReconcileDifference,
    StatusReport,
    TxRecord,
    TxRecordStatus,
    WRITTEN_OFF,
)
from keeper.journal.schema import MIGRATIONS, SCHEMA_VERSION
from keeper.journal.store import Journal

__all__ = [
    "CLOSED_NOT_ON_CHAIN",
    "ChainPosition",
    "DecisionRecord",
    "DecisionStatus",
    "DifferenceAction",
    "DifferenceField",
    "DifferenceKind",
    "FillsRecord",
    "FundingRecord",
    "HANDOVER_PREFIX",
    "Journal",
    "JournalError",
    "JournalSchemaError",
    "MIGRATIONS",
    "MarketPnl",
    "PlanBounds",
    "PnlSummary",
    "PositionEvent",
    "PositionLeg",
    "PositionRecord",
    "PositionsHolder",
    "RealizedPnl",
    "ReconcileDifference",
    "SCHEMA_VERSION",
    "StatusReport",
    "TxRecord",
    "TxRecordStatus",
    "WRITTEN_OFF",
]
