"""The simulated keeper's log ends as a live run's does: `keeper.stopping` (with its reason) and
then `keeper.stopped`, with the ticks it ran, also when the run broke off."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from keeper.simulate.command import logged_stop


def test_a_run_that_reaches_the_end_of_its_scenario_logs_scenario_end_then_stopped() -> None:
    ticks = [0]
    with capture_logs() as logs, logged_stop(lambda: ticks[0], steps=20):
        ticks[0] = 31
    assert [(e["event"], e.get("reason"), e["ticks"]) for e in logs] == [
        ("keeper.stopping", "scenario_end", 31), ("keeper.stopped", None, 31)]
    assert logs[0]["steps"] == 20 and logs[0]["phase"] == logs[1]["phase"] == "loop"


def test_a_run_that_breaks_off_logs_why_and_still_ends_with_stopped() -> None:
    with capture_logs() as logs, pytest.raises(RuntimeError, match="node gone"), logged_stop(lambda: 4, steps=20):
        raise RuntimeError("node gone")
    assert [(e["event"], e.get("reason"), e["ticks"]) for e in logs] == [
        ("keeper.stopping", "fatal", 4), ("keeper.stopped", None, 4)]
    assert "error" not in logs[0]  # told once, by simulate.failed (tests/unit/test_simulate_log_stop.py)


def test_a_run_stopped_by_ctrl_c_says_so() -> None:
    with capture_logs() as logs, pytest.raises(KeyboardInterrupt), logged_stop(lambda: 2, steps=20):
        raise KeyboardInterrupt
    assert [(e["event"], e.get("reason"), e.get("signal")) for e in logs] == [
        ("keeper.stopping", "signal", "SIGINT"), ("keeper.stopped", None, None)]


def test_a_replay_ends_with_its_own_reason() -> None:
    with capture_logs() as logs, logged_stop(lambda: 7, steps=5, end="replay_end"):
        pass
    assert (logs[0]["event"], logs[0]["reason"], logs[0]["steps"], logs[0]["ticks"]) == ("keeper.stopping", "replay_end", 5, 7)
