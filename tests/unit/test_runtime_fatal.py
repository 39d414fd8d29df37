"""A fatal error caught inside a tick stops the loop in order (the CLI then exits 1); the scheduler
never sees an exception."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from structlog.testing import capture_logs

from keeper.errors import ChainMismatchError
from keeper.runtime import run_loop


class FatalAfter:
    """An engine whose third tick meets a fatal error (recorded, not raised: the boundary's way)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.fatal: BaseException | None = None

    def tick(self) -> object:
        self.ticks += 1
        if self.ticks == 3:
            self.fatal = ChainMismatchError("the node switched chains")
            return None
        return object()


def test_given_a_fatal_error_in_a_tick_then_the_loop_stops_after_it() -> None:
    engine = FatalAfter()
    runtime = SimpleNamespace(engine=engine, ticks=0, driver=None, kill_flag=threading.Event(),
                              config=SimpleNamespace(chain=SimpleNamespace(poll_interval_s=0.01),
                                                     risk=SimpleNamespace(kill_switch_action="unwind")))
    with capture_logs() as logs:
        run_loop(runtime, blocks=None)  # type: ignore[arg-type]  # returns only because of the fatal error
    assert engine.ticks == 3 and runtime.ticks == 2
    assert [e["event"] for e in logs][-1] == "keeper.stopped"


def test_given_sigterm_before_the_scheduler_runs_then_the_loop_still_stops(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    import keeper.runtime as runtime_module

    original_start = runtime_module.BlockingScheduler.start

    def start_after_a_signal(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)  # lands after the handlers are set, before the scheduler runs
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(runtime_module.BlockingScheduler, "start", start_after_a_signal)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    engine = FatalAfter()
    runtime = SimpleNamespace(engine=engine, ticks=0, driver=None, kill_flag=threading.Event(),
                              config=SimpleNamespace(chain=SimpleNamespace(poll_interval_s=0.01),
                                                     risk=SimpleNamespace(kill_switch_action="unwind")))
    try:
        run_loop(runtime, blocks=None)  # type: ignore[arg-type]  # returns: the signal was not lost
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert engine.ticks == 0
