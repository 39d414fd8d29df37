"""The golden snapshot run: the collector's snapshots, decoded field by field, for a driven devnet
run (tests/data/golden-snapshots.json), which tests/integration/test_snapshot_golden.py compares
the collector against block after block.

The run, on the prebuilt devnet state (keeper/devnet/world.py): seeded market activity
(keeper/devnet/activity.py, seed 11, block times pinned: a step is 60 s, a block 1 s), two quiet
blocks, a far spot swap
that moves a pool past its tickBitmap window (a third round trip), the swap back, and a venue
whose reads revert. Absolute times and block numbers are stored relative to the first snapshot
(the prebuilt state's clock is the wall clock when it was deployed); everything else is as read.
The run starts with an activity step, so that no time it stores was set during the deploy (whose
blocks follow the wall clock): the same file comes from any deploy of the same code.

Regenerate it only when the snapshots are meant to change: a new or changed MarketSnapshot field,
a collector that reads other calls, other devnet contracts or markets (keeper/devnet/deploy.py),
or other activity (keeper/devnet/activity.py). Never to make the golden test pass after a
refactor that should not change what is read. Then review the diff of the JSON:

    .venv/bin/python -m tests.data.make_golden_snapshots    # writes tests/data/golden-snapshots.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec
from keeper.types import MarketSnapshot

GOLDEN = Path(__file__).with_name("golden-snapshots.json")
SEED = 11
ACTIVITY_STEPS = 6
USDC = 10**6
# fields holding a chain time in seconds (stored relative to the first snapshot's block time)
TIME_FIELDS = ("block_timestamp", "updated_at_s", "band_last_updated_timestamp_s", "snapshot_timestamp_s")


def encode(value: Any, t0: int) -> Any:
    """A snapshot (or part) as plain JSON: dataclasses as objects named by `type`, mappings with
    their keys as strings in sorted order, times relative to `t0`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"type": type(value).__name__}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = item - t0 if f.name in TIME_FIELDS and isinstance(item, int) else encode(item, t0)
        return out
    if isinstance(value, Mapping):
        return {str(k): encode(v, t0) for k, v in sorted(value.items())}
    if isinstance(value, (tuple, list)):
        return [encode(v, t0) for v in value]
    return value


def block_entry(collector: SnapshotCollector, snapshot: MarketSnapshot, first: MarketSnapshot) -> dict[str, Any]:
    """One block of the golden run: the snapshot's fields and a digest of the phase-1 calldata
    (the same calls, in the same order)."""
    fields = encode(snapshot, first.block_timestamp)
    fields["block_number"] = snapshot.block_number - first.block_number
    return {"snapshot": fields, "phase1_calldata_sha256": hashlib.sha256(collector._phase1().calldata).hexdigest()}


def drive(rpc: JsonRpc, manifest: DevnetManifest) -> list[dict[str, Any]]:
    """Run the golden scenario on a devnet at the prebuilt state; one entry per snapshot."""
    activity = MarketActivity(rpc, manifest, ActivityConfig(seed=SEED))  # from now on, one block a second
    collector = SnapshotCollector(rpc, Sources.from_manifest(manifest), account=manifest.accounts.traders[0])
    collector.prepare()
    tx = DevSender(rpc)
    mover = manifest.accounts.traders[1]
    eth, btc = manifest.market("ETH"), manifest.market("BTC")
    router, usdc = manifest.contracts["SwapRouter"], manifest.contracts["USDC"]
    snapshots: list[MarketSnapshot] = []
    entries: list[dict[str, Any]] = []

    def snap() -> None:
        snapshot = collector.fetch_snapshot(rpc.block_number())
        snapshots.append(snapshot)
        entries.append(block_entry(collector, snapshot, snapshots[0]))

    def swap(token_in: str, token_out: str, fee: int, amount: int) -> None:
        tx.call_fn(mover, router, codec("SwapRouter"), "exactInputSingle",
                   (token_in, token_out, fee, mover, DEADLINE_NEVER, amount, 0, 0))

    for _ in range(ACTIVITY_STEPS):  # oracles, perp vAMMs and spot pools move, one block a step
        activity.step()
        snap()  # the first snapshot learns the windows
    for _ in range(2):  # quiet blocks
        rpc.call("evm_mine")
        snap()
    swap(usdc, eth.spot_token, eth.uniswap_v3_fee_pips, 15_000_000 * USDC)  # past the bitmap window
    snap()
    swap(usdc, btc.spot_token, btc.uniswap_v3_fee_pips, 5_000_000 * USDC)
    snap()
    rpc.call("anvil_setCode", [eth.uniswap_v2_pair, "0xfe"])  # a venue whose reads revert
    rpc.call("evm_mine")
    snap()
    return entries


def main() -> None:
    from keeper.devnet.world import prebuilt_state, start_world

    world = start_world(load_state=prebuilt_state())
    try:
        assert world.node.rpc is not None
        entries = drive(world.node.rpc, world.manifest)
    finally:
        world.stop()
    GOLDEN.write_text(json.dumps({"seed": SEED, "blocks": entries}, indent=None, separators=(",", ":"),
                                 sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes, {len(entries)} blocks)")


if __name__ == "__main__":
    main()
