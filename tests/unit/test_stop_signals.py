"""The signal handlers only set flags (keeper/stop_signals.py); at start a SIGINT/SIGTERM ends the
start, but never inside a transaction being sent; the block loop tells what the flags say."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from structlog.testing import capture_logs

from keeper.blockloop import run_blocks
from keeper.stop_signals import StartStopped, StopSignals, installed, sending
from tests.unit.test_runtime_fatal import FatalAfter, Heads, _runtime


def test_a_stop_during_a_send_at_start_waits_for_the_send_then_ends_the_start() -> None:
    signals = StopSignals()
    previous = signals.install()
    sent: list[str] = []
    try:
        assert installed() is signals
        with pytest.raises(StartStopped) as stopped:
            with sending():
                os.kill(os.getpid(), signal.SIGTERM)  # lands inside the send
                sent.append("deposit")  # the send completes
            sent.append("after")  # never reached: nothing is sent after the signal
        assert stopped.value.signal_name == "SIGTERM" and sent == ["deposit"]
        # Outside a send, the next stop ends the start at once
        with pytest.raises(StartStopped):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signals.restore(previous)
    assert installed() is None


def test_sigusr1_at_start_only_sets_the_kill_flag_and_the_loop_tells_it_with_its_phase() -> None:
    signals = StopSignals()
    previous = signals.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # during the start: no exception, no event
        assert signals.kill_flag.is_set() and signals.kill_phase == "start"
        engine = FatalAfter()
        runtime = _runtime(engine, Heads())
        runtime.signals, runtime.kill_flag = signals, signals.kill_flag
        with capture_logs() as logs:
            run_blocks(runtime, blocks=None)  # ends on the engine's fatal error at its third tick
    finally:
        signals.restore(previous)
    told = [e for e in logs if e["event"] == "kill_switch.signal"]
    assert [(e["phase"], e["action"]) for e in told] == [("start", "unwind")]


def test_a_sigterm_in_the_loop_is_told_by_the_loop_with_the_tick_count_of_keeper_stopped() -> None:
    engine = FatalAfter()
    heads = Heads()
    real = heads.wait_newer

    def wait_then_stop(last_block: int, stop: threading.Event) -> object:
        if heads.number == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(last_block, stop)

    heads.wait_newer = wait_then_stop  # type: ignore[method-assign]
    runtime = _runtime(engine, heads)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    with capture_logs() as logs:
        run_blocks(runtime, blocks=None)
    assert {s: signal.getsignal(s) for s in saved} == saved  # the loop's own handlers are gone again
    stopping = next(e for e in logs if e["event"] == "keeper.stopping")
    stopped = next(e for e in logs if e["event"] == "keeper.stopped")
    assert (stopping["reason"], stopping["signal"], stopping["phase"]) == ("signal", "SIGTERM", "loop")
    assert stopping["ticks"] == stopped["ticks"] == 2 and stopped["phase"] == "loop"


def test_a_stop_during_the_warm_start_ends_the_start_without_a_tick() -> None:
    engine = FatalAfter()
    runtime = _runtime(engine, Heads())
    runtime.warm_up = lambda _should_stop: os.kill(os.getpid(), signal.SIGTERM)
    with capture_logs() as logs, pytest.raises(StartStopped):
        run_blocks(runtime, blocks=None)
    assert engine.ticks == 0 and not [e for e in logs if e["event"] == "keeper.stopping"]


