"""On the devnet, a dry-run tick on a pushed head makes the snapshot's two round trips and no
other: the gas tip's eth_feeHistory rides in the snapshot's first batch (keeper/gas_price.py)."""

from __future__ import annotations

from pathlib import Path

from keeper.launch import build_runtime
from tests.integration.conftest import Devnet


def test_every_tick_after_the_first_makes_two_round_trips_and_reads_the_tip(devnet: Devnet, tmp_path: Path) -> None:
    settings = devnet.keeper_config(tmp_path)
    runtime = build_runtime(settings, dry_run=True)
    try:
        engine = runtime.engine
        rpc = engine.collector.rpc
        round_trips, tips = [], []
        for _ in range(12):  # past TIP_REFRESH_BLOCKS: a reading of its own would show at the 11th
            devnet.rpc.call("evm_mine")
            head = devnet.rpc.block_number()
            before, readings = rpc.stats.round_trips, rpc.stats.by_method.get("eth_feeHistory", 0)
            assert engine.tick(head) is not None
            round_trips.append(rpc.stats.round_trips - before)
            tips.append((engine.planner.tips.source, rpc.stats.by_method.get("eth_feeHistory", 0) - readings))
    finally:
        runtime.close()
    assert round_trips == [3] + [2] * 11  # the first tick reads the tip on its own; later ones never
    assert tips[1:] == [("fee_history", 1)] * 11  # a reading every tick, each riding with the snapshot
