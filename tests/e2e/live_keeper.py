"""A live keeper (real key, real transactions) on a fresh devnet from the prebuilt state, for e2e tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eth_account import Account

from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.launch import build_runtime
from keeper.runtime import Runtime


def start_live_keeper(tmp_path: Path, overrides: dict[str, Any]) -> tuple[World, Runtime, JsonRpc]:
    """The devnet, and a keeper runtime in live mode with a throwaway key (in memory only) on it;
    `overrides` are config sections merged over the chain, manifest and journal settings."""
    world = start_world(load_state=prebuilt_state())
    manifest = tmp_path / "manifest.json"
    world.manifest.write(manifest)
    rpc = JsonRpc(world.node.rpc_url)
    key = Account.create()
    rpc.call("anvil_setBalance", [key.address, hex(100 * 10**18)])
    os.environ["KEEPER_PRIVATE_KEY"] = key.key.hex()
    try:
        config = load_config(None, environ={}, overrides={
            "chain": {"rpc_url": world.node.rpc_url, "manifest": manifest},
            "monitoring": {"journal": tmp_path / "journal.sqlite", "log_level": "WARNING"}, **overrides})
        return world, build_runtime(config, dry_run=False), rpc
    except BaseException:
        world.stop()
        raise
    finally:
        del os.environ["KEEPER_PRIVATE_KEY"]


def open_eth_on_a_premium_shock(world: World, runtime: Runtime, rpc: JsonRpc, steps: int = 40,
                                premium: float = 0.03) -> MarketActivity:
    """Drive calm steps, then an ETH premium of `premium` (3%: a short perp; negative: a long perp)
    from step 28, ticking the keeper each step, until it holds an ETH position; returns the driver
    (its position is in runtime.journal)."""
    driver = MarketActivity(rpc, world.manifest, ActivityConfig(seed=11, step_s=60, premium_vol_daily=0.002,
                                                               index_vol_daily=0.01))
    for step in range(steps):
        if step >= 28:
            driver.shock_premium("ETH", premium)
        driver.step()
        runtime.engine.tick()
        if runtime.journal.open_positions():
            break
    return driver
