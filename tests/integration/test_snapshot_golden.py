"""The collector makes the recorded snapshots (tests/data/golden-snapshots.json), block after block,
on the same seeded devnet run: every decoded field of every market, the account, the wallet and the
round trips, and the same phase-1 calls in the same order. What the run drives and when to
regenerate the file: tests/data/make_golden_snapshots.py."""

from __future__ import annotations

import json
from typing import Any

from tests.data.make_golden_snapshots import GOLDEN, drive

from .conftest import Devnet


def first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where two decoded snapshots first differ, as a path, with both values."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if key not in got or key not in want:
                return f"{path}/{key}: only in {'the run' if key in got else 'the golden file'}"
            found = first_difference(got[key], want[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return next((d for i, (g, w) in enumerate(zip(got, want)) if (d := first_difference(g, w, f"{path}[{i}]"))), None)
    return None if got == want else f"{path}: run {got!r} != golden {want!r}"


def test_the_collector_makes_the_golden_snapshots_block_after_block(devnet: Devnet) -> None:
    golden = json.loads(GOLDEN.read_text())["blocks"]
    run = drive(devnet.rpc, devnet.manifest)
    assert len(run) == len(golden)
    for block, (got, want) in enumerate(zip(run, golden)):
        assert got == want, f"block {block}: {first_difference(got, want)}"
    # what the run covers, so that a regenerated file still exercises it
    trips = [entry["snapshot"]["rpc_round_trips"] for entry in golden]
    assert trips[0] == 3 and 3 in trips[1:] and trips.count(2) >= 6  # windows learnt, re-read once, else 2
    assert golden[-1]["snapshot"]["markets"]["ETH"]["spot_v2"]["type"] == "Unavailable"
    assert golden[-1]["snapshot"]["markets"]["BTC"]["spot_v2"]["type"] == "V2PairState"
    assert golden[0]["snapshot"]["account"]["type"] == "PerpAccountState"
