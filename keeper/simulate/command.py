"""`keeper simulate`: the real keeper against an anvil fork, in lockstep with a scenario.

1. Fork: anvil forked from --fork-url (at --fork-block or the head). The origin is only read.
2. World: a fork of our devnet takes its addresses from the origin's manifest (chain.manifest,
   .keeper/devnet/manifest.json, or the prebuilt test state's, checked against the chain); any
   other chain is treated as Optimism (chain.preset = "optimism", or chain id 10): addresses
   resolved on chain, Chainlink aggregators replaced by MockV3Aggregator code, market-activity
   accounts funded by storage writes (keeper/simulate/realchain.py).
3. The keeper: a throwaway key (eth_account.Account.create(), in memory, never printed or
   logged), gas money by anvil_setBalance, a BasisExecutor deployed and funded by storage writes
   (keeper/simulate/fork.py), then `build_runtime` in LIVE mode on the fork: the same code path as
   `keeper run`, with a journal in a temporary directory under --out.
4. Lockstep, per step: the scenario moves the market (one driver step), the keeper ticks once
   (`runtime.engine.tick()`, no scheduler), one sample is recorded. Before step 1, warm-up steps
   (the scenario's `warmup_steps`) of plain activity give the keeper its basis history; after the
   last step, wind-down ticks with the kill switch set to "unwind" close what the keeper holds,
   so that its PnL is realized and the balance identity is exact (keeper/simulate/ledger.py).
5. Comparison on the same recorded snapshots (the ones the keeper's ticks read): the threshold bot
   and the carry-only bot, paper-traded within the keeper's limits, and the hindsight optimum, which
   must dominate the keeper and both bots (keeper/simulate/compare.py). Each tick also marks what
   the keeper holds to market by an exact close quote. Then report.json and report.html
   (keeper/simulate/report.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from keeper.addressbook import AddressBook, book_from_manifest, optimism_book
from keeper.chain.fees import GAS_PRICE_ORACLE
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig, with_overrides
from keeper.devnet.manifest import DevnetManifest
from keeper.errors import ConfigError
from keeper.journal import Journal
from keeper.logs import configure_logging, get_logger, redacted_url
from keeper.simulate.compare import account_limits, compare, keeper_round_trips, yardsticks_json
from keeper.simulate.driver import ScenarioDriver
from keeper.simulate.fork import (check_fork_block, find_origin_manifest, fund_gas, origin_head,
                                  provision_fork_executor, start_fork)
from keeper.simulate.ledger import BalanceReader, KeeperBalances, compute_balance_change
from keeper.simulate.pair_trips import pair_fee_paid_wei, pair_pnl, pair_round_trips, pair_transactions
from keeper.simulate.paper import AccountLimits, SnapshotQuoter, path_points
from keeper.simulate.recorder import Recorder, split_usd
from keeper.simulate.report import usd, write_report
from keeper.simulate.scenario import Scenario, load_scenario

log = get_logger("keeper.simulate")
WIND_DOWN_MAX_TICKS = 8
OPTIMISM_CHAIN_ID = 10
ONE_X18 = 10**18
KEY_ENV = "KEEPER_PRIVATE_KEY"
_ENV_LOCK = threading.Lock()
_POSITION_LIQUIDATED = "0x" + keccak(
    text="PositionLiquidated(address,address,uint256,uint256,uint256,address)").hex()


@dataclass(frozen=True)
class ForkWorld:
    """What the simulation runs on: addresses for the driver (manifest) and for the keeper."""

    kind: str  # "devnet" or "optimism"
    manifest: DevnetManifest  # the driver's view (for Optimism: synthesized, see realchain.py)
    sources: Sources
    book: AddressBook
    runtime_overrides: Mapping[str, Any]  # chain.* settings for build_runtime


# ------------------------------------------------------------------------------ set-up pieces
def simulation_settings(settings: KeeperConfig, world: ForkWorld, executor: str, work: Path) -> KeeperConfig:
    """The user's settings, pointed at the fork: its RPC and addresses, the provisioned executor,
    the throwaway key's variable, a journal and kill-switch file in the work directory, metrics off."""
    overrides = {
        "chain": dict(world.runtime_overrides),
        "account": {"executor": executor, "keystore": None, "key_env": KEY_ENV},
        "monitoring": {"journal": work / "journal.sqlite", "metrics_port": 0},
        "risk": {"kill_switch_file": work / "KILL", "kill_switch_action": "unwind"},
        "strategies": {"warm_start_blocks": 0},  # the scenarios start blind, as they always have (README)
    }
    return with_overrides(settings, overrides, where="simulation settings")


