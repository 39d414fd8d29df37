"""Warm start: the keeper's basis and index histories filled from the chain's recent past before
its first live tick, so that a restart does not leave it blind.

Live, every tick records each (market, spot venue)'s tradable basis (compute_signals ->
BasisHistory.zscore_then_record) and each market's index (IndexHistory.record). A keeper that has
just started has neither: no z-score until `strategies.basis_min_samples` blocks have been seen,
and for the next `strategies.basis_window_s` seconds statistics (centre, MAD scale, the AR(1)
half-life) from a short, growing window. The warm start reads the last `warm_start_blocks` blocks,
every block (the observation spacing is the live one: the AR(1) fit reads the median spacing), each
pinned through the same snapshot read as a live tick (SnapshotCollector.fetch_snapshot(block)),
keeps of each only what a tick records (keeper/signals.py past_block: its basis per market and
venue, its index per market, the vAMM mids the pair desk records; not the snapshot with its pools'
tick maps) and records them through
the engine (Engine.record_past: the same calls a tick makes, the same numbers), oldest first.
Nothing is decided, planned or sent for a past block.

How far back: `warm_start_blocks` blocks ending at the start-up snapshot's block (its own read is
reused), at most the basis history's `max_samples`, and no further back than `basis_window_s`
seconds before that block (older observations would fall out of the window at once; the newest
`basis_min_samples` + 1 are read whatever their age, as the history keeps them).

Reading goes newest first and stops at the first block that cannot be read (a node that keeps only
recent state: "missing trie node", "header not found", a block before the contracts existed), so
the history is the newest contiguous run; the `warm_start.done` event (warning
`warm_start.partial` when it stopped early) carries the numbers: blocks asked, read, the first
unreadable block and why, seconds. It never raises: a failed read ends the warm start, never the
keeper; a snapshot whose recording raises is logged (`warm_start.failed`) and skipped, as a tick
that raises would be. A `warm_start.progress` event every fifth of the range (at most every
PROGRESS_EVERY blocks). Reading also stops once `strategies.warm_start_max_s` seconds are spent (a
node that answers slowly, but answers): open positions are not watched while it reads.

It runs inside the block loop (keeper/blockloop.py, through Runtime.warm_up), after the signal
handlers are in place: SIGINT/SIGTERM during it end the reading (`should_stop`) and the loop stops
without a tick, as after any tick. Blocks mined while it read (a 30-second read is 15 blocks on a
2-second chain) are read next, oldest first, up to the head (`latest`, asked again once reached),
within the same budget; the events' `caught_up` counts them. A block mined after that coalesces
into the first tick, as heads do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from keeper.logs import get_logger
from keeper.signals import PastBlock, past_block
from keeper.types import MarketSnapshot

log = get_logger("keeper.warm_start")
PROGRESS_EVERY = 500  # blocks read between two progress events, at most (a fifth of the range, at least)


class _Recorder(Protocol):
    """What the warm start needs of the engine (keeper/engine.py Engine)."""

    collector: Any  # keeper.collect.SnapshotCollector: .fetch_snapshot(block)
    history: Any  # keeper.basis_history.BasisHistory: .window_s, .min_samples, .max_samples

    def record_past(self, past: PastBlock) -> None: ...


@dataclass(frozen=True)
class WarmStartReport:
    asked: int  # blocks configured (warm_start_blocks)
    planned: int  # after the caps (max_samples, the chain's first block)
    read: int  # blocks recorded, the start-up snapshot's included
    oldest_block: int | None  # the oldest block recorded (None: nothing)
    first_unreadable: int | None  # the newest block that could not be read (None: none failed)
    reason: str | None  # why it stopped early: the read's error, the window's age, the budget, a stop
    seconds: float
    caught_up: int = 0  # blocks after the start-up block (mined while it read), recorded after it


def warm_start(engine: _Recorder, start: MarketSnapshot, blocks: int, *, max_s: float | None = None,
               clock: Callable[[], float] = time.perf_counter, should_stop: Callable[[], bool] | None = None,
               latest: Callable[[], int] | None = None) -> WarmStartReport:
    """Fill `engine`'s histories with the `blocks` blocks ending at `start` (the module notes);
    `blocks` = 0: nothing read, nothing logged. Never raises for a block that cannot be read.
    `max_s`: reading stops once this many seconds are spent (a slow node: the blocks read so far
    are kept, and the keeper starts). `should_stop`: asked before every read; true ends the reading
    (a stop signal). `latest`: the chain's head; the blocks after `start` up to it are read after
    the past ones (mined meanwhile), within the same budget."""
    started = clock()
    if blocks <= 0:
        return WarmStartReport(0, 0, 0, None, None, None, 0.0)
    history = engine.history
    planned = min(blocks, history.max_samples, start.block_number + 1)
    cutoff_s = start.block_timestamp - history.window_s
    keep_anyway = history.min_samples + 1
    pasts = [past for past in (_observe(start),) if past is not None]
    first_unreadable: int | None = None
    reason: str | None = None
    progress_every = max(1, min(PROGRESS_EVERY, planned // 5))
    stopped_early = False

    def out_of_time() -> str | None:
        if should_stop is not None and should_stop():
            return "stop requested"
        if max_s is not None and clock() - started > max_s:
            return f"time budget spent: {max_s:g} s (strategies.warm_start_max_s)"
        return None

    for block in range(start.block_number - 1, start.block_number - planned, -1):
        if (why := out_of_time()) is not None:
            reason, stopped_early = why, True
            break
        try:
            snapshot = engine.collector.fetch_snapshot(block)
        except Exception as exc:  # noqa: BLE001 - any unreadable past block ends the warm start, never the keeper
            first_unreadable, reason = block, f"{type(exc).__name__}: {exc}"
            break
        if snapshot.block_timestamp < cutoff_s and len(pasts) >= keep_anyway:
            reason = f"block {block} is older than strategies.basis_window_s ({history.window_s:g} s)"
            break
        past = _observe(snapshot)
        if past is None:
            continue
        pasts.append(past)
        if len(pasts) % progress_every == 0:
            log.info("warm_start.progress", read=len(pasts), planned=planned, block=block,
                     seconds=round(clock() - started, 2))
    for past in reversed(pasts):  # oldest first, as the ticks would have recorded them
        _record(engine, past)
    caught_up, newest = 0, start.block_number
    if latest is not None and not stopped_early:
        caught_up, why = _catch_up(engine, start.block_number, latest, out_of_time)
        newest = start.block_number + caught_up
        if why is not None:
            reason, stopped_early = (why if reason is None else f"{reason}; {why}"), True
    report = WarmStartReport(blocks, planned, len(pasts), pasts[-1].block_number if pasts else None, first_unreadable,
                             reason, clock() - started, caught_up)
    fields = dict(asked=report.asked, planned=report.planned, read=report.read, oldest_block=report.oldest_block,
                  newest_block=newest, caught_up=caught_up, first_unreadable=report.first_unreadable,
                  reason=report.reason, seconds=round(report.seconds, 3))
    if first_unreadable is not None or stopped_early:
        log.warning("warm_start.partial", **fields)
    else:
        log.info("warm_start.done", **fields)
    return report


def _observe(snapshot: MarketSnapshot) -> PastBlock | None:
    try:
        return past_block(snapshot)
    except Exception as exc:  # noqa: BLE001 - as a tick that raises: logged, and the next block goes on
        log.error("warm_start.failed", block=snapshot.block_number, error=repr(exc))
        return None


def _record(engine: _Recorder, past: PastBlock) -> None:
    try:
        engine.record_past(past)
    except Exception as exc:  # noqa: BLE001 - as a tick that raises: logged, and the next block goes on
        log.error("warm_start.failed", block=past.block_number, error=repr(exc))


def _catch_up(engine: _Recorder, after: int, latest: Callable[[], int],
              out_of_time: Callable[[], str | None]) -> tuple[int, str | None]:
    """Read and record the blocks after `after` up to the head, oldest first, until the head is
    reached (asked again once reached: blocks keep coming while it reads), the budget is spent or
    a read fails. Returns the blocks recorded and why it stopped short (None: at the head)."""
    block, head = after + 1, -1
    while True:
        if block > head:
            try:
                head = latest()
            except Exception as exc:  # noqa: BLE001 - the first live tick reads the head again
                return block - after - 1, f"catch-up: head unreadable: {type(exc).__name__}: {exc}"
            if block > head:
                return block - after - 1, None
        if (why := out_of_time()) is not None:
            return block - after - 1, f"catch-up: {why}"
        try:
            snapshot = engine.collector.fetch_snapshot(block)
        except Exception as exc:  # noqa: BLE001 - the first live tick carries on from the head
            return block - after - 1, f"catch-up: block {block}: {type(exc).__name__}: {exc}"
        past = _observe(snapshot)
        if past is not None:
            _record(engine, past)
        block += 1
