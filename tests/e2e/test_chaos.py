"""The bounded chaos run (the long one is `make chaos`): the live keeper through the fault proxy
(JSON-RPC error replies, held requests, sends answered with an error the node took, delays), two
kill -9 (one right after a tx.sent), three reorgs, one stuck transaction, one open/close cycle on
ETH and BTC; then a dry run through the same faults. Judged on the chain and the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.chaos.run import ChaosPlan, run_chaos

pytestmark = pytest.mark.chaos


def test_the_live_loop_under_faults_books_every_trade_and_keeps_its_identity(tmp_path: Path) -> None:
    result = run_chaos(ChaosPlan(steps=62, seed=5, settle_steps=30, dry_run_steps=12,
                                  start_trials=0), workdir=tmp_path)
    live, dry = result["live"], result["dry_run"]
    assert live["keeper_exits"] == [] and live["exceptions_out_of_a_tick"] == 0
    assert len(live["kills"]) == 2 and any("after tx.sent" in k for k in live["kills"])
    assert sum(1 for f in live["faults"] if f["what"].startswith("reorg")) == 3
    assert all(f["ticked_after"] for f in live["faults"]), live["faults"]
    assert live["proxy"]["errors"] > 0 and live["proxy"]["timeouts"] > 0 and live["proxy"]["stuck_sends"] > 0
    assert len(live["start_s"]) == 3  # the start and both restarts got through the faults (`make chaos` prints how fast)
    assert live["trades_included"] >= 2  # it did trade, through all of it
    assert live["chain_trades_not_booked"] == [] and live["duplicate_opens"] == 0
    assert live["blocks_unhedged"] == 0 and live["journal_vs_chain_mismatches"] == {}
    assert live["gas_paid_wei"] == live["gas_booked_wei"]
    assert live["settled_flat"] and live["pending_in_journal"] == 0
    identity = live["pnl_identity"]
    assert identity["trading_and_funding_wei_off"] == 0 and identity["total_wei_off"] == 0
    assert dry["tracebacks"] == 0 and dry["sent"] == 0 and dry["nonce_change"] == 0 and dry["exit_code"] == 0
