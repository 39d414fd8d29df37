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


def test_given_a_snapshot_and_its_signals_when_pickled_as_field_values_then_they_come_back_equal_field_for_field() -> None:
    import pickletools

    from keeper.history.pipeline import _BLOCKS, _BY_FIELDS, _dumps, _loads
    from keeper.signals import Signal
    from keeper.types import (MarketSnapshot, MarketView, OracleState, PerpAccountMarket, PerpAccountState,
                              PerpMarketState, Unavailable, V2PairState)
    from keeper.venues.uniswap_v3_math import V3PoolState

    # Given a block's snapshot (every per-block class in it) and a signal
    pool = V3PoolState(2**96, 0, 10**18, 3000, 60, {-60: 7, 120: -7}, (-15360, 15299))
    perp = PerpMarketState("0xbase", pool, 3 * 10**21, 3 * 10**21 + 1, 3 * 10**21 - 1, 3 * 10**21 + 2, 1000, 0, 0,
                           100_000, 900, band_last_updated_tick=7)
    view = MarketView("ETH", 18, False, perp, V2PairState("0xpair", 10**21, 3 * 10**9), pool, OracleState(3 * 10**11, 8, 5))
    account = PerpAccountState("0xacct", 10**22, 10**10, 0, 0, {"ETH": PerpAccountMarket(-10**18, 3 * 10**21, 5)})
    snapshot = MarketSnapshot(12, 1_700_000_000, 7, {"ETH": view, "BTC": MarketView(
        "BTC", 8, True, Unavailable("no read"), Unavailable("x"), Unavailable("y"), Unavailable("z"))}, account, 2)
    signal = Signal("ETH", "uniswap_v3", 12, 3000.5, 3001.0, 3000.0, 1.5, 1e-5, 0.08, 0.08, -0.08, None, 3001.1, 2.0)
    # When they are pickled and unpickled as a batch is
    message = _dumps([(snapshot, 0, None, [signal])], _BLOCKS)
    ((back, _, _, (back_signal,)),) = _loads(memoryview(message)[1:])
    # Then every object is equal to its original, of its class, with the same fields in the same order
    assert back == snapshot and back_signal == signal
    pairs = [(back_signal, signal), (back.account, account), (back.account.markets["ETH"], account.markets["ETH"])]
    for got_view, sent_view in zip(back.markets.values(), snapshot.markets.values()):
        pairs += [(got_view, sent_view), (got_view.perp, sent_view.perp), (got_view.spot_v2, sent_view.spot_v2),
                  (got_view.oracle, sent_view.oracle)]
    for got, sent in pairs:
        assert type(got) is type(sent) and list(got.__dict__.items()) == list(sent.__dict__.items())
    # And those classes went as their field values (a call of the class), not as a dict of fields
    builds = sum(1 for op, _, _ in pickletools.genops(message[1:]) if op.name == "BUILD")
    assert builds == 2 + 4  # the pool state (one object for both uses), the snapshot and 4 Unavailable: not among them
    assert {type(got) for got, _ in pairs} - {Unavailable} <= set(_BY_FIELDS)


def test_a_class_whose_constructor_validates_is_refused_as_field_values() -> None:
    from keeper.history.pipeline import _by_fields
    from keeper.venues.uniswap_v3_math import V3PoolState

    with pytest.raises(TypeError, match="V3PoolState"):
        _by_fields(V3PoolState)
