"""The `keeper` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad input / fatal set-up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from keeper.cli_console import ConfigOption, check_options, err, finite, load_settings, out, run_app
from keeper.cli_console import configure_logging_from as _configure_logging_from
from keeper.cli_console import fail as _fail
from keeper.devnet.activity_config import ActivityConfig  # no chain code: its defaults for the help
from keeper.errors import ConfigError, FatalError, KeeperError, TransientError, UrlRefusedError

# The defaults of options whose unset value means something else too (each written here once, for
# both the option's help and the code).
DEVNET_SEED = 7  # the embedded devnet's market-activity driver; also one simulation run's seed
DRIVE_INTERVAL_S = 2.0
DEMO_SHOCK_EVERY_STEPS = 30  # the embedded devnet's scripted premium shock: a minute apart at a step per 2 s
SUITE_SEEDS = "1,2,3"
SWEEP_FOLDS = 3
BACKTEST_OUT = Path("backtest")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="On-chain basis and funding-carry keeper for Perpetual Protocol v2 against Uniswap spot.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"basis-keeper {version('basis-keeper')}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False,
) -> None:
    """Commands: run (the keeper), status (positions and PnL), scan (markets now), devnet (the
    local world), executor (the admin's deploy / migrate). Run `keeper COMMAND --help` for each."""


@app.command()
def run(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Hold no key: simulate every intended transaction with eth_call and log the would-be outcome; send nothing.")] = False,
    blocks: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many new blocks (default: run until Ctrl-C / SIGTERM).")] = None,
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC URL (overrides chain.rpc_url). Unset everywhere: start the embedded devnet with market activity.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help=f"Embedded devnet (no RPC set): seed of its market-activity driver (default {DEVNET_SEED}).")] = None,
    drive_interval: Annotated[Optional[float], typer.Option(min=0.1, callback=finite, help=f"Embedded devnet (no RPC set): wall-clock seconds between market-activity steps (default {DRIVE_INTERVAL_S:g}).")] = None,
    shock_every: Annotated[Optional[int], typer.Option(min=0, help=f"Embedded devnet (no RPC set): every this many market-activity steps one market's perp premium jumps to +-{ActivityConfig.shock_premium * 100:g}% (the markets in turn) and then decays, so you can watch the keeper trade it; 0: never (default {DEMO_SHOCK_EVERY_STEPS}).")] = None,
) -> None:
    """Run the keeper: every new block, read all markets from contracts, decide, and open, hold
    and unwind delta-neutral basis positions through the executor. The signing key comes from the
    environment variable named by account.key_env (default KEEPER_PRIVATE_KEY) or an encrypted
    keystore; never from the command line. With --dry-run no key is needed."""
    from keeper.addressbook import chain_url_source
    from keeper.chain.keys import KeyLoadError
    from keeper.live import start_live_view
    from keeper.logs import redact_urls
    from keeper.launch import build_runtime
    from keeper.runtime import run_loop
    from keeper.stop_signals import START_STOP_EXIT, StartStopped, StopSignals, log_start_stopped

    overrides: dict[str, dict[str, object]] = {"chain": {}}
    if rpc_url:
        overrides["chain"]["rpc_url"] = rpc_url
    if manifest:
        overrides["chain"]["manifest"] = manifest
    runtime = view = previous = None
    signals = StopSignals()
    try:
        check_options(urls={"--rpc-url": rpc_url})
        settings = load_settings(config, overrides=overrides)
        embedded_only = [o for o, v in (("--seed", seed), ("--drive-interval", drive_interval),
                                        ("--shock-every", shock_every)) if v is not None]
        if embedded_only and settings.chain.rpc_url is not None:  # only the embedded devnet has a driver
            raise ConfigError(f"{' and '.join(embedded_only)}: only for the embedded devnet; not with an RPC "
                              "(--rpc-url or chain.rpc_url)")
        if settings.chain.rpc_url is None and settings.chain.manifest is not None:  # else silently not read
            raise ConfigError(f"{'--manifest' if manifest else 'chain.manifest'}: needs an RPC (--rpc-url or "
                              "chain.rpc_url); with none, run starts its own embedded devnet")
        view = start_live_view(settings, out)  # on a terminal: the live panel, logs to a file
        previous = signals.install()  # logging is set up: a stop or SIGUSR1 at start is handled and told
        try:
            runtime = build_runtime(settings, dry_run=dry_run, activity=ActivityConfig(
                seed=DEVNET_SEED if seed is None else seed,
                shock_every_steps=DEMO_SHOCK_EVERY_STEPS if shock_every is None else shock_every))
        except (TransientError, UrlRefusedError) as exc:  # named by where the URL came from
            where = chain_url_source(rpc_url, settings) if settings.chain.rpc_url else "the embedded devnet"
            raise FatalError(f"{where}: {exc}") from exc
        run_loop(runtime, blocks=blocks, drive_interval_s=drive_interval or DRIVE_INTERVAL_S, view=view)
        fatal = runtime.engine.fatal or runtime.loop_fatal  # an orderly stop on a fatal error, in a tick or not
        if fatal is not None:
            err.print(f"[bold red]error:[/] {escape(redact_urls(str(fatal)))}", highlight=False)
            raise typer.Exit(1)
    except StartStopped as stopped:  # SIGINT/SIGTERM before the block loop ran: nothing sent after it
        signals.raise_on_stop = False  # a second Ctrl-C does not cut the cleanup short
        log_start_stopped(stopped.signal_name)
        raise typer.Exit(START_STOP_EXIT) from None
    except KeyLoadError as exc:  # the key's variable, keystore or password: named by its config key
        raise _fail(ConfigError(f"account.{exc.source}: {exc}")) from exc
    except KeeperError as exc:
        raise _fail(exc) from exc
    finally:
        signals.raise_on_stop = False
        if runtime is not None:
            runtime.close()
        if view is not None:
            view.stop()
        if previous is not None:
            signals.restore(previous)


