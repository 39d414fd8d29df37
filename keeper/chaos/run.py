"""A chaos run: the live keeper against the devnet through the fault proxy, with kill -9 (one right
after a `tx.sent`, the trade mined while the keeper is down), anvil_reorg reorgs, a stuck
transaction, while the market is driven through open/close cycles on ETH and BTC; then a dry run
through the same faults. Prints (and returns) what the run is judged by (keeper/chaos/audit.py).

    python -m keeper.chaos [--steps 150] [--seed 3]        (make chaos)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from keeper.chain.rpc import JsonRpc
from keeper.chaos.audit import HedgeSampler, audit_chain, executor_value_x18, log_events
from keeper.chaos.proxy import FaultConfig, FaultProxy
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.provision import provision_executor, provision_impersonated
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.errors import TxRevertedError
from keeper.journal import Journal

CYCLE = (28, 8, 14)  # calm, shocked, converging steps of one open/close cycle


@dataclass
class ChaosPlan:
    steps: int = 150
    seed: int = 3
    faults: FaultConfig = field(default_factory=FaultConfig)
    reorg_depths: tuple[int, ...] = (1, 2, 3)
    kills: int = 2
    stuck_blocks: int = 3
    confirmations: int = 4  # deeper than the deepest reorg: a booked trade is never reorged out
    tick_wait_s: float = 2.0
    settle_steps: int = 40  # at most, after the path: until flat with nothing in flight
    dry_run_steps: int = 20
    start_trials: int = 6  # extra starts (dry run) through the same faults, each stopped once started
    start_timeout_s: float = 60.0


@dataclass
class KeeperRun:
    """One `keeper run` process; restarted after each kill -9, same journal and pending store."""

    tmp: Path
    env: dict[str, str]
    args: list[str]
    log_path: Path
    proc: subprocess.Popen[str] | None = None
    starts_s: list[float] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)  # exits the run did not ask for
    _log: Any = None

    def start(self, timeout_s: float) -> None:
        self._log = self.log_path.open("a")
        seen = self.count("keeper.started")
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "keeper", "run", *self.args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env, text=True)
        while self.count("keeper.started") == seen:
            if self.proc.poll() is not None:
                self.exits.append(self.proc.returncode)
                self.proc = subprocess.Popen([sys.executable, "-m", "keeper", "run", *self.args], stdout=self._log,
                                             stderr=subprocess.STDOUT, env=self.env, text=True)
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"the keeper did not start within {timeout_s} s")
            time.sleep(0.05)
        self.starts_s.append(time.monotonic() - started)

    def events(self) -> list[dict[str, Any]]:
        return log_events(self.log_path)[0]

    def count(self, event: str) -> int:
        return sum(1 for e in self.events() if e.get("event") == event)

    def last_tick_block(self) -> int:
        return max((e.get("block", -1) for e in self.events() if e.get("event") == "tick"), default=-1)

    def alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            self.exits.append(self.proc.returncode)
            self.proc = None
        return self.proc is not None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        self._log.close()

    def abandon(self) -> None:
        """The run failed: leave no keeper process behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> int:
        if self.proc is None:
            return -1
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        self._log.close()
        return code


def run_chaos(plan: ChaosPlan, workdir: Path | None = None) -> dict[str, Any]:
    tmp = Path(workdir or tempfile.mkdtemp(prefix="keeper-chaos-"))
    world = start_world(load_state=prebuilt_state())
    try:
        live = _live_phase(plan, world, tmp / "live")
        dry = _dry_phase(plan, world, tmp / "dry")
    finally:
        world.stop()
    return {"live": live, "dry_run": dry, "workdir": str(tmp)}


