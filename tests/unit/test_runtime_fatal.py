"""A fatal error caught inside a tick stops the block loop in order (the CLI then exits 1); a
SIGTERM that lands before the first head is not lost."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from structlog.testing import capture_logs

from keeper.errors import ChainMismatchError
from keeper.runtime import run_loop


class FatalAfter:
    """An engine whose third tick meets a fatal error (recorded, not raised: the boundary's way)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.last_block = -1
        self.fatal: BaseException | None = None
        self.metrics = SimpleNamespace(rpc_errors=SimpleNamespace(inc=lambda: None), publish_pnl=lambda _split: None)

    def tick(self, head_block: int | None = None) -> object:
        self.ticks += 1
        self.last_block = head_block if head_block is not None else self.last_block + 1
        if self.ticks == 3:
            self.fatal = ChainMismatchError("the node switched chains")
            return None
        return SimpleNamespace(snapshot=None, outcomes=())


class Heads:
    """A head feed that announces block after block (polled), after `before_first` has run."""

    ws_url = None
    mode = "poll"
    poll_interval_s = 0.0
    reconnects = 0
    missed_blocks = 0

    def __init__(self, before_first: Callable[[], None] | None = None) -> None:
        self.before_first = before_first
        self.number = 0

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self) -> None: ...

    def wait_newer(self, last_block: int, stop: threading.Event) -> Any:
        if self.before_first is not None:
            self.before_first()
            self.before_first = None
        if stop.is_set():
            return None
        self.number += 1
        return SimpleNamespace(number=self.number, source="poll")


def _runtime(engine: FatalAfter, heads: Heads) -> Any:
    return SimpleNamespace(engine=engine, ticks=0, driver=None, kill_flag=threading.Event(), heads=heads, rpc=None, signals=None, warm_up=lambda _should_stop: None,
                           journal=SimpleNamespace(realized_since=lambda _since_s: None),
                           config=SimpleNamespace(risk=SimpleNamespace(kill_switch_action="unwind")))


def _restoring_signals(run: Callable[[], None]) -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    try:
        run()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_given_a_fatal_error_in_a_tick_then_the_loop_stops_after_it() -> None:
    engine = FatalAfter()
    runtime = _runtime(engine, Heads())
    with capture_logs() as logs:
        _restoring_signals(lambda: run_loop(runtime, blocks=None))  # returns only because of the fatal error
    assert engine.ticks == 3 and runtime.ticks == 2
    assert [e["event"] for e in logs][-1] == "keeper.stopped"


def test_given_sigterm_before_the_first_head_then_the_loop_still_stops() -> None:
    engine = FatalAfter()
    runtime = _runtime(engine, Heads(before_first=lambda: os.kill(os.getpid(), signal.SIGTERM)))
    _restoring_signals(lambda: run_loop(runtime, blocks=None))  # returns: the signal was not lost
    assert engine.ticks == 0


def test_given_a_journal_read_that_fails_for_the_pnl_metric_then_the_loop_goes_on_and_logs_it() -> None:
    import sqlite3

    # Given the PnL metric's journal read failing (a locked database), at start and after ticks
    engine = FatalAfter()
    runtime = _runtime(engine, Heads())

    def locked(_since_s: float) -> None:
        raise sqlite3.OperationalError("database is locked")

    runtime.journal = SimpleNamespace(realized_since=locked)
    with capture_logs() as logs:
        _restoring_signals(lambda: run_loop(runtime, blocks=None))
    # Then the loop ticks on until its own stop (the fatal error of tick 3), each failure an event
    assert engine.ticks == 3
    assert any(e["event"] == "metrics.pnl_failed" and "locked" in e["error"] for e in logs)
