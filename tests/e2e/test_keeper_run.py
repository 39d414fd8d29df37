"""The keeper process end to end: `keeper run` against a devnet while the test drives the market.

The market path is scripted: calm blocks (basis history), then the perp pushed ~3% rich over the
index and held (the keeper should open short perp + long spot), then the premium removed (the
basis converges: the keeper should unwind). The keeper runs as its own process, stopped with
SIGTERM; the test then reads its journal, its logs and the chain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from keeper.chain.rpc import JsonRpc
from keeper.chaos.audit import executor_value_x18 as chaos_executor_value_x18
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.provision import provision_executor, provision_impersonated
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.journal import Journal

CALM_STEPS, SHOCK_STEPS, CONVERGE_STEPS = 28, 8, 14


@pytest.fixture()
def world() -> Iterator[World]:
    w = start_world(load_state=prebuilt_state())
    yield w
    w.stop()


class KeeperProcess:
    def __init__(self, tmp: Path, world: World, *extra: str, env: dict[str, str] | None = None) -> None:
        manifest = tmp / "manifest.json"
        world.manifest.write(manifest)
        self.journal = tmp / "journal.sqlite"
        self.log_path = tmp / "keeper.log"
        environment = {**os.environ, "KEEPER_MONITORING__JOURNAL": str(self.journal),
                       "KEEPER_CHAIN__POLL_INTERVAL_S": "0.05", "KEEPER_STRATEGIES__ENABLED": "basis_convergence",
                       **(env or {})}
        self.log_file = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keeper", "run", "--rpc-url", world.node.rpc_url, "--manifest", str(manifest),
             "--blocks", "100000", *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=environment, text=True)

    def events(self) -> list[dict]:  # type: ignore[type-arg]
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, event: str, timeout_s: float = 60.0) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in self.events():
                if e.get("event") == event:
                    return e
            if self.proc.poll() is not None:
                raise AssertionError(f"keeper exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no {event} within {timeout_s} s:\n{self.log_path.read_text()[-3000:]}")

    def wait_ticks_past(self, block: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(e.get("event") == "tick" and e.get("block", -1) >= block for e in self.events()):
                return
            time.sleep(0.05)
        raise AssertionError(f"the keeper did not tick at block {block}:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log_file.close()
        return code


def drive_mispricing(keeper: KeeperProcess, world: World) -> None:
    """Calm, then the perp ~3% rich and held, then converged; each step waits for the keeper's tick."""
    driver = MarketActivity(JsonRpc(world.node.rpc_url), world.manifest,
                            ActivityConfig(seed=11, step_s=60, premium_vol_daily=0.002, index_vol_daily=0.01))
    for step in range(CALM_STEPS + SHOCK_STEPS + CONVERGE_STEPS):
        if CALM_STEPS <= step < CALM_STEPS + SHOCK_STEPS:
            driver.shock_premium("ETH", 0.03)
        elif step >= CALM_STEPS + SHOCK_STEPS:
            driver.shock_premium("ETH", 0.0)
        report = driver.step()
        keeper.wait_ticks_past(report.block_number)


def executor_value_x18(rpc: JsonRpc, world: World, executor: str) -> int:
    """USDC wallet + Vault collateral + Perp's owed realized and unrealized PnL, USD x18, exactly
    (the chaos audit's measure); the spot inventory is checked separately."""
    return chaos_executor_value_x18(rpc, world.manifest, executor)


def spot_balances(rpc: JsonRpc, world: World, executor: str) -> dict[str, int]:
    tx = DevSender(rpc)
    return {m.name: tx.read(m.spot_token, codec("MintableERC20"), "balanceOf", executor) for m in world.manifest.markets}


