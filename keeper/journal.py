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
values. Schema versioned in `meta`; a file of another version is refused with its path.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from keeper.errors import ConfigError, FatalError
from keeper.logs import get_logger
from keeper.pnl_split import (
    ZERO_PNL,
    PnlSplit,
    TradeFees,
    compute_gas_usd_x18,
    compute_pnl_split,
    require_int,
    sum_pnl,
)
from keeper.types import Direction, Intent, Outcome, PnlEstimate, Position, PredictedFills, SpotVenue, TxPlan

log = get_logger("keeper.journal")

SCHEMA_VERSION = 1

DecisionStatus = Literal["planned", "skipped", "sent", "dry_run"]
TxRecordStatus = Literal["pending", "included", "reverted", "dropped", "replaced", "dry_run", "simulation_reverted"]
DifferenceKind = Literal["journal_only", "chain_only", "size_mismatch"]
DifferenceField = Literal["perp_base_x18", "spot_raw"]
DifferenceAction = Literal["closed", "adopted", "corrected"]

_SETTLED_STATUSES = ("included", "reverted", "dropped", "replaced")
_UNSENT_STATUSES = ("dry_run", "simulation_reverted")
_FILL_EVENT_OF_KIND = {"open": "BasisOpened", "resize": "BasisResized", "close": "BasisClosed"}
CLOSED_NOT_ON_CHAIN = "reconciled: not on chain"


class JournalError(FatalError):
    """The journal cannot record this consistently (unknown id, a settled tx settled again ...)."""


class JournalSchemaError(ConfigError):
    """The file is not a journal this keeper can use (another schema version, not SQLite ...)."""


# ------------------------------------------------------------------------------ schema
def _amount(name: str, nullable: bool = False) -> str:
    """A TEXT column holding a canonical decimal integer (optionally NULL)."""
    canonical = (f"typeof({name}) = 'text' AND ({name} = '0' OR {name} GLOB '[1-9]*' OR {name} GLOB '-[1-9]*') "
                 f"AND substr({name}, 2) NOT GLOB '*[^0-9]*'")
    if nullable:
        return f"{name} TEXT CHECK ({name} IS NULL OR ({canonical}))"
    return f"{name} TEXT NOT NULL CHECK ({canonical})"


