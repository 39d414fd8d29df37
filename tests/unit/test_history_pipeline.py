"""The backtest's worker process (keeper/history/pipeline.py) is started only where it can run beside
the engine: more than one core, one of them idle, and fork."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("cores", "load", "expected"), [(2, 0.3, True), (2, 1.2, False), (1, 0.0, False),
                                                          (8, 5.5, True), (8, 7.5, False)])
def test_the_worker_process_is_used_only_when_a_core_is_idle(monkeypatch, cores: int, load: float,
                                                             expected: bool) -> None:  # type: ignore[no-untyped-def]
    import os

    from keeper.history import pipeline

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert pipeline.pipeline_available() is expected
