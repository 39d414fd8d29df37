"""`keeper record`: the keeper's own snapshot of every block, raw, into a history file.

Per block: the block header first (hash, parent, gas used and limit, base fee; fetched 32 blocks
at a time in one batched request), then the collector's Multicall3 batches and storage reads
pinned to that header's hash (EIP-1898: a reorg between the reads cannot mix two chains; their
calldata and the node's return bytes, see store.py) and, where the chain has the OP-stack
GasPriceOracle, its L1-fee inputs (a second batch per 32 headers, each pinned to its hash).
Resumable: an existing history continues after its last block (with or without --follow); a
--from-block past it is refused, naming the blocks it would leave out (a history has no holes).
A block whose parent hash is not the recorded hash of the block before it (also on resume), or a
range's last recorded block that is no longer the node's, is a reorg: reorg.py drops the orphaned
blocks and the recording goes on from the common ancestor (deeper than 64 blocks: one line, exit
2, the history untouched). A node that has not kept the state of a block answers its reads with
an error: the recording stops there with one line naming that block (exit 2); the default range
starts where the node serves state (served.py). Following, a block is recorded once the node has
the next one: anvil answers a read of its head block while it mines the next with that block's state or a revert (the
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
from keeper.chain.rpc import BlockParam, JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig
from keeper.errors import ConfigError, KeeperError, RpcError, TransientError, state_missing
from keeper.history.reorg import ReorgTooDeep, node_hashes, rewind
from keeper.history.replay import collector_meta, storage_read_key
from keeper.history.served import served_start
from keeper.history.store import BlockRecord, HistoryWriter, last_recorded_block, read_meta, recorded_range
from keeper.logs import get_logger, redacted_url
from keeper.simulate.paper import PAPER_TX_BYTES
from keeper.types import MarketSnapshot, Unavailable

DEFAULT_BLOCKS = 1_000
FOLLOW_BEHIND_HEAD = 1  # --follow records block b once the node's head is b + 1 (see the module notes)
WRONG_BLOCK_RETRIES = 2  # re-reads of a block whose answer carried another block's number
WRONG_BLOCK_PAUSE_S = 0.2
HEADERS_AHEAD = 32  # block headers fetched per batch
# A block's reads that fail transiently (a timeout, the node's own "execution aborted (timeout = 5s)"
# or "request timed out", an HTTP 5xx, a rate limit) are asked again
# after a pause, READ_TRIES times in all (pauses 0.5, 1, 2, 4, 8 s: 15.5 s, plus each try's own wait
# of up to chain.request_timeout_s), then the error ends the recording (exit 1; the same command
# resumes after the last block written); Ctrl-C ends it at the next failure.
READ_TRIES = 6
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 8.0
log = get_logger("keeper.record")
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


class BlockReplaced(KeeperError):
    """The block being read left the node's chain (a reorg): read that height again."""


