"""Snapshot block race: how often a snapshot's batches are answered from another block than the one
the loop asked for, on an anvil that mines while the keeper reads (back to back, every 100 ms, every
1 s); one snapshot per new head (as the block loop) and back to back. Each batch is probed: the
bench appends Multicall3.getBlockNumber() to its calldata and reads which block answered it. Then
the cost of a snapshot (median ms), quiet and under mining. Each figure for the collector as
replay/history build it (plain: the live loop before the check) and as runtime.py builds it (checked)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from structlog.testing import capture_logs

from bench.results import record
from keeper.chain.multicall import WORD, Call, Multicall, encode_aggregate3, word_uint
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.world import World, prebuilt_state, start_world

MINING = {"continuous": 0.0, "100ms": 0.1, "1s": 1.0}  # pause between evm_mine calls
CELL_S = {"continuous": 15.0, "100ms": 15.0, "1s": 40.0}  # each (mining, pattern) cell runs this long ...
CELL_SNAPSHOTS = 300  # ... or this many snapshots
COST_SNAPSHOTS = 100
_GET_BLOCK_NUMBER = bytes.fromhex("42cbb15c")


def with_block_number(calldata: bytes, multicall3: str) -> bytes:
    """aggregate3 calldata with Multicall3.getBlockNumber() appended as its last call."""
    count = word_uint(calldata[4 + WORD : 4 + 2 * WORD])
    heads_at = 4 + 2 * WORD
    tails = calldata[heads_at + count * WORD :]
    heads = [word_uint(calldata[heads_at + i * WORD : heads_at + (i + 1) * WORD]) + WORD for i in range(count)]
    extra = encode_aggregate3([Call(multicall3, _GET_BLOCK_NUMBER, "getBlockNumber")])
    element = extra[4 + 3 * WORD :]  # the one element after its head word
    heads.append((count + 1) * WORD + len(tails))
    return b"".join((calldata[:4], WORD.to_bytes(WORD, "big"), (count + 1).to_bytes(WORD, "big"),
                     *(h.to_bytes(WORD, "big") for h in heads), tails, element))


@dataclass
class Probe:
    """Wraps a collector's Multicall: every batch carries getBlockNumber, each answer's block is
    recorded with the block it was asked for (the batch's own answer is returned unchanged)."""

    multicall: Multicall
    batches: list[tuple[bytes | None, int | str, int | None]] = field(default_factory=list)

    def install(self) -> None:
        mc, run, run_with = self.multicall, self.multicall.run, self.multicall.run_with_requests
        address = mc.address

        def probed_run(calldata: bytes, block: int | str = "latest") -> Any:
            results = run(with_block_number(calldata, address), block)
            self.batches.append((calldata, block, word_uint(results[-1].return_data)))
            return results[:-1]

        def probed_run_with(calldata: bytes | None, block: int, requests: list[tuple[str, list[Any]]]) -> Any:
            if calldata is None:
                return run_with(calldata, block, requests)
            results, extra = run_with(with_block_number(calldata, address), block, requests)
            self.batches.append((calldata, block, word_uint(results[-1].return_data)))
            return results[:-1], extra

        mc.run = probed_run  # type: ignore[method-assign]
        mc.run_with_requests = probed_run_with  # type: ignore[method-assign]


@dataclass
class Tally:
    snapshots: int = 0
    first_wrong: int = 0  # the first batch answered from another block than the head asked for
    first_later: int = 0  # ... from a later block
    later_batches: int = 0
    later_other: int = 0  # a later batch taken from another block than the first one taken batch
    mixed: int = 0  # a delivered snapshot holds a batch from another block than its head
    rereads: int = 0  # batches read again (the same calldata and block, right after)
    skipped: int = 0  # snapshots refused (the collector raised)

    def add(self, head: int, batches: list[tuple[bytes | None, int | str, int | None]], delivered: bool) -> None:
        self.snapshots += 1
        used: list[tuple[int | str, int | None]] = []
        for i, (calldata, block, got) in enumerate(batches):
            again = i + 1 < len(batches) and batches[i + 1][:2] == (calldata, block)
            self.rereads += again
            if not again:
                used.append((block, got))
        if not batches:
            return
        first = batches[0][2]
        self.first_wrong += first != head
        self.first_later += first is not None and first > head
        for _, got in used[1:]:
            self.later_batches += 1
            self.later_other += got != used[0][1]
        if delivered:
            self.mixed += any(got != head for _, got in used)
        else:
            self.skipped += 1

    def pct(self, part: int, whole: int | None = None) -> float:
        whole = self.snapshots if whole is None else whole
        return 100.0 * part / whole if whole else 0.0


class Miner:
    """A thread mining blocks on its own connection: evm_mine, then `pause_s` (0: back to back)."""

    def __init__(self, url: str, pause_s: float) -> None:
        self.rpc, self.pause_s = JsonRpc(url), pause_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rpc.call("evm_mine", [])
            if self.pause_s:
                self.stop.wait(self.pause_s)

    def __enter__(self) -> Miner:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.rpc.close()


def next_head(rpc: JsonRpc, after: int, deadline: float) -> int | None:
    """The first head above `after` (polled every 2 ms), None past `deadline`."""
    while time.monotonic() < deadline:
        head = rpc.block_number()
        if head > after:
            return head
        time.sleep(0.002)
    return None


def snapshots_taken(collector: SnapshotCollector, per_head: bool, seconds: float, before: Callable[[], None],
                    limit: int = CELL_SNAPSHOTS) -> Iterator[tuple[int, bool]]:
    """Snapshots for `seconds` (or `limit` of them): at each new head, or back to back; `before()`
    ahead of each. Yields each snapshot's head and whether it was delivered (not refused)."""
    rpc, taken = collector.rpc, 0
    deadline = time.monotonic() + seconds
    head = rpc.block_number()
    while taken < limit and time.monotonic() < deadline:
        found = next_head(rpc, head, deadline) if per_head else rpc.block_number()
        if found is None:
            break
        head = found
        before()
        try:
            collector.fetch_snapshot(head)
            delivered = True
        except Exception:  # noqa: BLE001 - a refused snapshot is what is counted
            delivered = False
        taken += 1
        yield head, delivered


def run_cell(collector: SnapshotCollector, probe: Probe, per_head: bool, seconds: float) -> Tally:
    """Snapshots for `seconds` (or CELL_SNAPSHOTS): at each new head, or back to back."""
    tally = Tally()
    for head, delivered in snapshots_taken(collector, per_head, seconds, probe.batches.clear):
        tally.add(head, list(probe.batches), delivered)
    return tally


def median_ms(collectors: dict[str, SnapshotCollector]) -> dict[str, float]:
    """Each collector's median snapshot time at the head, the collectors taking turns (in an
    alternating order) so that all see the same machine load; re-reads included."""
    samples: dict[str, list[float]] = {name: [] for name in collectors}
    for i in range(COST_SNAPSHOTS):
        for name, collector in list(collectors.items())[:: 1 if i % 2 else -1]:
            head = collector.rpc.block_number()
            started = time.perf_counter()
            try:
                collector.fetch_snapshot(head)
            except Exception:  # noqa: BLE001 - a refused snapshot still cost its reads
                pass
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(ms) for name, ms in samples.items()}


