"""Conversions between SQLite rows and the journal's records (amounts as canonical decimal text)."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from enum import Enum
from typing import Any

from keeper.journal.records import (
    DecisionRecord,
    FillsRecord,
    FundingRecord,
    JournalError,
    PlanBounds,
    RealizedPnl,
    ReconcileDifference,
    TxRecord,
)
from keeper.pnl_split import PnlSplit, TradeFees, require_int
from keeper.types import Direction, PnlEstimate, Position, PredictedFills


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


def _realized_from_row(r: sqlite3.Row) -> RealizedPnl:
    split = PnlSplit(_int(r["funding_x18"]), _int(r["convergence_x18"]), _int(r["fees_x18"]), _int(r["gas_x18"]),
                     _int(r["total_x18"]))
    return RealizedPnl(r["position_id"], r["market"], r["closed_block"], split, bool(r["complete"]))


def _difference_from_row(r: sqlite3.Row) -> ReconcileDifference:
    return ReconcileDifference(r["market"], r["kind"], r["field"], _opt_int(r["journal_value"]),
                               _opt_int(r["chain_value"]), r["action"], r["position_id"], r["block"], r["source"])

