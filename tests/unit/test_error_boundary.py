"""The engine's error boundary: an exception of each group raised from inside a tick is handled by
the engine (never raised to the scheduler), by group; JSON-RPC try-again replies are transient."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.boundary import ErrorBoundary, unquotable
from keeper.config import KeeperConfig
from keeper.engine import Engine
from keeper.errors import (
    ChainMismatchError,
    ErrorGroup,
    RpcError,
    SkipOpportunity,
    SnapshotWrongBlock,
    TransientError,
    TransientRpcError,
    classify_error,
    rpc_error_from_reply,
    state_missing,
)
from keeper.journal import Journal
from keeper.metrics import KeeperMetrics
from keeper.types import Direction, Position


class RaisingCollector:
    """A collector whose snapshot read raises what the test chose, from inside the tick."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.rpc = SimpleNamespace(block_number=lambda: 100)
        self.sources = SimpleNamespace(markets=())

    def fetch_snapshot(self, block: Any = None) -> Any:
        raise self.exc


def engine_raising(exc: BaseException, tmp_path: Path) -> Engine:
    return Engine(config=KeeperConfig(), collector=RaisingCollector(exc), strategies=[], planner=None,  # type: ignore[arg-type]
                  executor=SimpleNamespace(mode="dry_run"), journal=Journal(tmp_path / "j.sqlite"),  # type: ignore[arg-type]
                  metrics=KeeperMetrics(), kill_switch=lambda: False)


def errors_counted(engine: Engine, group: str) -> float:
    return engine.metrics.registry.get_sample_value("keeper_tick_errors_total", {"group": group}) or 0.0


def test_given_a_json_rpc_try_again_reply_then_it_is_transient_and_a_revert_is_not() -> None:
    assert isinstance(rpc_error_from_reply("eth_call", -32005, "rate limited"), TransientError)
    assert isinstance(rpc_error_from_reply("eth_call", -32000, "header not found"), TransientError)
    assert isinstance(rpc_error_from_reply("eth_call", -32603, "request timed out upstream"), TransientError)
    assert isinstance(rpc_error_from_reply("eth_call", -32602, "BlockOutOfRangeError: block height is 232 but "
                                           "requested was 234"), TransientError)  # a reorg moved the head back
    revert = rpc_error_from_reply("eth_call", 3, "execution reverted: CH_TLRS")
    assert isinstance(revert, RpcError) and not isinstance(revert, TransientError)
    refused = rpc_error_from_reply("eth_sendRawTransaction", -32003, "nonce too low")
    assert not isinstance(refused, TransientError)


def test_given_each_kind_of_error_then_it_is_classified_in_its_group() -> None:
    assert classify_error(TransientRpcError("eth_call", -32005, "rate limited")) is ErrorGroup.TRANSIENT
    assert classify_error(TimeoutError()) is ErrorGroup.TRANSIENT
    assert classify_error(SkipOpportunity("below the bar")) is ErrorGroup.OPPORTUNITY
    assert classify_error(ChainMismatchError("wrong chain")) is ErrorGroup.FATAL
    assert classify_error(ValueError("position spot 0 does not match long_perp")) is ErrorGroup.UNEXPECTED


def test_given_a_transient_error_in_a_tick_then_it_is_a_warning_and_a_metric(tmp_path: Path) -> None:
    engine = engine_raising(TransientRpcError("eth_call", -32005, "rate limited"), tmp_path)
    with capture_logs() as logs:
        assert engine.tick() is None  # nothing raised
    assert errors_counted(engine, "transient") == 1 and engine.fatal is None
    assert engine.metrics.registry.get_sample_value("keeper_rpc_errors_total") == 1
    assert [e["log_level"] for e in logs if e["event"] == "tick.transient"] == ["warning"]


def test_given_a_snapshot_read_from_another_block_then_it_is_transient_and_pickles() -> None:
    import pickle

    exc = SnapshotWrongBlock("heads", expected_block=100, got_block=101, reads=3)
    assert classify_error(exc) is ErrorGroup.TRANSIENT and isinstance(exc, TransientError)
    assert str(exc) == "snapshot: the heads batch was answered from block 101, not 100, 3 reads in a row"
    again = pickle.loads(pickle.dumps(exc))  # across a process pool, its fields kept
    assert (again.phase, again.expected_block, again.got_block, again.reads, str(again)) == \
        ("heads", 100, 101, 3, str(exc))


def test_given_a_snapshot_from_another_block_in_a_tick_then_a_wrong_block_warning_skips_that_tick(
        tmp_path: Path) -> None:
    engine = engine_raising(SnapshotWrongBlock("ticks", expected_block=100, got_block=99, reads=3), tmp_path)
    with capture_logs() as logs:
        assert engine.tick() is None  # nothing raised: the tick is skipped
        assert engine.tick() is None  # and the loop goes on to the next one
    warnings = [e for e in logs if e["event"] == "snapshot.wrong_block"]
    assert [(e["log_level"], e["phase"], e["expected_block"], e["got_block"], e["reads"]) for e in warnings] == \
        [("warning", "ticks", 100, 99, 3)] * 2
    assert not [e for e in logs if e["event"] == "tick.transient"]  # one warning per skipped tick, its own
    assert errors_counted(engine, "transient") == 2 and engine.fatal is None
    assert engine.metrics.registry.get_sample_value("keeper_rpc_errors_total") == 2  # the node's answer, counted


