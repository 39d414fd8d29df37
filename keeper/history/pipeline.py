"""The backtest's recorded snapshots, serially or from a second process.

Rebuilding a snapshot (reading the Parquet parts, decoding the recorded bytes with the live
collector) depends on the recorded market data only, never on what the keeper did. So on a
machine with a second core, `keeper backtest` hands it to a worker process: the worker reads and
rebuilds blocks in order and sends them in batches through a bounded queue while the main process
runs the engine on the blocks before them. With each snapshot it sends the basis statistics the
engine will read at that block (basis_answers.py: they too depend on the recorded data only).
Same snapshots, same statistics, same order, same decisions: the worker runs the serial path's
code, and the main process only unpickles its output.

- Bounded: at most QUEUE_BATCHES batches of BATCH_BLOCKS blocks wait in the queue (a month of
  blocks never sits in memory); the worker blocks when the engine is behind.
- Errors: the worker sends its exception instead of the next batch; the main process raises it
  at that block, after the blocks before it were backtested, as the serial path would. A worker
  that dies without a word (killed, out of memory) is an error naming its exit code.
- Shutdown: closing the stream (the end, an error in the engine, Ctrl-C) terminates the worker; a
  worker whose main process was killed stops at its next full queue.
- The worker is forked (it inherits the imports: no second start-up); where fork is not the
  platform's way, or with one core, the backtest runs serially. The sweep's jobs, which already
  use every core, run serially too.
"""

from __future__ import annotations

import copyreg
import gc
import io
import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from keeper.basis_history import BasisHistory
from keeper.errors import KeeperError
from keeper.history.basis_answers import Answers, compute_answers
from keeper.history.replay import rebuild_snapshot, replay_collector
from keeper.history.store import BlockRecord, read_blocks
from keeper.types import MarketSnapshot
from keeper.venues.uniswap_v3_math import V3PoolState

BATCH_BLOCKS = 100  # one pickle per batch: pool states unchanged between its blocks are sent once
FIRST_BATCH_BLOCKS = 10  # the engine starts after 10 blocks, not 100; the batches double up to BATCH_BLOCKS
QUEUE_BATCHES = 8
MIN_PIPELINE_BLOCKS = 2 * BATCH_BLOCKS  # below this, forking costs more than it saves
_POLL_S = 0.5

# the snapshot, the recorded L1 fee (wei) of a typical trade, and the basis statistics (None: serial)
ReplayedBlock = tuple[MarketSnapshot, int, Answers | None]


def l1_fee_wei(record: BlockRecord) -> int:
    return (record.l1[4] or 0) if record.l1 else 0


def serial_blocks(meta: Mapping[str, Any], records: Iterator[BlockRecord] | Sequence[BlockRecord]) -> Iterator[ReplayedBlock]:
    collector, multicall = replay_collector(meta)
    for record in records:
        yield rebuild_snapshot(collector, multicall, record), l1_fee_wei(record), None


