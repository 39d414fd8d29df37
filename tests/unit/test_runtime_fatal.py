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
