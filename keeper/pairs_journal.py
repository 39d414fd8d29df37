"""The pair trades' records, in the keeper's journal file (its connection and transactions; two
tables of the journal's schema, version 3 on: keeper/journal/schema.py, which upgrades an older
file in place).

pair_positions: one row per pair the keeper opened: legs, hedge ratio, the regression at entry,
and its books in USD x18 ints (quote: the sum of both legs' signed quote deltas over its trades,
Perp's fee included; fees: Perp's fees from the receipts; funding settled by its trades, > 0 paid;
gas in USD at the ETH index).
pair_trades: one row per pair transaction (open or close): the intent's reason and expected net,
the predicted fills, the bounds, and what the chain did (status, fills from the Pair* event, gas).

closed_at_s / settled_at_s: wall-clock time of the close and of each trade's outcome, for the
risk stage's daily loss limit (`pairs_realized_since`, which keeper/journal/reports.py adds to the
basis trades' realised PnL).

Realised PnL of a pair (PnlSplit): funding = -settled, convergence = quote + fees, fees, gas;
total = quote - settled - gas, which is what the executor's Perp account and the owner's ETH lost
or gained by it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import sqlite3
import time

from keeper.pairs_types import PairIntent, PairPosition
from keeper.pnl_split import PnlSplit, sum_pnl
from keeper.venues.executor import PairFills

PAIR_WRITTEN_OFF = "written_off"  # a pair's status once its chain is gone (besides 'open' and 'closed')


def _fills_json(fills: PairFills | None) -> str | None:
    return None if fills is None else json.dumps({k: str(v) for k, v in asdict(fills).items()})


class PairJournal:
    def __init__(self, journal: Any) -> None:  # keeper.journal.Journal
        self.journal = journal

    def record_trade(self, intent: PairIntent, *, block: int, timestamp_s: int, predicted: PairFills,
                     bounds: dict[str, int], pair_id: int | None) -> int:
        with self.journal.write_transaction() as db:
            cur = db.execute(
                "INSERT INTO pair_trades (pair_id, kind, strategy, block, timestamp_s, market_a, market_b, side, reason,"
                " expected_net_usd, predicted, bounds, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?, 'planned')",
                (pair_id, intent.kind, intent.strategy, block, timestamp_s, intent.market_a, intent.market_b,
                 intent.side, intent.reason, intent.expected.net_usd, _fills_json(predicted),
                 json.dumps({k: str(v) for k, v in bounds.items()})))
            return int(cur.lastrowid)

    def record_outcome(self, trade_id: int, *, status: str, tx_hash: str | None, fills: PairFills | None,
                       gas_used: int, fee_paid_wei: int, gas_x18: int, perp_fee_x18: int, settled_funding_x18: int,
                       detail: str) -> None:
        with self.journal.write_transaction() as db:
            db.execute("UPDATE pair_trades SET status = ?, tx_hash = ?, fills = ?, gas_used = ?, fee_paid_wei = ?,"
                       " gas_x18 = ?, perp_fee_x18 = ?, settled_funding_x18 = ?, detail = ?, settled_at_s = ? WHERE id = ?",
                       (status, tx_hash, _fills_json(fills), gas_used, str(fee_paid_wei), str(gas_x18),
                        str(perp_fee_x18), str(settled_funding_x18), detail, time.time(), trade_id))

    def open_pair(self, intent: PairIntent, trade_id: int, fills: PairFills, *, block: int, timestamp_s: int,
                  gas_x18: int, perp_fee_x18: int, settled_funding_x18: int) -> int:
        fit = intent.fit
        with self.journal.write_transaction() as db:
            cur = db.execute(
                "INSERT INTO pair_positions (market_a, market_b, side, status, base_x18_a, base_x18_b, hedge_ratio_x18,"
                " entry_block, entry_timestamp_s, entry_beta, entry_z, entry_spread, entry_mean, entry_scale, quote_x18,"
                " fees_x18, funding_settled_x18, gas_x18) VALUES (?,?,?, 'open', ?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (intent.market_a, intent.market_b, intent.side, str(fills.position_base_x18_after_a),
                 str(fills.position_base_x18_after_b), str(intent.hedge_ratio_x18), block, timestamp_s,
                 fit.beta if fit else 0.0, fit.z if fit else 0.0, fit.spread if fit else 0.0, fit.mean if fit else 0.0,
                 fit.scale if fit else 0.0,
                 str(fills.perp_quote_x18_a + fills.perp_quote_x18_b), str(perp_fee_x18), str(settled_funding_x18),
                 str(gas_x18)))
            pair_id = int(cur.lastrowid)
            db.execute("UPDATE pair_trades SET pair_id = ? WHERE id = ?", (pair_id, trade_id))
            return pair_id

    def book_close(self, pair_id: int, fills: PairFills, *, block: int, reason: str, gas_x18: int, perp_fee_x18: int,
                   settled_funding_x18: int) -> None:
        """A close's fills and costs; the pair is closed when both legs are flat after it."""
        with self.journal.write_transaction() as db:
            row = db.execute("SELECT * FROM pair_positions WHERE id = ?", (pair_id,)).fetchone()
            flat = fills.position_base_x18_after_a == 0 and fills.position_base_x18_after_b == 0
            db.execute(
                "UPDATE pair_positions SET base_x18_a = ?, base_x18_b = ?, quote_x18 = ?, fees_x18 = ?,"
                " funding_settled_x18 = ?, gas_x18 = ?, status = ?, closed_block = ?, close_reason = ?, closed_at_s = ?"
                " WHERE id = ?",
                (str(fills.position_base_x18_after_a), str(fills.position_base_x18_after_b),
                 str(int(row["quote_x18"]) + fills.perp_quote_x18_a + fills.perp_quote_x18_b),
                 str(int(row["fees_x18"]) + perp_fee_x18), str(int(row["funding_settled_x18"]) + settled_funding_x18),
                 str(int(row["gas_x18"]) + gas_x18), "closed" if flat else "open", block if flat else None,
                 reason if flat else None, time.time() if flat else None, pair_id))

    def add_gas(self, pair_id: int, gas_x18: int) -> None:
        """A reverted pair transaction of an open pair still paid gas."""
        with self.journal.write_transaction() as db:
            db.execute("UPDATE pair_positions SET gas_x18 = CAST(gas_x18 AS INTEGER) + ? WHERE id = ?", (gas_x18, pair_id))

    def open_position(self) -> PairPosition | None:
        with self.journal.read_transaction() as db:
            row = db.execute("SELECT * FROM pair_positions WHERE status = 'open' ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return PairPosition(row["id"], row["market_a"], row["market_b"], row["side"], int(row["base_x18_a"]),
                            int(row["base_x18_b"]), int(row["hedge_ratio_x18"]), row["entry_block"],
                            row["entry_timestamp_s"], row["entry_beta"], row["entry_z"], row["entry_spread"],
                            int(row["quote_x18"]), row["entry_mean"], row["entry_scale"])

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.journal.read_transaction() as db:
            if status is None:
                return [dict(r) for r in db.execute("SELECT * FROM pair_positions ORDER BY id")]
            return [dict(r) for r in db.execute("SELECT * FROM pair_positions WHERE status = ? ORDER BY id", (status,))]

    def trades(self) -> list[dict[str, Any]]:
        with self.journal.read_transaction() as db:
            return [dict(r) for r in db.execute("SELECT * FROM pair_trades ORDER BY id")]

    def unbooked_gas_x18(self) -> int:
        """Gas of pair transactions not attached to a pair (an open that reverted on chain)."""
        with self.journal.read_transaction() as db:
            rows = db.execute("SELECT gas_x18 FROM pair_trades WHERE pair_id IS NULL AND gas_x18 IS NOT NULL").fetchall()
        return sum(int(r[0]) for r in rows)


