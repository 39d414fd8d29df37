"""History: recording speed (`keeper record` on the devnet) and backtest replay speed over the
recording, 2 markets (ETH, BTC), for a driven devnet. The replay is timed by stage: reading the
Parquet parts, rebuilding the snapshots with the keeper's collector, and the whole backtest
(rebuild + signals, risk, strategies, planner and books per block), and the backtest once more
with the basis statistics recomputed over the whole window on every read (BasisHistory's
reference path, as before 2026-11-30) to show the incremental statistics' gain on the same trades.
Figures go to build/bench.json as history_<driven|calm>_*. Target: >= 5,000 blocks/s."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results import record as record_figure
import keeper.history.backtest as backtest_module
from keeper.basis_history import BasisHistory
from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.world import prebuilt_state, start_world
from keeper.history.backtest import BacktestRun, run_backtest
from keeper.history.record import record_history
from keeper.history.replay import rebuild_snapshot, replay_collector
from keeper.history.store import read_blocks, read_meta
from keeper.logs import configure_logging

BLOCKS = int(os.environ.get("BENCH_HISTORY_BLOCKS", "2000"))
CHUNK = 100  # the devnet keeps the state of its last 128 blocks: record while driving


def _record(tmp: Path, activity: ActivityConfig, label: str) -> Path:
    world = start_world(load_state=prebuilt_state())
    try:
        rpc = JsonRpc(world.node.rpc_url)
        manifest = tmp / f"{label}.manifest.json"
        world.manifest.write(manifest)
        settings = load_config(None, environ={}, overrides={
            "chain": {"rpc_url": world.node.rpc_url, "manifest": manifest},
            "monitoring": {"log_level": "WARNING", "journal": tmp / "unused.sqlite"}})
        driver = MarketActivity(rpc, world.manifest, activity)
        out, written, seconds = tmp / label, 0, 0.0
        while written < BLOCKS:
            first = rpc.block_number() + 1
            for _ in range(CHUNK):
                driver.step()
            done, took = record_history(settings, rpc, out, from_block=first, to_block=first + CHUNK - 1,
                                        follow=False, account=None)
            written, seconds = written + done, seconds + took
        record_figure(f"history_{label}_record_per_s", written / seconds)
        print(f"{label}: recorded {written} blocks at {written / seconds:,.0f} blocks/s "
              f"(2 Multicall3 batches per block, headers 32 at a time; {sum(f.stat().st_size for f in out.iterdir()) / written:,.0f} bytes/block on disk)")
        return out
    finally:
        world.stop()


def _replay(history: Path, label: str) -> None:
    settings = load_config(None, environ={}, overrides={"monitoring": {"log_level": "WARNING"}})
    started = time.perf_counter()
    records = list(read_blocks(history))
    read_s = time.perf_counter() - started
    collector, multicall = replay_collector(read_meta(history))
    started = time.perf_counter()
    for record in records:
        rebuild_snapshot(collector, multicall, record)
    rebuild_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as work:
        cpu = time.process_time()
        run = run_backtest(history, settings, work_dir=Path(work))
        cpu = time.process_time() - cpu  # the machine is shared: CPU time moves less with the load than wall time
        plain = _recomputed_stats(lambda: run_backtest(history, settings, work_dir=Path(work) / "plain"))
    n = len(records)
    trades = sum(1 for o in run.outcomes if o.status == "included")
    record_figure(f"history_{label}_read_per_s", n / read_s)
    record_figure(f"history_{label}_rebuild_per_s", n / rebuild_s)
    record_figure(f"history_{label}_backtest_per_s", run.blocks_per_s)
    record_figure(f"history_{label}_backtest_cpu_per_s", n / cpu)
    record_figure(f"history_{label}_backtest_recomputed_stats_per_s", plain.blocks_per_s)
    print(f"{label}: backtest {n} blocks, 2 markets: {run.blocks_per_s:,.0f} blocks/s end to end "
          f"(read {n / read_s:,.0f}/s, snapshot rebuild {n / rebuild_s:,.0f}/s, the rest is the keeper's "
          f"signals/risk/strategies/planner: {(run.replay_s - read_s - rebuild_s) / n * 1e6:,.0f} us/block); "
          f"{trades} paper trades; {n / cpu:,.0f} blocks per CPU second (load {os.getloadavg()[0]:.1f}; target >= 5,000 blocks/s)")
    same = [o.plan.predicted for o in plain.outcomes] == [o.plan.predicted for o in run.outcomes]
    print(f"{label}: with the basis statistics recomputed per read (before 2026-11-30): {plain.blocks_per_s:,.0f} blocks/s "
          f"({'same' if same else 'DIFFERENT'} trades)")


def _recomputed_stats(backtest: Callable[[], BacktestRun]) -> BacktestRun:
    """The backtest with every basis-statistics window recomputed afresh: the incremental gain."""
    saved = backtest_module.BasisHistory

    def reference(*args: Any) -> BasisHistory:
        return BasisHistory(*args, incremental=False)

    backtest_module.BasisHistory = reference  # type: ignore[misc,assignment]
    try:
        return backtest()
    finally:
        backtest_module.BasisHistory = saved  # type: ignore[misc]


def main() -> None:
    print("== history: record, backtest replay ==")
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        for label, activity in (
                ("driven", ActivityConfig(seed=3, step_s=12)),
                ("calm", ActivityConfig(seed=3, step_s=2, index_vol_daily=0.01, premium_vol_daily=0.0, spot_noise=0.0))):
            _replay(_record(Path(tmp), activity, label), label)
