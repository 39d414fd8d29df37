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


def test_given_the_backtests_loop_when_it_ends_then_the_collector_is_as_before_and_its_cycles_still_collected() -> None:
    import gc
    import weakref

    from keeper.history.pipeline import LOOP_GC_THRESHOLD, quiet_collector

    class Node:
        pass

    # Given the collector's settings before a backtest's loop
    before = gc.get_threshold()
    # When the loop runs with the collector kept quiet and leaves a garbage cycle behind
    with quiet_collector():
        assert gc.get_threshold()[0] == LOOP_GC_THRESHOLD and gc.get_freeze_count() > 0
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        gone = weakref.ref(node)
        del node
    # Then the settings are restored, nothing stays frozen, and a full collection frees the cycle
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert gone() is not None  # not passed through at the loop's end ...
    gc.collect()
    assert gone() is None  # ... but collected as any old garbage


def test_given_a_callers_own_freeze_when_the_loop_ends_then_it_stays_frozen() -> None:
    import gc

    from keeper.history.pipeline import quiet_collector

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with quiet_collector():
            pass
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()