@contextmanager
def _key_in_environment(private_key_hex: str) -> Iterator[None]:
    """The key in KEEPER_PRIVATE_KEY of this process only while the runtime loads it."""
    with _ENV_LOCK:
        previous = os.environ.get(KEY_ENV)
        os.environ[KEY_ENV] = private_key_hex
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(KEY_ENV, None)
            else:
                os.environ[KEY_ENV] = previous


@contextmanager
def _logs_to(path: Path, level: str) -> Iterator[None]:
    """The keeper's and the simulation's log events go to `path` (JSON lines) during the run, so
    that the console keeps the progress bar; the previous logging set-up is restored after. A run
    stopped by an error or Ctrl-C ends its log with `simulate.failed`, saying why."""
    previous = structlog.get_config()
    with path.open("w") as stream:
        configure_logging(level, json_lines=True, stream=stream)
        try:
            yield
        except BaseException as exc:
            log.error("simulate.failed", error_type=type(exc).__name__,
                      error="interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc))
            raise
        finally:
            structlog.configure(**previous)


@contextmanager
def logged_stop(ticks: Callable[[], int], steps: int, end: str = "scenario_end") -> Iterator[None]:
    """The simulated keeper's log ends as a live run's (keeper/blockloop.py): `keeper.stopping`, with
    reason `end` (`scenario_end`; `--replay`: `replay_end`) after the wind-down, `fatal` or `signal`
    (Ctrl-C) when the run broke off, then `keeper.stopped`; both with the ticks the keeper ran. The
    error itself is told once, by `simulate.failed` after them (`_logs_to`), as a live run tells it
    once, by `keeper.fatal` before them."""
    try:
        yield
    except KeyboardInterrupt:
        log.info("keeper.stopping", reason="signal", signal="SIGINT", ticks=ticks(), phase="loop")
        raise
    except Exception:
        log.info("keeper.stopping", reason="fatal", ticks=ticks(), phase="loop")
        raise
    else:
        log.info("keeper.stopping", reason=end, steps=steps, ticks=ticks(), phase="loop")
    finally:
        log.info("keeper.stopped", ticks=ticks(), phase="loop")


def prepare_world(rpc: JsonRpc, settings: KeeperConfig, work: Path) -> ForkWorld:
    chain_id = rpc.chain_id()
    if settings.chain.preset == "optimism" or (chain_id == OPTIMISM_CHAIN_ID and settings.chain.manifest is None):
        from keeper.simulate.realchain import prepare_optimism_world

        book = optimism_book()
        manifest, sources = prepare_optimism_world(rpc, book)
        return ForkWorld("optimism", manifest, sources, book,
                         {"rpc_url": rpc.url, "preset": "optimism", "manifest": None, "chain_id": chain_id})
    origin = find_origin_manifest(rpc, settings.chain.manifest)
    manifest = origin.with_rpc_url(rpc.url)
    path = work / "manifest.json"
    manifest.write(path)
    return ForkWorld("devnet", manifest, Sources.from_manifest(manifest), book_from_manifest(manifest),
                     {"rpc_url": rpc.url, "preset": "devnet", "manifest": path, "chain_id": chain_id})


def _liquidations(rpc: JsonRpc, clearing_house: str, executor: str, from_block: int) -> list[dict[str, Any]]:
    trader_topic = "0x" + "00" * 12 + executor.lower()[2:]
    logs = rpc.call("eth_getLogs", [{"address": clearing_house, "fromBlock": hex(from_block), "toBlock": "latest",
                                     "topics": [_POSITION_LIQUIDATED, trader_topic]}])
    return [{"block": int(entry["blockNumber"], 16), "tx_hash": entry["transactionHash"]} for entry in logs]


# ------------------------------------------------------------------------------ the command
def run_simulation(settings: KeeperConfig, *, fork_url: str, fork_block: int | None, blocks: int, scenario: str,
                   seed: int, out_dir: Path, console: Console | None = None) -> list[Path]:
    """Run `scenario` for `blocks` steps on a fork of `fork_url`; write report.json and
    report.html into out_dir and return their paths (see the module notes)."""
    started = time.monotonic()
    plan = load_scenario(scenario)
    if plan.strategies:  # the scenario's own strategies section (e.g. pairs_spread enabled)
        settings = with_overrides(settings, {"strategies": plan.strategies}, where=f"scenario {plan.name}: strategies")
    if blocks < 1:
        raise ConfigError(f"--blocks must be >= 1, got {blocks}")
    origin_chain_id, origin_block = origin_head(fork_url)
    check_fork_block(fork_block, origin_block)
    console = console or Console(stderr=True)
    node = start_fork(fork_url, fork_block)  # before --out is touched: a fork that fails leaves nothing there
    runtime = None
    work: Path | None = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("report.json", "report.html"):  # an earlier run's: never left beside this run's log
            (out_dir / stale).unlink(missing_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".simulation-", dir=out_dir))
        with _logs_to(out_dir / "keeper.log", settings.monitoring.log_level):
            assert node.rpc is not None
            log.info("simulate.fork_started", origin_url=fork_url, origin_chain_id=origin_chain_id,
                     origin_block=origin_block, fork_block=fork_block, fork_rpc=node.rpc_url, scenario=plan.name)
            world = prepare_world(node.rpc, settings, work)
            key = Account.create()
            fund_gas(node.rpc, key.address)
            executor = provision_fork_executor(node.rpc, world.book, key.address)
            sim_settings = simulation_settings(settings, world, executor.address, work)
            from keeper.launch import build_runtime

            with _key_in_environment(bytes(key.key).hex()):
                runtime = build_runtime(sim_settings, dry_run=False)  # a fork: the scenario's driver, not the embedded one's
            del key
            report = _run(runtime, node.rpc, world, plan, blocks, seed, executor.address, sim_settings, console)
        report["run"] = {"origin_url": redacted_url(fork_url), "origin_chain_id": origin_chain_id, "origin_head_block": origin_block,
                         "fork_block": fork_block if fork_block is not None else origin_block, "world": world.kind,
                         "seed": seed, "steps": blocks, "executor": executor.address, "owner": executor.owner,
                         "keeper_log": str(out_dir / "keeper.log"), "wall_s": round(time.monotonic() - started, 2)}
        return write_report(report, out_dir)
    finally:
        if runtime is not None:
            runtime.close()
        node.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _run(runtime: Any, rpc: JsonRpc, world: ForkWorld, plan: Scenario, blocks: int, seed: int, executor: str,
         settings: KeeperConfig, console: Console) -> dict[str, Any]:
    driver = ScenarioDriver(rpc, world.manifest, plan.activity.activity_config(seed), scenario=plan)
    collector = SnapshotCollector(rpc, world.sources, account=executor)
    collector.prepare()
    reader = BalanceReader(rpc, world.sources, world.book.usdc, executor, runtime.owner)
    start = reader.read()
    decimals = {m.name: m.spot_token_decimals for m in world.sources.markets}
    recorder = Recorder(rpc, collector, reader, start, decimals, l1_oracle=bool(rpc.get_code(GAS_PRICE_ORACLE)))
    first_block = start.block
    total = plan.warmup_steps + blocks + WIND_DOWN_MAX_TICKS
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with logged_stop(lambda: len(recorder.snapshots), blocks), \
            Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"{plan.name}: warm-up", total=total)
        for i in range(plan.warmup_steps):
            driver.warm_up()
            recorder.tick(runtime, "warmup", i - plan.warmup_steps + 1)
            bar.advance(task)
        for n in range(1, blocks + 1):
            bar.update(task, description=f"{plan.name}: step {n}/{blocks}")
            driver.step()
            recorder.tick(runtime, "scenario", n)
            bar.advance(task)
        driver.end()
        runtime.pull_kill_switch("keeper simulate: wind-down")  # kill switch "unwind": the keeper closes what it holds
        bar.update(task, description=f"{plan.name}: wind-down")
        for k in range(WIND_DOWN_MAX_TICKS):
            driver.advance_time(plan.activity.step_s)
            recorder.tick(runtime, "wind_down", blocks + k + 1)
            bar.advance(task)
            if k >= 1 and not runtime.journal.open_positions() and _flat(recorder.samples[-1]):
                break
        bar.update(task, completed=total, description=f"{plan.name}: done")
    end = reader.read()
    limits = account_limits(settings, recorder.snapshots[0], {m.name: m.spot_token for m in world.sources.markets},
                            decimals, world.book.usdc)
    open_after = sorted(runtime.journal.open_positions())
    liquidations = _liquidations(rpc, world.sources.perp.clearing_house, executor, first_block)
    return build_report_data(plan, settings, recorder, start, end, runtime.journal, open_after, liquidations, limits)