class RecordingMulticall(Multicall):
    """The collector's Multicall3 that also keeps what it sent and what the node answered, its
    reads of the `pinned` block number going out pinned to that block's hash (EIP-1898)."""

    def __init__(self, rpc: JsonRpc, address: str) -> None:
        super().__init__(rpc, address)
        self.captured: list[tuple[bytes, bytes]] = []
        self.pinned: tuple[int, str] | None = None  # (number, hash)

    def _at(self, block: int | str) -> BlockParam:
        if self.pinned is not None and block == self.pinned[0]:
            return {"blockHash": self.pinned[1]}
        return block

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
        """One block: its header first (fetched ahead in one batch with the headers of the blocks up
        to `last`, HEADERS_AHEAD at most), then the collector's reads pinned to its hash, so that
        a reorg between the reads cannot mix two chains into one record. `at_head`: the block was
        the node's head when the recording started; a read of it that failed is read again too
        (anvil mining the next block), and kept if it fails every time. Raises BlockReplaced when
        the header's block left the node's chain before its reads were answered."""
        windows = dict(self.collector._last_tick)
        try:
            if block not in self._ahead:
                self._fetch_ahead(block, max(block, min(last if last is not None else block, block + HEADERS_AHEAD - 1)))
            header, l1 = self._ahead[block]
            if not header:
                raise StateUnavailable(f"the node at {redacted_url(self.rpc.url)} has no block {block}")
            self.multicall.pinned = (block, header["hash"])
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
        except (WrongBlockAnswer, StateUnavailable):
            raise
        except (RpcError, KeeperError) as exc:
            pinned, self._ahead = self.multicall.pinned, {}
            if pinned is not None and _replaced(self.rpc, block, pinned[1]):
                raise BlockReplaced(f"block {block} {pinned[1]} left the node's chain while it was read") from exc
            if isinstance(exc, RpcError) and state_missing(exc):  # only a reply that says the state is gone
                raise StateUnavailable(f"the node at {redacted_url(self.rpc.url)} cannot serve the state of block "
                                       f"{block} (first block it cannot serve; an archive node keeps every block): "
                                       f"{exc}") from exc
            if not isinstance(exc, (TransientError, RpcError)):
                raise
            # a timeout (the transport's, or the node's "execution aborted (timeout = 5s)"), an HTTP
            # 5xx, a rate limit, "temporarily unavailable": retried (read_block); any other reply (a
            # revert, an internal error): raised, neither pruning nor retried (exit 1)
            kind = TransientError if isinstance(exc, TransientError) else KeeperError
            raise kind(f"reading block {block}: {exc}; the history holds the blocks before it "
                       "(the same command again resumes there)") from exc
        finally:
            self.multicall.pinned = None
        del self._ahead[block]
        return BlockRecord(
            block=block, timestamp=int(header["timestamp"], 16), hash=bytes.fromhex(header["hash"][2:]),
            parent_hash=bytes.fromhex(header["parentHash"][2:]), base_fee_wei=int(header.get("baseFeePerGas", "0x0"), 16),
            gas_used=int(header["gasUsed"], 16), gas_limit=int(header["gasLimit"], 16),
            l1=l1, window_ticks=windows, reads=list(self.multicall.captured))

    def forget_ahead(self) -> None:
        """Drop the headers fetched ahead (a reorg: they may be of the orphaned chain)."""
        self._ahead.clear()

    def _fetch_ahead(self, first: int, last: int) -> None:
        """The headers of blocks first..last in one batch; on an OP-stack chain their L1-fee reads in
        a second one, each pinned to its header's hash."""
        headers = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in range(first, last + 1)])
        l1: list[tuple[int | None, ...] | None] = [None] * len(headers)
        if self.l1_oracle:
            known = [(i, h) for i, h in enumerate(headers) if h]
            replies = self.rpc.batch([("eth_call", [{"to": self.multicall.address, "data": "0x" + _L1_CALLDATA.hex()},
                                                    {"blockHash": h["hash"]}]) for _, h in known])
            for (i, _), reply in zip(known, replies):
                l1[i] = _l1_values(reply)
        for b, header, fee in zip(range(first, last + 1), headers, l1):
            self._ahead[b] = (header, fee)


def read_block(recorder: BlockRecorder, block: int, last: int | None, *, at_head: bool,
               sleep: Callable[[float], None] = time.sleep, stop: Callable[[], bool] = lambda: False) -> BlockRecord:
    """`recorder.record(block)`, asked again after a pause while it fails transiently (logged as
    `record.retry`), READ_TRIES times in all; then, or once `stop()` (Ctrl-C), the last error is raised."""
    for tries in range(1, READ_TRIES + 1):
        try:
            return recorder.record(block, last, at_head=at_head)
        except TransientError as exc:
            if tries == READ_TRIES or stop():
                raise
            pause_s = min(FIRST_PAUSE_S * 2 ** (tries - 1), MAX_PAUSE_S)
            log.warning("record.retry", block=block, tries=tries, pause_s=pause_s, error=str(exc))
            sleep(pause_s)
    raise AssertionError("unreachable")


