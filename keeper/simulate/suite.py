"""`keeper simulate --suite`: every scenario x seed against one fork origin, one table.

Each run is a full `keeper simulate` (keeper/simulate/command.py) in its own directory
(<out>/<scenario>/seed-<s>/: report.json, report.html, keeper.log), all forked from the same
origin block (the origin's head when the suite starts, or --fork-block). The suite then writes:

- suite.json: `runs`, one object per scenario x seed (see `run_row`), and `scenarios`, the medians
  across seeds per scenario;
- index.html: the table, each run linked to its report.

A run that fails (a scenario the fork cannot carry out, a node error) is recorded with its error
and the suite goes on; the command then exits 1. A --fork-block past the origin's head, or a fork
that cannot be started at all (a block the origin no longer keeps), stops the suite before or at
its first run: one line, exit 2 (every run forks the same block).
"""

from __future__ import annotations

import html
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keeper.config import KeeperConfig
from keeper.errors import ConfigError, KeeperError
from keeper.logs import redacted_url
from keeper.plan import RISK_STRATEGY
from keeper.simulate.fork import ForkStartError, check_fork_block, origin_head
from keeper.simulate.scenario import SCENARIO_DIR, load_scenario, scenario_path

RunFn = Callable[..., list[Path]]
COLUMNS = (("keeper", "keeper_usd"), ("threshold bot", "baseline_usd"), ("carry-only", "carry_only_usd"),
           ("optimum", "optimum_usd"), ("capture", "capture"), ("trades", "trades"),
           ("lowest margin", "lowest_margin_ratio"), ("exp-vs-real err", "expected_error_usd"))


