"""History: recording speed (`keeper record` on the devnet) and backtest replay speed over the
recording, 2 markets (ETH, BTC), for a driven devnet and a calm one. The backtest is timed as
`keeper backtest` runs it (the snapshots and basis statistics from a worker process, the engine
in this one: keeper/history/pipeline.py), with each process's CPU time (the slower one's is the
pace on a quiet machine with a core each), and serially, by stage: reading the Parquet parts,
rebuilding the snapshots with the keeper's collector, the whole backtest; and once more serially
with the basis statistics recomputed over the whole window on every read (BasisHistory's
reference path, as before 2026-11-30) to show the incremental statistics' gain on the same trades.
Figures go to build/bench.json as history_<driven|calm>_*: backtest_per_s is the pipelined backtest's
wall clock, backtest_two_cores_cpu_per_s its pace with a core per process, backtest_serial_per_s
and backtest_cpu_per_s the serial run's. Target: >= 5,000 blocks/s."""

from __future__ import annotations

import os
import resource
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
        _pinned_call_latency(rpc, out, world.manifest.contracts["Multicall3"], label)
        return out
    finally:
        world.stop()


def _pinned_call_latency(rpc: JsonRpc, history: Path, multicall3: str, label: str, calls: int = 300) -> None:
    """The collector's first batch of the last recorded block, by block number and by block hash
    (EIP-1898, as `keeper record` reads), alternately: median and p95 ms of each."""
    last = list(read_blocks(history))[-1]
    calldata, answer = last.reads[0]
    timings: dict[str, list[float]] = {"number": [], "hash": []}
    for _ in range(calls):
        for kind, block in (("number", last.block), ("hash", {"blockHash": "0x" + last.hash.hex()})):
            started = time.perf_counter()
            assert rpc.eth_call(multicall3, calldata, block) == answer
            timings[kind].append((time.perf_counter() - started) * 1000)
    for kind, ms in timings.items():
        ms.sort()
        record_figure(f"history_{label}_eth_call_by_{kind}_ms", ms[len(ms) // 2])
        print(f"{label}: eth_call by block {kind}: median {ms[len(ms) // 2]:.2f} ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms")


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
        serial, serial_cpu, _ = _timed(lambda: run_backtest(history, settings, work_dir=Path(work) / "serial",
                                                            pipeline=False))
        piped, main_cpu, worker_cpu = _timed(lambda: run_backtest(history, settings, work_dir=Path(work) / "piped",
                                                                  pipeline=True))
        plain = _recomputed_stats(lambda: run_backtest(history, settings, work_dir=Path(work) / "plain", pipeline=False))
    n = len(records)
    trades = sum(1 for o in piped.outcomes if o.status == "included")
    same = [o.plan.predicted for o in serial.outcomes] == [o.plan.predicted for o in piped.outcomes]
    two_cores = n / max(main_cpu, worker_cpu)  # the slower process's CPU time: the pace with a core each
    load = os.getloadavg()[0]
    record_figure(f"history_{label}_read_per_s", n / read_s)
    record_figure(f"history_{label}_rebuild_per_s", n / rebuild_s)
    record_figure(f"history_{label}_backtest_per_s", piped.blocks_per_s)
    record_figure(f"history_{label}_backtest_two_cores_cpu_per_s", two_cores)
    record_figure(f"history_{label}_backtest_serial_per_s", serial.blocks_per_s)
    record_figure(f"history_{label}_backtest_cpu_per_s", n / serial_cpu)
    record_figure(f"history_{label}_backtest_recomputed_stats_per_s", plain.blocks_per_s)
    print(f"{label}: backtest {n} blocks, 2 markets, {trades} paper trades: {piped.blocks_per_s:,.0f} blocks/s end to end "
          f"with the snapshot worker process (main process {n / main_cpu:,.0f} blocks per CPU second, worker "
          f"{n / worker_cpu:,.0f}: {two_cores:,.0f} blocks/s with a core each; load {load:.1f}; target >= 5,000 blocks/s)"
          f"{'' if same else '; DIFFERENT trades from the serial backtest'}")
    print(f"{label}: serial backtest {serial.blocks_per_s:,.0f} blocks/s ({n / serial_cpu:,.0f} per CPU second): read "
          f"{n / read_s:,.0f}/s, snapshot rebuild {n / rebuild_s:,.0f}/s, the rest is the keeper's signals/risk/"
          f"strategies/planner: {(serial.replay_s - read_s - rebuild_s) / n * 1e6:,.0f} us/block")
    same = [o.plan.predicted for o in plain.outcomes] == [o.plan.predicted for o in serial.outcomes]
    print(f"{label}: with the basis statistics recomputed per read (before 2026-11-30): {plain.blocks_per_s:,.0f} blocks/s "
          f"serial ({'same' if same else 'DIFFERENT'} trades)")


def _timed(backtest: Callable[[], BacktestRun]) -> tuple[BacktestRun, float, float]:
    """The run, this process's CPU seconds and its child processes' (the snapshot worker's)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    run = backtest()
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return run, cpu, (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)


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
