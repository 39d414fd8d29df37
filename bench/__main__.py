"""Run every benchmark, or the ones named: `python -m bench [devnet ...]`. Every printed figure is
also written, by name, to build/bench.json."""

from __future__ import annotations

import sys

from bench import devnet, e2e, history, results, snapshot, snapshot_race, soak, storage_race, suite, tick, transport

BENCHES = {"devnet": devnet.main, "snapshot": snapshot.main, "snapshot_race": snapshot_race.main,
           "storage_race": storage_race.main,
           "tick": tick.main, "transport": transport.main,
           "e2e": e2e.main, "suite": suite.main, "history": history.main, "soak": soak.main}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        BENCHES[name]()
    print(f"figures written to {results.write(names)}")
    return 0


sys.exit(main(sys.argv[1:]))
