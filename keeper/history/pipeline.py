"""The backtest's recorded snapshots, serially or from a second process.

Rebuilding a snapshot (reading the Parquet parts, decoding the recorded bytes with the live
collector) depends on the recorded market data only, never on what the keeper did. So on a
machine with a second core, `keeper backtest` hands it to a worker process: the worker reads and
rebuilds blocks in order and sends them in batches through a bounded pipe while the main process
runs the engine on the blocks before them. With each snapshot it sends the basis statistics the
engine will read at that block, and its signals (basis_answers.py: they too depend on the
recorded data only).
Same snapshots, same statistics, same order, same decisions: the worker runs the serial path's
code, and the main process only unpickles its output.

- Bounded: the batches (BATCH_BLOCKS blocks each) wait in a pipe of PIPE_BYTES (about 8 of
  them), so a month of blocks never sits in memory; the worker waits while the engine is behind.
- Errors: the worker sends its exception instead of the next batch; the main process raises it
  at that block, after the blocks before it were backtested, as the serial path would. A worker
  that dies without a word (killed, out of memory) is an error naming its exit code.
- Shutdown: closing the stream (the end, an error in the engine, Ctrl-C) terminates the worker; a
  worker whose main process was killed stops at its next write (the pipe is broken).
- The worker is forked (it inherits the imports: no second start-up); where fork is not the
  platform's way, with one core, or when the other cores are busy (pipeline_available), the
  backtest runs serially. The sweep's jobs, which already
  use every core, run serially too.
"""

from __future__ import annotations

import copyreg
import dataclasses
import gc
import importlib
import io
import multiprocessing
import operator
import os
import pickle
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

from keeper.basis_history import BasisHistory
from keeper.errors import KeeperError
from keeper.history.basis_answers import Answers, compute_answers
from keeper.signals import Signal, SkippedSignal
from keeper.history.replay import rebuild_snapshot, replay_collector
from keeper.history.store import BlockRecord, read_blocks
from keeper.types import (MarketSnapshot, MarketView, OracleState, PerpAccountMarket, PerpAccountState, PerpMarketState,
                          V2PairState)

BATCH_BLOCKS = 100  # one pickle per batch: pool states unchanged between its blocks are sent once
FIRST_BATCH_BLOCKS = 10  # the engine starts after 10 blocks, not 100; the batches double up to BATCH_BLOCKS
MIN_PIPELINE_BLOCKS = 2 * BATCH_BLOCKS  # below this, forking costs more than it saves

# the snapshot, the recorded L1 fee (wei) of a typical trade, the basis statistics and the signals (None: serial)
ReplayedBlock = tuple[MarketSnapshot, int, Answers | None, list[Signal | SkippedSignal] | None]


def l1_fee_wei(record: BlockRecord) -> int:
    return (record.l1[4] or 0) if record.l1 else 0


def serial_blocks(meta: Mapping[str, Any], records: Iterator[BlockRecord] | Sequence[BlockRecord]) -> Iterator[ReplayedBlock]:
    collector, multicall = replay_collector(meta)
    for record in records:
        yield rebuild_snapshot(collector, multicall, record), l1_fee_wei(record), None, None