def test_given_a_skipped_opportunity_in_a_tick_then_it_is_logged_with_its_reason(tmp_path: Path) -> None:
    engine = engine_raising(SkipOpportunity("stale oracle"), tmp_path)
    with capture_logs() as logs:
        assert engine.tick() is None
    assert errors_counted(engine, "opportunity") == 1 and engine.fatal is None
    assert [e["error"] for e in logs if e["event"] == "tick.skipped"] == ["stale oracle"]


def test_given_a_fatal_error_in_a_tick_then_the_engine_asks_for_an_orderly_stop(tmp_path: Path) -> None:
    engine = engine_raising(ChainMismatchError("the node switched chains"), tmp_path)
    with capture_logs() as logs:
        assert engine.tick() is None
    assert isinstance(engine.fatal, ChainMismatchError)
    assert [e["log_level"] for e in logs if e["event"] == "keeper.fatal"] == ["critical"]


def test_given_an_unexpected_error_in_a_tick_then_an_error_event_carries_the_traceback(tmp_path: Path) -> None:
    engine = engine_raising(ValueError("position spot 0 does not match long_perp"), tmp_path)
    with capture_logs() as logs:
        assert engine.tick() is None
        assert engine.tick() is None
    events = [e for e in logs if e["event"] == "tick.error"]
    assert len(events) == 2 and events[1]["in_a_row"] == 2
    assert "Traceback" in events[0]["traceback"] and "ValueError" in events[0]["traceback"]
    assert engine.fatal is None and errors_counted(engine, "unexpected") == 2


def test_given_n_unexpected_errors_in_a_row_in_a_market_then_it_is_quarantined() -> None:
    boundary = ErrorBoundary(KeeperMetrics(), max_failures=3)
    with capture_logs() as logs:
        for _ in range(2):
            boundary.handle(ValueError("boom"), where="execute", market="BTC")
        boundary.succeeded("BTC")  # a success resets the count
        for _ in range(2):
            boundary.handle(ValueError("boom"), where="execute", market="BTC")
        assert "BTC" not in boundary.quarantined
        boundary.handle(ValueError("boom"), where="execute", market="BTC")
    assert "BTC" in boundary.quarantined and "3 unexpected errors in a row" in boundary.quarantined["BTC"]
    assert [e["market"] for e in logs if e["event"] == "market.quarantined"] == ["BTC"]
    assert boundary.blocked({}) == boundary.quarantined


def test_given_a_position_whose_legs_cannot_be_quoted_then_its_market_is_held_not_raised() -> None:
    adopted = Position("BTC", Direction.LONG_PERP, "uniswap_v3", 10**17, 0, 1, 1, 0.0, 0)
    fine = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", -10**18, 10**18, 1, 1, 0.0, 0)
    assert "position spot 0 does not match long_perp" in (unquotable(adopted) or "")
    assert unquotable(fine) is None
    boundary = ErrorBoundary(KeeperMetrics())
    with capture_logs() as logs:
        assert list(boundary.blocked({"BTC": adopted, "ETH": fine})) == ["BTC"]
        boundary.blocked({"BTC": adopted, "ETH": fine})  # logged once, not every tick
        assert boundary.blocked({"ETH": fine}) == {}  # released once the position is gone
    assert [e["event"] for e in logs] == ["market.quarantined", "market.released"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt()])
def test_given_an_interrupt_then_it_is_not_swallowed(exc: BaseException, tmp_path: Path) -> None:
    engine = engine_raising(exc, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        engine.tick()


def test_given_signals_computed_for_another_block_when_the_engine_takes_them_then_it_refuses(tmp_path: Path) -> None:
    from keeper.basis_history import BasisHistory
    from keeper.signals import Signal, compute_signals

    from .test_pnl_model import market_view, snapshot_of

    # Given signals a backtest's worker computed for block 1000, and the snapshot of block 1001
    computed = compute_signals(snapshot_of(market_view(), block=1000), BasisHistory())
    assert any(isinstance(s, Signal) for s in computed)
    engine = engine_raising(RuntimeError("unused"), tmp_path)
    # Then the engine does not decide on them
    with pytest.raises(ValueError, match="another block than 1001"):
        engine.decide_on(snapshot_of(market_view(), block=1001), 1001, computed=computed)


REVERTS = [  # a revert whose reason carries try-again or state-gone words: still a revert
    (3, "execution reverted: oracle timeout"),
    (3, "execution reverted: pool busy"),
    (3, "execution reverted: deposit limit exceeded"),
    (3, "execution reverted: feed unavailable"),
    (3, "execution reverted: context deadline exceeded"),
    (3, "execution reverted: execution aborted"),
    (3, "execution reverted: pruned market"),
    (3, "oracle temporarily unavailable"),  # code 3 says it reverted, whatever the words
    (-32000, "execution reverted: rate limit exceeded"),  # geth before code 3: the words say it
    (-32015, "VM execution error: Reverted 0x; temporarily paused"),
]


@pytest.mark.parametrize(("code", "message"), REVERTS)
def test_given_a_revert_whose_reason_reads_like_try_again_then_it_is_neither_transient_nor_a_pruned_state(
        code: int, message: str) -> None:
    # before: a TransientRpcError (retried, the tick skipped as the node's trouble), the reason's words
    # ("timeout", "busy", "limit exceeded", ...) read as the node's; "pruned market" taken for pruning
    error = rpc_error_from_reply("eth_call", code, message)
    assert isinstance(error, RpcError) and not isinstance(error, TransientError)
    assert not state_missing(error)
