"""`keeper status` marks open positions to market when it reads the chain: the journal's PnL of an
open position is cash so far (a rich perp sold shows its premium as a gain before it is earned);
the marked total adds what closing now would, and a close at that block books about that."""

from __future__ import annotations

from pathlib import Path

from keeper.config import with_overrides
from keeper.status import build_status
from tests.e2e.live_keeper import open_eth_on_a_premium_shock, start_live_keeper

USD = 10**18


def test_status_marks_an_open_position_at_its_close_quote_and_the_close_books_that(tmp_path: Path) -> None:
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH"]}, "strategies": {"enabled": ["basis_convergence"]}})
    try:
        open_eth_on_a_premium_shock(world, runtime, rpc, steps=45)
        assert "ETH" in runtime.journal.open_positions()
        config = with_overrides(runtime.config, {"account": {"executor": runtime.executor_address}})
        # Given an open position: its cash so far counts the rich perp it sold as a gain
        view = build_status(config)
        assert view.chain_checked.startswith("yes") and view.close_value_x18 is not None
        cash_total = view.journal.pnl.total.total_x18
        marked = cash_total + view.close_value_x18
        text = view.as_text()
        assert (f"PnL marked to market {marked / USD:+.4f} USD = total {cash_total / USD:+.4f} "
                f"{view.close_value_x18 / USD:+.4f} for closing") in text
        assert view.as_json()["marked_total_x18"] == str(marked) and view.as_json()["unmarked_markets"] == []
        # When the keeper unwinds at the next block (prices unmoved)
        runtime.kill_flag.set()
        rpc.call("evm_mine", [])
        report = runtime.engine.tick()
        assert report is not None and [o.status for o in report.outcomes] == ["included"], report.skips
        realized = runtime.journal.status().pnl.realized.total_x18
        # Then it booked the marked total, up to the close's real gas against typical units and a second
        # of funding; the unmarked figure was far off
        assert abs(realized - marked) < 5 * USD, (realized / USD, marked / USD, cash_total / USD)
        assert abs(realized - cash_total) > 50 * USD
    finally:
        runtime.close()
        world.stop()
