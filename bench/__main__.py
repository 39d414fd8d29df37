"""Run every benchmark, or the ones named: `python -m bench [devnet ...]`."""

from __future__ import annotations

import sys

from bench import devnet, snapshot, suite, tick

BENCHES = {"devnet": devnet.main, "snapshot": snapshot.main, "tick": tick.main, "suite": suite.main}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        BENCHES[name]()
    return 0


sys.exit(main(sys.argv[1:]))
