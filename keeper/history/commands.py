"""The history commands' CLI logic (`keeper record`, `keeper backtest`); keeper/cli.py only
registers them."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from keeper.chain.rpc import JsonRpc
from keeper.cli_console import load_settings
from keeper.config import parse_address
from keeper.errors import ConfigError, KeeperError, TransientError
from keeper.logs import configure_logging

_QUIET = ("WARNING", "ERROR")


def _quiet_logging(level: str) -> None:
    """The engine's per-block INFO events would be one line per block of history: a backtest
    logs warnings and errors (or only errors, with monitoring.log_level = ERROR), on stderr."""
    configure_logging(level if level in _QUIET else "WARNING")


class _LazyBar:
    """A progress bar (stderr) that appears with the first progress report: an error found before
    any work stays the one line it should be."""

    def __init__(self, console: Console, description: str) -> None:
        self.console = console
        self.description = description
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, completed: int, total: int | None, description: str | None = None, rate: str = "") -> None:
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[rate]}"), console=self.console)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total, rate="")
        self._progress.update(self._task, completed=completed, total=total, rate=rate,
                              description=description or self.description)


def rate_text(blocks: int, elapsed_s: float) -> str:
    """The progress bar's rate since the start; none in the first half second (one block in no
    time read as a billion blocks a second, and stayed on screen while --follow waited)."""
    return f"{blocks / elapsed_s:,.0f} blocks/s" if elapsed_s >= 0.5 else ""


def record_command(*, config: Path | None, rpc_url: str, out: Path, from_block: int | None, to_block: int | None,
                   follow: bool, account: str | None, manifest: Path | None, console: Console) -> str:
    from keeper.history.record import record_history

    if follow and to_block is not None:
        raise ConfigError("--follow: give either --to-block or --follow, not both")
    overrides: dict[str, Any] = {"chain": {"rpc_url": rpc_url}}
    if manifest:
        overrides["chain"]["manifest"] = manifest
    settings = load_settings(config, overrides=overrides)
    _quiet_logging(settings.monitoring.log_level)
    rpc = JsonRpc(rpc_url, timeout_s=settings.chain.request_timeout_s)
    try:
        rpc.chain_id()
    except TransientError as exc:
        raise ConfigError(f"--rpc-url: {exc}") from exc
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    try:
        with _LazyBar(console, "recording") as bar:

            def progress(done: int, total: int, block: int) -> None:
                bar.update(done, total or None, f"block {block}", rate_text(done, time.monotonic() - started))

            written, seconds = record_history(settings, rpc, out, from_block=from_block, to_block=to_block,
                                              follow=follow, account=_checksummed(account, settings.account.executor),
                                              progress=progress, stop=stop.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
        rpc.close()
    rate = written / seconds if seconds > 0 else 0.0
    return f"recorded {written} blocks into {out} ({rate:,.0f} blocks/s)"


def _checksummed(option: str | None, configured: str | None) -> str | None:
    """The recorded account (--account, else account.executor) checksummed: a history stores it as
    text, and the same account in lower case is the same account when the recording resumes."""
    chosen = option or configured
    return None if chosen is None else parse_address(chosen, "--account" if option else "account.executor")


def backtest_command(*, history: Path, config: Path | None, strategy: str | None, from_block: int | None,
                     to_block: int | None, json_output: bool, out_dir: Path, dry_run: bool, console: Console) -> str:
    from keeper.history.backtest import run_backtest
    from keeper.history.report import build_report, summary, write_backtest_report
    from keeper.history.store import require_within

    settings = load_settings(config)  # a bad config is named first, as by every command
    require_within(history, from_block, to_block)
    _quiet_logging(settings.monitoring.log_level)
    with _LazyBar(console, "backtest") as bar:
        run = run_backtest(history, settings, strategy=strategy, from_block=from_block, to_block=to_block,
                           mode="dry_run" if dry_run else "backtest",
                           progress=lambda done, total: bar.update(done, total))
        if run.blocks == 0:
            raise ConfigError(f"--from-block / --to-block: {history} has no recorded block in that range")
        bar.update(run.blocks, run.blocks, rate=f"{run.blocks_per_s:,.0f} blocks/s")
    report = build_report(run, history)
    paths = write_backtest_report(report, out_dir)
    result = summary(report) | {"report": [str(p) for p in paths]}
    if json_output:
        return json.dumps(result)
    how = "with the snapshot worker" if run.processes == 2 else "in one process"
    return (f"{run.blocks} blocks ({run.first_block}-{run.last_block}) at {run.blocks_per_s:,.0f} blocks/s ({how}): keeper "
            f"${result['keeper_usd']:,.2f} in {result['trades']} trades, threshold bot ${result['baseline_usd']:,.2f}, "
            f"carry-only bot ${result['carry_only_usd']:,.2f}, hindsight optimum ${result['optimum_usd']:,.2f} "
            f"(dominates: {'yes' if result['optimum_dominates'] else 'NO'})\nwrote {paths[0]}\nwrote {paths[1]}")


def sweep_command(*, history: Path, config: Path | None, strategy: str | None, from_block: int | None,
                  to_block: int | None, sweep: list[str], folds: int, workers: int | None, dask: str | None,
                  json_output: bool, console: Console) -> str:
    from keeper.history.store import require_within
    from keeper.history.sweep import format_sweep, run_sweep

    settings = load_settings(config)  # a bad config is named first, as by every command
    require_within(history, from_block, to_block)
    _quiet_logging(settings.monitoring.log_level)
    with _LazyBar(console, "sweep: backtests") as bar:
        result = run_sweep(history, settings, sweep, folds, from_block=from_block, to_block=to_block,
                           workers=workers, dask_address=dask, strategy=strategy,
                           progress=lambda done, total: bar.update(done, total))
    return json.dumps(result) if json_output else format_sweep(result)


def replay_command(settings: Any, *, fork_url: str, from_block: int | None, to_block: int | None, check: bool,
                   out_dir: Path, console: Console) -> str:
    from keeper.history.forkreplay import run_replay
    from keeper.simulate.fork import find_origin_manifest

    if from_block is None or to_block is None:
        raise ConfigError(f"--{'from-block' if from_block is None else 'to-block'}: required with --replay")

    def sources_for(rpc: JsonRpc) -> Any:
        from keeper.addressbook import optimism_book, resolve_sources
        from keeper.collect import Sources

        if settings.chain.preset == "optimism" or rpc.chain_id() == 10:
            return resolve_sources(rpc, optimism_book())
        return Sources.from_manifest(find_origin_manifest(rpc, settings.chain.manifest))

    _quiet_logging(settings.monitoring.log_level)
    with _LazyBar(console, "replay" + (" --check" if check else "")) as bar:
        report = run_replay(settings, fork_url=fork_url, from_block=from_block, to_block=to_block, check=check,
                            out_dir=out_dir, sources_for=sources_for,
                            progress=lambda done, total: bar.update(done, total))
    lines = [f"replayed origin blocks {from_block + 1}-{to_block} ({len(report.blocks)} blocks, {report.replayed_txs} "
             f"transactions) on a fork at {from_block} in {report.wall_s:.1f} s"]
    if check:
        lines.append(f"blocks equal to the origin: {report.blocks_equal}/{len(report.blocks)}")
        lines += [f"  block {b.origin_block}: differs at {b.difference}" for b in report.blocks if not b.snapshot_equal][:20]
    else:
        keeper = report.keeper
        lines.append(f"keeper: {len(keeper.get('trades', []))} trades, PnL ${keeper.get('pnl_usd', 0.0):,.2f}, "
                     f"open after wind-down: {keeper.get('open_after')}")
        lines.append(f"keeper log: {out_dir / 'keeper.log'}")
    lines.append(f"origin transactions reverted on the fork: {len(report.reverted)}; logs changed: "
                 f"{len(report.logs_changed)}; not replayable: {len(report.unreplayable)}")
    lines += [f"  not replayable: block {u['block']} {u['hash']}: {u['reason']}" for u in report.unreplayable[:20]]
    lines.append(f"wrote {out_dir / 'replay.json'}")
    if check and report.blocks_equal != len(report.blocks):
        raise ReplayCheckFailed("replay --check: not every block reproduced the origin\n" + "\n".join(lines))
    return "\n".join(lines)


class ReplayCheckFailed(KeeperError):
    """--check found a replayed block that differs from the origin's (exit 1)."""
