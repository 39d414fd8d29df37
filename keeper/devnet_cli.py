"""`keeper devnet`: start the local world (anvil with the real contracts), write its manifest,
optionally drive market activity, and stay up until Ctrl-C or SIGTERM. Registered in
keeper/cli.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from keeper.cli_console import check_options, err, fail, finite, out
from keeper.devnet.manifest import DEFAULT_MANIFEST, DevnetManifest
from keeper.errors import ConfigError, FatalError, KeeperError
from keeper.logs import configure_logging, get_logger


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _StopRequested(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def devnet(
    port: Annotated[int, typer.Option(min=0, max=65_535, help="Port for anvil on 127.0.0.1 (0 picks a free one).")] = 8545,
    manifest: Annotated[Path, typer.Option(show_default=False, help=f"Where to write the JSON manifest (rpc_url, chain_id, every address; default: {DEFAULT_MANIFEST.name} in {DEFAULT_MANIFEST.parent}).")] = DEFAULT_MANIFEST,
    dump_state: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Save the freshly deployed chain here (and its manifest beside it, as `FILE.manifest.json`).")] = None,
    load_state: Annotated[Optional[Path], typer.Option(help="Start from a state saved with --dump-state instead of deploying (well under a second).")] = None,
    drive: Annotated[bool, typer.Option(help="Run the market-activity driver: index random walk, oracle updates, perp and spot trades.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the market-activity driver (same seed, same market path).")] = 7,
    step_interval: Annotated[float, typer.Option(min=0.0, callback=finite, help="Wall-clock seconds between driver steps.")] = 2.0,
    step_s: Annotated[int, typer.Option(min=1, help="Simulated chain seconds each driver step advances.")] = 60,
    steps: Annotated[int, typer.Option(min=0, help="Stop after this many driver steps (0 = until Ctrl-C).")] = 0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Start anvil on 127.0.0.1 with the real Perp v2 (Curie), Uniswap V2/V3, WETH9 and
    Chainlink-style aggregators deployed, write a manifest, and stay up until Ctrl-C."""
    from keeper.devnet.activity import ActivityConfig, MarketActivity
    from keeper.devnet.world import start_world

    if log_level.upper() not in LOG_LEVELS:
        raise fail(ConfigError(f"--log-level: one of {', '.join(LOG_LEVELS)} (got {log_level!r})"))
    configure_logging(log_level.upper())
    log = get_logger("keeper.devnet")
    if dump_state and load_state:
        raise fail(FatalError("--dump-state and --load-state are exclusive: pick one"))
    if steps and not drive:
        raise fail(ConfigError("--steps: counts driver steps; it needs --drive"))
    try:
        check_options(out_files={"--manifest": manifest, "--dump-state": dump_state})
    except ConfigError as exc:
        raise fail(exc) from exc
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
        raise fail(exc) from exc
    finally:
        if world is not None:
            world.stop()


def _print_world(manifest_obj: DevnetManifest, manifest_path: Path, how: str, ready_s: float) -> None:
    out.print(f"devnet {manifest_obj.rpc_url} (chain {manifest_obj.chain_id}), {how} in {ready_s:.2f} s", highlight=False)
    for m in manifest_obj.markets:
        out.print(f"  {m.name:<4} Perp v2 base {m.base_token}  vAMM pool {m.perp_pool}", highlight=False)
        out.print(f"       spot {m.spot_token}  V2 pair {m.uniswap_v2_pair}  V3 pool {m.uniswap_v3_pool} "
                  f"(fee {m.uniswap_v3_fee_pips / 1e4:g}%)", highlight=False)
    out.print(f"  {len(manifest_obj.all_addresses())} contracts; keeper account {manifest_obj.accounts.keeper}", highlight=False)
    out.print(f"  manifest: {manifest_path}. Ctrl-C to stop.", highlight=False)