_DIRECTIONS = "('short_perp', 'long_perp')"
HANDOVER_PREFIX = "hand-over:"
_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        block INTEGER NOT NULL,
        timestamp_s INTEGER,
        strategy TEXT NOT NULL,
        market TEXT NOT NULL,
        kind TEXT CHECK (kind IN ('open', 'close', 'resize')),
        direction TEXT CHECK (direction IN {_DIRECTIONS}),
        spot_venue TEXT,
        {_amount('perp_base_x18', nullable=True)},
        reason TEXT NOT NULL,
        basis_bps REAL,
        expected_json TEXT,
        inputs_json TEXT NOT NULL,
        created_block INTEGER,
        valid_until_block INTEGER,
        status TEXT NOT NULL CHECK (status IN ('planned', 'skipped', 'sent', 'dry_run')),
        status_reason TEXT,
        position_id INTEGER REFERENCES positions(id),
        recorded_at_s REAL NOT NULL,
        CHECK (kind IS NOT NULL OR status = 'skipped'))""",
    f"""CREATE TABLE positions (
        id INTEGER PRIMARY KEY,
        market TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        direction TEXT NOT NULL CHECK (direction IN {_DIRECTIONS}),
        spot_venue TEXT NOT NULL,
        {_amount('perp_base_x18')},
        {_amount('spot_raw')},
        entry_known INTEGER NOT NULL CHECK (entry_known IN (0, 1)),
        opened_block INTEGER NOT NULL,
        opened_timestamp_s INTEGER NOT NULL,
        entry_basis_bps REAL,
        opened_decision_id INTEGER REFERENCES decisions(id),
        {_amount('net_quote_x18')},
        {_amount('fees_x18')},
        {_amount('funding_settled_x18')},
        {_amount('funding_pending_x18')},
        funding_pending_block INTEGER,
        last_block INTEGER NOT NULL,
        closed_block INTEGER,
        closed_timestamp_s INTEGER,
        close_reason TEXT,
        CHECK ((status = 'open') = (closed_block IS NULL)))""",
    "CREATE UNIQUE INDEX positions_one_open_per_market ON positions(market) WHERE status = 'open'",
    f"""CREATE TABLE position_events (
        id INTEGER PRIMARY KEY,
        position_id INTEGER NOT NULL REFERENCES positions(id),
        kind TEXT NOT NULL CHECK (kind IN ('open', 'update', 'close', 'reconcile')),
        block INTEGER NOT NULL,
        timestamp_s INTEGER,
        tx_id INTEGER REFERENCES transactions(id),
        direction TEXT NOT NULL CHECK (direction IN {_DIRECTIONS}),
        {_amount('perp_base_x18')},
        {_amount('spot_raw')},
        {_amount('net_quote_x18')},
        detail TEXT NOT NULL,
        recorded_at_s REAL NOT NULL)""",
    "CREATE INDEX position_events_by_position ON position_events(position_id)",
    f"""CREATE TABLE transactions (
        id INTEGER PRIMARY KEY,
        decision_id INTEGER NOT NULL REFERENCES decisions(id),
        market TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('open', 'close', 'resize')),
        position_id INTEGER REFERENCES positions(id),
        status TEXT NOT NULL CHECK (status IN ('pending', 'included', 'reverted', 'dropped', 'replaced',
                                               'dry_run', 'simulation_reverted')),
        tx_hash TEXT,
        attempt_hashes_json TEXT NOT NULL,
        nonce INTEGER,
        sent_block INTEGER,
        block INTEGER,
        block_timestamp_s INTEGER,
        to_address TEXT NOT NULL,
        calldata BLOB NOT NULL,
        {_amount('value_wei')},
        gas_limit INTEGER NOT NULL,
        {_amount('gas_cost_wei')},
        gas_cost_usd REAL,
        expected_net_usd REAL,
        {_amount('perp_opposite_amount_bound_x18')},
        {_amount('spot_limit_raw')},
        {_amount('max_residual_base_x18')},
        {_amount('min_net_quote_x18')},
        deadline_s INTEGER NOT NULL,
        {_amount('predicted_perp_base_x18')},
        {_amount('predicted_perp_quote_x18')},
        {_amount('predicted_spot_raw')},
        {_amount('predicted_usdc_raw')},
        {_amount('predicted_residual_base_x18')},
        {_amount('predicted_net_quote_x18')},
        gas_used INTEGER NOT NULL,
        {_amount('fee_paid_wei')},
        {_amount('eth_price_x18', nullable=True)},
        {_amount('gas_usd_x18')},
        revert_reason TEXT,
        detail TEXT,
        recorded_at_s REAL NOT NULL,
        settled_at_s REAL)""",
    "CREATE UNIQUE INDEX transactions_by_hash ON transactions(tx_hash) WHERE tx_hash IS NOT NULL",
    "CREATE INDEX transactions_by_position ON transactions(position_id)",
    f"""CREATE TABLE fills (
        id INTEGER PRIMARY KEY,
        tx_id INTEGER NOT NULL UNIQUE REFERENCES transactions(id),
        market TEXT NOT NULL,
        position_id INTEGER REFERENCES positions(id),
        event TEXT NOT NULL CHECK (event IN ('BasisOpened', 'BasisResized', 'BasisClosed')),
        spot_venue TEXT NOT NULL,
        block INTEGER NOT NULL,
        {_amount('perp_base_x18')},
        {_amount('perp_quote_x18')},
        {_amount('spot_raw')},
        {_amount('usdc_raw')},
        {_amount('residual_base_x18')},
        {_amount('net_quote_x18')},
        {_amount('position_base_after_x18', nullable=True)},
        {_amount('perp_fee_x18')},
        {_amount('spot_fee_x18')},
        {_amount('settled_funding_x18')})""",
    "CREATE INDEX fills_by_position ON fills(position_id)",
    f"""CREATE TABLE funding (
        id INTEGER PRIMARY KEY,
        market TEXT NOT NULL,
        block INTEGER NOT NULL,
        timestamp_s INTEGER,
        kind TEXT NOT NULL CHECK (kind IN ('pending', 'settled')),
        {_amount('amount_x18')},
        position_id INTEGER REFERENCES positions(id),
        tx_id INTEGER REFERENCES transactions(id),
        recorded_at_s REAL NOT NULL)""",
    "CREATE INDEX funding_by_market ON funding(market, block)",
    f"""CREATE TABLE realized_pnl (
        position_id INTEGER PRIMARY KEY REFERENCES positions(id),
        market TEXT NOT NULL,
        closed_block INTEGER NOT NULL,
        {_amount('funding_x18')},
        {_amount('convergence_x18')},
        {_amount('fees_x18')},
        {_amount('gas_x18')},
        {_amount('total_x18')},
        complete INTEGER NOT NULL CHECK (complete IN (0, 1)),
        recorded_at_s REAL NOT NULL)""",
    f"""CREATE TABLE reconcile_log (
        id INTEGER PRIMARY KEY,
        block INTEGER NOT NULL,
        timestamp_s INTEGER,
        market TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('journal_only', 'chain_only', 'size_mismatch')),
        field TEXT NOT NULL CHECK (field IN ('perp_base_x18', 'spot_raw')),
        {_amount('journal_value', nullable=True)},
        {_amount('chain_value', nullable=True)},
        action TEXT NOT NULL CHECK (action IN ('closed', 'adopted', 'corrected')),
        position_id INTEGER REFERENCES positions(id),
        source TEXT NOT NULL,
        recorded_at_s REAL NOT NULL)""",
]


# ------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class ChainPosition:
    """What the chain holds in one market.

    perp_base_x18: AccountBalance.getTakerPositionSize(executor, baseToken), signed; 0 = flat.
    spot_raw: spot held against the position, signed, token decimals: the executor's spot-token
              balance minus the inventory it holds when flat (the caller knows that baseline).
              None: not read, not compared."""

    perp_base_x18: int
    spot_raw: int | None = None


@dataclass(frozen=True)
class ReconcileDifference:
    """One field on which the journal and the chain disagreed, and what the journal did about it.
    `source` is "reconcile", or "tx <id>" when met while applying a trade."""

    market: str
    kind: DifferenceKind
    field: DifferenceField
    journal_value: int | None  # None: the journal had no position
    chain_value: int | None  # None: the chain's value was not read
    action: DifferenceAction
    position_id: int
    block: int
    source: str


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    block: int
    timestamp_s: int | None
    strategy: str
    market: str
    kind: str | None  # None: a strategy's "no trade" decision (status skipped)
    direction: Direction | None
    spot_venue: str | None
    perp_base_x18: int | None
    reason: str
    basis_bps: float | None
    expected: PnlEstimate | None
    inputs: Mapping[str, Any]
    created_block: int | None
    valid_until_block: int | None
    status: DecisionStatus
    status_reason: str | None
    position_id: int | None


@dataclass(frozen=True)
class PlanBounds:
    """The bounds a plan sent to the executor, and its gas budget."""

    perp_opposite_amount_bound_x18: int
    spot_limit_raw: int
    max_residual_base_x18: int
    min_net_quote_x18: int
    deadline_s: int
    gas_limit: int
    gas_cost_wei: int


@dataclass(frozen=True)
class TxRecord:
    id: int
    decision_id: int
    market: str
    kind: str
    position_id: int | None  # the position whose gas this is; None: none (a failed open ...)
    status: TxRecordStatus
    tx_hash: str | None
    attempt_hashes: tuple[str, ...]
    nonce: int | None
    sent_block: int | None
    block_number: int | None
    block_timestamp_s: int | None
    to: str
    calldata: bytes
    value_wei: int
    bounds: PlanBounds
    predicted: PredictedFills
    gas_used: int
    fee_paid_wei: int
    eth_price_x18: int | None
    gas_usd_x18: int
    revert_reason: str | None
    detail: str | None


@dataclass(frozen=True)
class FillsRecord:
    """The executor's Fills of one included trade, what the venues charged, and the funding Perp
    settled in the same transaction."""

    tx_id: int
    market: str
    position_id: int | None
    event: str
    spot_venue: str
    block_number: int
    fills: PredictedFills
    position_base_after_x18: int | None
    fees: TradeFees
    settled_funding_x18: int


@dataclass(frozen=True)
class FundingRecord:
    id: int
    market: str
    block: int
    timestamp_s: int | None
    kind: Literal["pending", "settled"]
    amount_x18: int  # positive: the account owes (pending) / paid (settled) funding
    position_id: int | None
    tx_id: int | None


@dataclass(frozen=True)
class PositionRecord:
    """A position as the journal holds it. For an adopted position (entry_known False) the entry
    fields of `position` are when the journal adopted it, and entry_basis_bps is NaN.
    `pnl`: realized for a closed position; to date (settled + pending funding, trades so far, gas
    so far; not marked to market) for an open one."""

    id: int
    status: Literal["open", "closed"]
    position: Position
    entry_known: bool
    fees_x18: int
    funding_settled_x18: int
    funding_pending_x18: int
    last_block: int
    closed_block: int | None
    closed_timestamp_s: int | None
    close_reason: str | None
    pnl: PnlSplit


@dataclass(frozen=True)
class PositionEvent:
    id: int
    position_id: int
    kind: Literal["open", "update", "close", "reconcile"]
    block: int
    timestamp_s: int | None
    tx_id: int | None
    direction: Direction
    perp_base_x18: int
    spot_raw: int
    net_quote_x18: int
    detail: str


@dataclass(frozen=True)
class RealizedPnl:
    position_id: int
    market: str
    closed_block: int
    split: PnlSplit
    complete: bool  # False: entry adopted from the chain, or closed by reconcile (flows partly unknown)


@dataclass(frozen=True)
class MarketPnl:
    """One market: closed positions, the open one (to date), and gas tied to no position (failed
    opens, transactions of positions closed meanwhile)."""

    market: str
    realized: PnlSplit
    open: PnlSplit
    unattributed: PnlSplit
    closed_positions: int

    @property
    def total(self) -> PnlSplit:
        return self.realized + self.open + self.unattributed


@dataclass(frozen=True)
class PnlSummary:
    markets: Mapping[str, MarketPnl]

    @property
    def realized(self) -> PnlSplit:
        return sum_pnl(m.realized for m in self.markets.values())

    @property
    def open(self) -> PnlSplit:
        return sum_pnl(m.open for m in self.markets.values())

    @property
    def unattributed(self) -> PnlSplit:
        return sum_pnl(m.unattributed for m in self.markets.values())

    @property
    def total(self) -> PnlSplit:
        return self.realized + self.open + self.unattributed


@dataclass(frozen=True)
class StatusReport:
    """What `keeper status` shows: open positions, PnL, transactions in flight, latest funding."""

    journal_path: str
    schema_version: int
    last_block: int | None
    positions: tuple[PositionRecord, ...]
    pnl: PnlSummary
    pending_transactions: tuple[TxRecord, ...]
    latest_funding: Mapping[str, FundingRecord]

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types. Fields named *_x18, *_raw, *_wei are decimal strings (they exceed a
        JSON double); NaN becomes null; PnL splits carry their trading and total too."""
        pnl = self.pnl
        return {
            "journal_path": self.journal_path,
            "schema_version": self.schema_version,
            "last_block": self.last_block,
            "positions": [_to_json(p) for p in self.positions],
            "pnl": {
                "markets": {m: _to_json(v) | {"total": v.total.to_json_dict()} for m, v in pnl.markets.items()},
                "realized": pnl.realized.to_json_dict(),
                "open": pnl.open.to_json_dict(),
                "unattributed": pnl.unattributed.to_json_dict(),
                "total": pnl.total.to_json_dict(),
            },
            "pending_transactions": [_to_json(t) for t in self.pending_transactions],
            "latest_funding": {m: _to_json(f) for m, f in self.latest_funding.items()},
        }


