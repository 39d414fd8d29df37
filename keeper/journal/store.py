"""The Journal: one SQLite file, every public write one transaction (see keeper/journal/__init__.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from keeper.journal.accounting import _estimate_to_json, _inputs_json, _insert_tx, _position_record, _settle
from keeper.journal.records import (
    _UNSENT_STATUSES,
    HANDOVER_PREFIX,
    ChainPosition,
    DecisionRecord,
    FillsRecord,
    FundingRecord,
    JournalError,
    PnlSummary,
    PositionEvent,
    PositionRecord,
    PositionsHolder,
    RealizedPnl,
    ReconcileDifference,
    StatusReport,
    TxRecord,
    WRITTEN_OFF,
)
from keeper.journal.reconcile import reconcile_positions, write_off_positions
from keeper.journal.reports import pending_transactions, pnl_summary, realized_since, status_report
from keeper.journal.rows import (
    _decision_from_row,
    _decision_row,
    _difference_from_row,
    _fills_from_row,
    _funding_from_row,
    _int,
    _now_s,
    _open_position_row,
    _position_from_row,
    _position_row,
    _realized_from_row,
    _text,
    _tx_from_row,
    _tx_row,
)
from keeper.journal.schema import SCHEMA_VERSION, _connect, prepare_schema
from keeper.logs import get_logger
from keeper.pairs_journal import write_off_open_pairs
from keeper.pnl_split import PnlSplit, TradeFees, require_int
from keeper.types import Direction, Intent, Outcome, Position, SpotVenue, TxPlan

log = get_logger("keeper.journal")


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
            prepare_schema(self._conn, self.path, readonly=readonly, write=self._write)
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

    def recorded_executors(self) -> dict[int, str]:
        """The executor each chain's last live run traded through (`record_executor`), by chain id
        (a restart with account.executor unset on a devnet or fork carries on with it)."""
        with self._read() as conn:
            rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE 'executor:%'").fetchall()
        return {int(key.split(":", 1)[1]): value for key, value in rows}

    def record_executor(self, chain_id: int, executor: str) -> None:
        """Records the executor a live run trades through on `chain_id` (see `recorded_executors`)."""
        with self._write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (f"executor:{chain_id}", executor))

    def positions_holder(self) -> PositionsHolder | None:
        """The chain and executor the journal's open positions are in (`record_positions_holder`);
        None: not recorded (no live run since this was kept)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'positions_holder'").fetchone()
        return None if row is None else PositionsHolder(**json.loads(row[0]))

    def record_positions_holder(self, chain_id: int, executor: str, *, embedded: bool) -> None:
        """Records that a live run holds the journal's positions in `executor` on `chain_id`
        (`embedded`: a chain of its own, gone when the run ends)."""
        value = json.dumps({"chain_id": chain_id, "executor": executor, "embedded": embedded})
        with self._write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('positions_holder', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (value,))

    def write_off(self, *, executor: str | None, chain_id: int | None) -> list[PositionRecord]:
        """Every open position and open pair written off, in one transaction: the chain that held
        them (`executor` on `chain_id`, None: not recorded) is gone, so nothing of them can be closed,
        read or realized (reconcile.write_off_positions; pairs: status 'written_off'). Each is logged
        as a warning with its cash so far. Returns the positions written off."""
        with self._write() as db:
            written = write_off_positions(db, executor=executor, chain_id=chain_id)
            pairs = write_off_open_pairs(db, WRITTEN_OFF)
        for record in written:
            split = record.pnl
            log.warning("journal.position_written_off", market=record.position.market, position_id=record.id,
                        executor=executor, chain_id=chain_id, reason=WRITTEN_OFF, last_block=record.last_block,
                        perp_base_x18=record.position.perp_base_x18, total_x18=split.total_x18,
                        funding_x18=split.funding_x18, convergence_x18=split.convergence_x18,
                        fees_x18=split.fees_x18, gas_x18=split.gas_x18)
        for pair in pairs:
            log.warning("journal.pair_written_off", pair_id=pair["id"], markets=[pair["market_a"], pair["market_b"]],
                        executor=executor, chain_id=chain_id, reason=WRITTEN_OFF)
        return written

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

    def write_transaction(self) -> Any:
        """The journal's write transaction, for record modules beside it (keeper/pairs_journal.py)."""
        return self._write()

    def read_transaction(self) -> Any:
        return self._read()

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
            return _settle(db, tx, outcome, block_timestamp_s, position_base_after_x18, fees,
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
            _settle(db, _tx_row(db, tx_id), outcome, block_timestamp_s, position_base_after_x18, fees,
                         settled_funding_x18, eth_price_x18, attempt_hashes)
            return tx_id

    def transaction(self, tx_id: int) -> TxRecord:
        with self._read() as db:
            return _tx_from_row(_tx_row(db, tx_id))

    def pending_transactions(self) -> list[TxRecord]:
        """Sent and not settled yet (after a restart: match them with the sender's recovered nonces)."""
        with self._read() as db:
            return pending_transactions(db)

    def fills(self, tx_id: int) -> FillsRecord | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM fills WHERE tx_id = ?", (tx_id,)).fetchone()
            return None if row is None else _fills_from_row(row)

    # ------------------------------------------------------------------ funding
    def record_funding(self, market: str, *, block: int, pending_funding_x18: int,
                       timestamp_s: int | None = None) -> int:
        """Perp's pending funding of the executor in a market at a block (positive: it owes).
        Updates the market's open position unless a later reading or trade is already known."""
        return self.record_fundings([(market, block, pending_funding_x18, timestamp_s)])[0]

    def record_fundings(self, readings: Sequence[tuple[str, int, int, int | None]]) -> list[int]:
        """record_funding of each (market, block, pending x18, timestamp), in order, in one
        transaction (a market's open row read once, updated once, to the last reading it takes)."""
        with self._write() as db:
            rows = {market: _open_position_row(db, market) for market in dict.fromkeys(r[0] for r in readings)}
            taken: dict[str, tuple[int, int]] = {}  # market -> (block, pending x18) its open row takes
            ids, now = [], _now_s()
            for market, block, pending_funding_x18, timestamp_s in readings:
                position = rows[market]
                cur = db.execute(
                    """INSERT INTO funding (market, block, timestamp_s, kind, amount_x18, position_id, recorded_at_s)
                       VALUES (?, ?, ?, 'pending', ?, ?, ?)""",
                    (market, require_int(block, "block"), timestamp_s, _text(pending_funding_x18, "pending_funding_x18"),
                     position["id"] if position else None, now))
                ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
                pending_block = taken[market][0] if market in taken else position["funding_pending_block"] if position else None
                if position is not None and block >= position["last_block"] and (pending_block is None or block >= pending_block):
                    taken[market] = (block, pending_funding_x18)
            for market, (block, pending_funding_x18) in taken.items():
                db.execute("UPDATE positions SET funding_pending_x18 = ?, funding_pending_block = ? WHERE id = ?",
                           (str(pending_funding_x18), block, rows[market]["id"]))  # type: ignore[index]
            return ids

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
            return pnl_summary(db)

    def realized_since(self, since_s: float) -> PnlSplit:
        """Realized since a wall-clock time: positions closed since, plus gas tied to no position
        of transactions settled since."""
        with self._read() as db:
            return realized_since(db, since_s)

    def realized_today_usd(self, now_s: float | None = None) -> float:
        """`realized_since` the start of the current UTC day, in USD (a float, for the risk
        module's daily loss limit only)."""
        now_s = _now_s() if now_s is None else now_s
        return self.realized_since(now_s - now_s % 86_400).total_x18 / 10**18

    def status(self) -> StatusReport:
        with self._read() as db:
            return status_report(db, self.path)

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
        with self._write() as db:
            differences = reconcile_positions(db, chain_positions, block=block, timestamp_s=timestamp_s,
                                              adopt_spot_venue=adopt_spot_venue)
        for d in differences:
            log.warning("journal.reconciled", market=d.market, kind=d.kind, field=d.field,
                        journal_value=d.journal_value, chain_value=d.chain_value, action=d.action,
                        position_id=d.position_id, block=d.block)
        return differences

    def reconcile_log(self) -> list[ReconcileDifference]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM reconcile_log ORDER BY id").fetchall()
            return [_difference_from_row(r) for r in rows]
