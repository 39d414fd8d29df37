"""`keeper backtest --sweep`: walk-forward calibration of strategy and risk parameters.

The recorded range is cut into K + 1 consecutive windows of equal length. Every parameter set
(the grid of the --sweep values) is backtested on every window; fold i fits on window i - 1 (the
set with the highest in-sample PnL) and scores that choice on window i, which it has not seen
(out of sample). The set recommended is the one that fits best on the most recent window; it is
printed as a TOML fragment to paste into the config.

Every (set, window) backtest is independent: they run on every core of the machine
(concurrent.futures processes), or on an existing Dask cluster given its address.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keeper.config import KeeperConfig, RiskConfig, with_overrides
from keeper.errors import ConfigError
from keeper.history.store import read_meta, recorded_range, require_contiguous
from strategies import STRATEGIES, load_strategy

ParamSet = tuple[tuple[str, Any], ...]  # ((name, value), ...) in --sweep order


@dataclass(frozen=True)
class Job:
    history: str
    settings: dict[str, Any]  # KeeperConfig.model_dump(), picklable
    params: ParamSet
    window: int
    from_block: int
    to_block: int


@dataclass(frozen=True)
class JobResult:
    params: ParamSet
    window: int
    pnl_usd: float
    trades: int
    blocks: int


def parse_sweep(specs: Sequence[str], settings: KeeperConfig) -> list[tuple[str, list[Any]]]:
    """NAME=V1,V2,... -> [(name, [values])]. NAME is strategies.params.STRATEGY.PARAM (or
    STRATEGY.PARAM) of a strategy that runs, or risk.KEY; anything else is refused, naming it."""
    axes = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--sweep {spec!r}: expected NAME=V1,V2,...")
        parts = name.split(".")
        if parts[0] in STRATEGIES and len(parts) == 2:
            parts = ["strategies", "params", *parts]
        allowed = ((parts[:2] == ["strategies", "params"] and len(parts) == 4 and parts[2] in STRATEGIES)
                   or (parts[0] == "risk" and len(parts) == 2 and parts[1] in RiskConfig.model_fields))
        if not allowed:
            raise ConfigError(f"--sweep {name}: not a strategy or risk setting (use strategies.params.STRATEGY.PARAM "
                              f"or risk.KEY; strategies: {', '.join(sorted(STRATEGIES))})")
        enabled = settings.strategies.enabled
        if parts[0] == "strategies" and parts[2] not in enabled:  # every set would backtest the same
            raise ConfigError(f"--sweep {'.'.join(parts)}: {parts[2]} does not run (strategies.enabled: "
                              f"{', '.join(enabled)}; or --strategy): the parameter would change nothing")
        if any(not v.strip() for v in values.split(",")):  # '1,,2': a value left out, not skipped
            raise ConfigError(f"--sweep {spec!r}: expected NAME=V1,V2,... (an empty value)")
        parsed = [_number(v.strip()) for v in values.split(",")]
        canonical = ".".join(parts)
        given = next((spec for spec, (axis, _) in zip(specs, axes) if axis == canonical), None)
        if given is not None:  # the same parameter under two spellings: one would be dropped
            raise ConfigError(f"--sweep {name}: the same parameter as --sweep {given.partition('=')[0].strip()} "
                              f"({canonical}); give it once")
        twice = sorted({str(v) for v in parsed if parsed.count(v) > 1})
        if twice:  # 2 and 2.0 too: the same parameter set, run twice
            raise ConfigError(f"--sweep {canonical}: value(s) {', '.join(twice)} given more than once")
        for value in parsed:  # every value must be accepted by the config and the strategy
            apply_params(settings, ((canonical, value),), where=f"--sweep {canonical}={value}")
        axes.append((canonical, parsed))
    return axes


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def apply_params(settings: KeeperConfig, params: ParamSet, where: str = "--sweep") -> KeeperConfig:
    overrides: dict[str, Any] = {}
    for name, value in params:
        node = overrides
        *path, leaf = name.split(".")
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    merged = with_overrides(settings, overrides, where=where)
    for strategy, params_of in merged.strategies.params.items():
        try:
            load_strategy(strategy, params_of)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return merged


def toml_fragment(params: ParamSet) -> str:
    sections: dict[str, list[str]] = {}
    for name, value in params:
        *path, leaf = name.split(".")
        text = ("true" if value else "false") if isinstance(value, bool) else (
            f'"{value}"' if isinstance(value, str) else repr(value))
        sections.setdefault(".".join(path), []).append(f"{leaf} = {text}")
    return "\n".join(f"[{section}]\n" + "\n".join(lines) for section, lines in sections.items())


def run_job(job: Job) -> JobResult:
    """One backtest (a worker process, or a Dask worker): total PnL of a parameter set on a window."""
    from keeper.history.backtest import run_backtest
    from keeper.logs import configure_logging
    from keeper.pairs_journal import PairJournal, pairs_pnl

    configure_logging("ERROR")
    settings = apply_params(KeeperConfig.model_validate(job.settings), job.params)
    run = run_backtest(Path(job.history), settings, from_block=job.from_block, to_block=job.to_block,
                       pipeline=False)  # the jobs already use every core: no second process each
    assert run.journal is not None
    pairs = PairJournal(run.journal)  # pair trades (pairs_spread enabled): their PnL and transactions count too
    pnl = (run.journal.pnl_summary().total.total_x18 + pairs_pnl(run.journal).total_x18) / 10**18
    trades = sum(1 for o in run.outcomes if o.status == "included") + sum(1 for t in pairs.trades()
                                                                          if t["status"] == "included")
    run.journal.close()
    return JobResult(job.params, job.window, pnl, trades, run.blocks)


def windows(first: int, last: int, folds: int) -> list[tuple[int, int]]:
    count = folds + 1
    size = (last - first + 1) // count
    if size < 2:
        raise ConfigError(f"--folds {folds}: {last - first + 1} blocks cannot make {count} windows of 2 or more blocks")
    return [(first + i * size, first + (i + 1) * size - 1 if i < count - 1 else last) for i in range(count)]


def run_sweep(history: Path, settings: KeeperConfig, specs: Sequence[str], folds: int, *,
              from_block: int | None = None, to_block: int | None = None, workers: int | None = None,
              dask_address: str | None = None, strategy: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"--strategy {strategy}: unknown (known: {', '.join(sorted(STRATEGIES))})")
        settings = with_overrides(settings, {"strategies": {"enabled": [strategy]}}, where="--strategy")
    axes = parse_sweep(specs, settings)
    read_meta(history)
    grid: list[ParamSet] = [tuple(zip([n for n, _ in axes], combo)) for combo in itertools.product(*(v for _, v in axes))]
    first, last = recorded_range(history)
    first = max(first, from_block) if from_block is not None else first
    last = min(last, to_block) if to_block is not None else last
    require_contiguous(history, first, last)  # no window across a hole in the recording
    spans = windows(first, last, folds)
    jobs = [Job(str(history), settings.model_dump(mode="json"), params, w, a, b)
            for params in grid for w, (a, b) in enumerate(spans)]
    results = _execute(jobs, workers, dask_address, progress)
    score = {(r.params, r.window): r for r in results}
    fold_rows = []
    for i in range(1, len(spans)):
        chosen = max(grid, key=lambda p: score[(p, i - 1)].pnl_usd)
        fold_rows.append({"fold": i, "fit_blocks": list(spans[i - 1]), "test_blocks": list(spans[i]),
                          "chosen": dict(chosen), "in_sample_usd": score[(chosen, i - 1)].pnl_usd,
                          "out_of_sample_usd": score[(chosen, i)].pnl_usd})
    sets = [{"params": dict(p),
             "in_sample_usd": sum(score[(p, i - 1)].pnl_usd for i in range(1, len(spans))),
             "out_of_sample_usd": sum(score[(p, i)].pnl_usd for i in range(1, len(spans))),
             "trades_out_of_sample": sum(score[(p, i)].trades for i in range(1, len(spans))),
             "by_window_usd": [score[(p, w)].pnl_usd for w in range(len(spans))]} for p in grid]
    recommended = max(grid, key=lambda p: score[(p, len(spans) - 1)].pnl_usd)
    return {"history": str(history), "blocks": [first, last], "folds": folds, "windows": [list(s) for s in spans],
            "parameter_sets": sets, "walk_forward": fold_rows,
            "walk_forward_out_of_sample_usd": sum(r["out_of_sample_usd"] for r in fold_rows),
            "chosen": dict(recommended), "toml": toml_fragment(recommended),
            "jobs": len(jobs), "executor": f"dask {dask_address}" if dask_address else f"{_workers(workers)} processes"}


def _workers(workers: int | None) -> int:
    return workers or os.cpu_count() or 1


def _check_scheduler(address: str) -> None:
    """The --dask address parsed and its scheduler's port answering before a Client is made: a
    Client whose start fails is left to the garbage collector, whose closing of it can deadlock the
    next Client's start in the same process (seen in the unit tests)."""
    import socket

    from distributed.comm import get_address_host_port, parse_address

    try:
        scheme, _ = parse_address(address)
        host, port = get_address_host_port(address)
    except ValueError as exc:  # no port, an unknown protocol
        raise ConfigError(f"--dask {address}: not a scheduler address, e.g. tcp://HOST:PORT ({exc})") from exc
    if scheme in ("tls", "wss"):
        raise ConfigError(f"--dask {address}: not a scheduler address the sweep can use: {scheme}:// needs a security "
                          "context it does not pass; e.g. tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise ConfigError(f"--dask {address}: no scheduler answers there ({exc})") from exc


def _execute(jobs: list[Job], workers: int | None, dask_address: str | None,
             progress: Callable[[int, int], None] | None) -> list[JobResult]:
    results: list[JobResult] = []
    if dask_address:
        try:
            from distributed import Client, as_completed
        except ImportError as exc:
            raise ConfigError("--dask: needs the optional extra: pip install 'basis-keeper[dask]'") from exc
        _check_scheduler(dask_address)
        try:
            client = Client(dask_address, timeout="10s")
        except OSError as exc:
            raise ConfigError(f"--dask {dask_address}: no scheduler answers there ({exc})") from exc
        except (ValueError, TypeError) as exc:  # Dask's parse: no port, an unknown protocol; tls:// with no context
            raise ConfigError(f"--dask {dask_address}: not a scheduler address, e.g. tcp://HOST:PORT ({exc})") from exc
        with client:
            for future in as_completed(client.map(run_job, jobs, pure=False)):
                results.append(future.result())
                if progress:
                    progress(len(results), len(jobs))
        return results
    with ProcessPoolExecutor(max_workers=min(_workers(workers), len(jobs))) as pool:
        for result in pool.map(run_job, jobs):
            results.append(result)
            if progress:
                progress(len(results), len(jobs))
    return results


def format_sweep(result: Mapping[str, Any]) -> str:
    lines = [f"walk-forward over blocks {result['blocks'][0]}-{result['blocks'][1]}: {result['folds']} folds, "
             f"{len(result['parameter_sets'])} parameter sets, {result['jobs']} backtests on {result['executor']}",
             ""]
    labels = [", ".join(f"{k}={v}" for k, v in s["params"].items()) for s in result["parameter_sets"]]
    width = max([len("parameter set"), *map(len, labels)])  # the columns line up however long the names
    lines.append(f"{'parameter set':<{width}} {'in-sample USD':>14} {'out-of-sample USD':>18}")
    for label, s in zip(labels, result["parameter_sets"]):
        lines.append(f"{label:<{width}} {s['in_sample_usd']:>14,.2f} {s['out_of_sample_usd']:>18,.2f}")
    lines.append("")
    for row in result["walk_forward"]:
        label = ", ".join(f"{k}={v}" for k, v in row["chosen"].items())
        lines.append(f"fold {row['fold']}: fit {row['fit_blocks']} -> {label}: in-sample {row['in_sample_usd']:,.2f}, "
                     f"out-of-sample {row['out_of_sample_usd']:,.2f} on {row['test_blocks']}")
    lines += [f"walk-forward out-of-sample total: {result['walk_forward_out_of_sample_usd']:,.2f} USD", "",
              "chosen (best fit on the most recent window); paste into your config:", "", result["toml"]]
    return "\n".join(lines)