def _to_json(value: Any, name: str = "") -> Any:
    if isinstance(value, PnlSplit):
        return value.to_json_dict()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value) if name.endswith(("_x18", "_raw", "_wei")) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


# ------------------------------------------------------------------------------ conversions
def _text(value: int, name: str) -> str:
    return str(require_int(value, name))


def _opt_text(value: int | None, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _int(text: str) -> int:
    if not isinstance(text, str):
        raise JournalError(f"amount stored as {type(text).__name__}, expected decimal text: {text!r}")
    return int(text)


def _opt_int(text: str | None) -> int | None:
    return None if text is None else _int(text)


def _json_fallback(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return str(value)


def _direction_of(perp_base_x18: int, default: Direction) -> Direction:
    if perp_base_x18 < 0:
        return Direction.SHORT_PERP
    if perp_base_x18 > 0:
        return Direction.LONG_PERP
    return default


def _now_s() -> float:
    return time.time()


# ------------------------------------------------------------------------------ journal
class Journal:
    """The journal in one SQLite file. A context manager; safe to share between threads (calls
    are serialized). `readonly=True` opens an existing journal for reading only (e.g. `keeper
    status` beside a running keeper: WAL lets it read while the keeper writes)."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._conn = _connect(self.path, readonly)
        try:
            self._prepare_schema()
        except BaseException:
            self._conn.close()
            raise
        log.debug("journal.opened", path=str(self.path), schema_version=SCHEMA_VERSION, readonly=readonly)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self.readonly:
                raise JournalError(f"journal {self.path} is open read-only")
            if self._conn.in_transaction:  # nested in another write of this journal
                yield self._conn
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # a constraint, a full disk, a lock held too long
                    raise JournalError(f"journal {self.path}: {exc}") from exc
                raise

    def write_transaction(self) -> Any:
        """The journal's write transaction, for record modules beside it (keeper/pairs_journal.py)."""
        return self._write()

    def read_transaction(self) -> Any:
        return self._read()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def _prepare_schema(self) -> None:
        conn = self._conn
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables and not self.readonly:
                with self._write():
                    if not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                                     (str(SCHEMA_VERSION),))
                        conn.execute("INSERT INTO meta (key, value) VALUES ('created_at_s', ?)", (repr(_now_s()),))
                tables = {"meta"}
            if "meta" not in tables:
                raise JournalSchemaError(f"journal {self.path}: not a keeper journal (no meta table)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise JournalSchemaError(f"journal {self.path}: not a usable SQLite database ({exc})") from exc
        found = row[0] if row else None
        if found != str(SCHEMA_VERSION):
            if found is not None and found.isdigit() and int(found) > SCHEMA_VERSION:
                why = f"schema version {found} is newer than this keeper's ({SCHEMA_VERSION}); upgrade the keeper"
            else:
                why = f"unknown schema version {found!r} (this keeper reads version {SCHEMA_VERSION})"
            raise JournalSchemaError(f"journal {self.path}: {why}, or point monitoring.journal at another file")

    # ------------------------------------------------------------------ decisions
    def record_decision(self, intent: Intent, *, block: int, timestamp_s: int, basis_bps: float | None = None,
                        inputs: Mapping[str, Any] | None = None) -> int:
        """A strategy's intent, before planning (status 'planned'); returns its id. `basis_bps`
        becomes the position's entry basis if this opens one; `inputs` (basis, z, funding ...)
        is stored as JSON."""
        with self._write() as db:
            position_id = None
            if intent.kind != "open":
                row = _open_position_row(db, intent.market)
                position_id = row["id"] if row else None
            cur = db.execute(
                """INSERT INTO decisions (block, timestamp_s, strategy, market, kind, direction, spot_venue,
                       perp_base_x18, reason, basis_bps, expected_json, inputs_json, created_block,
                       valid_until_block, status, position_id, recorded_at_s)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?)""",
                (require_int(block, "block"), require_int(timestamp_s, "timestamp_s"), intent.strategy,
                 intent.market, intent.kind, Direction(intent.direction).value, intent.spot_venue,
                 _text(intent.perp_base_x18, "perp_base_x18"), intent.reason, basis_bps,
                 json.dumps(_estimate_to_json(intent.expected)), _inputs_json(inputs), intent.created_block,
                 intent.valid_until_block, position_id, _now_s()))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def record_skip(self, *, block: int, strategy: str, market: str, reason: str, decision_id: int | None = None,
                    timestamp_s: int | None = None, inputs: Mapping[str, Any] | None = None) -> int:
        """A decision not to trade. With `decision_id`: that planned decision was skipped (risk,
        planning, simulation ...). Without: a strategy's "no trade" decision, recorded on its own.
        Returns the decision id."""
        with self._write() as db:
            if decision_id is None:
                cur = db.execute(
                    """INSERT INTO decisions (block, timestamp_s, strategy, market, reason, inputs_json, status,
                           status_reason, recorded_at_s) VALUES (?, ?, ?, ?, ?, ?, 'skipped', ?, ?)""",
                    (require_int(block, "block"), timestamp_s, strategy, market, reason, _inputs_json(inputs),
                     reason, _now_s()))
                return int(cur.lastrowid)  # type: ignore[arg-type]
            row = _decision_row(db, decision_id)
            if row["status"] != "planned":
                raise JournalError(f"decision {decision_id} is {row['status']}, only a planned one can be skipped")
            db.execute("UPDATE decisions SET status = 'skipped', status_reason = ? WHERE id = ?", (reason, decision_id))
            return decision_id

    def decision(self, decision_id: int) -> DecisionRecord:
        with self._read() as db:
            return _decision_from_row(_decision_row(db, decision_id))

    # ------------------------------------------------------------------ transactions
    def record_tx_sent(self, decision_id: int, plan: TxPlan, *, tx_hash: str, nonce: int, sent_block: int,
                       eth_price_x18: int | None = None) -> int:
        """A transaction broadcast for a decision (status 'pending'); returns its id. Settle it
        with `record_tx_outcome`. `eth_price_x18` (USD per ETH) prices its gas."""
        with self._write() as db:
            decision = _decision_row(db, decision_id)
            if decision["status"] not in ("planned", "sent"):
                raise JournalError(f"decision {decision_id} is {decision['status']}: nothing can be sent for it")
            tx_id = _insert_tx(db, decision, plan, status="pending", tx_hash=tx_hash, nonce=nonce,
                               sent_block=sent_block, eth_price_x18=eth_price_x18)
            db.execute("UPDATE decisions SET status = 'sent' WHERE id = ?", (decision_id,))
            return tx_id

    def record_tx_outcome(self, tx_id: int, outcome: Outcome, *, block_timestamp_s: int | None = None,
                          position_base_after_x18: int | None = None, fees: TradeFees | None = None,
                          settled_funding_x18: int | None = None, eth_price_x18: int | None = None,
                          attempt_hashes: Sequence[str] = ()) -> int | None:
        """How a sent transaction settled (included / reverted / dropped / replaced), and, when
        included, its fills and their effect on the position, all in one transaction.

        For an included trade: `outcome.fills` are the executor's Fills; `position_base_after_x18`
        is the event's positionBase18After (the chain wins over the journal's arithmetic);
        `fees` what Perp (PositionChanged.fee) and the spot pool charged, USD x18;
        `settled_funding_x18` the FundingPaymentSettled amount of the receipt (0 when absent);
        `block_timestamp_s` the including block's timestamp. Each of these (and the attempt
        hashes) defaults to the outcome's own field of that name (fees: Perp's fee alone).
        Returns the position id touched."""
        with self._write() as db:
            tx = _tx_row(db, tx_id)
            if tx["status"] != "pending":
                raise JournalError(f"transaction {tx_id} already settled as {tx['status']}")
            return self._settle(db, tx, outcome, block_timestamp_s, position_base_after_x18, fees,
                                settled_funding_x18, eth_price_x18, attempt_hashes)

    def record_outcome(self, decision_id: int, outcome: Outcome, *, nonce: int | None = None,
                       sent_block: int | None = None, block_timestamp_s: int | None = None,
                       position_base_after_x18: int | None = None, fees: TradeFees | None = None,
                       settled_funding_x18: int | None = None, eth_price_x18: int | None = None,
                       attempt_hashes: Sequence[str] = ()) -> int:
        """A decision's finished outcome in one call (an executor that sends and waits, or never
        sends): the transaction row and, as in `record_tx_outcome`, its fills and position
        change. dry_run marks the decision 'dry_run'; simulation_reverted marks it 'skipped' with
        the revert reason (neither touches positions). Returns the transaction id."""
        nonce = outcome.nonce if nonce is None else nonce
        with self._write() as db:
            decision = _decision_row(db, decision_id)
            if decision["status"] not in ("planned", "sent"):
                raise JournalError(f"decision {decision_id} is {decision['status']}: it has no outcome to record")
            if outcome.status in _UNSENT_STATUSES:
                tx_id = _insert_tx(db, decision, outcome.plan, status=outcome.status, tx_hash=outcome.tx_hash,
                                   nonce=nonce, sent_block=sent_block, eth_price_x18=eth_price_x18,
                                   detail=outcome.detail)
                status, reason = (("dry_run", outcome.detail) if outcome.status == "dry_run"
                                  else ("skipped", f"simulation reverted: {outcome.detail}"))
                db.execute("UPDATE decisions SET status = ?, status_reason = ? WHERE id = ?",
                           (status, reason, decision_id))
                return tx_id
            tx_id = _insert_tx(db, decision, outcome.plan, status="pending", tx_hash=outcome.tx_hash, nonce=nonce,
                               sent_block=sent_block, eth_price_x18=eth_price_x18)
            db.execute("UPDATE decisions SET status = 'sent' WHERE id = ?", (decision_id,))
            self._settle(db, _tx_row(db, tx_id), outcome, block_timestamp_s, position_base_after_x18, fees,
                         settled_funding_x18, eth_price_x18, attempt_hashes)
            return tx_id

    def transaction(self, tx_id: int) -> TxRecord:
        with self._read() as db:
            return _tx_from_row(_tx_row(db, tx_id))

    def pending_transactions(self) -> list[TxRecord]:
        """Sent and not settled yet (after a restart: match them with the sender's recovered nonces)."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM transactions WHERE status = 'pending' ORDER BY id").fetchall()
            return [_tx_from_row(r) for r in rows]

    def fills(self, tx_id: int) -> FillsRecord | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM fills WHERE tx_id = ?", (tx_id,)).fetchone()
            return None if row is None else _fills_from_row(row)

    # ------------------------------------------------------------------ funding
    def record_funding(self, market: str, *, block: int, pending_funding_x18: int,
                       timestamp_s: int | None = None) -> int:
        """Perp's pending funding of the executor in a market at a block (positive: it owes).
        Updates the market's open position unless a later reading or trade is already known."""
        with self._write() as db:
            position = _open_position_row(db, market)
            cur = db.execute(
                """INSERT INTO funding (market, block, timestamp_s, kind, amount_x18, position_id, recorded_at_s)
                   VALUES (?, ?, ?, 'pending', ?, ?, ?)""",
                (market, require_int(block, "block"), timestamp_s, _text(pending_funding_x18, "pending_funding_x18"),
                 position["id"] if position else None, _now_s()))
            if position is not None and block >= position["last_block"] and \
                    (position["funding_pending_block"] is None or block >= position["funding_pending_block"]):
                db.execute("UPDATE positions SET funding_pending_x18 = ?, funding_pending_block = ? WHERE id = ?",
                           (str(pending_funding_x18), block, position["id"]))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def funding_history(self, market: str) -> list[FundingRecord]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM funding WHERE market = ? ORDER BY block, id", (market,)).fetchall()
            return [_funding_from_row(r) for r in rows]

    # ------------------------------------------------------------------ positions
    def open_positions(self) -> dict[str, Position]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM positions WHERE status = 'open' ORDER BY market").fetchall()
            return {r["market"]: _position_from_row(r) for r in rows}

    def position_owners(self) -> dict[str, str]:
        """market -> the strategy that manages the open position there: the last one it was handed
        over to (record_handover), else the one whose decision opened it (adopted positions have
        none: any strategy may manage them)."""
        with self._read() as db:
            rows = db.execute(
                """SELECT p.market, d.strategy FROM positions p JOIN decisions d ON d.id = p.opened_decision_id
                   WHERE p.status = 'open'""").fetchall()
            owners = {r["market"]: r["strategy"] for r in rows if r["strategy"]}
            handed = db.execute(
                f"""SELECT p.market, d.strategy FROM positions p JOIN decisions d ON d.position_id = p.id
                   WHERE p.status = 'open' AND d.status_reason LIKE '{HANDOVER_PREFIX}%' ORDER BY d.id""").fetchall()
            owners.update({r["market"]: r["strategy"] for r in handed})
            return owners

    def record_handover(self, *, market: str, to_strategy: str, reason: str, block: int,
                        timestamp_s: int | None = None) -> int:
        """The open position in `market` changes strategy without a trade: from now on
        `to_strategy` manages it (position_owners). Returns the decision id."""
        with self._write() as db:
            row = db.execute("SELECT id FROM positions WHERE market = ? AND status = 'open'", (market,)).fetchone()
            if row is None:
                raise JournalError(f"hand-over in {market}: no open position")
            text = f"{HANDOVER_PREFIX} {reason}"
            cur = db.execute(
                """INSERT INTO decisions (block, timestamp_s, strategy, market, reason, inputs_json, status,
                       status_reason, position_id, recorded_at_s) VALUES (?, ?, ?, ?, ?, '{}', 'skipped', ?, ?, ?)""",
                (require_int(block, "block"), timestamp_s, to_strategy, market, text, text, row["id"], _now_s()))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def positions(self, status: Literal["open", "closed"] | None = None) -> list[PositionRecord]:
        with self._read() as db:
            if status is None:
                rows = db.execute("SELECT * FROM positions ORDER BY id").fetchall()
            else:
                rows = db.execute("SELECT * FROM positions WHERE status = ? ORDER BY id", (status,)).fetchall()
            return [_position_record(db, r) for r in rows]

    def position(self, position_id: int) -> PositionRecord:
        with self._read() as db:
            return _position_record(db, _position_row(db, position_id))

    def position_events(self, position_id: int) -> list[PositionEvent]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM position_events WHERE position_id = ? ORDER BY id",
                              (position_id,)).fetchall()
            return [PositionEvent(r["id"], r["position_id"], r["kind"], r["block"], r["timestamp_s"], r["tx_id"],
                                  Direction(r["direction"]), _int(r["perp_base_x18"]), _int(r["spot_raw"]),
                                  _int(r["net_quote_x18"]), r["detail"]) for r in rows]

    def realized(self, position_id: int) -> RealizedPnl | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM realized_pnl WHERE position_id = ?", (position_id,)).fetchone()
            return None if row is None else _realized_from_row(row)

    # ------------------------------------------------------------------ PnL and status
    def pnl_summary(self) -> PnlSummary:
        """Per market: realized (closed positions), open (to date, pending funding included) and
        unattributed gas; totals over markets on the summary."""
        with self._read() as db:
            markets = sorted({r[0] for r in db.execute(
                "SELECT market FROM positions UNION SELECT market FROM transactions")})
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

    def realized_since(self, since_s: float) -> PnlSplit:
        """Realized since a wall-clock time: positions closed since, plus gas tied to no position
        of transactions settled since."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM realized_pnl WHERE recorded_at_s >= ?", (since_s,)).fetchall()
            gas = sum(_int(r[0]) for r in db.execute(
                "SELECT gas_usd_x18 FROM transactions WHERE position_id IS NULL AND settled_at_s >= ?", (since_s,)))
            return sum_pnl(_realized_from_row(r).split for r in rows) + PnlSplit(0, 0, 0, gas, -gas)

    def realized_today_usd(self, now_s: float | None = None) -> float:
        """`realized_since` the start of the current UTC day, in USD (a float, for the risk
        module's daily loss limit only)."""
        now_s = _now_s() if now_s is None else now_s
        return self.realized_since(now_s - now_s % 86_400).total_x18 / 10**18

    def status(self) -> StatusReport:
        with self._read() as db:
            open_rows = db.execute("SELECT * FROM positions WHERE status = 'open' ORDER BY market").fetchall()
            latest: dict[str, FundingRecord] = {}
            for row in db.execute("SELECT * FROM funding WHERE id IN (SELECT max(id) FROM funding GROUP BY market)"):
                latest[row["market"]] = _funding_from_row(row)
            last_block = db.execute(
                """SELECT max(b) FROM (SELECT max(block) AS b FROM decisions UNION ALL SELECT max(block) FROM funding
                   UNION ALL SELECT max(block) FROM transactions UNION ALL SELECT max(last_block) FROM positions)"""
            ).fetchone()[0]
            return StatusReport(
                journal_path=str(self.path),
                schema_version=SCHEMA_VERSION,
                last_block=last_block,
                positions=tuple(_position_record(db, r) for r in open_rows),
                pnl=self.pnl_summary(),
                pending_transactions=tuple(self.pending_transactions()),
                latest_funding=dict(sorted(latest.items())),
            )

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, chain_positions: Mapping[str, ChainPosition], *, block: int, timestamp_s: int | None = None,
                  adopt_spot_venue: SpotVenue = "uniswap_v3") -> list[ReconcileDifference]:
        """Align the journal's open positions with the chain; the chain wins.

        `chain_positions` must hold every market the journal has an open position in (a flat
        market as ChainPosition(0)); a missing one raises rather than closing on a partial read.
        - journal only (chain perp 0): closed, reason 'reconciled: not on chain';
        - chain only: adopted (direction from the perp sign, entry unknown, spot venue
          `adopt_spot_venue`), spot from the chain (0 if not read);
        - both, sizes differ: the journal takes the chain's perp base and spot.
        Every difference is returned and logged in reconcile_log, both values, in one transaction."""
        differences: list[ReconcileDifference] = []
        with self._write() as db:
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
        for d in differences:
            log.warning("journal.reconciled", market=d.market, kind=d.kind, field=d.field,
                        journal_value=d.journal_value, chain_value=d.chain_value, action=d.action,
                        position_id=d.position_id, block=d.block)
        return differences

    def reconcile_log(self) -> list[ReconcileDifference]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM reconcile_log ORDER BY id").fetchall()
            return [_difference_from_row(r) for r in rows]

    # ------------------------------------------------------------------ internals
    def _settle(self, db: sqlite3.Connection, tx: sqlite3.Row, outcome: Outcome, block_timestamp_s: int | None,
                position_base_after_x18: int | None, fees: TradeFees | None, settled_funding_x18: int | None,
                eth_price_x18: int | None, attempt_hashes: Sequence[str]) -> int | None:
        # What the caller does not give, the outcome's receipt fields do.
        block_timestamp_s = outcome.block_timestamp_s if block_timestamp_s is None else block_timestamp_s
        if position_base_after_x18 is None:
            position_base_after_x18 = outcome.position_base_after_x18
        fees = TradeFees(perp_fee_x18=outcome.perp_fee_x18) if fees is None else fees
        settled_funding_x18 = outcome.settled_funding_x18 if settled_funding_x18 is None else settled_funding_x18
        attempt_hashes = tuple(attempt_hashes) or tuple(outcome.attempt_hashes)
        if outcome.status not in _SETTLED_STATUSES:
            raise JournalError(f"transaction {tx['id']}: {outcome.status!r} is not how a sent transaction settles")
        fee_paid_wei = require_int(outcome.fee_paid_wei, "fee_paid_wei")
        price = eth_price_x18 if eth_price_x18 is not None else _opt_int(tx["eth_price_x18"])
        if price is None and fee_paid_wei:
            raise JournalError(f"transaction {tx['id']}: {fee_paid_wei} wei of gas and no ETH price to value it")
        gas_usd_x18 = compute_gas_usd_x18(fee_paid_wei, price) if fee_paid_wei else 0
        position_id = tx["position_id"]
        if position_id is not None and _position_row(db, position_id)["status"] == "closed":
            position_id = None  # realized PnL is final: this gas stays with the market
        hashes: list[str] = []  # oldest first: the sender's attempts, then any other hash seen
        for h in (*attempt_hashes, *json.loads(tx["attempt_hashes_json"]), outcome.tx_hash):
            if h and h not in hashes:
                hashes.append(h)
        db.execute(
            """UPDATE transactions SET status = ?, tx_hash = coalesce(?, tx_hash), attempt_hashes_json = ?,
                   block = ?, block_timestamp_s = ?, gas_used = ?, fee_paid_wei = ?, eth_price_x18 = ?,
                   gas_usd_x18 = ?, revert_reason = ?, detail = ?, position_id = ?, settled_at_s = ? WHERE id = ?""",
            (outcome.status, outcome.tx_hash, json.dumps(hashes), outcome.block_number, block_timestamp_s,
             require_int(outcome.gas_used, "gas_used"), str(fee_paid_wei), _opt_text(price, "eth_price_x18"),
             str(gas_usd_x18), outcome.detail if outcome.status == "reverted" else None, outcome.detail,
             position_id, _now_s(), tx["id"]))
        if outcome.status != "included":
            return position_id
        if outcome.fills is None or outcome.block_number is None or block_timestamp_s is None:
            raise JournalError(f"transaction {tx['id']} included: its fills, block and block timestamp are needed")
        return _apply_trade(db, _tx_row(db, tx["id"]), outcome.fills, outcome.block_number, block_timestamp_s,
                            position_base_after_x18, fees, settled_funding_x18)


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            if not path.is_file():
                raise JournalSchemaError(f"journal {path}: no such file")
            conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise JournalSchemaError(f"journal {path}: cannot open ({exc})") from exc
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalSchemaError(f"journal {path}: SQLite refused WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise JournalSchemaError(f"journal {path}: not a usable SQLite database ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn


# ------------------------------------------------------------------------------ row helpers
def _one(db: sqlite3.Connection, sql: str, key: int, what: str) -> sqlite3.Row:
    row = db.execute(sql, (key,)).fetchone()
    if row is None:
        raise JournalError(f"no {what} with id {key}")
    return row


def _decision_row(db: sqlite3.Connection, decision_id: int) -> sqlite3.Row:
    return _one(db, "SELECT * FROM decisions WHERE id = ?", decision_id, "decision")


def _tx_row(db: sqlite3.Connection, tx_id: int) -> sqlite3.Row:
    return _one(db, "SELECT * FROM transactions WHERE id = ?", tx_id, "transaction")


def _position_row(db: sqlite3.Connection, position_id: int) -> sqlite3.Row:
    return _one(db, "SELECT * FROM positions WHERE id = ?", position_id, "position")


def _open_position_row(db: sqlite3.Connection, market: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM positions WHERE market = ? AND status = 'open'", (market,)).fetchone()


def _estimate_to_json(expected: PnlEstimate) -> dict[str, float]:
    return {f.name: getattr(expected, f.name) for f in fields(expected)}


def _inputs_json(inputs: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(inputs or {}), sort_keys=True, default=_json_fallback)


def _insert_tx(db: sqlite3.Connection, decision: sqlite3.Row, plan: TxPlan, *, status: str, tx_hash: str | None,
               nonce: int | None, sent_block: int | None, eth_price_x18: int | None, detail: str | None = None) -> int:
    if decision["kind"] is None:
        raise JournalError(f"decision {decision['id']} has no intent: it cannot have a transaction")
    position_id = None
    if decision["kind"] != "open":
        row = _open_position_row(db, decision["market"])
        position_id = row["id"] if row else None
    p = plan.predicted
    cur = db.execute(
        """INSERT INTO transactions (decision_id, market, kind, position_id, status, tx_hash, attempt_hashes_json,
               nonce, sent_block, to_address, calldata, value_wei, gas_limit, gas_cost_wei, gas_cost_usd,
               expected_net_usd, perp_opposite_amount_bound_x18, spot_limit_raw, max_residual_base_x18,
               min_net_quote_x18, deadline_s, predicted_perp_base_x18, predicted_perp_quote_x18, predicted_spot_raw,
               predicted_usdc_raw, predicted_residual_base_x18, predicted_net_quote_x18, gas_used, fee_paid_wei,
               eth_price_x18, gas_usd_x18, detail, recorded_at_s)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   0, '0', ?, '0', ?, ?)""",
        (decision["id"], decision["market"], decision["kind"], position_id, status, tx_hash,
         json.dumps([tx_hash] if tx_hash else []), nonce, sent_block, plan.to, bytes(plan.calldata),
         _text(plan.value_wei, "value_wei"), require_int(plan.gas_limit, "gas_limit"),
         _text(plan.gas_cost_wei, "gas_cost_wei"), plan.gas_cost_usd, plan.expected_net_usd,
         _text(plan.perp_opposite_amount_bound_x18, "perp_opposite_amount_bound_x18"),
         _text(plan.spot_limit_raw, "spot_limit_raw"), _text(plan.max_residual_base_x18, "max_residual_base_x18"),
         _text(plan.min_net_quote_x18, "min_net_quote_x18"), require_int(plan.deadline_s, "deadline_s"),
         _text(p.perp_base_x18, "perp_base_x18"), _text(p.perp_quote_x18, "perp_quote_x18"),
         _text(p.spot_raw, "spot_raw"), _text(p.usdc_raw, "usdc_raw"),
         _text(p.residual_base_x18, "residual_base_x18"), _text(p.net_quote_x18, "net_quote_x18"),
         _opt_text(eth_price_x18, "eth_price_x18"), detail, _now_s()))
    return int(cur.lastrowid)  # type: ignore[arg-type]


def _insert_position(db: sqlite3.Connection, market: str, direction: Direction, spot_venue: str, *,
                     entry_known: bool, block: int, timestamp_s: int | None, entry_basis_bps: float | None,
                     decision_id: int | None) -> int:
    cur = db.execute(
        """INSERT INTO positions (market, status, direction, spot_venue, perp_base_x18, spot_raw, entry_known,
               opened_block, opened_timestamp_s, entry_basis_bps, opened_decision_id, net_quote_x18, fees_x18,
               funding_settled_x18, funding_pending_x18, last_block)
           VALUES (?, 'open', ?, ?, '0', '0', ?, ?, ?, ?, ?, '0', '0', '0', '0', ?)""",
        (market, direction.value, spot_venue, int(entry_known), block, timestamp_s if timestamp_s is not None else 0,
         entry_basis_bps, decision_id, block))
    return int(cur.lastrowid)  # type: ignore[arg-type]


def _event(db: sqlite3.Connection, position_id: int, kind: str, block: int, timestamp_s: int | None,
           tx_id: int | None, detail: str) -> None:
    row = _position_row(db, position_id)
    db.execute(
        """INSERT INTO position_events (position_id, kind, block, timestamp_s, tx_id, direction, perp_base_x18,
               spot_raw, net_quote_x18, detail, recorded_at_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (position_id, kind, block, timestamp_s, tx_id, row["direction"], row["perp_base_x18"], row["spot_raw"],
         row["net_quote_x18"], detail, _now_s()))


def _set_position(db: sqlite3.Connection, row: sqlite3.Row, *, perp_base_x18: int, spot_raw: int, block: int,
                  timestamp_s: int | None, tx_id: int | None, event: str, detail: str,
                  net_quote_delta_x18: int = 0, fees_delta_x18: int = 0, settled_funding_x18: int = 0) -> None:
    direction = _direction_of(perp_base_x18, Direction(row["direction"]))
    settled = _int(row["funding_settled_x18"]) + settled_funding_x18
    traded = tx_id is not None
    db.execute(
        """UPDATE positions SET direction = ?, perp_base_x18 = ?, spot_raw = ?, net_quote_x18 = ?, fees_x18 = ?,
               funding_settled_x18 = ?, funding_pending_x18 = ?, funding_pending_block = ?, last_block = ?
           WHERE id = ?""",
        (direction.value, str(perp_base_x18), str(spot_raw), str(_int(row["net_quote_x18"]) + net_quote_delta_x18),
         str(_int(row["fees_x18"]) + fees_delta_x18), str(settled),
         "0" if traded else row["funding_pending_x18"], block if traded else row["funding_pending_block"],
         max(block, row["last_block"]), row["id"]))
    _event(db, row["id"], event, block, timestamp_s, tx_id, detail)


def _log_difference(db: sqlite3.Connection, market: str, kind: DifferenceKind, name: DifferenceField,
                    journal_value: int | None, chain_value: int | None, action: DifferenceAction, position_id: int,
                    block: int, timestamp_s: int | None, source: str) -> ReconcileDifference:
    db.execute(
        """INSERT INTO reconcile_log (block, timestamp_s, market, kind, field, journal_value, chain_value, action,
               position_id, source, recorded_at_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (block, timestamp_s, market, kind, name, _opt_text(journal_value, name), _opt_text(chain_value, name),
         action, position_id, source, _now_s()))
    return ReconcileDifference(market, kind, name, journal_value, chain_value, action, position_id, block, source)


def _adopt(db: sqlite3.Connection, market: str, perp_base_x18: int, spot_raw: int | None, block: int,
           timestamp_s: int | None, spot_venue: str, *, source: str, detail: str) -> list[ReconcileDifference]:
    position_id = _insert_position(db, market, _direction_of(perp_base_x18, Direction.SHORT_PERP), spot_venue,
                                   entry_known=False, block=block, timestamp_s=timestamp_s, entry_basis_bps=None,
                                   decision_id=None)
    db.execute("UPDATE positions SET perp_base_x18 = ?, spot_raw = ? WHERE id = ?",
               (str(perp_base_x18), str(spot_raw or 0), position_id))
    _event(db, position_id, "reconcile", block, timestamp_s, None, detail)
    found = [_log_difference(db, market, "chain_only", "perp_base_x18", None, perp_base_x18, "adopted", position_id,
                             block, timestamp_s, source)]
    if spot_raw:
        found.append(_log_difference(db, market, "chain_only", "spot_raw", None, spot_raw, "adopted", position_id,
                                     block, timestamp_s, source))
    return found


def _apply_trade(db: sqlite3.Connection, tx: sqlite3.Row, fills: PredictedFills, block: int, timestamp_s: int,
                 position_base_after_x18: int | None, fees: TradeFees, settled_funding_x18: int) -> int:
    """The fills of an included trade: the fills row, the settled funding, the position (opened,
    resized or closed). The chain wins wherever the journal disagrees; each disagreement is logged."""
    market, kind, tx_id = tx["market"], tx["kind"], tx["id"]
    decision = _decision_row(db, tx["decision_id"])
    delta = require_int(fills.perp_base_x18, "perp_base_x18")
    require_int(settled_funding_x18, "settled_funding_x18")
    source = f"tx {tx_id}"
    row = _open_position_row(db, market)
    if kind == "open" and row is not None:
        # openBasis needs a flat taker position: the journal's position was gone already.
        _log_difference(db, market, "journal_only", "perp_base_x18", _int(row["perp_base_x18"]), 0, "closed",
                        row["id"], block, timestamp_s, source)
        _set_position(db, row, perp_base_x18=0, spot_raw=_int(row["spot_raw"]), block=block,
                      timestamp_s=timestamp_s, tx_id=None, event="reconcile", detail=f"flat before open {source}")
        _close_position(db, _position_row(db, row["id"]), block, timestamp_s, CLOSED_NOT_ON_CHAIN, complete=False)
        row = None
    if kind == "open":
        position_id = _insert_position(db, market, _direction_of(delta, Direction(decision["direction"])),
                                       decision["spot_venue"], entry_known=True, block=block,
                                       timestamp_s=timestamp_s, entry_basis_bps=decision["basis_bps"],
                                       decision_id=decision["id"])
        db.execute("UPDATE decisions SET position_id = ? WHERE id = ?", (position_id, decision["id"]))
        event, detail = "open", f"opened by {source}"
    elif row is None:
        # resize/close of a position the journal does not hold: adopt what was there before it.
        before = (position_base_after_x18 - delta if position_base_after_x18 is not None
                  else -delta if kind == "close" else 0)
        _adopt(db, market, before, None, block, timestamp_s, decision["spot_venue"], source=source,
               detail=f"adopted: {kind} {source} of a position the journal did not hold")
        position_id = _open_position_row(db, market)["id"]
        event, detail = "update", f"{kind} by {source}"
    else:
        position_id = row["id"]
        event, detail = "update", f"{kind} by {source}"
    db.execute("UPDATE transactions SET position_id = ? WHERE id = ?", (position_id, tx_id))
    row = _position_row(db, position_id)
    expected_after = _int(row["perp_base_x18"]) + delta
    after = expected_after if position_base_after_x18 is None else require_int(position_base_after_x18,
                                                                                "position_base_after_x18")
    if after != expected_after:
        _log_difference(db, market, "size_mismatch", "perp_base_x18", expected_after, after, "corrected",
                        position_id, block, timestamp_s, source)
    db.execute(
        """INSERT INTO fills (tx_id, market, position_id, event, spot_venue, block, perp_base_x18, perp_quote_x18,
               spot_raw, usdc_raw, residual_base_x18, net_quote_x18, position_base_after_x18, perp_fee_x18,
               spot_fee_x18, settled_funding_x18) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (tx_id, market, position_id, _FILL_EVENT_OF_KIND[kind], decision["spot_venue"], block, str(delta),
         _text(fills.perp_quote_x18, "perp_quote_x18"), _text(fills.spot_raw, "spot_raw"),
         _text(fills.usdc_raw, "usdc_raw"), _text(fills.residual_base_x18, "residual_base_x18"),
         _text(fills.net_quote_x18, "net_quote_x18"), _opt_text(position_base_after_x18, "position_base_after_x18"),
         str(fees.perp_fee_x18), str(fees.spot_fee_x18), str(settled_funding_x18)))
    if settled_funding_x18:
        db.execute(
            """INSERT INTO funding (market, block, timestamp_s, kind, amount_x18, position_id, tx_id, recorded_at_s)
               VALUES (?, ?, ?, 'settled', ?, ?, ?, ?)""",
            (market, block, timestamp_s, str(settled_funding_x18), position_id, tx_id, _now_s()))
    _set_position(db, row, perp_base_x18=after, spot_raw=_int(row["spot_raw"]) + fills.spot_raw, block=block,
                  timestamp_s=timestamp_s, tx_id=tx_id, event=event, detail=detail,
                  net_quote_delta_x18=fills.net_quote_x18, fees_delta_x18=fees.total_x18,
                  settled_funding_x18=settled_funding_x18)
    if after == 0:
        reason = f"closed by {source}" if kind == "close" else f"flat after {kind} {source}"
        _close_position(db, _position_row(db, position_id), block, timestamp_s, reason,
                        complete=bool(row["entry_known"]))
    log.info("journal.trade", market=market, kind=kind, tx_id=tx_id, position_id=position_id,
             perp_base_after_x18=after, net_quote_x18=fills.net_quote_x18, closed=after == 0)
    return position_id


def _position_split(db: sqlite3.Connection, row: sqlite3.Row) -> PnlSplit:
    """The position's PnL from its ledger: its fills (netQuote18, fees), its funding (settled +
    the latest pending reading) and the USD gas of its transactions."""
    fill_rows = db.execute("SELECT net_quote_x18, perp_fee_x18, spot_fee_x18 FROM fills WHERE position_id = ?",
                           (row["id"],)).fetchall()
    net_quotes = [_int(f["net_quote_x18"]) for f in fill_rows]
    fees = [TradeFees(_int(f["perp_fee_x18"]), _int(f["spot_fee_x18"])) for f in fill_rows]
    if sum(net_quotes) != _int(row["net_quote_x18"]) or sum(f.total_x18 for f in fees) != _int(row["fees_x18"]):
        raise JournalError(f"position {row['id']}: running totals disagree with its fills; the journal is corrupt")
    gas = [_int(r[0]) for r in db.execute("SELECT gas_usd_x18 FROM transactions WHERE position_id = ?",
                                          (row["id"],))]
    funding_paid = _int(row["funding_settled_x18"]) + _int(row["funding_pending_x18"])
    return compute_pnl_split(net_quotes, fees, funding_paid, gas)


def _unattributed_split(db: sqlite3.Connection, market: str) -> PnlSplit:
    gas = sum(_int(r[0]) for r in db.execute(
        "SELECT gas_usd_x18 FROM transactions WHERE market = ? AND position_id IS NULL", (market,)))
    return PnlSplit(0, 0, 0, gas, -gas)


def _close_position(db: sqlite3.Connection, row: sqlite3.Row, block: int, timestamp_s: int | None, reason: str,
                    *, complete: bool) -> PnlSplit:
    """Close and book the realized PnL. Pending funding still on the books (a position that left
    the chain without a trade of ours) counts as paid: Perp settles it whatever closed it."""
    split = _position_split(db, row)
    db.execute("""UPDATE positions SET status = 'closed', closed_block = ?, closed_timestamp_s = ?, close_reason = ?
                  WHERE id = ?""", (block, timestamp_s, reason, row["id"]))
    _event(db, row["id"], "close", block, timestamp_s, None, reason)
    db.execute(
        """INSERT INTO realized_pnl (position_id, market, closed_block, funding_x18, convergence_x18, fees_x18, gas_x18,
               total_x18, complete, recorded_at_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (row["id"], row["market"], block, str(split.funding_x18), str(split.convergence_x18), str(split.fees_x18),
         str(split.gas_x18), str(split.total_x18), int(complete), _now_s()))
    log.info("journal.position_closed", market=row["market"], position_id=row["id"], reason=reason, block=block,
             total_x18=split.total_x18, funding_x18=split.funding_x18, convergence_x18=split.convergence_x18,
             fees_x18=split.fees_x18, gas_x18=split.gas_x18, complete=complete)
    return split


# ------------------------------------------------------------------------------ row -> record
def _decision_from_row(r: sqlite3.Row) -> DecisionRecord:
    expected = None if r["expected_json"] is None else PnlEstimate(**json.loads(r["expected_json"]))
    return DecisionRecord(
        id=r["id"], block=r["block"], timestamp_s=r["timestamp_s"], strategy=r["strategy"], market=r["market"],
        kind=r["kind"], direction=None if r["direction"] is None else Direction(r["direction"]),
        spot_venue=r["spot_venue"], perp_base_x18=_opt_int(r["perp_base_x18"]), reason=r["reason"],
        basis_bps=r["basis_bps"], expected=expected, inputs=json.loads(r["inputs_json"]),
        created_block=r["created_block"], valid_until_block=r["valid_until_block"], status=r["status"],
        status_reason=r["status_reason"], position_id=r["position_id"])


def _tx_from_row(r: sqlite3.Row) -> TxRecord:
    return TxRecord(
        id=r["id"], decision_id=r["decision_id"], market=r["market"], kind=r["kind"], position_id=r["position_id"],
        status=r["status"], tx_hash=r["tx_hash"], attempt_hashes=tuple(json.loads(r["attempt_hashes_json"])),
        nonce=r["nonce"], sent_block=r["sent_block"], block_number=r["block"],
        block_timestamp_s=r["block_timestamp_s"], to=r["to_address"], calldata=bytes(r["calldata"]),
        value_wei=_int(r["value_wei"]),
        bounds=PlanBounds(_int(r["perp_opposite_amount_bound_x18"]), _int(r["spot_limit_raw"]),
                          _int(r["max_residual_base_x18"]), _int(r["min_net_quote_x18"]), r["deadline_s"],
                          r["gas_limit"], _int(r["gas_cost_wei"])),
        predicted=PredictedFills(_int(r["predicted_perp_base_x18"]), _int(r["predicted_perp_quote_x18"]),
                                 _int(r["predicted_spot_raw"]), _int(r["predicted_usdc_raw"]),
                                 _int(r["predicted_residual_base_x18"]), _int(r["predicted_net_quote_x18"])),
        gas_used=r["gas_used"], fee_paid_wei=_int(r["fee_paid_wei"]), eth_price_x18=_opt_int(r["eth_price_x18"]),
        gas_usd_x18=_int(r["gas_usd_x18"]), revert_reason=r["revert_reason"], detail=r["detail"])


def _fills_from_row(r: sqlite3.Row) -> FillsRecord:
    return FillsRecord(
        tx_id=r["tx_id"], market=r["market"], position_id=r["position_id"], event=r["event"],
        spot_venue=r["spot_venue"], block_number=r["block"],
        fills=PredictedFills(_int(r["perp_base_x18"]), _int(r["perp_quote_x18"]), _int(r["spot_raw"]),
                             _int(r["usdc_raw"]), _int(r["residual_base_x18"]), _int(r["net_quote_x18"])),
        position_base_after_x18=_opt_int(r["position_base_after_x18"]),
        fees=TradeFees(_int(r["perp_fee_x18"]), _int(r["spot_fee_x18"])),
        settled_funding_x18=_int(r["settled_funding_x18"]))


def _funding_from_row(r: sqlite3.Row) -> FundingRecord:
    return FundingRecord(r["id"], r["market"], r["block"], r["timestamp_s"], r["kind"], _int(r["amount_x18"]),
                         r["position_id"], r["tx_id"])


def _position_from_row(r: sqlite3.Row) -> Position:
    return Position(
        market=r["market"], direction=Direction(r["direction"]), spot_venue=r["spot_venue"],
        perp_base_x18=_int(r["perp_base_x18"]), spot_raw=_int(r["spot_raw"]), entry_block=r["opened_block"],
        entry_timestamp_s=r["opened_timestamp_s"],
        entry_basis_bps=math.nan if r["entry_basis_bps"] is None else r["entry_basis_bps"],
        net_quote_x18=_int(r["net_quote_x18"]),
        funding_paid_x18=_int(r["funding_settled_x18"]) + _int(r["funding_pending_x18"]))


def _position_record(db: sqlite3.Connection, r: sqlite3.Row) -> PositionRecord:
    if r["status"] == "open":
        pnl = _position_split(db, r)
    else:
        realized = db.execute("SELECT * FROM realized_pnl WHERE position_id = ?", (r["id"],)).fetchone()
        if realized is None:
            raise JournalError(f"position {r['id']} is closed without a realized PnL; the journal is corrupt")
        pnl = _realized_from_row(realized).split
    return PositionRecord(
        id=r["id"], status=r["status"], position=_position_from_row(r), entry_known=bool(r["entry_known"]),
        fees_x18=_int(r["fees_x18"]), funding_settled_x18=_int(r["funding_settled_x18"]),
        funding_pending_x18=_int(r["funding_pending_x18"]), last_block=r["last_block"],
        closed_block=r["closed_block"], closed_timestamp_s=r["closed_timestamp_s"], close_reason=r["close_reason"],
        pnl=pnl)


def _realized_from_row(r: sqlite3.Row) -> RealizedPnl:
    split = PnlSplit(_int(r["funding_x18"]), _int(r["convergence_x18"]), _int(r["fees_x18"]), _int(r["gas_x18"]),
                     _int(r["total_x18"]))
    return RealizedPnl(r["position_id"], r["market"], r["closed_block"], split, bool(r["complete"]))


def _difference_from_row(r: sqlite3.Row) -> ReconcileDifference:
    return ReconcileDifference(r["market"], r["kind"], r["field"], _opt_int(r["journal_value"]),
                               _opt_int(r["chain_value"]), r["action"], r["position_id"], r["block"], r["source"])
