"""Reversing a booked trade a reorg took out of its block: the position's ledger goes back exactly
(ints), a position the trade closed is reopened, and the transaction can be booked again."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from keeper.journal import Journal
from keeper.pnl_split import TradeFees
from keeper.reorg_booking import reverse_booking

from .journal_builders import E18, included, make_fills, make_intent, make_plan, trade


def test_given_a_booked_close_reorged_out_then_the_position_reopens_with_its_ledger_and_rebooks(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        # Given an open, then a close that settled funding, booked (realized PnL written)
        open_fills = make_fills(perp_base_x18=-2 * E18, net_quote_x18=8 * E18, usdc_raw=-5_990_000_000)
        _, open_tx = trade(journal, "open", open_fills, 100, -2 * E18, fees=TradeFees(perp_fee_x18=3 * 10**15))
        position_id = journal.transaction(open_tx).position_id
        before, before_pnl = journal.open_positions()["ETH"], journal.position(position_id).pnl
        close = make_fills(perp_base_x18=2 * E18, net_quote_x18=-7 * E18, spot_raw=-2 * E18, usdc_raw=5_995_000_000)
        _, close_tx = trade(journal, "close", close, 200, 0, settled_funding_x18=-E18 - 3,
                                         fees=TradeFees(perp_fee_x18=2 * 10**15, spot_fee_x18=5))
        assert journal.transaction(close_tx).position_id == position_id
        assert journal.open_positions() == {} and journal.realized(position_id) is not None
        tx_hash = journal.transaction(close_tx).tx_hash
        # When a reorg deeper than the confirmations takes the close out of its block
        with capture_logs() as logs:
            reversed_ = reverse_booking(journal, tx_hash, block=203, reason="receipt gone")
        # Then the position is open again exactly as before the close, without realized PnL
        assert reversed_ is not None and reversed_.position_reopened and reversed_.tx_id == close_tx
        assert [e["event"] for e in logs] == ["journal.trade_reversed"]
        after = journal.open_positions()["ETH"]
        assert (after.perp_base_x18, after.spot_raw, after.net_quote_x18, after.funding_paid_x18) == \
            (before.perp_base_x18, before.spot_raw, before.net_quote_x18, before.funding_paid_x18)
        assert journal.position(position_id).pnl == before_pnl
        assert journal.realized(position_id) is None and journal.fills(close_tx) is None
        tx = journal.transaction(close_tx)
        assert tx.status == "pending" and tx.fee_paid_wei == 0 and [t.id for t in journal.pending_transactions()] == [close_tx]
        assert journal.position_events(position_id)[-1].detail.startswith("reorg: close tx")
        # And it books again when it settles in its new block (here with other fills)
        moved = make_fills(perp_base_x18=2 * E18, net_quote_x18=-6 * E18, spot_raw=-2 * E18, usdc_raw=5_996_000_000)
        plan = make_plan(make_intent("close", perp_base_x18=2 * E18, block=200), moved)
        journal.record_tx_outcome(close_tx, included(plan, moved, 204, 10**15, tx_hash),
                                  block_timestamp_s=1_700_000_204, position_base_after_x18=0)
        realized = journal.realized(position_id)
        assert journal.open_positions() == {} and realized is not None
        assert realized.split.trading_x18 == 8 * E18 - 6 * E18
        assert reverse_booking(journal, "0x" + "ff" * 32, block=205, reason="unknown hash") is None


def test_given_a_booked_open_reorged_out_then_its_position_is_closed_with_nothing_realized(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        _, btc_tx = trade(journal, "open", make_fills(perp_base_x18=-E18), 90, -E18, market="BTC")
        _, open_tx = trade(journal, "open", make_fills(perp_base_x18=-2 * E18), 100, -2 * E18)
        position_id = journal.transaction(open_tx).position_id
        reversed_ = reverse_booking(journal, journal.transaction(open_tx).tx_hash, block=104, reason="receipt gone")
        assert reversed_ is not None and reversed_.position_id == position_id and not reversed_.position_reopened
        # The reversed open's position is closed (nothing of it on chain), its realized PnL 0; the
        # other market's position is untouched; the transaction waits to be booked again
        assert list(journal.open_positions()) == ["BTC"] and journal.open_positions()["BTC"].perp_base_x18 == -E18
        realized = journal.realized(position_id)
        assert realized is not None and realized.split.total_x18 == 0 and realized.split.gas_x18 == 0
        assert journal.transaction(open_tx).status == "pending" and journal.transaction(open_tx).position_id is None
        assert journal.transaction(btc_tx).status == "included"


def test_given_a_later_trade_on_the_position_then_the_reversal_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        _, open_tx = trade(journal, "open", make_fills(perp_base_x18=-2 * E18), 100, -2 * E18)
        trade(journal, "resize", make_fills(perp_base_x18=-E18), 110, -3 * E18)
        with capture_logs() as logs:
            assert reverse_booking(journal, journal.transaction(open_tx).tx_hash, block=120, reason="gone") is None
        assert [e["event"] for e in logs] == ["journal.reorg_not_reversed"]
        assert journal.transaction(open_tx).status == "included" and journal.open_positions()["ETH"].perp_base_x18 == -3 * E18


def test_given_one_pending_tx_whose_poll_fails_transiently_then_the_others_still_settle(tmp_path: Path) -> None:
    from types import SimpleNamespace
    from typing import Any

    from keeper.errors import TransientError
    from keeper.inflight import InFlight
    from keeper.types import Outcome

    with Journal(tmp_path / "journal.sqlite") as journal:
        # Given two transactions in flight (signed, recorded, tracked by the sender)
        tx_ids = []
        for nonce, market in ((1, "ETH"), (2, "BTC")):
            intent = make_intent("open", market=market, block=100)
            decision = journal.record_decision(intent, block=100, timestamp_s=1_700_000_100)
            tx_ids.append(journal.record_tx_sent(decision, make_plan(intent), tx_hash=f"0x{nonce:064x}", nonce=nonce,
                                                 sent_block=100))

        class Sender:
            def tracked_nonce(self, nonce: int, _abi: Any = None) -> Any:
                h = f"0x{nonce:064x}"
                return SimpleNamespace(nonce=nonce, tx_hash=h, entry=SimpleNamespace(attempts=[SimpleNamespace(tx_hash=h)]))

            def poll(self, pending: Any) -> Any:
                if pending.nonce == 1:  # its re-broadcast is held by the node: unknown
                    raise TransientError("RPC unreachable: ReadTimeout")
                return SimpleNamespace(status="dropped", tx_hash=pending.tx_hash, nonce=pending.nonce)

            def tracked(self) -> list[Any]:
                return []

        executor = SimpleNamespace(sender=Sender(), outcome_of=lambda plan, result: Outcome(
            plan, "dropped", result.tx_hash, None, 0, 0, None, "dropped", nonce=result.nonce))
        # When the tick settles what is in flight
        with capture_logs() as logs:
            settled = list(InFlight(journal, executor).settle(103))
        # Then the held one is deferred (a warning, still pending) and the other is settled
        assert [(tx.id, o.status) for tx, o in settled] == [(tx_ids[1], "dropped")]
        assert [e["tx_id"] for e in logs if e["event"] == "tx.settle_deferred"] == [tx_ids[0]]