def pair_split(row: dict[str, Any]) -> PnlSplit:
    """One pair's PnL split (see the module notes)."""
    quote, fees = int(row["quote_x18"]), int(row["fees_x18"])
    settled, gas = int(row["funding_settled_x18"]), int(row["gas_x18"])
    return PnlSplit(-settled, quote + fees, fees, gas, quote - settled - gas)


def pairs_pnl(journal: Any) -> PnlSplit:
    """Every pair's split (open ones as booked so far; written-off ones not) plus the gas of reverted opens."""
    book = PairJournal(journal)
    lost = book.unbooked_gas_x18()
    return sum_pnl(pair_split(r) for r in book.rows() if r["status"] != PAIR_WRITTEN_OFF) + PnlSplit(0, 0, 0, lost, -lost)


def write_off_open_pairs(db: sqlite3.Connection, reason: str) -> list[dict[str, Any]]:
    """Every open pair written off (its chain is gone: keeper/journal/holder.py): status
    PAIR_WRITTEN_OFF, `reason`, its books kept as they were (in no realised PnL). Returns the rows."""
    rows = [dict(r) for r in db.execute("SELECT * FROM pair_positions WHERE status = 'open' ORDER BY id")]
    db.execute("UPDATE pair_positions SET status = ?, close_reason = ?, closed_at_s = ? WHERE status = 'open'",
               (PAIR_WRITTEN_OFF, reason, time.time()))
    return rows


def pairs_realized_since(db: sqlite3.Connection, since_s: float) -> PnlSplit:
    """Pairs closed since a wall-clock time, plus the gas of pair transactions tied to no pair
    (a reverted open) settled since: the pair half of the daily loss limit."""
    rows = db.execute("SELECT * FROM pair_positions WHERE status = 'closed' AND closed_at_s >= ?", (since_s,))
    realized = sum_pnl(pair_split(dict(r)) for r in rows)
    lost = sum(int(r[0]) for r in db.execute("SELECT gas_x18 FROM pair_trades WHERE pair_id IS NULL AND gas_x18 IS NOT"
                                             " NULL AND settled_at_s >= ?", (since_s,)))
    return realized + PnlSplit(0, 0, 0, lost, -lost)
