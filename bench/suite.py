"""A short simulation suite: three scenarios x two seeds on a fork of the prebuilt devnet, with the
table `keeper simulate --suite` prints (medians across seeds). Reports: build/bench-suite/index.html."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console

from keeper.artifacts import PROJECT_ROOT
from keeper.config import load_config
from keeper.devnet.world import prebuilt_state, start_world
from bench import results
from keeper.simulate.suite import COLUMNS, run_suite, suite_table, suite_violations

SCENARIOS = ("mispricing", "alternating_premium", "funding_spike")
SEEDS = (1, 2)
OUT = PROJECT_ROOT / "build" / "bench-suite"


def main() -> None:
    world = start_world(load_state=prebuilt_state())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "origin-manifest.json"
            world.manifest.write(manifest)
            settings = load_config(None, environ={}, overrides={"chain": {"manifest": manifest}})
            started = time.monotonic()
            suite = run_suite(settings, fork_url=world.node.rpc_url, fork_block=None,
                              scenarios=[str(PROJECT_ROOT / "scenarios" / f"{name}.toml") for name in SCENARIOS],
                              seeds=SEEDS, out_dir=OUT, console=Console(quiet=True))
            wall_s = time.monotonic() - started
    finally:
        world.stop()
    print(f"== simulation suite: {len(SCENARIOS)} scenarios x {len(SEEDS)} seeds on a devnet fork ==")
    Console(width=160).print(suite_table(suite))
    for line in suite_violations(suite):
        print(f"DEFECT: {line}")
    for entry in suite["scenarios"]:  # the table's figures, by name, for build/bench.json
        for _, key in COLUMNS:
            if isinstance(entry.get(key), (int, float)) and not isinstance(entry.get(key), bool):
                results.record(f"suite_{entry['scenario']}_{key}", entry[key])
    results.record("suite_runs", len(suite["runs"]))
    results.record("suite_wall_s", wall_s)
    print(f"{len(suite['runs'])} runs in {wall_s:.0f} s; optimum dominates everywhere: "
          f"{suite['optimum_dominates_everywhere']}; reports: {OUT / 'index.html'}")