def _flat(sample: Mapping[str, Any]) -> bool:
    """No Perp position in any market after the sample's tick (read from the chain)."""
    return all(m["keeper_position_base"] == 0 for m in sample["markets"].values())


def build_report_data(plan: Scenario, settings: KeeperConfig, recorder: Recorder, start: KeeperBalances,
                      end: KeeperBalances, journal: Journal, open_after: list[str],
                      liquidations: list[dict[str, Any]], caps: AccountLimits) -> dict[str, Any]:
    pair_rows, pair_trips = pair_round_trips(journal, [s.block_number for s in recorder.snapshots])
    pair_txs = pair_transactions(journal)
    journal_pnl = journal.pnl_summary().total + pair_pnl(journal)  # pair trades: keeper/simulate/pair_trips.py
    markets = sorted(recorder.spot_decimals)
    points = {m: path_points(recorder.snapshots, m, recorder.tips_wei, recorder.l1_fees_wei) for m in markets}
    quoter = SnapshotQuoter(recorder.snapshots)
    trips, known = keeper_round_trips(journal, recorder.outcomes, [s.block_number for s in recorder.snapshots])
    trips += pair_rows
    baseline, carry, optimum, comparison = compare(settings, points, quoter, caps, journal_pnl, trips, known, pair_trips)
    for k, sample in enumerate(recorder.samples):
        sample["baseline_equity_usd"] = usd(baseline.equity_x18[k]) if k < len(baseline.equity_x18) else None
        sample["carry_equity_usd"] = usd(carry.equity_x18[k]) if k < len(carry.equity_x18) else None
        for m in markets:
            for name, result in (("baseline", baseline), ("carry", carry)):
                sizes = result.position_base_x18.get(m, ())
                sample["markets"][m][f"{name}_position_base"] = sizes[k] / ONE_X18 if k < len(sizes) else 0.0
    # the balance identity (exact once every position is closed; see keeper/simulate/ledger.py)
    last_prices = {m: int((recorder.samples[-1]["markets"][m]["spot_v3_usd"] or 0) * ONE_X18) for m in markets}
    change = compute_balance_change(start, end, last_prices, recorder.spot_decimals)
    flat = not open_after and change.spot_flat
    balance_change_x18 = change.total_x18 - journal_pnl.gas_x18
    consistency = {
        "positions_closed": flat,
        "open_positions_after_wind_down": open_after,
        "split_sum_x18": str(journal_pnl.funding_x18 + journal_pnl.convergence_x18 - journal_pnl.fees_x18
                             - journal_pnl.gas_x18),
        "journal_total_x18": str(journal_pnl.total_x18),
        "executor_value_change_x18": str(change.total_x18),
        "executor_value_change": {"wallet_usdc_x18": str(change.wallet_x18), "perp_account_x18": str(change.perp_x18),
                                  "spot_x18": str(change.spot_x18),
                                  "spot_raw": {m: str(v) for m, v in change.spot_raw.items()}},
        "gas_x18": str(journal_pnl.gas_x18),
        "balance_change_x18": str(balance_change_x18),
        "split_equals_balance_change": journal_pnl.total_x18 == balance_change_x18,
        "gas_wei_from_outcomes": str(recorder.fee_paid_wei + pair_fee_paid_wei(journal)),
        "gas_wei_owner_spent": str(change.gas_wei),
        "gas_wei_equal": recorder.fee_paid_wei + pair_fee_paid_wei(journal) == change.gas_wei,
        "start": start.as_json(), "end": end.as_json(),
        "definition": ("balance change = d(executor USDC) + d(Perp account: vault balance + owed realized PnL + "
                       "unrealized PnL - pending funding) + d(spot tokens) x last spot price - gas (the journal's "
                       "USD value of the owner's gas); with every position closed d(spot tokens) = 0, so it is "
                       "exact and price-free, and must equal the journal's funding + convergence - fees - gas"),
    }
    margin = [s["keeper"]["margin_ratio"] for s in recorder.samples if s["keeper"]["margin_ratio"] is not None]
    notional = [m["keeper_notional_usd"] for s in recorder.samples for m in s["markets"].values()]
    risk = settings.risk
    limits = {
        "min_margin_ratio": risk.min_margin_ratio, "max_notional_usd_per_market": risk.max_notional_usd_per_market,
        "max_notional_usd_total": risk.max_notional_usd_total, "max_gas_price_gwei": risk.max_gas_price_gwei,
        "max_oracle_age_s": risk.max_oracle_age_s, "stress_index_move": risk.stress_index_move,
        "lowest_margin_ratio": min(margin) if margin else None,
        "highest_notional_usd": max(notional) if notional else 0.0,
        "highest_total_notional_usd": max((sum(m["keeper_notional_usd"] for m in s["markets"].values())
                                           for s in recorder.samples), default=0.0),
        "liquidations": liquidations,
    }
    return {
        "scenario": {"name": plan.name, "description": plan.description, "warmup_steps": plan.warmup_steps,
                     "activity": plan.activity.model_dump(),
                     "events": [e.model_dump() for e in plan.events]},
        "markets": markets,
        "keeper": {"pnl": journal_pnl.to_json_dict() | split_usd(journal_pnl), "trades": recorder.outcomes,
                   "transactions": len(recorder.outcomes) + len(pair_txs), "round_trips": trips, "pair_trades": pair_txs,
                   "included": sum(1 for o in recorder.outcomes + pair_txs if o["status"] == "included")},
        **yardsticks_json(settings, caps, baseline, carry, optimum),
        "comparison": comparison,
        "consistency": consistency,
        "limits": limits,
        "samples": recorder.samples,
    }