# ------------------------------------------------------------------------------ inputs
def parse_seeds(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; ConfigError naming --seeds otherwise (a seed given twice too: its
    runs would weigh twice in every median)."""
    try:
        seeds = [int(part) for part in text.split(",")]  # an empty item ('1,,2', '') is an error, not skipped
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers like 1,2,3 (got {text!r})") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds: expected comma-separated integers >= 0 like 1,2,3 (got {text!r})")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"--seeds: each seed once (got {', '.join(map(str, twice))} more than once in {text!r})")
    return seeds


def resolve_scenarios(specs: Sequence[str]) -> list[Path]:
    """Each spec: a directory (its *.toml, sorted), a scenario file, or a name under scenarios/.
    Default (no spec): every scenario under scenarios/. Each file is validated now."""
    paths: list[Path] = []
    for spec in specs or [str(SCENARIO_DIR)]:
        given = Path(spec)
        if given.is_dir():
            found = sorted(given.glob("*.toml"))
            if not found:
                raise ConfigError(f"--scenarios {spec}: no *.toml scenario in this directory")
            paths += found
        else:
            paths.append(scenario_path(spec))
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    for path in unique:
        load_scenario(str(path))
    return unique


# ------------------------------------------------------------------------------ rows
def run_row(report: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's view of one report.json."""
    comparison = report.get("comparison", {})
    keeper = comparison.get("keeper_usd", 0.0)
    optimum = comparison.get("optimum_usd", comparison.get("hindsight_usd", 0.0))
    round_trips = report.get("keeper", {}).get("round_trips", [])
    errors = [abs(t["realised_net_usd"] - t["expected_net_usd"]) for t in round_trips
              if t.get("expected_net_usd") is not None and t.get("realised_net_usd") is not None]
    return {
        "keeper_usd": keeper,
        "baseline_usd": comparison.get("baseline_usd", 0.0),
        "carry_only_usd": comparison.get("carry_only_usd"),
        "optimum_usd": optimum,
        "capture": keeper / optimum if optimum and optimum > 0 else None,
        "trades": report.get("keeper", {}).get("included", 0),
        "lowest_margin_ratio": report.get("limits", {}).get("lowest_margin_ratio"),
        "optimum_dominates": bool(comparison.get("optimum_dominates", False)),
        "violations": comparison.get("violations", []),
        "expected_error_usd": statistics.median(errors) if errors else None,
        "round_trips": round_trips,
        "positions_closed": report.get("consistency", {}).get("positions_closed"),
        "split_equals_balance_change": report.get("consistency", {}).get("split_equals_balance_change"),
        "wall_s": report.get("run", {}).get("wall_s"),
    }


def _median(values: Sequence[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def expected_vs_realised(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Issue 10's accuracy figure over every round trip of the suite: the median of
    |realised - expected| / |expected| (trips with an expected figure), over all trips and by who
    closed them (the strategies' own exits, or the risk stage: the wind-down at each run's end and
    the margin ladder)."""
    def summary(trips: list[Mapping[str, Any]]) -> dict[str, Any]:
        errors = [abs(t["realised_net_usd"] - t["expected_net_usd"]) / abs(t["expected_net_usd"]) for t in trips]
        return {"round_trips": len(trips), "median_abs_rel_error": statistics.median(errors) if errors else None}

    trips = [t for r in runs for t in r.get("round_trips", [])
             if t.get("expected_net_usd") and t.get("realised_net_usd") is not None]
    risk = [t for t in trips if t.get("closed_by_strategy") == RISK_STRATEGY]
    own = [t for t in trips if t.get("closed_by_strategy") not in (None, RISK_STRATEGY)]
    return summary(trips) | {"closed_by_strategy": summary(own), "closed_by_risk": summary(risk)}


def describe_accuracy(accuracy: Mapping[str, Any]) -> str:
    def one(part: Mapping[str, Any]) -> str:
        error = part["median_abs_rel_error"]
        return f"{'-' if error is None else f'{error:.0%}'} over {part['round_trips']}"
    return (f"expected vs realised per round trip: median |realised - expected| / |expected| {one(accuracy)} "
            f"(closed by a strategy {one(accuracy['closed_by_strategy'])}; by the risk stage, the wind-down "
            f"included, {one(accuracy['closed_by_risk'])})")


def scenario_medians(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_scenario: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_scenario.setdefault(run["scenario"], []).append(run)
    out = []
    for name, rows in by_scenario.items():
        ok = [r for r in rows if "error" not in r]
        entry: dict[str, Any] = {"scenario": name, "seeds": [r["seed"] for r in rows], "failed": len(rows) - len(ok)}
        for _, key in COLUMNS:
            entry[key] = _median([r.get(key) for r in ok])
        entry["optimum_dominates"] = bool(ok) and all(r["optimum_dominates"] for r in ok)
        out.append(entry)
    return out


# ------------------------------------------------------------------------------ the suite
def run_suite(settings: KeeperConfig, *, fork_url: str, fork_block: int | None, scenarios: Sequence[str],
              seeds: Sequence[int], out_dir: Path, console: Console | None = None,
              steps: int | None = None, run: RunFn | None = None) -> dict[str, Any]:
    """Run every scenario x seed; write suite.json and index.html into out_dir; return the suite."""
    from keeper.simulate.command import run_simulation

    run = run or run_simulation
    started = time.monotonic()
    paths = resolve_scenarios(scenarios)
    chain_id, head = origin_head(fork_url)
    check_fork_block(fork_block, head)
    block = head if fork_block is None else fork_block
    console = console or Console(stderr=True)
    runs: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("suite", total=len(paths) * len(seeds))
        for path in paths:
            plan = load_scenario(str(path))
            for seed in seeds:
                bar.update(task, description=f"{plan.name} seed {seed}")
                run_dir = out_dir / plan.name / f"seed-{seed}"
                row: dict[str, Any] = {"scenario": plan.name, "scenario_file": str(path), "seed": seed,
                                       "steps": steps or plan.recommended_steps,
                                       "report": str(run_dir.relative_to(out_dir) / "report.html")}
                try:
                    written = run(settings, fork_url=fork_url, fork_block=block, blocks=steps or plan.recommended_steps,
                                  scenario=str(path), seed=seed, out_dir=run_dir, console=Console(quiet=True))
                    row |= run_row(json.loads(written[0].read_text()))
                except ForkStartError:
                    raise  # the next runs fork the same block: none of them would start either
                except KeeperError as exc:
                    row["error"] = str(exc)
                    row["optimum_dominates"] = False
                runs.append(row)
                bar.advance(task)
    suite = {"origin_url": redacted_url(fork_url), "origin_chain_id": chain_id, "fork_block": block, "seeds": list(seeds),
             "scenarios": scenario_medians(runs), "expected_vs_realised": expected_vs_realised(runs), "runs": runs,
             "wall_s": round(time.monotonic() - started, 1),
             "optimum_dominates_everywhere": bool(runs) and all(r["optimum_dominates"] for r in runs)}
    out_dir.mkdir(parents=True, exist_ok=True)  # here, not before the runs: a suite stopped at its first leaves nothing
    (out_dir / "suite.json").write_text(json.dumps(suite, indent=1, allow_nan=False) + "\n")
    (out_dir / "index.html").write_text(render_index(suite))
    return suite


# ------------------------------------------------------------------------------ output
def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "capture":
        return f"{value:.0%}"
    if key == "lowest_margin_ratio":
        return f"{value:.2f}"
    if key == "trades":
        return f"{value:g}"
    return f"{value:+,.0f}" if key != "expected_error_usd" else f"{value:,.0f}"


def suite_table(suite: Mapping[str, Any]) -> Table:
    table = Table(title=f"keeper simulate --suite: medians across seeds {','.join(map(str, suite['seeds']))} (USD)")
    table.add_column("scenario")
    for label, _ in COLUMNS:
        table.add_column(label, justify="right")
    table.add_column("optimum >= all")
    for entry in suite["scenarios"]:
        cells = [_cell(key, entry.get(key)) for _, key in COLUMNS]
        flag = "yes" if entry["optimum_dominates"] else "NO"
        table.add_row(entry["scenario"] + (f" ({entry['failed']} failed)" if entry["failed"] else ""), *cells, flag)
    return table


def describe_run(report: Mapping[str, Any]) -> str:
    """One run's result in a few lines: the keeper against its yardsticks, the accounting check,
    and where its log is."""
    c, run, limits = report["comparison"], report["run"], report["limits"]
    capture = "" if c.get("capture") is None else f" (capture {c['capture']:.1%})"
    lowest = limits.get("lowest_margin_ratio")
    yes = {True: "yes", False: "NO"}
    lines = [f"{report['scenario']['name']} seed {run['seed']}, {run['steps']} steps on a fork of block {run['fork_block']} "
             f"({run['wall_s']} s): keeper {c['keeper_usd']:+,.2f} USD in {len(report['keeper']['trades'])} trades; "
             f"threshold bot {c['baseline_usd']:+,.2f}, carry-only bot {c['carry_only_usd']:+,.2f}, "
             f"hindsight optimum {c['optimum_usd']:+,.2f}{capture}",
             f"optimum dominates: {yes[bool(c['optimum_dominates'])]}; PnL split = balance change: "
             f"{yes[bool(report['consistency'].get('split_equals_balance_change'))]}; lowest margin ratio "
             f"{'-' if lowest is None else f'{lowest:.4f}'}; liquidations {len(limits.get('liquidations', []))}",
             f"keeper log: {run['keeper_log']}"]
    not_run = [f"events[{i}] ({e['kind']}) " + (f"at step {e['at_step']}" if "at_step" in e else f"from step {e['from_step']}")
               for i, e in enumerate(report["scenario"].get("events", []))
               if e.get("at_step", e.get("from_step", 0)) > run["steps"]]
    if not_run:  # a clean result of a run in which the scenario did not happen is not a result
        lines.append(f"NOT RUN in {run['steps']} steps (raise --blocks): {', '.join(not_run)}")
    return "\n".join(lines + [f"DEFECT: {v}" for v in c.get("violations", [])])


def suite_violations(suite: Mapping[str, Any]) -> list[str]:
    """One line per run where the optimum did not dominate (or the run failed)."""
    lines = []
    for r in suite["runs"]:
        if "error" in r:
            lines.append(f"{r['scenario']} seed {r['seed']}: run failed: {r['error']}")
        for v in r.get("violations", []):
            lines.append(f"{r['scenario']} seed {r['seed']}: {v}")
    return lines


def render_index(suite: Mapping[str, Any]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(label)}</th>" for label, _ in COLUMNS)
    rows = []
    for r in suite["runs"]:
        cells = "".join(f"<td>{esc(_cell(key, r.get(key)))}</td>" for _, key in COLUMNS)
        status = esc(r["error"]) if "error" in r else ("yes" if r["optimum_dominates"] else "<b>NO</b>")
        rows.append(f"<tr><td class=l><a href=\"{esc(r['report'])}\">{esc(r['scenario'])}</a></td><td>{r['seed']}</td>"
                    f"{cells}<td>{status}</td></tr>")
    medians = []
    for entry in suite["scenarios"]:
        cells = "".join(f"<td>{esc(_cell(key, entry.get(key)))}</td>" for _, key in COLUMNS)
        medians.append(f"<tr><td class=l>{esc(entry['scenario'])}</td>{cells}"
                       f"<td>{'yes' if entry['optimum_dominates'] else '<b>NO</b>'}</td></tr>")
    css = ("body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1100px}table{border-collapse:collapse}"
           "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}.l{text-align:left}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>keeper simulate --suite</title>"
            f"<style>{css}</style></head><body><h1>Simulation suite</h1>"
            f"<p>Fork of <code>{esc(str(suite['origin_url']))}</code> (chain {suite['origin_chain_id']}) at block "
            f"{suite['fork_block']}; seeds {esc(','.join(map(str, suite['seeds'])))}; {suite['wall_s']} s.</p>"
            f"<h2>Medians across seeds</h2><table><tr><th class=l>scenario</th>{head}<th>optimum &ge; all</th></tr>"
            f"{''.join(medians)}</table><h2>Runs</h2><table><tr><th class=l>scenario (report)</th><th>seed</th>{head}"
            f"<th>optimum &ge; all</th></tr>{''.join(rows)}</table></body></html>\n")


# ------------------------------------------------------------------------------ the command
def simulate_main(settings: KeeperConfig, *, fork_url: str, fork_block: int | None, blocks: int | None,
                  scenario: str | None, seed: int, out_dir: Path, suite: bool, scenarios: Sequence[str], seeds: str,
                  out: Console, err: Console) -> int:
    """`keeper simulate`: one run (--scenario, --blocks) or the suite (--suite). Exit code."""
    if not suite:
        if scenarios:
            raise ConfigError("--scenarios: only with --suite (one run takes --scenario)")
        if scenario is None or blocks is None:
            raise ConfigError(f"{'--scenario' if scenario is None else '--blocks'}: required for one run "
                              "(or give --suite)")
        from keeper.simulate.command import run_simulation

        paths = run_simulation(settings, fork_url=fork_url, fork_block=fork_block, blocks=blocks,
                               scenario=scenario, seed=seed, out_dir=out_dir, console=err)
        report = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
        out.print(describe_run(report), highlight=False, markup=False)
        for path in paths:
            out.print(f"wrote {path}", highlight=False)
        return 0
    if scenario is not None:
        raise ConfigError("--scenario: one run only; the suite takes --scenarios FILE_OR_DIR (repeatable)")
    result = run_suite(settings, fork_url=fork_url, fork_block=fork_block, scenarios=scenarios,
                       seeds=parse_seeds(seeds), out_dir=out_dir, console=err, steps=blocks)
    Console(file=out.file, width=max(out.width, 160)).print(suite_table(result))
    out.print(describe_accuracy(result["expected_vs_realised"]), highlight=False)
    for line in suite_violations(result):
        out.print(f"DEFECT: {line}", highlight=False)
    out.print(f"wrote {out_dir / 'suite.json'} and {out_dir / 'index.html'} ({result['wall_s']} s)", highlight=False)
    return 0 if result["optimum_dominates_everywhere"] else 1
