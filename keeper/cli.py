"""The `keeper` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad input / fatal set-up."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from keeper.config import KeeperConfig
from keeper.devnet.manifest import DevnetManifest
from keeper.errors import FatalError, KeeperError, TransientError
from keeper.logs import configure_logging, get_logger

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="On-chain basis and funding-carry keeper for Perpetual Protocol v2 against Uniswap spot.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
DEFAULT_MANIFEST = Path(".keeper/devnet/manifest.json")


@app.callback()
def _root() -> None:
    """Commands: run (the keeper), status (positions and PnL), scan (markets now), devnet (the
    local world), executor (the admin's deploy / migrate). Run `keeper COMMAND --help` for each."""


ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file (see keeper.example.toml). Env `KEEPER_<SECTION>__<KEY>` overrides it.")]


@app.command()
def run(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Hold no key: simulate every intended transaction with eth_call and log the would-be outcome; send nothing.")] = False,
    blocks: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many new blocks (default: run until Ctrl-C / SIGTERM).")] = None,
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC URL (overrides chain.rpc_url). Unset everywhere: start the embedded devnet with market activity.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the embedded devnet's market-activity driver.")] = 7,
    drive_interval: Annotated[float, typer.Option(help="Embedded devnet: wall-clock seconds between market-activity steps.")] = 2.0,
) -> None:
    """Run the keeper: every new block, read all markets from contracts, decide, and open, hold
    and unwind delta-neutral basis positions through the executor. The signing key comes from the
    environment variable named by account.key_env (default KEEPER_PRIVATE_KEY) or an encrypted
    keystore; never from the command line. With --dry-run no key is needed."""
    from keeper.config import load_config
    from keeper.live import start_live_view
    from keeper.launch import build_runtime
    from keeper.runtime import run_loop

    overrides: dict[str, dict[str, object]] = {"chain": {}}
    if rpc_url:
        overrides["chain"]["rpc_url"] = rpc_url
    if manifest:
        overrides["chain"]["manifest"] = manifest
    runtime = view = None
    try:
        settings = load_config(config, overrides=overrides)
        view = start_live_view(settings, out)  # on a terminal: the live panel, logs to a file
        try:
            runtime = build_runtime(settings, dry_run=dry_run, seed=seed)
        except TransientError as exc:
            raise FatalError(f"chain.rpc_url: {exc}") from exc
        run_loop(runtime, blocks=blocks, drive_interval_s=drive_interval, view=view)
        if runtime.engine.fatal is not None:  # an orderly stop on a fatal error inside a tick: exit 1
            err.print(f"[bold red]error:[/] {runtime.engine.fatal}", highlight=False)
            raise typer.Exit(1)
    except KeeperError as exc:
        raise _fail(exc) from exc
    finally:
        if runtime is not None:
            runtime.close()
        if view is not None:
            view.stop()


@app.command()
def simulate(
    fork_url: Annotated[str, typer.Option(help="RPC of the chain to fork (e.g. an Optimism node, or a local devnet: http://127.0.0.1:8545).")],
    blocks: Annotated[Optional[int], typer.Option(min=1, help="Scenario steps to run (each step advances the chain and runs one keeper tick). Needed for one run; with --suite: default each scenario's recommended_steps.")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="One run: scenario name (see scenarios/) or a scenario file.")] = None,
    fork_block: Annotated[Optional[int], typer.Option(help="Fork at this block (default: the latest).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the scenario's random path (one run).")] = 7,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write report.json and report.html (suite: suite.json, index.html and one directory per run).")] = Path("simulation"),
    suite: Annotated[bool, typer.Option("--suite", help="Run every scenario x seed against one fork origin and print a table with medians across seeds.")] = False,
    scenarios: Annotated[Optional[list[str]], typer.Option("--scenarios", help="Suite: a scenario file or a directory of them; repeatable (default: scenarios/).")] = None,
    seeds: Annotated[str, typer.Option(help="Suite: comma-separated seeds.")] = "1,2,3",
    config: ConfigOption = None,
    replay: Annotated[bool, typer.Option("--replay", help="Replay the origin's blocks (--from-block, --to-block] on a fork at --from-block, the keeper trading between them.")] = False,
    from_block: Annotated[Optional[int], typer.Option(min=0, help="--replay: fork at this origin block.")] = None,
    to_block: Annotated[Optional[int], typer.Option(min=0, help="--replay: last origin block to replay.")] = None,
    check: Annotated[bool, typer.Option("--check", help="--replay with the keeper off: every replayed block must reproduce the origin's prices and pool states.")] = False,
) -> None:
    """Dry-run simulation on a fork: start anvil forked from --fork-url, fund a throwaway keeper
    account and deploy the executor there, drive the scenario, run the real keeper (the same code
    path as live) against the fork, and write a report comparing it with a threshold bot, a
    carry-only bot and the hindsight optimum. --suite runs many scenarios x seeds. The origin
    chain is never written to. --replay applies the origin's own blocks (--from-block,
    --to-block] again on a fork, the keeper trading between them; --check (keeper off) verifies
    every replayed block against the origin."""
    from keeper.config import load_config
    from keeper.simulate.suite import simulate_main

    try:
        settings = load_config(config)
        if replay or check:
            from keeper.history.commands import replay_command

            out.print(replay_command(settings, fork_url=fork_url, from_block=from_block, to_block=to_block, check=check,
                                     out_dir=out_dir, console=err), highlight=False, markup=False)
            return
        _configure_logging_from(settings)
        code = simulate_main(settings, fork_url=fork_url, fork_block=fork_block, blocks=blocks, scenario=scenario,
                             seed=seed, out_dir=out_dir, suite=suite, scenarios=scenarios or [], seeds=seeds,
                             out=out, err=err)
    except KeeperError as exc:
        raise _fail(exc) from exc
    raise typer.Exit(code)


