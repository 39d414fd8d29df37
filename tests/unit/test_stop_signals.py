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
        # Once: a second Ctrl-C during the start's cleanups does not cut them short
        os.kill(os.getpid(), signal.SIGINT)
        cleaned = True
    finally:
        signals.restore(previous)
    assert installed() is None and cleaned


def test_outside_a_send_a_stop_ends_the_start_at_once() -> None:
    signals = StopSignals()
    previous = signals.install()
    try:
        with pytest.raises(StartStopped) as stopped:
            os.kill(os.getpid(), signal.SIGINT)
        assert stopped.value.signal_name == "SIGINT"
    finally:
        signals.restore(previous)


def test_a_send_that_fails_after_a_stop_ends_the_start_and_a_retried_start_sends_nothing() -> None:
    # A stop lands during the deploy, then its receipt times out: the start must not be retried
    # into a second deploy (retry_transient retries TransientErrors, not StartStopped)
    from keeper.errors import TransientError
    from keeper.startup import retry_transient

    signals = StopSignals()
    previous = signals.install()
    sent: list[str] = []

    def assemble() -> str:
        with sending():
            sent.append(f"deploy#{len(sent) + 1}")
            if len(sent) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
                raise TransientError("receipt: timed out")
        return "runtime"

    try:
        with pytest.raises(StartStopped) as stopped:
            retry_transient(assemble, budget_s=30, backoff_max_s=0.01, sleep=lambda _s: None)
    finally:
        signals.restore(previous)
    assert sent == ["deploy#1"] and isinstance(stopped.value.__context__, TransientError)


def test_a_stop_flag_set_before_a_send_sends_nothing() -> None:
    signals = StopSignals()
    signals.stop.set()  # e.g. set while a transient error was being retried
    sent: list[str] = []
    with pytest.raises(StartStopped):
        with signals.sending():
            sent.append("deposit")
    assert sent == []



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