def test_live_keeper_opens_holds_and_unwinds_with_books_that_match_the_chain(world: World, tmp_path: Path) -> None:
    rpc = JsonRpc(world.node.rpc_url)
    key = Account.create()
    rpc.call("anvil_setBalance", [key.address, hex(100 * 10**18)])
    # The executor is provisioned up front (as a user would), so the balance baseline is known.
    executor = provision_impersonated(rpc, world.manifest, key.address)
    value_before = executor_value_x18(rpc, world, executor)
    spot_before = spot_balances(rpc, world, executor)
    eth_before = int(rpc.call("eth_getBalance", [key.address, "latest"]), 16)
    keeper = KeeperProcess(tmp_path, world, env={"KEEPER_PRIVATE_KEY": key.key.hex(),
                                                 "KEEPER_ACCOUNT__EXECUTOR": executor})
    try:
        started = keeper.wait_for("keeper.started")
        assert started["mode"] == "live" and started["executor"] == executor
        drive_mispricing(keeper, world)
    finally:
        code = keeper.stop()
    assert code == 0
    events = keeper.events()
    assert not any(e.get("level") == "error" for e in events), [e for e in events if e.get("level") == "error"]
    outcomes = [e for e in events if e.get("event") == "tx.outcome"]
    opens = [e for e in outcomes if e["kind"] == "open" and e["status"] == "included"]
    closes = [e for e in outcomes if e["kind"] == "close" and e["status"] == "included"]
    assert opens and closes, [(e["kind"], e["status"], e["detail"]) for e in outcomes]
    # Every decision is in the log with its reason, and each sent trade was planned first.
    intents = [e for e in events if e.get("event") == "decision.intent"]
    assert len(intents) >= len(outcomes) and all(e["reason"] for e in intents)
    # with the expected net's parts and the prices it was decided on as fields, not only in the reason's words
    parts = {"convergence_usd", "funding_usd", "fees_usd", "impact_usd", "gas_usd", "capital_usd"}
    assert all(set(e["expected"]) == parts for e in intents)
    assert all(e["index_usd"] > 0 and e["mark_usd"] > 0 and e["spot_usd"] > 0 and e["vamm_usd"] > 0 for e in intents)
    assert any(e.get("event") == "decision.skip" for e in events)
    assert events[-1]["event"] == "keeper.stopped"
    # Predicted fills were the real fills, to the wei.
    planned = [e for e in events if e.get("event") == "tx.planned"]
    for outcome in opens + closes:
        plan = next(p for p in reversed(planned) if p["block"] == outcome["block"] and p["kind"] == outcome["kind"])
        assert plan["predicted"] == outcome["fills"]
        # and both events list the trade's legs, each with its venue, side and exact size
        assert plan["legs"] == outcome["legs"]
        perp_leg, spot_leg = outcome["legs"]
        assert (perp_leg["venue"], perp_leg["market"], spot_leg["market"]) == ("perp_v2", "ETH", "ETH")
        assert spot_leg["venue_kind"] == "spot" and spot_leg["venue"] in ("uniswap_v3", "uniswap_v2")
        assert int(perp_leg["size_raw"]) == outcome["fills"]["perp_base_x18"]
        assert int(spot_leg["size_raw"]) == outcome["fills"]["spot_raw"]
        assert perp_leg["side"] == ("sell" if outcome["fills"]["perp_base_x18"] < 0 else "buy")
    # The journal matches the chain: flat everywhere, nothing open, nothing pending.
    with Journal(keeper.journal, readonly=True) as journal:
        status = journal.status()
        realized = status.pnl.realized
        assert status.positions == () and status.pending_transactions == ()
    position = DevSender(rpc).read(world.manifest.contracts["AccountBalance"], codec("AccountBalance"),
                                   "getTakerPositionSize", executor, world.manifest.market("ETH").base_token)
    assert position == 0
    # The PnL split sums to the balance change: the executor's value moved by trading + funding,
    # the keeper account paid the gas, and the spot inventory is back where it started.
    assert spot_balances(rpc, world, executor) == spot_before
    value_change = executor_value_x18(rpc, world, executor) - value_before
    assert value_change == realized.funding_x18 + realized.convergence_x18 - realized.fees_x18
    assert realized.total_x18 == value_change - realized.gas_x18
    eth_spent = eth_before - int(rpc.call("eth_getBalance", [key.address, "latest"]), 16)
    assert eth_spent == sum(e["fee_paid_wei"] for e in outcomes)
    # `keeper status` reports the same books, checked against the chain.
    status_run = subprocess.run(
        [sys.executable, "-m", "keeper", "status", "--json", "--rpc-url", world.node.rpc_url,
         "--manifest", str(tmp_path / "manifest.json")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "KEEPER_MONITORING__JOURNAL": str(keeper.journal), "KEEPER_ACCOUNT__EXECUTOR": executor})
    assert status_run.returncode == 0, status_run.stderr
    status_json = json.loads(status_run.stdout)
    assert status_json["chain_checked"].startswith("yes") and status_json["mismatches"] == []
    assert int(status_json["journal"]["pnl"]["realized"]["total_x18"]) == realized.total_x18


def test_dry_run_sends_nothing_but_logs_the_trades_it_would_make(world: World, tmp_path: Path) -> None:
    rpc = JsonRpc(world.node.rpc_url)
    owner = world.manifest.accounts.keeper
    executor = provision_executor(DevSender(rpc), world.manifest, owner)
    nonce_before = int(rpc.call("eth_getTransactionCount", [owner, "latest"]), 16)
    env = {"KEEPER_ACCOUNT__EXECUTOR": executor}
    env.pop("KEEPER_PRIVATE_KEY", None)
    keeper = KeeperProcess(tmp_path, world, "--dry-run", env=env)
    try:
        started = keeper.wait_for("keeper.started")
        assert started["mode"] == "dry_run" and started["owner"] == owner
        drive_mispricing(keeper, world)
    finally:
        assert keeper.stop() == 0
    events = keeper.events()
    would = [e for e in events if e.get("event") == "tx.outcome" and e["status"] == "dry_run"]
    assert would and would[0]["kind"] == "open" and would[0]["fills"]["perp_base_x18"] < 0
    assert not any(e.get("event") in ("tx.sent", "tx.signed") for e in events)
    assert int(rpc.call("eth_getTransactionCount", [owner, "latest"]), 16) == nonce_before
    position = DevSender(rpc).read(world.manifest.contracts["AccountBalance"], codec("AccountBalance"),
                                   "getTakerPositionSize", executor, world.manifest.market("ETH").base_token)
    assert position == 0
