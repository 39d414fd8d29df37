"""Devnet set-up time: full deploy from scratch vs start from a saved state (targets: deploy
under 10 s, load under 1 s), and the market-activity driver's step time."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.results import record
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.world import start_world

RUNS = 5


def main() -> None:
    deploy_s, load_s, txs = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.json"
        for i in range(RUNS):
            world = start_world(dump_state_to=state if i == 0 else None)
            deploy_s.append(world.ready_s)
            world.stop()
        for _ in range(RUNS):
            world = start_world(load_state=state)
            load_s.append(world.ready_s)
            rpc = world.node.rpc
            if rpc is not None and not txs:
                driver = MarketActivity(rpc, world.manifest, ActivityConfig(seed=1))
                t0 = time.perf_counter()
                for _ in range(20):
                    driver.step()
                step_ms = (time.perf_counter() - t0) / 20 * 1000
                txs = driver.tx.tx_count
            world.stop()
        size_mb = state.stat().st_size / 1e6
    print("== devnet: anvil start + real-protocol world ==")
    record("devnet_deploy_median_s", statistics.median(deploy_s))
    record("devnet_deploy_min_s", min(deploy_s))
    record("devnet_deploy_max_s", max(deploy_s))
    record("devnet_load_state_median_s", statistics.median(load_s))
    record("devnet_load_state_min_s", min(load_s))
    record("devnet_load_state_max_s", max(load_s))
    record("driver_txs_per_step", txs / 20)
    record("devnet_state_mb", size_mb)
    record("driver_step_ms", step_ms)
    print(f"full deploy (start anvil + all contracts + liquidity): median {statistics.median(deploy_s):.3f} s, "
          f"min {min(deploy_s):.3f} s, max {max(deploy_s):.3f} s over {RUNS} runs (target < 10 s)")
    print(f"load from saved state ({size_mb:.1f} MB, clock re-anchored): median {statistics.median(load_s):.3f} s, "
          f"min {min(load_s):.3f} s, max {max(load_s):.3f} s over {RUNS} runs (target < 1 s)")
    print(f"market-activity driver: {step_ms:.1f} ms per step for 2 markets ({txs / 20:.0f} txs per step)")
