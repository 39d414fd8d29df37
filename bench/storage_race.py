"""State block race: which block's state answers a snapshot's reads of the head block, on an anvil
that mines blocks with a transaction back to back. snapshot_race's miner mines empty blocks, whose
state is their parent's: it sees the block number a batch reports (Multicall3.getBlockNumber), not
the state. Here every block carries one transaction to a probe contract that stores block.number in
its slot 0, so a read of that slot names the block whose state answered it: inside every batch's
eth_call, and as the first and last of the ticks batch's storage reads (eth_getStorageAt pinned to
the block's number, in the same JSON-RPC batch as the ticks' eth_call). Per delivered snapshot, for
the collector as history/replay build it (plain) and as the live loop does (checked, also with the
storage reads sent before the eth_call); then raw reads of the head pinned by number and by hash
(EIP-1898), and whether the node answers a batch in its order."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from structlog.testing import capture_logs

from bench.results import record
from bench.snapshot_race import _GET_BLOCK_NUMBER, CELL_SNAPSHOTS, build_collector, next_head, snapshots_taken
from keeper.chain.multicall import Call, decode_aggregate3, encode_aggregate3, word_uint
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector
from keeper.devnet.world import World, prebuilt_state, start_world

# A probe contract: called with no data it stores block.number in slot 0 (one such transaction in
# every block mined here); with any data it returns slot 0 (read inside the ticks' eth_call: the
# block whose state the call ran on). Runtime: CALLDATASIZE PUSH1 9 JUMPI NUMBER PUSH1 0 SSTORE
# STOP JUMPDEST PUSH1 0 SLOAD PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN (21 bytes), returned by the
# init code PUSH21 <runtime> PUSH1 0 MSTORE PUSH1 21 PUSH1 11 RETURN.
_PROBE_RUNTIME = "3660095743600055005b60005460005260206000f3"
_PROBE_INIT = "0x74" + _PROBE_RUNTIME + "600052" + "6015" + "600b" + "f3"
CELL_S = 15.0


def deploy_probe(rpc: JsonRpc, sender: str) -> str:
    tx = rpc.call("eth_sendTransaction", [{"from": sender, "data": _PROBE_INIT, "gas": hex(100_000)}])
    for _ in range(100):
        receipt = rpc.call("eth_getTransactionReceipt", [tx])
        if receipt:
            return str(receipt["contractAddress"])
        rpc.call("evm_mine", [])
    raise RuntimeError("probe contract not mined")


def with_calls(calldata: bytes, extra: list[Call]) -> bytes:
    """aggregate3 calldata with `extra` appended as its last calls."""
    (calls,) = abi_decode(["(address,bool,bytes)[]"], calldata[4:])
    return encode_aggregate3([Call(target, data, "") for target, _, data in calls] + extra)


class WritingMiner:
    """Blocks back to back (automine off, evm_mine), each with one probe transaction (slot 0 :=
    block.number)."""

    def __init__(self, url: str, sender: str, probe: str) -> None:
        self.rpc, self.sender, self.probe = JsonRpc(url), sender, probe
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.blocks = 0

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rpc.call("eth_sendTransaction", [{"from": self.sender, "to": self.probe, "gas": hex(60_000)}])
            self.rpc.call("evm_mine", [])
            self.blocks += 1

    def __enter__(self) -> WritingMiner:
        self.rpc.call("evm_setAutomine", [False])
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.rpc.call("evm_setAutomine", [True])
        self.rpc.close()


@dataclass
class StateProbe:
    """Every batch of the collector also reads the probe inside its eth_call (with Multicall3's
    getBlockNumber), and the ticks batch the probe's slot 0 as its first and last storage reads:
    per batch (asked block, getBlockNumber, the eth_call's state, storage words). `storage_first`
    sends the storage reads before the eth_call in the ticks batch."""

    collector: SnapshotCollector
    probe: str
    storage_first: bool = False
    batches: list[tuple[bytes, int | str, int, int, tuple[int, ...]]] = field(default_factory=list)

    def install(self) -> None:
        mc = self.collector.multicall
        extra = [Call(mc.address, _GET_BLOCK_NUMBER, "getBlockNumber"), Call(self.probe, b"\x01", "probe")]

        def call(calldata: bytes, block: int | str) -> tuple[str, list[Any]]:
            at = hex(block) if isinstance(block, int) else block
            return "eth_call", [{"to": mc.address, "data": "0x" + with_calls(calldata, extra).hex()}, at]

        def keep(calldata: bytes, block: int | str, raw: str, words: tuple[int, ...]) -> list[Any]:
            results = decode_aggregate3(bytes.fromhex(raw[2:]))
            self.batches.append((calldata, block, word_uint(results[-2].return_data), word_uint(results[-1].return_data),
                                 words))
            return results[:-2]

        def probed_run(calldata: bytes, block: int | str = "latest") -> Any:
            return keep(calldata, block, mc.rpc.batch([call(calldata, block)])[0], ())

        def probed_run_with(calldata: bytes | None, block: int, requests: list[tuple[str, list[Any]]]) -> Any:
            assert calldata is not None
            word = ("eth_getStorageAt", [self.probe, "0x0", hex(block)])
            reads = [word, *requests, word]
            replies = mc.rpc.batch([*reads, call(calldata, block)] if self.storage_first else [call(calldata, block), *reads])
            raw, words = (replies[-1], replies[:-1]) if self.storage_first else (replies[0], replies[1:])
            return keep(calldata, block, raw, (int(words[0], 16), int(words[-1], 16))), words[1:-1]

        mc.run = probed_run  # type: ignore[method-assign]
        mc.run_with_requests = probed_run_with  # type: ignore[method-assign]


def run_cell(collector: SnapshotCollector, probe: StateProbe, per_head: bool) -> dict[str, int]:
    """Snapshots for CELL_S (or CELL_SNAPSHOTS), at each new head or back to back; per delivered
    snapshot, from the batches it kept (a re-read replaces its batch): was a getBlockNumber another
    block (what check_block sees), an eth_call's state, the storage words' state, and did the
    snapshot hold two blocks' states?"""
    counts = {"snapshots": 0, "skipped": 0, "number_other": 0, "call_state_other": 0, "storage_other": 0,
              "storage_other_call_right": 0, "state_mixed": 0, "state_earlier": 0}
    for head, delivered in snapshots_taken(collector, per_head, CELL_S, probe.batches.clear):
        if not delivered:
            counts["skipped"] += 1
            continue
        batches = probe.batches
        kept = [b[2:] for i, b in enumerate(batches) if i + 1 == len(batches) or batches[i + 1][:2] != b[:2]]
        counts["snapshots"] += 1
        number, state, words = kept[-1]  # the ticks batch
        storage_other = any(word != head for word in words)
        counts["number_other"] += any(n != head for n, _, _ in kept)
        counts["call_state_other"] += any(s != head for _, s, _ in kept)
        counts["storage_other"] += storage_other
        counts["storage_other_call_right"] += storage_other and number == head and state == head
        counts["state_mixed"] += len({s for _, s, _ in kept} | set(words)) > 1
        counts["state_earlier"] += any(s < head for _, s, _ in kept) or any(word < head for word in words)
    return counts


def pinned_reads(rpc: JsonRpc, multicall3: str, probe: str, by_hash: bool, seconds: float) -> dict[str, int]:
    """At each new head: one batch [slot 0, eth_call (getBlockNumber, the probe), slot 0] pinned to
    the head by number, or by hash (its header read first: one more round trip). Counts reads whose
    eth_call state or storage words were another block's, and batches answered out of their order
    (a later request answered from an earlier state than one before it)."""
    data = "0x" + encode_aggregate3([Call(multicall3, _GET_BLOCK_NUMBER, ""), Call(probe, b"\x01", "")]).hex()
    counts = {"reads": 0, "state_other": 0, "out_of_order": 0}
    deadline = time.monotonic() + seconds
    head: int | None = rpc.block_number()
    while counts["reads"] < CELL_SNAPSHOTS and (head := next_head(rpc, head, deadline)) is not None:
        at: Any = {"blockHash": rpc.call("eth_getBlockByNumber", [hex(head), False])["hash"]} if by_hash else hex(head)
        word = ("eth_getStorageAt", [probe, "0x0", at])
        first, raw, last = rpc.batch([word, ("eth_call", [{"to": multicall3, "data": data}, at]), word])
        state = word_uint(decode_aggregate3(bytes.fromhex(raw[2:]))[1].return_data)
        counts["reads"] += 1
        counts["state_other"] += {int(first, 16), state, int(last, 16)} != {head}
        counts["out_of_order"] += not int(first, 16) <= state <= int(last, 16)
    return counts


def main() -> None:
    print("== state block race: a snapshot's reads of the head block vs the state that answered them, "
          "blocks with a transaction mined back to back ==")
    world = start_world(load_state=prebuilt_state())
    try:
        with capture_logs():
            run(world)
    finally:
        world.stop()


def run(world: World) -> None:
    assert world.node.rpc is not None
    rpc = world.node.rpc
    sender = rpc.call("eth_accounts")[0]
    probe_address = deploy_probe(rpc, sender)
    variants = {"plain": ({}, False), "checked": ({"check_block": True}, False),
                "checked_storage_first": ({"check_block": True}, True)}
    for variant, (options, storage_first) in variants.items():
        collector = build_collector(world, **options)
        probe = StateProbe(collector, probe_address, storage_first)
        probe.install()
        for pattern, per_head in (("per_head", True), ("back_to_back", False)):
            with WritingMiner(world.manifest.rpc_url, sender, probe_address):
                c = run_cell(collector, probe, per_head)
            name = f"storage_race_{variant}_{pattern}"
            n = c["snapshots"] or 1
            for key, value in c.items():
                record(f"{name}_{key}", value)
            print(f"{name}: {c['snapshots']} snapshots ({c['skipped']} refused) | a getBlockNumber not the head "
                  f"{100 * c['number_other'] / n:5.1f}% | an eth_call on another block's state "
                  f"{100 * c['call_state_other'] / n:5.1f}% | storage words another block's "
                  f"{100 * c['storage_other'] / n:5.1f}% ({c['storage_other_call_right']} with the ticks eth_call's "
                  f"number and state right) | two blocks' states in one snapshot {100 * c['state_mixed'] / n:5.1f}% | "
                  f"an earlier block's state {c['state_earlier']}")
    for pin in ("number", "hash"):
        with WritingMiner(world.manifest.rpc_url, sender, probe_address):
            c = pinned_reads(rpc, world.manifest.contracts["Multicall3"], probe_address, pin == "hash", CELL_S)
        n = c["reads"] or 1
        for key, value in c.items():
            record(f"storage_race_pinned_by_{pin}_{key}", value)
        print(f"reads of the head pinned by {pin}: {c['reads']} | answered from another block's state "
              f"{100 * c['state_other'] / n:5.1f}% | batch answered out of its order {100 * c['out_of_order'] / n:5.1f}%")