@app.command()
def simulate(
    fork_url: Annotated[str, typer.Option(help="RPC of the chain to fork (e.g. an Optimism node, or a local devnet: http://127.0.0.1:8545).")],
    blocks: Annotated[Optional[int], typer.Option(min=1, help="Scenario steps to run (each step advances the chain and runs one keeper tick). Needed for one run; with --suite: default each scenario's recommended_steps.")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="One run: scenario name (see scenarios/) or a scenario file.")] = None,
    fork_block: Annotated[Optional[int], typer.Option(min=0, help="Fork at this block (default: the latest).")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help=f"One run: seed for the scenario's random path (default {DEVNET_SEED}).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write report.json and report.html (suite: suite.json, index.html and one directory per run).")] = Path("simulation"),
    suite: Annotated[bool, typer.Option("--suite", help="Run every scenario x seed against one fork origin and print a table with medians across seeds.")] = False,
    scenarios: Annotated[Optional[list[str]], typer.Option("--scenarios", help="Suite: a scenario file or a directory of them; repeatable (default: scenarios/).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help=f"Suite: comma-separated seeds (default {SUITE_SEEDS}).")] = None,
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
    from keeper.simulate.suite import simulate_main

    try:
        check_options(urls={"--fork-url": fork_url}, out_dirs={"--out": out_dir})
        _refuse_ignored_simulate_options(replay=replay, check=check, suite=suite, seed=seed, seeds=seeds,
                                         from_block=from_block, to_block=to_block, scenario=scenario,
                                         scenarios=scenarios, blocks=blocks, fork_block=fork_block)
        settings = load_settings(config)
        if replay or check:
            from keeper.history.commands import replay_command

            out.print(replay_command(settings, fork_url=fork_url, from_block=from_block, to_block=to_block, check=check,
                                     out_dir=out_dir, console=err), highlight=False, markup=False)
            return
        _configure_logging_from(settings)
        code = simulate_main(settings, fork_url=fork_url, fork_block=fork_block, blocks=blocks, scenario=scenario,
                             seed=DEVNET_SEED if seed is None else seed, out_dir=out_dir, suite=suite,
                             scenarios=scenarios or [], seeds=SUITE_SEEDS if seeds is None else seeds,
                             out=out, err=err)
    except KeeperError as exc:
        raise _fail(exc) from exc
    raise typer.Exit(code)


def _refuse_ignored_simulate_options(*, replay: bool, check: bool, suite: bool, seed: int | None, seeds: str | None,
                                     from_block: int | None, to_block: int | None, scenario: str | None,
                                     scenarios: list[str] | None, blocks: int | None, fork_block: int | None) -> None:
    """An option the chosen mode would ignore is an error naming both (ConfigError)."""
    if replay:  # the origin's own blocks, forked at --from-block: no scenario, no steps, no other fork block
        for option, value in (("--suite", suite), ("--scenario", scenario), ("--scenarios", scenarios),
                              ("--blocks", blocks), ("--fork-block", fork_block)):
            if value is not None and value is not False and value != []:  # --fork-block 0 included
                raise ConfigError(f"{option}: not with --replay (it replays the origin's blocks from --from-block)")
    if check and not replay:
        raise ConfigError("--check: needs --replay (it checks the replayed blocks)")
    for option, value in (("--from-block", from_block), ("--to-block", to_block)):
        if value is not None and not replay:
            raise ConfigError(f"{option}: only with --replay")
    if seeds is not None and not suite:
        raise ConfigError("--seeds: only with --suite (one run takes --seed)")
    if seed is not None and (suite or replay):
        raise ConfigError(f"--seed: one scenario run only, not with {'--suite (it takes --seeds)' if suite else '--replay'}")


@app.command()
def record(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of the chain to record (an archive node for old blocks).")],
    out_file: Annotated[Path, typer.Option("--out", help="History to write (a Parquet dataset directory); an existing one is resumed.")],
    from_block: Annotated[Optional[int], typer.Option(min=0, help="First block (default: 1,000 blocks before --to-block, or the first the node serves the state of plus 4; with --follow: the head).")] = None,
    to_block: Annotated[Optional[int], typer.Option(min=0, help="Last block (default: the head).")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep recording new blocks until Ctrl-C.")] = False,
    account: Annotated[Optional[str], typer.Option(help="Also record this executor's Perp account and wallet (default: account.executor).")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")] = None,
    config: ConfigOption = None,
) -> None:
    """Record, per block, the keeper's own snapshot reads (raw Multicall3 results pinned to the
    block's hash), the block header, base fee and L1-fee inputs, for `keeper backtest`. A reorg
    drops the orphaned blocks and records the node's chain (deeper than 64 blocks: refused)."""
    from keeper.history.commands import record_command

    try:
        check_options(urls={"--rpc-url": rpc_url}, addresses={"--account": account}, out_dirs={"--out": out_file})
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
    out_dir: Annotated[Optional[Path], typer.Option("--out", help=f"Where to write report.json and report.html (default {BACKTEST_OUT}; not with --sweep, which prints its result).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide as `keeper run --dry-run` would: the recorded account, virtual positions.")] = False,
    sweep: Annotated[Optional[list[str]], typer.Option(help="Calibrate: NAME=V1,V2,... (a strategies.params.* or risk.* key), repeatable.")] = None,
    folds: Annotated[Optional[int], typer.Option(min=1, help=f"--sweep: walk-forward folds (default {SWEEP_FOLDS}).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="--sweep: processes (default: every core).")] = None,
    dask: Annotated[Optional[str], typer.Option(help="--sweep: run on this Dask scheduler (tcp://HOST:PORT or HOST:PORT; extra [dask]).")] = None,
) -> None:
    """Replay the keeper's signals, risk, strategies and planner over recorded blocks with no
    node (exact quotes on the recorded state; its own impact is not modelled) and write the
    simulation's report. With --sweep: walk-forward calibration of the given parameters."""
    from keeper.history.commands import backtest_command, sweep_command

    try:
        sweep_only = [o for o, v in (("--folds", folds), ("--workers", workers), ("--dask", dask)) if v is not None]
        if sweep_only and not sweep:
            raise ConfigError(f"{', '.join(sweep_only)}: only with --sweep")
        if sweep and dry_run:
            raise ConfigError("--dry-run: not with --sweep (the sweep replays the strategies, not one run)")
        if sweep and out_dir is not None:
            raise ConfigError("--out: not with --sweep (the sweep writes no report: it prints its table and TOML fragment)")
        out_dir = out_dir or BACKTEST_OUT
        check_options(out_dirs={"--out": None if sweep else out_dir})  # --dask: Dask's own address forms, checked by the sweep
        if sweep:
            text = sweep_command(history=history, config=config, strategy=strategy, from_block=from_block,
                                 to_block=to_block, sweep=sweep, folds=folds or SWEEP_FOLDS, workers=workers, dask=dask,
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
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")] = None,
) -> None:
    """Positions and PnL (funding, convergence, fees, gas) from the journal, checked against the
    chain when a node is reachable (chain.rpc_url set, and account.executor or, unset, the executor
    the journal's live run recorded for that chain). Exit 1 when the journal and the chain disagree
    (a MISMATCH line per market, after the whole report)."""
    import json

    from keeper.status import build_status

    try:
        check_options(urls={"--rpc-url": rpc_url})
        chain = {k: v for k, v in (("rpc_url", rpc_url), ("manifest", manifest)) if v}
        settings = load_settings(config, overrides={"chain": chain} if chain else None)
        _configure_logging_from(settings)
        report = build_status(settings)
    except KeeperError as exc:
        raise _fail(exc) from exc
    if json_output:
        out.print_json(json.dumps(report.as_json()))
    else:
        out.print(report.as_text(), highlight=False, markup=False)
    if report.mismatches:  # printed whole first; a script or a cron job sees the disagreement in the code
        raise typer.Exit(1)


@app.command()
def stress(
    config: ConfigOption = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest; default: where `keeper devnet` writes it).")] = None,
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC endpoint (overrides chain.rpc_url; default on a devnet: the manifest's).")] = None,
    account: Annotated[Optional[str], typer.Option(help="Perp account to stress (default: account.executor).")] = None,
    market: Annotated[Optional[str], typer.Option(help="Propose a position in this market (with --direction).")] = None,
    direction: Annotated[Optional[str], typer.Option(help="short_perp or long_perp, for --market.")] = None,
    notional_usd: Annotated[float, typer.Option(callback=finite, help="Proposed notional in USD (0: only the largest safe size).")] = 0.0,
    collateral_usd: Annotated[Optional[float], typer.Option(callback=finite, help="Stress a fresh account with this collateral instead.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    index_rounds: Annotated[Optional[int], typer.Option(help="Oracle rounds read back, at most, for the index volatility (default 64, at most 1,024: the records the keeper's index history keeps; 0: the TWAP departure alone).")] = None,
) -> None:
    """Margin ratio, distance to liquidation and PnL of the open positions (or a proposed one)
    under a grid of shocks (index +-, vAMM to Perp's band edges, adverse funding), from the chain's
    current state; the same computation that caps sizing. For a proposal: its close on each spot
    venue and the chance of the stressed index move, from the oracle's recent rounds."""
    from keeper.stress_report import stress_command

    try:
        check_options(urls={"--rpc-url": rpc_url}, addresses={"--account": account})
        stress_command(config_path=config, manifest=manifest, rpc_url=rpc_url, account=account, market=market,
                       direction=direction, notional_usd=notional_usd, collateral_usd=collateral_usd,
                       json_output=json_output, console=out, index_rounds=index_rounds)
    except KeeperError as exc:
        raise _fail(exc) from exc


def _register_command_modules() -> None:
    """Commands whose handlers live in their own modules."""
    from keeper.devnet_cli import devnet
    from keeper.executor_cli import app as executor_app
    from keeper.scan_cli import scan

    app.command()(devnet)
    app.command()(scan)
    app.add_typer(executor_app, name="executor")


_register_command_modules()


def main() -> None:  # pragma: no cover - console entry point
    try:
        sys.exit(run_app(app))
    except KeyboardInterrupt:
        sys.exit(130)
