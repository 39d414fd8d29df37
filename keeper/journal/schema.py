"""The journal's SQLite schema, its version, its migrations, and how a file is opened."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from keeper.journal.lock import directory_refusal
from keeper.journal.records import JournalSchemaError
from keeper.logs import get_logger

log = get_logger("keeper.journal")

# Version history (each version's upgrade from the one before is in MIGRATIONS):
#   1  decisions, positions, position_events, transactions, fills, funding, realized_pnl, reconcile_log
#   2  position_legs: each position's legs, one row per leg with its venue (perp_v2; uniswap_v3 / v2)
#   3  pair_positions, pair_trades: the pair desk's books (keeper/pairs_journal.py); a version 2 file may
#      already hold them (the desk created them on first use before version 3): kept, with their rows;
#      and the wall-clock times the daily loss limit counts by (closed_at_s, settled_at_s)
SCHEMA_VERSION = 3


# ------------------------------------------------------------------------------ schema
def _amount(name: str, nullable: bool = False) -> str:
    """A TEXT column holding a canonical decimal integer (optionally NULL)."""
    canonical = (f"typeof({name}) = 'text' AND ({name} = '0' OR {name} GLOB '[1-9]*' OR {name} GLOB '-[1-9]*') "
                 f"AND substr({name}, 2) NOT GLOB '*[^0-9]*'")
    if nullable:
        return f"{name} TEXT CHECK ({name} IS NULL OR ({canonical}))"
    return f"{name} TEXT NOT NULL CHECK ({canonical})"


_DIRECTIONS = "('short_perp', 'long_perp')"
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




# One row per leg of a position: leg 0 is the perp leg, leg 1 the spot leg (a basis trade).
_POSITION_LEGS = """CREATE TABLE position_legs (
        position_id INTEGER NOT NULL REFERENCES positions(id),
        leg INTEGER NOT NULL CHECK (leg >= 0),
        venue_kind TEXT NOT NULL CHECK (venue_kind IN ('perp', 'spot')),
        venue TEXT NOT NULL,
        PRIMARY KEY (position_id, leg))"""
_SCHEMA.append(_POSITION_LEGS)

# The pair trades' tables (keeper/pairs_journal.py describes them). IF NOT EXISTS for the version 2
# files where the pair desk had created them itself (SQLite stores the statement without that clause,
# so a fresh file and an upgraded one have the same schema).
_PAIR_TABLES = [
    """CREATE TABLE IF NOT EXISTS pair_positions (
        id INTEGER PRIMARY KEY, market_a TEXT NOT NULL, market_b TEXT NOT NULL, side TEXT NOT NULL,
        status TEXT NOT NULL, base_x18_a TEXT NOT NULL, base_x18_b TEXT NOT NULL, hedge_ratio_x18 TEXT NOT NULL,
        entry_block INTEGER NOT NULL, entry_timestamp_s INTEGER NOT NULL, entry_beta REAL NOT NULL,
        entry_z REAL NOT NULL, entry_spread REAL NOT NULL, entry_mean REAL NOT NULL, entry_scale REAL NOT NULL,
        quote_x18 TEXT NOT NULL, fees_x18 TEXT NOT NULL,
        funding_settled_x18 TEXT NOT NULL, gas_x18 TEXT NOT NULL, closed_block INTEGER, close_reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS pair_trades (
        id INTEGER PRIMARY KEY, pair_id INTEGER, kind TEXT NOT NULL, strategy TEXT NOT NULL, block INTEGER NOT NULL,
        timestamp_s INTEGER NOT NULL, market_a TEXT NOT NULL, market_b TEXT NOT NULL, side TEXT NOT NULL,
        reason TEXT NOT NULL, expected_net_usd REAL, predicted TEXT NOT NULL, bounds TEXT NOT NULL,
        status TEXT NOT NULL, tx_hash TEXT, fills TEXT, gas_used INTEGER, fee_paid_wei TEXT, gas_x18 TEXT,
        perp_fee_x18 TEXT, settled_funding_x18 TEXT, detail TEXT)""",
]
# the same statements build a fresh file, so both have the same schema text (ALTER rewrites it)
_PAIR_TABLES += ["ALTER TABLE pair_positions ADD COLUMN closed_at_s REAL",
                 "ALTER TABLE pair_trades ADD COLUMN settled_at_s REAL"]
_SCHEMA.extend(_PAIR_TABLES)

# MIGRATIONS[v]: the statements that upgrade a version v-1 journal to version v, in place.
MIGRATIONS: dict[int, list[str]] = {
    2: [_POSITION_LEGS,
        "INSERT INTO position_legs (position_id, leg, venue_kind, venue) SELECT id, 0, 'perp', 'perp_v2' FROM positions",
        "INSERT INTO position_legs (position_id, leg, venue_kind, venue) SELECT id, 1, 'spot', spot_venue FROM positions"],
    3: list(_PAIR_TABLES),
}


def prepare_schema(conn: sqlite3.Connection, path: Path, *, readonly: bool,
                   write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
    """A new file gets the current schema; an older version is upgraded in place, one version at a
    time, all in one transaction (a crash leaves the old version, whole); a newer or unknown version
    is refused, naming the file. A read-only open of an older version is refused (nothing may write)."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and not readonly:
            with write():
                if not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    conn.execute("INSERT INTO meta (key, value) VALUES ('created_at_s', ?)", (repr(time.time()),))
            tables = {"meta"}
        if "meta" not in tables:
            raise JournalSchemaError(f"journal {path}: not a keeper journal (no meta table)")
        found = _schema_version(conn)
        if found is not None and found.isdigit() and 1 <= int(found) < SCHEMA_VERSION:
            if readonly:
                raise JournalSchemaError(
                    f"journal {path}: schema version {found} is older than this keeper's ({SCHEMA_VERSION}); open it "
                    "once read-write (keeper run) to upgrade it in place")
            with write():
                found = _schema_version(conn)  # another process may have upgraded it meanwhile
                assert found is not None
                for version in range(int(found) + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
                log.info("journal.migrated", path=str(path), from_version=int(found), to_version=SCHEMA_VERSION)
            found = _schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise JournalSchemaError(f"journal {path}: not a usable SQLite database ({exc})") from exc
    if found != str(SCHEMA_VERSION):
        if found is not None and found.isdigit() and int(found) > SCHEMA_VERSION:
            why = f"schema version {found} is newer than this keeper's ({SCHEMA_VERSION}); upgrade the keeper"
        else:
            why = f"unknown schema version {found!r} (this keeper reads version {SCHEMA_VERSION})"
        raise JournalSchemaError(f"journal {path}: {why}, or point monitoring.journal at another file")


def _schema_version(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if path.is_dir():  # SQLite would only say "unable to open database file"
        raise JournalSchemaError(directory_refusal(path))
    try:
        if readonly:
            if not path.is_file():
                raise JournalSchemaError(f"journal {path}: no such file")
            conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as exc:
        raise JournalSchemaError(f"journal {path}: cannot open ({getattr(exc, 'strerror', None) or exc}); "
                                 "point monitoring.journal at a writable place") from exc
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


