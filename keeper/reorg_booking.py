"""Reversing the booking of a trade that a reorg deeper than the confirmations took out of its block.

A booked transaction (status included or reverted) whose receipt is gone, or now sits in another
block, is put back to `pending` in one journal transaction: its fills row and settled funding are
removed, the position's running totals (perp base, spot, net quote, fees, settled funding) are
taken back by exactly what the fill added (ints, so the PnL split of the position again equals its
remaining fills), a position the trade closed is reopened (its realized PnL row removed), and a
`reconcile` position event records why. Its gas goes back to 0 until it settles again. The
in-flight tracking (keeper/inflight.py) then settles it afresh like any pending transaction:
included again (in its new block, with the fills of that block), or dropped / replaced (the intent
is decided again on fresh state); a position left at size 0 by a reversed open is closed at once
(the journal's reconcile, in the same transaction), and an open included again opens a new one.

Refused (None, the position is then corrected from the chain by the reconcile, the PnL booking
stays): a later fill on the same position, or another open position in the market, would make
the reversal ambiguous.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from keeper.journal import ChainPosition
from keeper.logs import get_logger

log = get_logger("keeper.reorg_booking")


@dataclass(frozen=True)
class ReversedBooking:
    tx_id: int
    market: str
    kind: str
    status_was: str
    block_was: int | None
    position_id: int | None
    position_reopened: bool


def reverse_booking(journal: Any, tx_hash: str, *, block: int, reason: str) -> ReversedBooking | None:
    """Put the booked transaction `tx_hash` back to pending and take its fills out of its
    position (see the module doc). `block`: the head at which the reorg was seen."""
    with journal._write() as db:  # one journal transaction: all of it or none
        tx = db.execute("SELECT * FROM transactions WHERE tx_hash = ?", (tx_hash,)).fetchone()
        if tx is None or tx["status"] not in ("included", "reverted"):
            return None
        fill = db.execute("SELECT * FROM fills WHERE tx_id = ?", (tx["id"],)).fetchone()
        position_id = fill["position_id"] if fill is not None else tx["position_id"]
        reopened = emptied = False
        if fill is not None:
            position = db.execute("SELECT * FROM positions WHERE id = ?", (position_id,)).fetchone()
            later = db.execute("SELECT 1 FROM fills WHERE position_id = ? AND id > ?", (position_id, fill["id"])).fetchone()
            other_open = db.execute("SELECT 1 FROM positions WHERE market = ? AND status = 'open' AND id != ?",
                                    (tx["market"], position_id)).fetchone()
            if later is not None or (position["status"] == "closed" and other_open is not None):
                log.error("journal.reorg_not_reversed", tx_id=tx["id"], tx_hash=tx_hash, market=tx["market"],
                          position_id=position_id, detail="later trades on the market: corrected from the chain")
                return None
            if position["status"] == "closed":
                db.execute("DELETE FROM realized_pnl WHERE position_id = ?", (position_id,))
                db.execute("""UPDATE positions SET status = 'open', closed_block = NULL, closed_timestamp_s = NULL,
                              close_reason = NULL WHERE id = ?""", (position_id,))
                reopened = True
            fees_x18 = int(fill["perp_fee_x18"]) + int(fill["spot_fee_x18"])
            db.execute(
                """UPDATE positions SET perp_base_x18 = ?, spot_raw = ?, net_quote_x18 = ?, fees_x18 = ?,
                       funding_settled_x18 = ?, funding_pending_x18 = '0', last_block = max(last_block, ?)
                   WHERE id = ?""",
                (str(int(position["perp_base_x18"]) - int(fill["perp_base_x18"])),
                 str(int(position["spot_raw"]) - int(fill["spot_raw"])),
                 str(int(position["net_quote_x18"]) - int(fill["net_quote_x18"])),
                 str(int(position["fees_x18"]) - fees_x18),
                 str(int(position["funding_settled_x18"]) - int(fill["settled_funding_x18"])), block, position_id))
            db.execute("DELETE FROM funding WHERE tx_id = ? AND kind = 'settled'", (tx["id"],))
            db.execute("DELETE FROM fills WHERE id = ?", (fill["id"],))
            after = db.execute("SELECT * FROM positions WHERE id = ?", (position_id,)).fetchone()
            db.execute(
                """INSERT INTO position_events (position_id, kind, block, timestamp_s, tx_id, direction, perp_base_x18,
                       spot_raw, net_quote_x18, detail, recorded_at_s) VALUES (?, 'reconcile', ?, NULL, ?, ?, ?, ?, ?, ?, ?)""",
                (position_id, block, tx["id"], after["direction"], after["perp_base_x18"], after["spot_raw"],
                 after["net_quote_x18"], f"reorg: {tx['kind']} tx {tx['id']} reversed ({reason})", time.time()))
            emptied = int(after["perp_base_x18"]) == 0
        db.execute(
            """UPDATE transactions SET status = 'pending', block = NULL, block_timestamp_s = NULL, gas_used = 0,
                   fee_paid_wei = '0', gas_usd_x18 = '0', revert_reason = NULL, settled_at_s = NULL, detail = ?,
                   position_id = ? WHERE id = ?""",
            (f"reorged out of block {tx['block']}: {reason}", None if tx["kind"] == "open" else tx["position_id"],
             tx["id"]))
        if emptied:
            # The reversed trade opened it: nothing of it is left on chain. Closed now, within this
            # transaction, by the journal's own reconcile (the other markets as booked).
            held = {r["market"]: ChainPosition(int(r["perp_base_x18"]))
                    for r in db.execute("SELECT market, perp_base_x18 FROM positions WHERE status = 'open'")}
            journal.reconcile(held, block=block)
    reversed_ = ReversedBooking(tx["id"], tx["market"], tx["kind"], tx["status"], tx["block"], position_id, reopened)
    log.error("journal.trade_reversed", tx_id=tx["id"], tx_hash=tx_hash, market=tx["market"], kind=tx["kind"],
              status_was=tx["status"], block_was=tx["block"], position_id=position_id, position_reopened=reopened,
              head=block, reason=reason)
    return reversed_
