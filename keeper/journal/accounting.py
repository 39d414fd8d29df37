"""The journal's accounting: trades applied to positions, funding, gas, realized PnL, reconcile rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from keeper.journal.records import (
    _FILL_EVENT_OF_KIND,
    _SETTLED_STATUSES,
    CLOSED_NOT_ON_CHAIN,
    WRITTEN_OFF,
    DifferenceAction,
    DifferenceField,
    DifferenceKind,
    JournalError,
    PositionLeg,
    PositionRecord,
    ReconcileDifference,
)
from keeper.journal.rows import (
    _decision_row,
    _direction_of,
    _int,
    _json_fallback,
    _now_s,
    _open_position_row,
    _opt_int,
    _opt_text,
    _position_from_row,
    _position_row,
    _realized_from_row,
    _text,
    _tx_row,
)
from keeper.logs import get_logger
from keeper.pnl_split import PnlSplit, TradeFees, compute_gas_usd_x18, compute_pnl_split, require_int
from keeper.types import Direction, Outcome, PnlEstimate, PredictedFills, TxPlan, basis_legs

log = get_logger("keeper.journal")


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
    position_id = int(cur.lastrowid)  # type: ignore[arg-type]
    db.executemany("INSERT INTO position_legs (position_id, leg, venue_kind, venue) VALUES (?, ?, ?, ?)",
                   [(position_id, i, leg.venue_kind, leg.venue) for i, leg in enumerate(basis_legs(market, spot_venue))])
    return position_id


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



def _position_record(db: sqlite3.Connection, r: sqlite3.Row) -> PositionRecord:
    if r["status"] == "open" or r["close_reason"] == WRITTEN_OFF:  # a write-off realizes nothing
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
        pnl=pnl, legs=tuple(PositionLeg(leg["leg"], leg["venue_kind"], leg["venue"]) for leg in db.execute(
            "SELECT leg, venue_kind, venue FROM position_legs WHERE position_id = ? ORDER BY leg", (r["id"],))))



def _settle(db: sqlite3.Connection, tx: sqlite3.Row, outcome: Outcome, block_timestamp_s: int | None,
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
