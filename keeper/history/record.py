"""`keeper record`: the keeper's own snapshot of every block, raw, into a history file.

Per block: the collector's Multicall3 batches pinned to that block (their calldata and the
node's return bytes, see store.py), the block header (hash, parent, gas used and limit, base
fee) and, where the chain has the OP-stack GasPriceOracle, its L1-fee inputs at that block;
headers and L1 reads are fetched 32 blocks at a time in one batched request. Resumable: an
existing history continues after its last block (with or without --follow); a --from-block past
it is refused, naming the blocks it would leave out (a history has no holes). A node that has not
kept the state of a block answers its reads with an error: the recording stops there with one line
naming that block (exit 2). Following, a block is recorded once the node has the next one: anvil
answers a read of its head block while it mines the next with that block's state or a revert (the
next block's number, a TWAP underflow), which would go into the history as this block's. Every
block's answer must carry its own number (Multicall3's getBlockNumber): one that does not is read
again, then refused; a read of the head block (the end of a range up to the head) that failed is
read again too, and kept if it fails every time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak

from keeper.addressbook import config_chain, config_sources
from keeper.chain.fees import GAS_PRICE_ORACLE, build_get_l1_fee_calldata
from keeper.chain.multicall import Call, CallResult, Multicall, decode_aggregate3, encode_aggregate3
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig
from keeper.errors import ConfigError, KeeperError, RpcError
from keeper.history.replay import collector_meta, storage_read_key
from keeper.history.store import BlockRecord, HistoryWriter, last_recorded_block
from keeper.logs import redacted_url
from keeper.simulate.paper import PAPER_TX_BYTES
from keeper.types import MarketSnapshot, Unavailable

DEFAULT_BLOCKS = 1_000
FOLLOW_BEHIND_HEAD = 1  # --follow records block b once the node's head is b + 1 (see the module notes)
WRONG_BLOCK_RETRIES = 2  # re-reads of a block whose answer carried another block's number
WRONG_BLOCK_PAUSE_S = 0.2
HEADERS_AHEAD = 32  # block headers fetched per batch
_L1_GETTERS = ("l1BaseFee()", "blobBaseFee()", "baseFeeScalar()", "blobBaseFeeScalar()")
# the four inputs, then the fee of a typical executor trade; allowFailure: a getter the chain's
# oracle version lacks (pre-Ecotone: no blob fee) is recorded as null, not as a failed block
_L1_CALLDATA = encode_aggregate3(
    [Call(GAS_PRICE_ORACLE, keccak(text=g)[:4], f"GasPriceOracle.{g}") for g in _L1_GETTERS]
    + [Call(GAS_PRICE_ORACLE, build_get_l1_fee_calldata(PAPER_TX_BYTES), "GasPriceOracle.getL1Fee")])


def _l1_values(reply: str) -> tuple[int | None, ...]:
    return tuple(int.from_bytes(r.return_data[:32], "big") if r.success and r.return_data else None
                 for r in decode_aggregate3(bytes.fromhex(reply[2:])))


class StateUnavailable(ConfigError):
    """The node cannot serve the state of a block the recording needs."""


class WrongBlockAnswer(KeeperError):
    """The node answered a block's pinned reads with another block's state (exit 1)."""


class RecordingMulticall(Multicall):
    """The collector's Multicall3 that also keeps what it sent and what the node answered."""

    def __init__(self, rpc: JsonRpc, address: str) -> None:
        super().__init__(rpc, address)
        self.captured: list[tuple[bytes, bytes]] = []

    def run(self, calldata: bytes, block: int | str = "latest") -> list[CallResult]:
        return self._answer(calldata, self.rpc.eth_call(self.address, calldata, block))

    def _answer(self, calldata: bytes | None, raw: bytes) -> list[CallResult]:
        assert calldata is not None
        self.captured.append((calldata, raw))
        return decode_aggregate3(raw)

    def _extra(self, requests: list[tuple[str, list[Any]]], replies: list[Any]) -> list[Any]:
        for request, reply in zip(requests, replies):
            key = storage_read_key(request)
            if key is not None and isinstance(reply, str):
                self.captured.append((key, bytes.fromhex(reply[2:]).rjust(32, b"\0")))
        return replies


def recording_sources(settings: KeeperConfig, rpc: JsonRpc) -> Sources:
    """The markets to record: the devnet manifest's, or the Optimism preset's (resolved on chain)."""
    return config_sources(rpc, config_chain(settings)[1])


