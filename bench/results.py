"""Every figure a benchmark prints, by name, so that runs can be compared: `make bench` writes
them to build/bench.json ({"run_at": ..., "figures": {name: value}})."""

from __future__ import annotations

import json
import time
from pathlib import Path

FIGURES: dict[str, float | int] = {}
OUTPUT = Path("build/bench.json")


def record(name: str, value: float | int) -> float | int:
    """Remember a printed figure under `name` (units in the name: _ms, _s, _x, _per_s ...)."""
    FIGURES[name] = round(value, 4) if isinstance(value, float) else value
    return value


def write(benches: list[str], path: Path = OUTPUT) -> Path:
    """This run's figures (only), with which benchmarks ran."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "benches": benches, "figures": FIGURES}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