@app.command()
def record(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of the chain to record (an archive node for old blocks).")],
    out_file: Annotated[Path, typer.Option("--out", help="History to write (a Parquet dataset directory); an existing one is resumed.")],
    from_block: Annotated[Optional[int], typer.Option(min=0, help="First block (default: 1,000 blocks before --to-block; with --follow: the head).")] = None,
    to_block: Annotated[Optional[int], typer.Option(min=0, help="Last block (default: the head).")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep recording new blocks until Ctrl-C.")] = False,
    account: Annotated[Optional[str], typer.Option(help="Also record this executor's Perp account and wallet (default: account.executor).")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")] = None,
    config: ConfigOption = None,
) -> None:
    """Record, per block, the keeper's own snapshot reads (raw Multicall3 results pinned to the
    block), the block header, base fee and L1-fee inputs, for `keeper backtest`."""
    from keeper.history.commands import record_command

    try:
        out.print(record_command(config=config, rpc_url=rpc_url, out=out_file, from_block=from_block, to_block=to_block,
                                 follow=follow, account=account, manifest=manifest, console=err), highlight=False, markup=False)
    except KeeperError as exc:
        raise _fail(exc) from exc


@app.command()
def backtest(
    history: Annotated[Path, typer.Argument(help="History recorded by `keeper record`.")],
    config: ConfigOption = None,
    strategy: Annotated[Optional[str], typer.Option(help="Run only this strategy (default: strategies.enabled).")] = None,
    from_block: Annotated[Optional[int], typer.Option(min=0, help="First recorded block to replay.")] = None,
    to_block: Annotated[Optional[int], typer.Option(min=0, help="Last recorded block to replay.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write report.json and report.html.")] = Path("backtest"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide as `keeper run --dry-run` would: the recorded account, virtual positions.")] = False,
    sweep: Annotated[Optional[list[str]], typer.Option(help="Calibrate: NAME=V1,V2,... (a strategies.params.* or risk.* key), repeatable.")] = None,
    folds: Annotated[int, typer.Option(min=1, help="Walk-forward folds for --sweep.")] = 3,
    workers: Annotated[Optional[int], typer.Option(min=1, help="--sweep: processes (default: every core).")] = None,
    dask: Annotated[Optional[str], typer.Option(help="--sweep: run on this Dask scheduler (tcp://HOST:PORT; extra [dask]).")] = None,
) -> None:
    """Replay the keeper's signals, risk, strategies and planner over recorded blocks with no
    node (exact quotes on the recorded state; its own impact is not modelled) and write the
    simulation's report. With --sweep: walk-forward calibration of the given parameters."""
    from keeper.history.commands import backtest_command, sweep_command

    try:
        if sweep:
            text = sweep_command(history=history, config=config, strategy=strategy, from_block=from_block,
                                 to_block=to_block, sweep=sweep, folds=folds, workers=workers, dask=dask,
                                 json_output=json_output, console=err)
        else:
            text = backtest_command(history=history, config=config, strategy=strategy, from_block=from_block,
                                    to_block=to_block, json_output=json_output, out_dir=out_dir, dry_run=dry_run,
                                    console=err)
    except KeeperError as exc:
        raise _fail(exc) from exc
    out.print(text, highlight=False, soft_wrap=True, markup=False)


@app.command()
def status(
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    rpc_url: Annotated[Optional[str], typer.Option(help="Check the journal against this node (overrides chain.rpc_url).")] = None,
) -> None:
    """Positions and PnL (funding, convergence, fees, gas) from the journal, checked against the
    chain when a node is reachable."""
    import json

    from keeper.config import load_config
    from keeper.status import build_status

    try:
        settings = load_config(config, overrides={"chain": {"rpc_url": rpc_url}} if rpc_url else None)
        _configure_logging_from(settings)
        report = build_status(settings)
    except KeeperError as exc:
        raise _fail(exc) from exc
    if json_output:
        out.print_json(json.dumps(report.as_json()))
    else:
        out.print(report.as_text(), highlight=False)


def _configure_logging_from(settings: KeeperConfig) -> None:
    fmt = settings.monitoring.log_format
    configure_logging(settings.monitoring.log_level, json_lines=None if fmt == "auto" else fmt == "json")


def _fail(exc: KeeperError) -> typer.Exit:
    """One clear line on stderr; exit 2 for bad input or fatal set-up, 1 otherwise."""
    code = 2 if isinstance(exc, FatalError) else 1
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code)


class _StopRequested(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _StopRequested(signal.Signals(signum).name)


@app.command()
def devnet(
    port: Annotated[int, typer.Option(help="Port for anvil on 127.0.0.1 (0 picks a free one).")] = 8545,
    manifest: Annotated[Path, typer.Option(help="Where to write the JSON manifest (rpc_url, chain_id, every address).")] = DEFAULT_MANIFEST,
    dump_state: Annotated[Optional[Path], typer.Option(help="Save the freshly deployed chain here (and <file>.manifest.json beside it).")] = None,
    load_state: Annotated[Optional[Path], typer.Option(help="Start from a state saved with --dump-state instead of deploying (well under a second).")] = None,
    drive: Annotated[bool, typer.Option(help="Run the market-activity driver: index random walk, oracle updates, perp and spot trades.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the market-activity driver (same seed, same market path).")] = 7,
    step_interval: Annotated[float, typer.Option(help="Wall-clock seconds between driver steps.")] = 2.0,
    step_s: Annotated[int, typer.Option(help="Simulated chain seconds each driver step advances.")] = 60,
    steps: Annotated[int, typer.Option(help="Stop after this many driver steps (0 = until Ctrl-C).")] = 0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Start anvil on 127.0.0.1 with the real Perp v2 (Curie), Uniswap V2/V3, WETH9 and
    Chainlink-style aggregators deployed, write a manifest, and stay up until Ctrl-C."""
    from keeper.devnet.activity import ActivityConfig, MarketActivity
    from keeper.devnet.world import start_world

    configure_logging(log_level)
    log = get_logger("keeper.devnet")
    if dump_state and load_state:
        raise _fail(FatalError("--dump-state and --load-state are exclusive: pick one"))
    signal.signal(signal.SIGTERM, _raise_stop)
    world = None
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err, transient=True, disable=load_state is not None) as bar:
            task = bar.add_task("deploying", total=None)

            def progress(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)
                log.debug("devnet.deploy.step", step=label, done=done, total=total)

            world = start_world(port=port, load_state=load_state, dump_state_to=dump_state, progress=progress)
        world.manifest.write(manifest)
        how = "deployed" if world.deployed else f"loaded from {load_state}"
        log.info("devnet.ready", rpc_url=world.manifest.rpc_url, chain_id=world.manifest.chain_id,
                 how=how, ready_s=round(world.ready_s, 3), manifest=str(manifest))
        _print_world(world.manifest, manifest, how, world.ready_s)
        driver = None
        if drive and world.node.rpc is not None:
            driver = MarketActivity(world.node.rpc, world.manifest, ActivityConfig(seed=seed, step_s=step_s))
        done = 0
        while steps == 0 or done < steps:
            done += 1
            if driver is not None:
                report = driver.step()
                for tick in report.markets:
                    log.info("market.step", step=report.step, block=report.block_number, market=tick.name,
                             index_usd=round(tick.index_price_usd, 4), perp_usd=round(tick.perp_price_usd, 4),
                             spot_v3_usd=round(tick.spot_v3_price_usd, 4), spot_v2_usd=round(tick.spot_v2_price_usd, 4),
                             basis_bps=round((tick.perp_price_usd / tick.spot_v3_price_usd - 1) * 1e4, 2))
            time.sleep(step_interval)
    except (KeyboardInterrupt, _StopRequested):
        log.info("devnet.stopping")
    except KeeperError as exc:
        raise _fail(exc) from exc
    finally:
        if world is not None:
            world.stop()


@app.command()
def stress(
    config: ConfigOption = None,
    manifest: Annotated[Path, typer.Option(help="Manifest with every address (written by `keeper devnet`).")] = DEFAULT_MANIFEST,
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC endpoint (default: the manifest's).")] = None,
    account: Annotated[Optional[str], typer.Option(help="Perp account to stress (default: account.executor).")] = None,
    market: Annotated[Optional[str], typer.Option(help="Propose a position in this market (with --direction).")] = None,
    direction: Annotated[Optional[str], typer.Option(help="short_perp or long_perp, for --market.")] = None,
    notional_usd: Annotated[float, typer.Option(help="Proposed notional in USD (0: only the largest safe size).")] = 0.0,
    collateral_usd: Annotated[Optional[float], typer.Option(help="Stress a fresh account with this collateral instead.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Margin ratio, distance to liquidation and PnL of the open positions (or a proposed one)
    under a grid of shocks (index +-, vAMM to Perp's band edges, adverse funding), from the chain's
    current state; the same computation that caps sizing."""
    from keeper.stress_report import stress_command

    try:
        stress_command(config_path=config, manifest=manifest, rpc_url=rpc_url, account=account, market=market,
                       direction=direction, notional_usd=notional_usd, collateral_usd=collateral_usd,
                       json_output=json_output, console=out)
    except KeeperError as exc:
        raise _fail(exc) from exc


@app.command()
def scan(
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC endpoint; addresses still come from the manifest (e.g. a fork of the devnet).")] = None,
    manifest: Annotated[Path, typer.Option(help="Manifest with chain_id and every address (written by `keeper devnet`).")] = DEFAULT_MANIFEST,
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (a list of rows) instead of a table.")] = False,
    history_blocks: Annotated[int, typer.Option(min=0, help="Past blocks read for the basis z-score (0: no z-score).")] = 30,
) -> None:
    """One row per market, from contract state at the latest block: spot (Uniswap V3 and V2),
    Perp v2 mark and index, basis, funding, carry, basis z-score, and the size that moves each
    venue's price by 1% and 2%."""
    import json

    from keeper.chain.rpc import JsonRpc
    from keeper.collect import Sources
    from keeper.devnet.manifest import DevnetManifest
    from keeper.errors import TransientError
    from keeper.scan import scan as run_scan

    try:
        book = DevnetManifest.read(manifest)
        url = rpc_url or book.rpc_url
        rpc = JsonRpc(url, timeout_s=10.0)
        try:
            rows = run_scan(rpc, Sources.from_manifest(book), history_blocks)
        except TransientError as exc:
            raise FatalError(f"--rpc-url {url}: {exc}") from exc
    except KeeperError as exc:
        raise _fail(exc) from exc
    if json_output:
        out.print_json(json.dumps([r.as_json() for r in rows]))
        return
    _print_scan(rows)


SCAN_TABLE_MIN_WIDTH = 170


def _print_scan(rows: list) -> None:  # type: ignore[type-arg]
    """A table on a wide console; one block per market on a narrow one (pipes default to 80)."""
    from rich.table import Table

    block = rows[0].block_number if rows else "?"
    if out.width >= SCAN_TABLE_MIN_WIDTH:
        table = Table(title=f"markets at block {block}", title_justify="left")
        table.add_column("market", no_wrap=True, min_width=6)
        for column in rows[0].cells() if rows else ():
            table.add_column(column, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(r.market, *r.cells().values())
        out.print(table)
    else:
        out.print(f"markets at block {block}", highlight=False)
        for r in rows:
            out.print(f"[bold]{r.market}[/]")
            for key, value in r.cells().items():
                out.print(f"  {key:<30} {value}", highlight=False)
    for r in rows:
        for problem in r.unavailable:
            out.print(f"[yellow]{r.market} unavailable[/]: {problem}", highlight=False)


def _print_world(manifest_obj: DevnetManifest, manifest_path: Path, how: str, ready_s: float) -> None:
    out.print(f"devnet {manifest_obj.rpc_url} (chain {manifest_obj.chain_id}), {how} in {ready_s:.2f} s", highlight=False)
    for m in manifest_obj.markets:
        out.print(f"  {m.name:<4} Perp v2 base {m.base_token}  vAMM pool {m.perp_pool}", highlight=False)
        out.print(f"       spot {m.spot_token}  V2 pair {m.uniswap_v2_pair}  V3 pool {m.uniswap_v3_pool} "
                  f"(fee {m.uniswap_v3_fee_pips / 1e4:g}%)", highlight=False)
    out.print(f"  {len(manifest_obj.all_addresses())} contracts; keeper account {manifest_obj.accounts.keeper}", highlight=False)
    out.print(f"  manifest: {manifest_path}. Ctrl-C to stop.", highlight=False)


def _register_executor_commands() -> None:
    from keeper.executor_cli import app as executor_app

    app.add_typer(executor_app, name="executor")


_register_executor_commands()


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
