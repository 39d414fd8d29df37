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


def test_given_pool_states_on_one_tick_map_when_a_batch_is_pickled_then_they_come_back_equal_sharing_one_read_only_map() -> None:
    import pickletools
    from types import MappingProxyType

    from keeper.history.pipeline import _BLOCKS, _dumps, _loads
    from keeper.venues.uniswap_v3_math import V3PoolState

    # Given three states of one pool on one decoded tick map (the collector's, block after block) and one on another
    ticks = {-120: 5, 60: -5}
    states = [V3PoolState(2**96 + i, i, 10**18, 3000, 60, ticks, (-15360, 15299)) for i in range(3)]
    other = V3PoolState(2**96, 0, 10**18, 3000, 60, {-60: 7, 120: -7}, (-15360, 15299))
    assert states[0].liquidity_net_by_tick is states[2].liquidity_net_by_tick  # one proxy for the map
    # When they are pickled as a batch and unpickled
    message = _dumps(states + [other], _BLOCKS)
    back = _loads(memoryview(message)[1:])
    # Then each is equal to its original, field by field, its map read-only, the shared map once in the message
    assert back == states + [other]
    for got, sent in zip(back, states + [other]):
        assert got.__dict__ == sent.__dict__ and isinstance(got.liquidity_net_by_tick, MappingProxyType)
    assert back[0].liquidity_net_by_tick is back[2].liquidity_net_by_tick is not back[3].liquidity_net_by_tick
    reduces = sum(1 for op, _, _ in pickletools.genops(message[1:]) if op.name == "REDUCE")
    assert reduces == 2 + 2  # MappingProxyType looked up once (import, getattr), then called per map: 2 maps
    # And the map still refuses to be changed
    with pytest.raises(TypeError):
        back[0].liquidity_net_by_tick[60] = 0  # type: ignore[index]
