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

from keeper.devnet.manifest import DevnetManifest
from keeper.errors import FatalError, KeeperError
from keeper.logs import configure_logging, get_logger

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="On-chain basis and funding-carry keeper for Perpetual Protocol v2 against Uniswap spot.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
DEFAULT_MANIFEST = Path(".keeper/devnet/manifest.json")


@app.callback()
def _root() -> None:
    """Commands: devnet (the local world), scan (markets now). Run `keeper COMMAND --help` for each."""


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


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


SCAN_TABLE_MIN_WIDTH = 170


def _scan_cells(r) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "spot V3": _fmt(r.spot_v3_usd, ",.4f"),
        "spot V2": _fmt(r.spot_v2_usd, ",.4f"),
        "perp mark": _fmt(r.perp_mark_usd, ",.4f"),
        "index": _fmt(r.index_usd, ",.4f") + ("" if r.oracle_age_s is None else f" ({r.oracle_age_s}s)"),
        "basis bps V3/V2": f"{_fmt(r.basis_bps_v3, '+.2f')} / {_fmt(r.basis_bps_v2, '+.2f')}",
        "funding APR": _fmt(r.funding_apr, "+.2%"),
        "carry APR short/long perp": f"{_fmt(r.carry_apr_short_perp, '+.2%')} / {_fmt(r.carry_apr_long_perp, '+.2%')}",
        "basis z (V3)": f"{_fmt(r.basis_zscore_v3, '+.2f')} ({r.zscore_history_blocks} blocks)",
        "V3 $ +1%/+2%": f"{_fmt(r.v3_depth_1pct_usd, ',.0f')} / {_fmt(r.v3_depth_2pct_usd, ',.0f')}",
        "V2 $ +1%/+2%": f"{_fmt(r.v2_depth_1pct_usd, ',.0f')} / {_fmt(r.v2_depth_2pct_usd, ',.0f')}",
        "perp $ +1%/+2%": f"{_fmt(r.perp_depth_1pct_usd, ',.0f')} / {_fmt(r.perp_depth_2pct_usd, ',.0f')}",
    }


def _print_scan(rows: list) -> None:  # type: ignore[type-arg]
    """A table on a wide console; one block per market on a narrow one (pipes default to 80)."""
    from rich.table import Table

    block = rows[0].block_number if rows else "?"
    if out.width >= SCAN_TABLE_MIN_WIDTH:
        table = Table(title=f"markets at block {block}", title_justify="left")
        table.add_column("market", no_wrap=True, min_width=6)
        for column in _scan_cells(rows[0]) if rows else ():
            table.add_column(column, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(r.market, *_scan_cells(r).values())
        out.print(table)
    else:
        out.print(f"markets at block {block}", highlight=False)
        for r in rows:
            out.print(f"[bold]{r.market}[/]")
            for key, value in _scan_cells(r).items():
                out.print(f"  {key:<26} {value}", highlight=False)
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


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