def _replaced(rpc: JsonRpc, block: int, hash_hex: str) -> bool:
    """Is the node's block at that height now another one? (Unknown, the node failing again: no.)"""
    try:
        return node_hashes(rpc, [block]) != [bytes.fromhex(hash_hex[2:])]
    except KeeperError:
        return False


def _reads_failed(snapshot: MarketSnapshot) -> bool:
    parts = [getattr(view, name) for view in snapshot.markets.values() for name in ("perp", "spot_v2", "spot_v3", "oracle")]
    return any(isinstance(part, Unavailable) for part in [*parts, snapshot.account])


def resume_block(out: Path, from_block: int | None) -> int | None:
    """Where a recording into an existing history continues: right after its last block, so that
    the history never has a hole (None: `out` holds no block yet). A --from-block past that block
    would leave one, one before its first block would be left out: refused, naming them; one
    within it (the same command again) resumes after it."""
    last = last_recorded_block(out)
    if last is None:
        return None
    read_meta(out)  # a history, not a directory of junk named like one
    first = recorded_range(out)[0]
    if from_block is not None and from_block < first:
        raise ConfigError(f"--from-block {from_block}: {out} holds blocks {first}-{last}; blocks {from_block}-{first - 1} "
                          f"cannot be added to it (a history grows at its end): record them into another --out")
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
    fresh = start is None
    if start is None:
        start = from_block if from_block is not None else (head if follow else max(0, end - DEFAULT_BLOCKS + 1))
    if from_block is not None and from_block > end and not follow:
        raise ConfigError(f"--from-block {from_block} is after --to-block {end}" if to_block is not None else
                          f"--from-block {from_block}: after the node's head, block {head} (--follow waits for it)")
    sources = recording_sources(settings, rpc)
    if fresh and from_block is None and not follow:  # the default range: from what the node serves
        start = served_start(rpc, sources.multicall3, start, end)
    recorder = BlockRecorder.start(rpc, sources, account)
    meta = collector_meta(recorder.collector) | {"l1_fee_inputs": recorder.l1_oracle}
    created = not out.exists()
    writer = HistoryWriter(out, meta)
    started, done, block = time.perf_counter(), 0, start
    previous = writer.recorded_hash(block - 1)  # the hash the next block must name as its parent
    try:
        while not stop():
            if block > end:
                if follow:
                    time.sleep(poll_s)
                    end = rpc.block_number() - FOLLOW_BEHIND_HEAD
                    continue
                if previous is None or node_hashes(rpc, [block - 1]) == [previous]:
                    break
                record = None  # the range's last recorded block was replaced
            else:
                try:
                    record = read_block(recorder, block, end, at_head=not follow and block >= head, stop=stop)
                except BlockReplaced:
                    continue  # that height again, from its new header
            if record is None or (previous is not None and record.parent_hash != previous):
                ancestor = rewind(writer, rpc, block - 1)  # the recorded blocks after it left the node's chain
                done -= max(0, block - 1 - max(ancestor, start - 1))
                block, start, previous = ancestor + 1, min(start, ancestor + 1), writer.recorded_hash(ancestor)
                recorder.forget_ahead()
                continue
            writer.append(record)
            previous = record.hash
            done += 1
            if progress:
                progress(done, 0 if follow else end - start + 1, block)
            block += 1
    except ReorgTooDeep:
        writer.drop_after(-1)  # the blocks not yet on disk are of the same contradicted chain: none written
        raise
    finally:
        writer.flush()
        if created and last_recorded_block(out) is None:  # stopped before its first block: no empty --out left
            shutil.rmtree(out, ignore_errors=True)
    return done, time.perf_counter() - started