@dataclass
class BlockRecorder:
    rpc: JsonRpc
    collector: SnapshotCollector
    multicall: RecordingMulticall
    l1_oracle: bool
    _ahead: dict[int, tuple[Any, tuple[int | None, ...] | None]] = field(default_factory=dict)

    @classmethod
    def start(cls, rpc: JsonRpc, sources: Sources, account: str | None) -> BlockRecorder:
        collector = SnapshotCollector(rpc, sources, account=account)
        collector.prepare()
        multicall = RecordingMulticall(rpc, sources.multicall3)
        collector.multicall = multicall
        return cls(rpc, collector, multicall, bool(rpc.get_code(GAS_PRICE_ORACLE)))

    def record(self, block: int, last: int | None = None, *, at_head: bool = False) -> BlockRecord:
        """One block; the headers (and L1-fee reads) of the blocks up to `last` are fetched ahead
        in one batch with this one's, so that a block costs the collector's two reads only.
        `at_head`: the block was the node's head when the recording started; a read of it that
        failed is read again too (anvil mining the next block), and kept if it fails every time."""
        windows = dict(self.collector._last_tick)
        try:
            for attempt in range(WRONG_BLOCK_RETRIES + 1):
                self.multicall.captured = []
                self.collector._last_tick = dict(windows)  # a re-read builds the calldata the first read did
                snapshot = self.collector.fetch_snapshot(block)
                answered = snapshot.block_number
                if answered == block and not (at_head and _reads_failed(snapshot)):
                    break
                if attempt == WRONG_BLOCK_RETRIES:
                    if answered == block:
                        break  # failed at every read: the chain's own answer at that block
                    raise WrongBlockAnswer(f"the node at {redacted_url(self.rpc.url)} answered the reads of block {block} "
                                           f"with block {answered}'s state, {attempt + 1} times: not recorded")
                time.sleep(WRONG_BLOCK_PAUSE_S)
            if block not in self._ahead:
                self._fetch_ahead(block, max(block, min(last if last is not None else block, block + HEADERS_AHEAD - 1)))
        except WrongBlockAnswer:
            raise
        except (RpcError, KeeperError) as exc:
            raise StateUnavailable(f"the node at {redacted_url(self.rpc.url)} cannot serve the state of block {block} "
                                   f"(first block it cannot serve; an archive node keeps every block): {exc}") from exc
        header, l1 = self._ahead.pop(block)
        if not header:
            raise StateUnavailable(f"the node at {redacted_url(self.rpc.url)} has no block {block}")
        return BlockRecord(
            block=block, timestamp=int(header["timestamp"], 16), hash=bytes.fromhex(header["hash"][2:]),
            parent_hash=bytes.fromhex(header["parentHash"][2:]), base_fee_wei=int(header.get("baseFeePerGas", "0x0"), 16),
            gas_used=int(header["gasUsed"], 16), gas_limit=int(header["gasLimit"], 16),
            l1=l1, window_ticks=windows, reads=list(self.multicall.captured))

    def _fetch_ahead(self, first: int, last: int) -> None:
        requests: list[tuple[str, list[Any]]] = []
        for b in range(first, last + 1):
            requests.append(("eth_getBlockByNumber", [hex(b), False]))
            if self.l1_oracle:
                requests.append(("eth_call", [{"to": self.multicall.address, "data": "0x" + _L1_CALLDATA.hex()}, hex(b)]))
        replies = self.rpc.batch(requests)
        step = 2 if self.l1_oracle else 1
        for i, b in enumerate(range(first, last + 1)):
            header = replies[i * step]
            self._ahead[b] = (header, _l1_values(replies[i * step + 1]) if self.l1_oracle else None)


def _reads_failed(snapshot: MarketSnapshot) -> bool:
    parts = [getattr(view, name) for view in snapshot.markets.values() for name in ("perp", "spot_v2", "spot_v3", "oracle")]
    return any(isinstance(part, Unavailable) for part in [*parts, snapshot.account])


def resume_block(out: Path, from_block: int | None) -> int | None:
    """Where a recording into an existing history continues: right after its last block, so that
    the history never has a hole (None: `out` holds no block yet). A --from-block past that block
    would leave one: refused, naming it; one at or before it resumes after it."""
    last = last_recorded_block(out)
    if last is None:
        return None
    if from_block is not None and from_block > last + 1:
        raise ConfigError(f"--from-block {from_block}: {out} ends at block {last}; recording from {from_block} would "
                          f"leave blocks {last + 1}-{from_block - 1} out of it (leave --from-block out to resume at "
                          f"{last + 1}, or record into another --out)")
    return last + 1


def record_history(settings: KeeperConfig, rpc: JsonRpc, out: Path, *, from_block: int | None, to_block: int | None,
                   follow: bool, account: str | None, progress: Callable[[int, int, int], None] | None = None,
                   stop: Callable[[], bool] = lambda: False, poll_s: float = 1.0) -> tuple[int, float]:
    """Record [from_block, to_block] (or on from the head with follow) into `out`. Returns the
    number of blocks written and the seconds taken. progress(done, total, block); total 0: following."""
    head = rpc.block_number()
    if to_block is not None and to_block > head:
        raise ConfigError(f"--to-block {to_block}: the node's head is block {head}")
    end = head if to_block is None else to_block
    if follow:
        end = head - FOLLOW_BEHIND_HEAD
    start = resume_block(out, from_block)
    if start is None:
        start = from_block if from_block is not None else (head if follow else max(0, end - DEFAULT_BLOCKS + 1))
    if from_block is not None and from_block > end and not follow:
        raise ConfigError(f"--from-block {from_block} is after --to-block {end}" if to_block is not None else
                          f"--from-block {from_block}: after the node's head, block {head} (--follow waits for it)")
    recorder = BlockRecorder.start(rpc, recording_sources(settings, rpc), account)
    meta = collector_meta(recorder.collector) | {"l1_fee_inputs": recorder.l1_oracle}
    created = not out.exists()
    writer = HistoryWriter(out, meta)
    started, done, block = time.perf_counter(), 0, start
    try:
        while not stop():
            if block > end:
                if not follow:
                    break
                time.sleep(poll_s)
                end = rpc.block_number() - FOLLOW_BEHIND_HEAD
                continue
            writer.append(recorder.record(block, end, at_head=not follow and block >= head))
            done += 1
            if progress:
                progress(done, 0 if follow else end - start + 1, block)
            block += 1
    finally:
        writer.flush()
        if created and last_recorded_block(out) is None:  # stopped before its first block: no empty --out left
            shutil.rmtree(out, ignore_errors=True)
    return done, time.perf_counter() - started
