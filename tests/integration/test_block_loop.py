"""The block loop on the devnet: ticks on pushed heads, one per head, and a skip whose reason is
the same as at the previous block is logged at debug only."""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path

from structlog.testing import capture_logs

from keeper.blockloop import run_blocks
from keeper.journal import Journal
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet


def test_the_loop_ticks_on_pushed_heads_and_repeated_skips_drop_to_debug(devnet: Devnet, tmp_path: Path) -> None:
    settings = devnet.keeper_config(tmp_path)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    runtime = build_runtime(settings, dry_run=True)
    stop_mining = threading.Event()

    def mine() -> None:  # blocks keep coming; nothing else moves, so every skip keeps its reason
        while not stop_mining.wait(0.3):
            devnet.rpc.call("evm_mine", [])

    miner = threading.Thread(target=mine, daemon=True)
    try:
        with capture_logs() as logs:
            miner.start()
            run_blocks(runtime, blocks=3)
    finally:
        stop_mining.set()
        miner.join()
        runtime.close()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    source = next(e for e in logs if e["event"] == "heads.source")
    assert source["mode"] == "ws"
    ticks = [e["block"] for e in logs if e["event"] == "tick"]
    assert len(ticks) == 3 and ticks == sorted(set(ticks))  # one tick per head, in order, none twice
    lifecycle = [(e["event"], e.get("reason")) for e in logs if e["event"] in ("keeper.stopping", "keeper.stopped")]
    assert lifecycle == [("keeper.stopping", "blocks"), ("keeper.stopped", None)]  # --blocks N: the same lifecycle
    skips = [e for e in logs if e["event"] == "decision.skip"]
    first_block = ticks[0]
    first = [e for e in skips if e["block"] == first_block]
    later = [e for e in skips if e["block"] != first_block]
    assert first and all(e["log_level"] == "info" for e in first)
    assert later and all(e["log_level"] == "debug" for e in later)
    # The metrics the dashboard charts are published by the loop: the realized PnL by component
    # (its sum the journal's realized total) and, with no position, a margin ratio of NaN (not 0).
    samples = {(s.name, s.labels.get("component")): s.value
               for family in runtime.engine.metrics.registry.collect() for s in family.samples}
    pnl = {component: v for (name, component), v in samples.items() if name == "keeper_pnl_usd"}
    assert set(pnl) == {"funding", "convergence", "fees", "gas"}
    with Journal(settings.monitoring.journal, readonly=True) as journal:
        assert sum(pnl.values()) == journal.realized_since(0.0).total_x18 / 10**18
    assert math.isnan(samples[("keeper_margin_ratio", None)])