def _keeper_env(journal: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    env.update({"KEEPER_MONITORING__JOURNAL": str(journal), "KEEPER_MONITORING__LOG_FORMAT": "json",
                "KEEPER_CHAIN__POLL_INTERVAL_S": "0.1", "KEEPER_CHAIN__REQUEST_TIMEOUT_S": "1.0",
                "KEEPER_CHAIN__STARTUP_RETRY_S": "25", "KEEPER_CHAIN__STARTUP_BACKOFF_MAX_S": "1.0",
                "KEEPER_RISK__KILL_SWITCH_FILE": str(journal.with_name("KILL")), **extra})
    return env


def _cycle_premiums(step: int) -> dict[str, float] | None:
    calm, shocked, converging = CYCLE
    at = step % sum(CYCLE)
    if step >= sum(CYCLE) and at < calm:  # later cycles: shorter calm is enough, history exists
        return {"ETH": 0.0, "BTC": 0.0}
    if calm <= at < calm + shocked:
        return {"ETH": 0.03, "BTC": -0.03}
    if at >= calm + shocked:
        return {"ETH": 0.0, "BTC": 0.0}
    return None


def _live_phase(plan: ChaosPlan, world: World, tmp: Path) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    rpc = JsonRpc(world.node.rpc_url)
    key = Account.create()
    rpc.call("anvil_setBalance", [key.address, hex(100 * 10**18)])
    executor = provision_impersonated(rpc, world.manifest, key.address)
    manifest_path = tmp / "manifest.json"
    world.manifest.write(manifest_path)
    erc20 = codec("MintableERC20")
    spot_before = {m.name: DevSender(rpc).read(m.spot_token, erc20, "balanceOf", executor) for m in world.manifest.markets}
    value_before = executor_value_x18(rpc, world.manifest, executor)
    eth_before = int(rpc.call("eth_getBalance", [key.address, "latest"]), 16)
    start_block = rpc.block_number()
    proxy = FaultProxy(world.node.rpc_url, FaultConfig(**{**plan.faults.__dict__, "seed": plan.seed})).start()
    journal = tmp / "journal.sqlite"
    keeper = KeeperRun(tmp, _keeper_env(journal, {"KEEPER_PRIVATE_KEY": key.key.hex(),
                                                  "KEEPER_ACCOUNT__EXECUTOR": executor,
                                                  "KEEPER_EXECUTION__CONFIRMATIONS": str(plan.confirmations)}),
                       ["--rpc-url", proxy.url, "--manifest", str(manifest_path), "--blocks", "10000000"],
                       tmp / "keeper.log")
    driver = MarketActivity(JsonRpc(world.node.rpc_url), world.manifest,
                            ActivityConfig(seed=plan.seed, step_s=60, premium_vol_daily=0.002, index_vol_daily=0.01))
    sampler = HedgeSampler(rpc, world.manifest, executor, spot_before, next_block=start_block)
    try:
        return _drive_live(plan, rpc, world, proxy, keeper, driver, sampler, journal, key.address, executor,
                           start_block, value_before, eth_before, spot_before)
    finally:
        keeper.abandon()
        proxy.stop()


def _drive_live(plan: ChaosPlan, rpc: JsonRpc, world: World, proxy: FaultProxy, keeper: KeeperRun,
                driver: MarketActivity, sampler: HedgeSampler, journal: Path, keeper_address: str, executor: str,
                start_block: int, value_before: int, eth_before: int, spot_before: dict[str, int]) -> dict[str, Any]:
    n = plan.steps
    reorg_at = {int(n * (i + 1) / (len(plan.reorg_depths) + 1)) + 3: d for i, d in enumerate(plan.reorg_depths)}
    kill_after_send_from = 0  # armed from the start: the first tx.sent is killed
    kill_at = int(n * 0.8) if plan.kills >= 2 else None
    stuck_at = CYCLE[0] + 1  # as the first shock starts: the opens it brings are stuck
    faults: list[tuple[str, int]] = []  # (what, block) -> did the keeper tick after it?
    notes: list[str] = []
    kills_done = 0
    keeper.start(plan.start_timeout_s)
    step = 0
    settled = False
    while step < n + plan.settle_steps:
        premiums = _cycle_premiums(step) if step < n else {"ETH": 0.0, "BTC": 0.0}
        for market, premium in (premiums or {}).items():
            driver.shock_premium(market, premium)
        if step == stuck_at:
            proxy.stick_sends(plan.stuck_blocks)
            faults.append(("stuck sends", rpc.block_number()))
        block = _step(driver, rpc)
        if step in reorg_at:
            rpc.call("anvil_reorg", [reorg_at[step], []])
            faults.append((f"reorg depth {reorg_at[step]}", rpc.block_number()))
        sampler.sample_to(rpc.block_number())
        armed = kills_done == 0 and plan.kills >= 1 and step >= kill_after_send_from
        sent_before = keeper.count("tx.sent")
        deadline = time.monotonic() + plan.tick_wait_s
        while time.monotonic() < deadline and keeper.last_tick_block() < block:
            if armed and keeper.count("tx.sent") > sent_before:
                break
            time.sleep(0.02)
        if armed and (keeper.count("tx.sent") > sent_before or step >= kill_after_send_from + 40):
            after_send = keeper.count("tx.sent") > sent_before
            keeper.kill9()
            kills_done += 1
            notes.append(f"kill -9 at block {rpc.block_number()}" + (" right after tx.sent" if after_send else ""))
            _step(driver, rpc)  # the chain goes on while the keeper is down (the trade is mined meanwhile)
            sampler.sample_to(rpc.block_number())
            faults.append(("kill -9 after tx.sent" if after_send else "kill -9", rpc.block_number()))
            keeper.start(plan.start_timeout_s)
        elif kill_at is not None and step == kill_at and kills_done < plan.kills:
            keeper.kill9()
            kills_done += 1
            notes.append(f"kill -9 at block {rpc.block_number()}")
            _step(driver, rpc)
            sampler.sample_to(rpc.block_number())
            faults.append(("kill -9", rpc.block_number()))
            keeper.start(plan.start_timeout_s)
        if not keeper.alive():
            notes.append(f"the keeper exited by itself at step {step}; restarted")
            keeper.start(plan.start_timeout_s)
        step += 1
        if step >= n and _flat_and_settled(journal, rpc, world, executor):
            settled = True
            break
    time.sleep(plan.tick_wait_s)
    final_code = keeper.stop()
    if final_code != 0:
        keeper.exits.append(final_code)
    sampler.sample_to(rpc.block_number())
    return _judge(plan, rpc, world, keeper, journal, keeper_address, executor, start_block, sampler, faults, notes,
                  proxy, value_before, eth_before, spot_before, settled, step)


def _step(driver: MarketActivity, rpc: JsonRpc) -> int:
    """One market step; its block. A driver trade may revert when a keeper trade lands in the same
    block (the driver prices its trades on the state before it): the step still mined a block."""
    try:
        return driver.step().block_number
    except TxRevertedError:
        return rpc.block_number()


def _flat_and_settled(journal: Path, rpc: JsonRpc, world: World, executor: str) -> bool:
    if not journal.exists():
        return False
    with Journal(journal, readonly=True) as j:
        if j.open_positions() or j.pending_transactions():
            return False
    ab = codec("AccountBalance")
    return all(DevSender(rpc).read(world.manifest.contracts["AccountBalance"], ab, "getTakerPositionSize", executor,
                                   m.base_token) == 0 for m in world.manifest.markets)


def _judge(plan: ChaosPlan, rpc: JsonRpc, world: World, keeper: KeeperRun, journal: Path, keeper_address: str,
           executor: str, start_block: int, sampler: HedgeSampler, faults: list[tuple[str, int]], notes: list[str],
           proxy: FaultProxy, value_before: int, eth_before: int, spot_before: dict[str, int], settled: bool,
           steps_run: int) -> dict[str, Any]:
    events, other = log_events(keeper.log_path)
    tracebacks = sum(1 for line in other if line.startswith("Traceback") or "raised an exception" in line)
    ticks = sorted(e["block"] for e in events if e.get("event") == "tick")
    audit = audit_chain(rpc, journal, keeper_address, executor, start_block)
    ab = codec("AccountBalance")
    chain_pos = {m.name: DevSender(rpc).read(world.manifest.contracts["AccountBalance"], ab, "getTakerPositionSize",
                                             executor, m.base_token) for m in world.manifest.markets}
    with Journal(journal, readonly=True) as j:
        journal_pos = {m: p.perp_base_x18 for m, p in j.open_positions().items()}
        realized = j.status().pnl.realized
        pending = len(j.pending_transactions())
    mismatches = {m: (journal_pos.get(m, 0), c) for m, c in chain_pos.items() if journal_pos.get(m, 0) != c}
    value_change = executor_value_x18(rpc, world.manifest, executor) - value_before
    eth_spent = eth_before - int(rpc.call("eth_getBalance", [keeper_address, "latest"]), 16)
    flat = all(v == 0 for v in chain_pos.values()) and not journal_pos
    identity = None
    if flat:
        identity = {"trading_and_funding_wei_off": value_change - (realized.funding_x18 + realized.convergence_x18
                                                                     - realized.fees_x18),
                    "total_wei_off": realized.total_x18 - (value_change - realized.gas_x18),
                    "realized_total_usd": realized.total_x18 / 1e18}
    erc20 = codec("MintableERC20")
    spot_after = {m.name: DevSender(rpc).read(m.spot_token, erc20, "balanceOf", executor) for m in world.manifest.markets}
    return {
        "blocks": rpc.block_number() - start_block, "steps": steps_run, "settled_flat": settled,
        "keeper_exits": keeper.exits, "exceptions_out_of_a_tick": tracebacks,
        "tick_errors_caught": sum(1 for e in events if e.get("event") == "tick.error"),
        "transient_skips": sum(1 for e in events if e.get("event") == "tick.transient"),
        "ticks": len(ticks), "kills": [n for n in notes if n.startswith("kill")], "notes": notes,
        "faults": [{"what": what, "block": block, "ticked_after": any(b > block for b in ticks)} for what, block in faults],
        "proxy": proxy.stats.__dict__, "start_s": [round(s, 2) for s in keeper.starts_s],
        "keeper_txs": audit.keeper_txs, "trades_included": audit.included_trades, "reverted": audit.reverted,
        "chain_trades_not_booked": audit.not_booked, "duplicate_opens": audit.duplicate_opens,
        "opens_refused_not_flat": audit.refused_opens_not_flat,
        "blocks_sampled": sampler.sampled, "blocks_unhedged": len(sampler.unhedged), "unhedged": sampler.unhedged[:5],
        "journal_vs_chain_mismatches": mismatches, "pending_in_journal": pending,
        "gas_paid_wei": eth_spent, "gas_booked_wei": audit.gas_booked_wei,
        "pnl_identity": identity, "spot_back_to_start": spot_after == spot_before,
        "positions_end": {m: c for m, c in chain_pos.items()},
    }


def _dry_phase(plan: ChaosPlan, world: World, tmp: Path) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    rpc = JsonRpc(world.node.rpc_url)
    owner = world.manifest.accounts.keeper
    executor = provision_executor(DevSender(rpc), world.manifest, owner)
    manifest_path = tmp / "manifest.json"
    world.manifest.write(manifest_path)
    nonce_before = int(rpc.call("eth_getTransactionCount", [owner, "latest"]), 16)
    proxy = FaultProxy(world.node.rpc_url, FaultConfig(**{**plan.faults.__dict__, "seed": plan.seed + 1})).start()
    keeper = KeeperRun(tmp, _keeper_env(tmp / "journal.sqlite", {"KEEPER_ACCOUNT__EXECUTOR": executor}),
                       ["--dry-run", "--rpc-url", proxy.url, "--manifest", str(manifest_path), "--blocks", "10000000"],
                       tmp / "keeper.log")
    driver = MarketActivity(JsonRpc(world.node.rpc_url), world.manifest,
                            ActivityConfig(seed=plan.seed, step_s=60, premium_vol_daily=0.002, index_vol_daily=0.01))
    try:
        keeper.start(plan.start_timeout_s)
        _drive_dry(plan, driver, keeper)
        code = keeper.stop()
        for _ in range(plan.start_trials):
            keeper.start(plan.start_timeout_s)
            if keeper.stop() != 0:
                code = code or 1
    finally:
        keeper.abandon()
        proxy.stop()
    events, other = log_events(keeper.log_path)
    return {"exit_code": code, "tracebacks": sum(1 for line in other if "Traceback" in line),
            "ticks": sum(1 for e in events if e.get("event") == "tick"),
            "sent": sum(1 for e in events if e.get("event") in ("tx.sent", "tx.signed")),
            "nonce_change": int(rpc.call("eth_getTransactionCount", [owner, "latest"]), 16) - nonce_before,
            "would_trade": sum(1 for e in events if e.get("event") == "tx.outcome" and e.get("status") == "dry_run"),
            "start_s": [round(s, 2) for s in keeper.starts_s], "failed_starts": len(keeper.exits),
            "proxy": proxy.stats.__dict__}


def _drive_dry(plan: ChaosPlan, driver: MarketActivity, keeper: KeeperRun) -> None:
    for step in range(plan.dry_run_steps):
        for market, premium in (_cycle_premiums(step + sum(CYCLE[:1]) - 4) or {}).items():
            driver.shock_premium(market, premium)
        block = _step(driver, driver.rpc)
        deadline = time.monotonic() + plan.tick_wait_s
        while time.monotonic() < deadline and keeper.last_tick_block() < block:
            time.sleep(0.02)
