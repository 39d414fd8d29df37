"""Snapshots from a history file, without a node: the keeper's own collector, fed the recorded
return bytes.

The collector is the live one (keeper/collect.py) with its static facts taken from the file and
its Multicall3 replaced by `RecordedMulticall`, which answers each aggregate3 calldata with the
bytes the node returned for it at that block. Before each block the collector's bitmap-window
centres are set to the recorded ones, so it builds exactly the calldata it sent when recording
(a different calldata is an error, never a silent guess), and every decode, every Unavailable
and every number in the snapshot is the live code's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from keeper.chain.multicall import (
    CallResult,
    ResultLayout,
    decode_aggregate3,
    decode_results,
    encode_aggregate3,
    successful_payloads,
)
from keeper.chain.rpc import RpcStats
from keeper.collect import SnapshotCollector, Sources
from keeper.venues.sources import MarketSource, MarketStatic, PoolStatic
from keeper.errors import ConfigError
from keeper.history.store import BlockRecord, read_blocks, read_meta
from keeper.types import MarketSnapshot
from keeper.venues.perp_v2 import PerpAddresses, PerpConfig
from keeper.venues.reads import ReadPlan


def collector_meta(collector: SnapshotCollector) -> dict[str, Any]:
    """The static facts a prepared collector holds, as JSON (the history file's metadata)."""
    assert collector.config is not None, "prepare() the collector first"
    return {"chain_id": collector.sources.chain_id, "account": collector.account,
            "sources": asdict(collector.sources), "perp_config": asdict(collector.config),
            "statics": [asdict(s) for s in collector.static]}


class _NoNode:
    """Stands where the collector keeps its RPC client: counts nothing, reaches nothing."""

    url = "recorded history"

    def __init__(self) -> None:
        self.stats = RpcStats()


def storage_read_key(request: tuple[str, list[Any]]) -> bytes | None:
    """The key an `eth_getStorageAt` reply is kept under among a block's recorded reads: a
    marker, the contract and the slot (the block is the record's). Never a valid aggregate3
    calldata, so it cannot collide with one. None for any other request."""
    method, params = request
    if method != "eth_getStorageAt":
        return None
    return STORAGE_MARKER + bytes.fromhex(params[0][2:]) + int(params[1], 16).to_bytes(32, "big")


STORAGE_MARKER = b"\x00eth_getStorageAt\x00"


class RecordedMulticall:
    def __init__(self, address: str) -> None:
        self.address = address
        self.block: BlockRecord | None = None
        self._answers: dict[bytes, bytes] = {}
        self._keys: dict[tuple[str, Any, Any], bytes] = {}

    def load(self, record: BlockRecord) -> None:
        self.block = record
        self._answers = dict(record.reads)

    def raw(self, calldata: bytes, block: int | str = "latest") -> bytes:
        assert self.block is not None
        answer = self._answers.get(calldata)
        if answer is None or block not in (self.block.block, "latest"):
            raise ConfigError(f"history: block {self.block.block} has no recorded answer for a read the collector "
                              "makes (the file was recorded by another keeper version?)")
        return answer

    def run(self, calldata: bytes, block: int | str = "latest") -> list[CallResult]:
        return decode_aggregate3(self.raw(calldata, block))

    def storage_words(self, requests: list[tuple[str, list[Any]]]) -> list[Any]:
        """The recorded replies to the collector's storage reads; none when any is missing (the
        live collector had none either: its batch failed and it fell back to the calls alone)."""
        known, answers, words = self._keys, self._answers, []
        for request in requests:  # each key (storage_read_key) kept per (method, contract, slot)
            method, params = request
            key = known.get((method, params[0], params[1]))
            if key is None:
                key = known[(method, params[0], params[1])] = storage_read_key(request) or b""
            word = answers.get(key) if key else None
            if word is None:
                return []
            words.append("0x" + word.hex())
        return words


class ReplayCollector(SnapshotCollector):
    """The live collector, remembering for each calldata the last answer, its layout and each read
    plan's decoded value: when the answer's head words are the same, a plan whose bytes did not
    change since the previous block (tick liquidity, oracle rounds, quiet pools) keeps its value
    and only the changed plans are decoded, from the known offsets. Same bytes, same plan: same
    value. An answer laid out otherwise is decoded in full, as the live collector does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[bytes, _Known] = {}

    def _run_with_requests(self, plans: Sequence[ReadPlan[Any]], block: int, calldata: bytes,
                           requests: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[Any]]:
        assert isinstance(self.multicall, RecordedMulticall)
        return (self._run(plans, block, calldata) if plans else []), self.multicall.storage_words(requests)

    def _run(self, plans: Sequence[ReadPlan[Any]], block: int | str, calldata: bytes | None = None) -> list[Any]:
        if calldata is None:
            calldata = encode_aggregate3([c for p in plans for c in p.calls])
        answer = self.multicall.raw(calldata, block)
        known = self._known.get(calldata)
        if known is not None:
            if known.answer == answer:  # the same bytes as last time: the same values
                return known.values
            if known.layout is not None and known.layout.fits(answer, known.answer):
                values, chunks = list(known.values), known.chunks
                for k, plan, start, end, elements in known.slots:
                    if not answer.startswith(chunks[k], start):  # the plan's bytes moved (same span: same length)
                        chunks[k] = answer[start:end]
                        payloads = successful_payloads(answer, elements)
                        values[k] = plan.result(decode_results(answer, elements)) if payloads is None else \
                            plan.result_of_payloads(payloads)
                known.answer, known.values = answer, values
                return values
        raw = decode_aggregate3(answer)
        values, firsts, i = [], [], 0
        for plan in plans:
            n = len(plan.calls)
            values.append(plan.result(raw[i:i + n]))
            firsts.append(i)
            i += n
        layout = ResultLayout.of(answer) if len(raw) == i else None
        slots = [(k, plan, *layout.span(first, len(plan.calls)), layout.elements[first:first + len(plan.calls)])
                 for k, (first, plan) in enumerate(zip(firsts, plans))] if layout else []
        self._known[calldata] = _Known(answer, layout, slots, values)
        return values


class _Known:
    """A calldata's last answer, its layout, and values; per plan: its index, byte span and
    results' offsets, and its bytes in the last answer (compared in place with the next's)."""

    __slots__ = ("answer", "layout", "slots", "values", "chunks")

    def __init__(self, answer: bytes, layout: ResultLayout | None,
                 slots: list[tuple[int, ReadPlan[Any], int, int, tuple[int, ...]]], values: list[Any]) -> None:
        self.answer, self.layout, self.slots, self.values = answer, layout, slots, values
        self.chunks = [answer[start:end] for _, _, start, end, _ in slots]


def replay_collector(meta: Mapping[str, Any]) -> tuple[SnapshotCollector, RecordedMulticall]:
    src = meta["sources"]
    sources = Sources(src["chain_id"], PerpAddresses(**src["perp"]), src["multicall3"],
                      tuple(MarketSource(**m) for m in src["markets"]))
    collector = ReplayCollector(_NoNode(), sources, account=meta.get("account"))  # type: ignore[arg-type]
    collector.config = PerpConfig(**meta["perp_config"])
    collector.static = tuple(
        MarketStatic(MarketSource(**s["source"]), PoolStatic(**s["perp_pool"]),
                      PoolStatic(**s["spot_v3_pool"]) if s["spot_v3_pool"] else None, s["oracle_decimals"])
        for s in meta["statics"])
    multicall = RecordedMulticall(sources.multicall3)
    collector.multicall = multicall  # type: ignore[assignment]
    return collector, multicall


def rebuild_snapshot(collector: SnapshotCollector, multicall: RecordedMulticall, record: BlockRecord) -> MarketSnapshot:
    multicall.load(record)
    collector._last_tick = dict(record.window_ticks)
    return collector.fetch_snapshot(record.block)


def recorded_snapshots(path: Path, from_block: int | None = None,
                       to_block: int | None = None) -> Iterator[tuple[BlockRecord, MarketSnapshot]]:
    collector, multicall = replay_collector(read_meta(path))
    for record in read_blocks(path, from_block, to_block):
        yield record, rebuild_snapshot(collector, multicall, record)
