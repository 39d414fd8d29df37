"""Keeper tick latency: from a new block to a signed transaction sent (eth_sendRawTransaction),
with 10 markets on the devnet (target: p50 under 50 ms). A premium shock on one market each round
makes the keeper trade; the time is measured inside the keeper's own RPC client."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from eth_account import Account

from bench.results import record
from bench.snapshot import markets_for
from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.logs import configure_logging
from keeper.launch import build_runtime
from keeper.runtime import Runtime

ROUNDS = 20
HISTORY_STEPS = 30


def start_live_keeper(world: World, tmp: Path) -> tuple[Runtime, MarketActivity]:
    """A live keeper (a fresh funded key, basis_convergence on every market) and a driver."""
    manifest = tmp / "manifest.json"
    world.manifest.write(manifest)
    key = Account.create()
    rpc = JsonRpc(world.node.rpc_url)
    rpc.call("anvil_setBalance", [key.address, hex(10**21)])
    settings = load_config(None, environ={}, overrides={
        "chain": {"rpc_url": world.node.rpc_url, "manifest": manifest},
        "markets": {"enabled": [m.name for m in world.manifest.markets]},
        "monitoring": {"journal": tmp / "journal.sqlite", "log_level": "WARNING"},
        "strategies": {"enabled": ["basis_convergence"]},
    })
    os.environ["KEEPER_PRIVATE_KEY"] = key.key.hex()
    runtime = build_runtime(settings, dry_run=False)
    return runtime, MarketActivity(rpc, world.manifest, ActivityConfig(seed=3, step_s=60, premium_vol_daily=0.0))


def warm_up(runtime: Runtime, driver: MarketActivity) -> None:
    """History for the z-score: market steps, a tick after each."""
    for _ in range(HISTORY_STEPS):
        driver.step()
        runtime.engine.tick()


def main() -> None:
    print("== keeper tick: new block -> signed transaction sent ==")
    configure_logging("WARNING")
    world = start_world(load_state=prebuilt_state(markets_for(10)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runtime, driver = start_live_keeper(world, Path(tmp))
            sent_at: list[float] = []
            original_call = runtime.rpc.call

            def timed_call(method, params=None):  # type: ignore[no-untyped-def]
                if method == "eth_sendRawTransaction":
                    sent_at.append(time.perf_counter())
                return original_call(method, params)

            runtime.rpc.call = timed_call  # type: ignore[method-assign]
            warm_up(runtime, driver)
            latencies, sends = [], 0
            for i in range(ROUNDS):
                market = world.manifest.markets[i % len(world.manifest.markets)].name
                driver.shock_premium(market, 0.03 if i % 2 == 0 else 0.0)
                driver.step()
                sent_at.clear()
                t0 = time.perf_counter()
                runtime.engine.tick()
                if sent_at:
                    latencies.append((sent_at[0] - t0) * 1000)
                    sends += 1
            runtime.close()
        if latencies:
            latencies.sort()
            p90 = latencies[int(len(latencies) * 0.9) - 1] if len(latencies) >= 10 else max(latencies)
            record("tick_p50_ms", statistics.median(latencies))
            record("tick_p90_ms", p90)
            record("tick_max_ms", max(latencies))
            record("tick_sends", sends)
            record("tick_rounds", ROUNDS)
            print(f"10 markets: {sends} transactions sent in {ROUNDS} rounds; block -> sent "
                  f"p50 {statistics.median(latencies):.1f} ms, p90 {p90:.1f} ms, max {max(latencies):.1f} ms "
                  f"(target p50 < 50 ms)")
        else:
            print("10 markets: the keeper sent no transaction in this run (no opportunity cleared its bar)")
    finally:
        world.stop()