def build_collector(world: World, **options: Any) -> SnapshotCollector:
    assert world.node.rpc is not None
    collector = SnapshotCollector(world.node.rpc, Sources.from_manifest(world.manifest),
                                  account=world.manifest.accounts.keeper, **options)
    collector.prepare()
    collector.fetch_snapshot()  # learns the tick windows
    return collector


VARIANTS: dict[str, dict[str, Any]] = {  # collector options measured, by name
    "plain": {},  # as replay/history/scan build it (and the live loop before the check)
    "checked": {"check_block": True},  # as keeper/runtime.py builds it for the live loop
}


def main() -> None:
    print("== snapshot block race: batches answered from another block, under mining ==")
    world = start_world(load_state=prebuilt_state())
    try:
        with capture_logs():  # the checked collector's snapshot.reread events: counted by the probe, not printed
            run(world)
    finally:
        world.stop()


def run(world: World) -> None:
    costs = {variant: build_collector(world, **options) for variant, options in VARIANTS.items()}  # unprobed
    quiet = median_ms(costs)
    with Miner(world.manifest.rpc_url, 0.0):
        mining = median_ms(costs)
    for variant in VARIANTS:
        record(f"snapshot_race_{variant}_quiet_ms", quiet[variant])
        record(f"snapshot_race_{variant}_mining_ms", mining[variant])
        print(f"{variant}: median snapshot {quiet[variant]:.2f} ms quiet, {mining[variant]:.2f} ms under continuous "
              f"mining ({COST_SNAPSHOTS} each, taking turns)")
    for variant, options in VARIANTS.items():
        collector = build_collector(world, **options)
        probe = Probe(collector.multicall)
        probe.install()
        for mining_name, pause_s in MINING.items():
            with Miner(world.manifest.rpc_url, pause_s):
                for pattern, per_head in (("per_head", True), ("back_to_back", False)):
                    tally = run_cell(collector, probe, per_head, CELL_S[mining_name])
                    report(f"snapshot_race_{variant}_{mining_name}_{pattern}", tally)


def report(name: str, t: Tally) -> None:
    record(f"{name}_snapshots", t.snapshots)
    record(f"{name}_first_wrong_pct", t.pct(t.first_wrong))
    record(f"{name}_first_later_pct", t.pct(t.first_later))
    record(f"{name}_later_other_pct", t.pct(t.later_other, t.later_batches))
    record(f"{name}_mixed_pct", t.pct(t.mixed))
    record(f"{name}_rereads_per_snapshot", t.rereads / t.snapshots if t.snapshots else 0.0)
    record(f"{name}_skipped_pct", t.pct(t.skipped))
    print(f"{name}: {t.snapshots} snapshots | first batch from another block {t.pct(t.first_wrong):5.1f}% "
          f"(a later one {t.pct(t.first_later):5.1f}%) | "
          f"later batch from another block than the first {t.pct(t.later_other, t.later_batches):5.1f}% "
          f"({t.later_batches}) | delivered mixed {t.pct(t.mixed):5.1f}% | re-reads {t.rereads} | "
          f"skipped {t.pct(t.skipped):4.1f}%")