def pipeline_available() -> bool:
    """A second core to run on, idle, and fork to start the worker with. Idle: the one-minute load
    average leaves more than a core free (as `make -l` asks before it starts a job); on a machine
    whose other core is busy, the worker would only take turns with what runs there, and the
    engine would wait for it (measured: slower than the serial run at a load of 2 on 2 cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average here: take the cores as free
        load = 0.0
    return cores > 1 and load < cores - 1 and "fork" in multiprocessing.get_all_start_methods()


class SnapshotPipeline:
    """The recorded blocks [from_block, to_block] of `path`, rebuilt by a worker process, with the
    statistics of a BasisHistory(*basis) fed their basis; iterate once, then close (or use as a
    context manager)."""

    def __init__(self, path: Path, meta: Mapping[str, Any], from_block: int | None, to_block: int | None,
                 basis: tuple[float, int]) -> None:
        context = multiprocessing.get_context("fork")
        self._reader, writer = context.Pipe(duplex=False)
        _widen(writer)
        self._process = context.Process(target=_produce, name="keeper-backtest-snapshots", daemon=True,
                                        args=(path, dict(meta), from_block, to_block, basis, writer, self._reader))
        self._process.start()
        writer.close()  # the worker holds the only writing end: its end is the pipe's end of file

    def __enter__(self) -> SnapshotPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ReplayedBlock]:
        while True:
            message = self._receive()
            kind, payload = message[:1], memoryview(message)[1:]
            if kind == _END:
                return
            batch = _loads(payload)
            if kind == _ERROR:
                raise batch
            yield from batch

    def _receive(self) -> bytes:
        try:
            return self._reader.recv_bytes()  # type: ignore[no-any-return]
        except EOFError:
            self._process.join()
            raise KeeperError(f"backtest: the snapshot worker process stopped without a word (exit code "
                              f"{self._process.exitcode}); run again, or see the system log (out of memory?)") from None

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._reader.close()


_BLOCKS, _ERROR, _END = b"B", b"E", b"."
PIPE_BYTES = 1 << 20  # the pipe's buffer, where Linux lets us widen it: several batches in flight


def _widen(connection: Any) -> None:
    """The pipe holds PIPE_BYTES (about 8 batches) instead of 64 KiB, where the platform allows."""
    try:
        import fcntl

        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above the system's limit: the pipe keeps its default size


def _produce(path: Path, meta: dict[str, Any], from_block: int | None, to_block: int | None,
             basis: tuple[float, int], out: Any, reader: Any) -> None:
    """The worker: its messages, each sent as soon as it is built (the write waits while the pipe
    is full: the engine is behind). A broken pipe (the main process closed it, or died) ends it."""
    reader.close()  # the main process's end, inherited: with it open here, the pipe would never break
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it closes us
    try:
        with quiet_collector():  # the parent's objects, inherited, and each batch in the making: not gone through
            for message in _messages(path, meta, from_block, to_block, basis):
                out.send_bytes(message)
    except OSError:  # the pipe's: nobody reads any more
        pass
    finally:
        out.close()


LOOP_GC_THRESHOLD = 100_000  # young container objects before a collection, in a backtest's loop (default 700)


@contextmanager
def quiet_collector() -> Iterator[None]:
    """The cyclic garbage collector kept off what the backtest's loop holds: the objects alive
    when it starts are frozen out of its passes, and it runs after LOOP_GC_THRESHOLD new container
    objects instead of 700. A batch of snapshots (thousands of objects, alive until their blocks
    are done) otherwise sets off a collection that goes through all of it, one or two per batch:
    11-17 us per driven block of the engine's process (gc.callbacks, 2026-11-30). A snapshot is a
    tree, freed by its reference counts; what does make cycles is still collected, later: what the
    loop leaves alive (the report's samples) joins the oldest generation, not passed through now."""
    threshold, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(LOOP_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.freeze()  # the loop's survivors too (a freeze empties the young generations without a pass) ...
        gc.set_threshold(*threshold)
        if not frozen_before:  # (a caller's own freeze stays as it was)
            gc.unfreeze()  # ... then all of it is the oldest generation's, for the full collections


def _messages(path: Path, meta: dict[str, Any], from_block: int | None, to_block: int | None,
              basis: tuple[float, int]) -> Iterator[bytes]:
    """Read, rebuild, answer, pickle in batches, in order; then the end, or the exception (after
    the blocks before it, as the serial path has backtested them when it raises)."""
    batch: list[ReplayedBlock] = []
    try:
        history = BasisHistory(*basis, windows=False)  # the spans are shipped, the main process keeps the values
        size = min(FIRST_BATCH_BLOCKS, BATCH_BLOCKS)
        for snapshot, l1_fee, _, _ in serial_blocks(meta, read_blocks(path, from_block, to_block)):
            signals, answers = compute_answers(snapshot, history)
            batch.append((snapshot, l1_fee, answers, signals))
            if len(batch) >= size:
                yield _dumps(batch, _BLOCKS)
                batch, size = [], min(2 * size, BATCH_BLOCKS)
        if batch:
            yield _dumps(batch, _BLOCKS)
        yield _END
    except Exception as exc:  # noqa: BLE001 - the worker's boundary: its error is raised in the main process
        sent = None
        if batch:  # the blocks built before the failing one go first
            try:
                sent = _dumps(batch, _BLOCKS)
            except Exception:  # noqa: BLE001 - the batch itself does not pickle: the error says why
                pass
        if sent is not None:
            yield sent
        try:
            message = _dumps(exc, _ERROR)
            pickle.loads(memoryview(message)[1:])  # and it unpickles as it was
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its words
            message = _dumps(KeeperError(f"backtest: the snapshot worker failed: {type(exc).__name__}: {exc}"), _ERROR)
        yield message


def _reducers() -> dict[type, Any]:
    """The pickler's reducers for one message. A V3 pool state pickles as any frozen dataclass
    (its fields, restored by the unpickler itself: validated where it was built, not validated
    and sorted again), but for its tick map, a read-only proxy, which does not pickle: it goes as
    a copy of the map, unpickled into a proxy of it by MappingProxyType itself (no Python function
    per pool). The states that share a tick map (one pool's, block after block, while its ticks
    stay) share one proxy (uniswap_v3_math.V3PoolState), so a batch pickles a pool's map once, not
    once per block (a third of the bytes, for 4-6 ticks a pool), and the main process's states
    share it too."""
    table = copyreg.dispatch_table.copy()
    table.update(_BY_FIELDS)
    table[MappingProxyType] = _reduce_mapping_proxy
    table[_MappingProxyType] = _MappingProxyType.reduce
    table[_Module] = _Module.reduce
    return table


def _by_fields(cls: type) -> Any:
    """The reducer of a frozen dataclass whose constructor only stores its fields (keeper/frozen.py's
    quick_init, no __post_init__): the class and the tuple of its field values (one C call,
    attrgetter), unpickled by calling the class on them. Against the default (a dict of the
    fields, built by the unpickler, then copied into the instance's): pickled in 0.7 of the time,
    unpickled in half (400 signals, 2026-12-01)."""
    fields = dataclasses.fields(cls)
    if ("__post_init__" in vars(cls) or cls.__init__.__code__.co_filename != "<string>"  # type: ignore[misc]
            or not all(f.init for f in fields)):
        raise TypeError(f"{cls.__name__}: its constructor does more than store its fields")
    values = operator.attrgetter(*(f.name for f in fields))

    def reduce(value: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(value)

    return reduce


# the per-block classes that pickle as their field values (a V3 pool state validates and is not one of them)
_BY_FIELDS = {cls: _by_fields(cls) for cls in (Signal, MarketView, PerpMarketState, V2PairState, OracleState,
                                                PerpAccountMarket, PerpAccountState)}


def _reduce_mapping_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _MAPPING_PROXY, (proxy.copy(),)


class _MappingProxyType:
    """MappingProxyType as a message names it: pickle cannot (its class calls itself
    builtins.mappingproxy, not a name there), so the unpickler looks it up in `types` once per
    message, then calls it per tick map."""

    def __call__(self, mapping: Mapping[Any, Any]) -> MappingProxyType[Any, Any]:
        return MappingProxyType(mapping)

    def reduce(self) -> tuple[Any, tuple[Any, str]]:
        return getattr, (_Module("types"), "MappingProxyType")


class _Module:
    """A module in a message: imported by the unpickler."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def reduce(self) -> tuple[Any, tuple[str]]:
        return importlib.import_module, (self.name,)


_MAPPING_PROXY = _MappingProxyType()


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


def _dumps(value: Any, kind: bytes) -> bytes:
    """`kind`, then the pickle of `value` (one buffer, no copy to join them)."""
    buffer = io.BytesIO()
    buffer.write(kind)
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _reducers()
    pickler.dump(value)
    return buffer.getvalue()