def pipeline_available() -> bool:
    """A second core to run on, and fork to start the worker with."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > 1 and "fork" in multiprocessing.get_all_start_methods()


class SnapshotPipeline:
    """The recorded blocks [from_block, to_block] of `path`, rebuilt by a worker process, with the
    statistics of a BasisHistory(*basis) fed their basis; iterate once, then close (or use as a
    context manager)."""

    def __init__(self, path: Path, meta: Mapping[str, Any], from_block: int | None, to_block: int | None,
                 basis: tuple[float, int]) -> None:
        context = multiprocessing.get_context("fork")
        self._queue: Any = context.Queue(maxsize=QUEUE_BATCHES)
        self._process = context.Process(target=_produce, args=(path, dict(meta), from_block, to_block, basis,
                                                               self._queue),
                                        name="keeper-backtest-snapshots", daemon=True)
        self._process.start()

    def __enter__(self) -> SnapshotPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ReplayedBlock]:
        while True:
            kind, payload = self._next()
            if kind == "end":
                return
            batch = _loads(payload)
            if kind == "error":
                raise batch
            yield from batch

    def _next(self) -> tuple[str, bytes]:
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)  # type: ignore[no-any-return]
            except queue.Empty:
                if self._process.is_alive():
                    continue
            try:  # it ended: anything it sent before is in the pipe by now
                return self._queue.get(timeout=_POLL_S)  # type: ignore[no-any-return]
            except queue.Empty:
                raise KeeperError(f"backtest: the snapshot worker process stopped without a word (exit code "
                                  f"{self._process.exitcode}); run again, or see the system log (out of memory?)") from None

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._queue.close()
        self._queue.join_thread()


def _produce(path: Path, meta: dict[str, Any], from_block: int | None, to_block: int | None,
             basis: tuple[float, int], out: Any) -> None:
    """The worker: read, rebuild, answer, pickle in batches, in order; then "end", or the exception."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it closes us
    gc.freeze()  # the parent's objects, inherited: the collector need not go through them (nor copy their pages)
    send = _sender(out, os.getppid())
    try:
        history = BasisHistory(*basis, windows=False)  # the spans are shipped, the main process keeps the values
        batch: list[ReplayedBlock] = []
        size = min(FIRST_BATCH_BLOCKS, BATCH_BLOCKS)
        for snapshot, l1_fee, _ in serial_blocks(meta, read_blocks(path, from_block, to_block)):
            batch.append((snapshot, l1_fee, compute_answers(snapshot, history)))
            if len(batch) >= size:
                send("blocks", _dumps(batch))
                batch, size = [], min(2 * size, BATCH_BLOCKS)
        if batch:
            send("blocks", _dumps(batch))
        send("end", b"")
    except _Orphaned:
        return
    except Exception as exc:  # noqa: BLE001 - the worker's boundary: its error is raised in the main process
        try:
            message = _dumps(exc)
            pickle.loads(message)  # and it unpickles as it was
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its words
            message = _dumps(KeeperError(f"backtest: the snapshot worker failed: {type(exc).__name__}: {exc}"))
        try:
            send("error", message)
        except _Orphaned:
            return
    out.close()
    out.join_thread()  # everything sent is in the pipe before the process ends


class _Orphaned(Exception):
    """The main process is gone (killed): nobody will read the queue."""


def _sender(out: Any, parent: int) -> Any:
    def send(kind: str, payload: bytes) -> None:
        while True:
            try:
                out.put((kind, payload), timeout=_POLL_S)
                return
            except queue.Full:
                if os.getppid() != parent:
                    raise _Orphaned from None

    return send


_REDUCERS = copyreg.dispatch_table.copy()


def _reduce_v3_pool(state: V3PoolState) -> tuple[Any, tuple[Any, ...]]:
    """A V3 pool state as its fields (its tick map is a read-only proxy, which does not pickle):
    validated where it was built, restored as it was, without validating and sorting its ticks
    again (that cost the main process more than the pickle itself)."""
    fields = dict(state.__dict__)
    fields["liquidity_net_by_tick"] = dict(state.liquidity_net_by_tick)
    return _restore_v3_pool, (fields,)


def _restore_v3_pool(fields: dict[str, Any]) -> V3PoolState:
    state = object.__new__(V3PoolState)
    fields["liquidity_net_by_tick"] = MappingProxyType(fields["liquidity_net_by_tick"])
    state.__dict__.update(fields)
    return state


_REDUCERS[V3PoolState] = _reduce_v3_pool


def _loads(payload: bytes) -> Any:
    """A batch, unpickled with the cyclic garbage collector paused: its thousands of new objects
    would otherwise set off collections that go through them all again (half the unpickling's
    time). A snapshot is a tree: nothing here waits for the collector."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(payload)
    finally:
        if paused:
            gc.enable()


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(value)
    return buffer.getvalue()
