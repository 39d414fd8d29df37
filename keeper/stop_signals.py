"""SIGINT, SIGTERM and SIGUSR1 for `keeper run`, from its start to its stop.

The handlers only set flags (`StopSignals`); whoever runs reads them and logs: the block loop
(keeper/blockloop.py) logs `keeper.stopping` / `kill_switch.signal` with phase="loop".

During the start (journal, chain checks, provisioning, reconciling; then the warm start), a
SIGINT or SIGTERM stops it: the handler raises `StartStopped` at once, except inside a `sending()`
section (a transaction being sent at start: the executor's provisioning, the pending store's
re-broadcasts, the collateral deposit), which ends first and then raises it; nothing is sent
after it. The warm start, under the block loop, is ended by the flag instead. `keeper run` then
logs `keeper.stopping` and `keeper.stopped` with phase="start" and exits 130. A SIGUSR1 during the
start pulls the kill switch (the flag the keeper's KillSwitch reads), as in the loop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from keeper.logs import get_logger

log = get_logger("keeper.loop")
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
START, LOOP = "start", "loop"
START_STOP_EXIT = 130


class StartStopped(BaseException):
    """A SIGINT/SIGTERM ended the keeper's start (a BaseException, as KeyboardInterrupt: no
    `except Exception` of the start-up swallows it; every start-up cleanup runs)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"{signal_name} during the start")
        self.signal_name = signal_name


@dataclass
class StopSignals:
    """What the handlers set: `stop` (and `stop_signal`, its name), `kill_flag` (SIGUSR1) and
    `kill_phase` (the phase of a SIGUSR1 not yet logged). `on_stop`: also called on a stop (the
    head feed's wake: it only notifies a condition)."""

    kill_flag: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_signal: str | None = None
    kill_phase: str | None = None
    phase: str = START
    raise_on_stop: bool = True  # the start's interruptible part; the block loop reads the flag instead
    on_stop: Callable[[], None] | None = None
    _sending: int = 0

    def install(self) -> dict[int, Any]:
        """Installs the handlers; returns the previous ones (for `restore`)."""
        previous = {signum: signal.getsignal(signum) for signum in HANDLED}
        for signum in HANDLED:
            signal.signal(signum, self._handle)
        global _installed
        _installed = self
        return previous

    def restore(self, previous: dict[int, Any]) -> None:
        global _installed
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if _installed is self:
            _installed = None

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGUSR1:
            self.kill_flag.set()
            self.kill_phase = self.kill_phase or self.phase
            return
        self.stop_signal = self.stop_signal or signal.Signals(signum).name
        self.stop.set()
        if self.on_stop is not None:
            self.on_stop()
        self._stop_start()

    def log_kill_signal(self, action: str) -> None:
        """`kill_switch.signal` for a SIGUSR1 received since the last call (by the thread that runs)."""
        if self.kill_phase is not None:
            log.warning("kill_switch.signal", action=action, phase=self.kill_phase)
            self.kill_phase = None

    def _stop_start(self) -> None:
        """Raises `StartStopped` once, outside a `sending()` section, if a stop came during the
        start: once, so that a second Ctrl-C does not cut the start-up's cleanups short."""
        if self.raise_on_stop and self._sending == 0 and self.stop.is_set():
            self.raise_on_stop = False
            raise StartStopped(self.stop_signal or "signal")

    @contextmanager
    def sending(self) -> Iterator[None]:
        """A send the stop waits for. A stop already asked: nothing is sent (a start retried after
        a transient error does not send again). A stop during it: `StartStopped` after it, also
        when the send failed (its error is the `StartStopped`'s context; the start is not retried)."""
        self._stop_start()
        self._sending += 1
        try:
            yield
        finally:
            self._sending -= 1
            self._stop_start()


_installed: StopSignals | None = None


@contextmanager
def sending() -> Iterator[None]:
    """A transaction sent at start: a SIGINT/SIGTERM meanwhile stops the start after it, not inside
    it (see the module docstring). Without installed handlers: nothing to hold back."""
    signals = _installed
    if signals is None:
        yield
        return
    with signals.sending():
        yield


def installed() -> StopSignals | None:
    """The handlers `keeper run` installed for its start, if any: the runtime it assembles takes
    their kill flag (a SIGUSR1 at start pulls its kill switch) and hands them to the block loop."""
    return _installed


def log_start_stopped(signal_name: str) -> None:
    log.info("keeper.stopping", reason="signal", signal=signal_name, phase=START, ticks=0)
    log.info("keeper.stopped", phase=START, ticks=0)
