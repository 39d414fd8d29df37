"""The warm start's reach (keeper/warm_start.py), on a fake chain: every block from the newest back,
capped by the blocks asked, the history's max_samples, the chain's first block and its window
(keeping min_samples + 1 whatever their age); the newest contiguous run when a read fails; off at 0."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from keeper.basis_history import BasisHistory
from keeper.config import load_config
from keeper.errors import TransientRpcError
from keeper.simulate.command import simulation_settings
from keeper.signals import PastBlock
from keeper.types import MarketSnapshot
from keeper.warm_start import warm_start

SPACING_S = 2


def _snapshot(block: int) -> MarketSnapshot:
    return MarketSnapshot(block, 1_000_000 + SPACING_S * block, 0, {}, None, 1)


@dataclass
class FakeCollector:
    unreadable_below: int = -1
    raise_at: int | None = None
    asked: list[int] = field(default_factory=list)

    def fetch_snapshot(self, block: int) -> MarketSnapshot:
        self.asked.append(block)
        if block < self.unreadable_below or block == self.raise_at:
            raise TransientRpcError("eth_call", -32000, "header not found")
        return _snapshot(block)


@dataclass
class FakeEngine:
    collector: FakeCollector
    history: BasisHistory
    recorded: list[int] = field(default_factory=list)

    def record_past(self, past: PastBlock) -> None:
        self.recorded.append(past.block_number)


def _engine(collector: FakeCollector | None = None, window_s: float = 10_000, min_samples: int = 5,
            max_samples: int = 4_096) -> FakeEngine:
    return FakeEngine(collector or FakeCollector(), BasisHistory(window_s, min_samples, max_samples))


def test_every_block_of_the_range_is_recorded_oldest_first_the_start_snapshot_not_read_again() -> None:
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 50)
    assert engine.recorded == list(range(951, 1_001))
    assert engine.collector.asked == list(range(999, 950, -1))  # newest first, the start block not re-read
    assert (report.read, report.oldest_block, report.first_unreadable, report.reason) == (50, 951, None, None)
    assert [e["event"] for e in logs] == ["warm_start.progress"] * 5 + ["warm_start.done"]  # every fifth
    assert [e["read"] for e in logs[:-1]] == [10, 20, 30, 40, 50]


def test_a_slow_node_is_cut_off_by_the_time_budget_with_what_was_read_kept() -> None:
    # Given a clock that moves a second per read and a 10-second budget
    ticks = iter(range(10_000))
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 50, max_s=10, clock=lambda: float(next(ticks)))
    # Then reading stops after about ten reads; what was read is recorded, oldest first; a warning says why
    assert 5 <= report.read <= 12 and engine.recorded == list(range(1_001 - report.read, 1_001))
    assert "time budget" in (report.reason or "")
    assert [e["event"] for e in logs][-1] == "warm_start.partial"


def test_off_reads_and_logs_nothing() -> None:
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 0)
    assert engine.recorded == [] and engine.collector.asked == [] and logs == [] and report.read == 0


@pytest.mark.parametrize(("blocks", "start", "max_samples", "expected"), [
    (50, 1_000, 30, 30),  # the history keeps at most max_samples
    (50, 9, 4_096, 10),  # the chain starts at block 0
])
def test_the_range_is_capped(blocks: int, start: int, max_samples: int, expected: int) -> None:
    engine = _engine(max_samples=max_samples)
    report = warm_start(engine, _snapshot(start), blocks)
    assert report.planned == report.read == expected and engine.recorded == list(range(start - expected + 1, start + 1))


def test_no_block_older_than_the_window_beyond_min_samples_plus_one() -> None:
    engine = _engine(window_s=20 * SPACING_S, min_samples=5)  # 21 blocks inside the window
    report = warm_start(engine, _snapshot(1_000), 500)
    assert engine.recorded == list(range(980, 1_001)) and "older than strategies.basis_window_s" in report.reason
    sparse = _engine(window_s=3 * SPACING_S, min_samples=5)  # a window of 4 blocks: min_samples + 1 kept anyway
    warm_start(sparse, _snapshot(1_000), 500)
    assert sparse.recorded == list(range(995, 1_001))


def test_a_failed_read_keeps_the_newest_contiguous_run_and_says_so() -> None:
    engine = _engine(FakeCollector(raise_at=990))
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 50)
    assert engine.recorded == list(range(991, 1_001)) and engine.collector.asked[-1] == 990
    event = logs[-1]
    assert event["event"] == "warm_start.partial" and event["log_level"] == "warning"
    assert (event["asked"], event["read"], event["first_unreadable"], event["oldest_block"]) == (50, 10, 990, 991)
    assert "header not found" in event["reason"] and report.first_unreadable == 990


def test_a_snapshot_whose_recording_raises_is_skipped_and_logged() -> None:
    engine = _engine()

    def record(past: PastBlock) -> None:
        if past.block_number == 995:
            raise ValueError("bad snapshot")
        engine.recorded.append(past.block_number)

    engine.record_past = record  # type: ignore[method-assign]
    with capture_logs() as logs:
        warm_start(engine, _snapshot(1_000), 10)
    assert engine.recorded == [991, 992, 993, 994, 996, 997, 998, 999, 1_000]
    assert any(e["event"] == "warm_start.failed" and e["block"] == 995 for e in logs)


def test_simulations_start_blind_whatever_the_config_says(tmp_path: Path) -> None:
    """The scenario suite's decisions stay as they were: simulate turns the warm start off."""
    settings = load_config(None, environ={}, overrides={"strategies": {"warm_start_blocks": 500}})
    world = SimpleNamespace(runtime_overrides={"rpc_url": "http://127.0.0.1:1"})
    simulated = simulation_settings(settings, world, "0x" + "11" * 20, tmp_path)  # type: ignore[arg-type]
    assert settings.strategies.warm_start_blocks == 500 and simulated.strategies.warm_start_blocks == 0


def test_a_stop_request_ends_the_reading_and_keeps_what_was_read() -> None:
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 50, should_stop=lambda: len(engine.collector.asked) >= 7,
                            latest=lambda: 1_005)
    assert engine.recorded == list(range(993, 1_001)) and report.caught_up == 0  # no catch-up after a stop
    assert report.reason == "stop requested" and logs[-1]["event"] == "warm_start.partial"


def test_blocks_mined_meanwhile_are_read_after_oldest_first_up_to_the_head_asked_again() -> None:
    heads = iter([1_003, 1_004, 1_004])  # a block arrives while the first three are read
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 10, latest=lambda: next(heads))
    assert engine.recorded == list(range(991, 1_005)) and report.caught_up == 4
    assert engine.collector.asked[-4:] == [1_001, 1_002, 1_003, 1_004]
    done = logs[-1]
    assert (done["event"], done["newest_block"], done["caught_up"], done["read"]) == ("warm_start.done", 1_004, 4, 10)


def test_a_failed_catch_up_read_keeps_what_was_read_and_says_so() -> None:
    engine = _engine(FakeCollector(raise_at=1_002))
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 10, latest=lambda: 1_004)
    assert engine.recorded == list(range(991, 1_002)) and report.caught_up == 1
    assert logs[-1]["event"] == "warm_start.partial" and "catch-up: block 1002" in (report.reason or "")


def test_the_snapshots_read_are_not_held_while_reading_back_only_what_a_tick_records() -> None:
    import weakref

    alive: list[weakref.ref[MarketSnapshot]] = []
    most_alive = 0

    class Counting(FakeCollector):
        def fetch_snapshot(self, block: int) -> MarketSnapshot:
            nonlocal most_alive
            most_alive = max(most_alive, sum(1 for ref in alive if ref() is not None))
            snapshot = super().fetch_snapshot(block)
            alive.append(weakref.ref(snapshot))
            return snapshot

    engine = _engine(Counting())
    warm_start(engine, _snapshot(1_000), 200)
    assert len(engine.recorded) == 200 and len(alive) == 199 and most_alive <= 1


def test_a_block_whose_observation_raises_is_skipped_and_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    import keeper.warm_start as warm_module

    real = warm_module.past_block

    def broken(snapshot: MarketSnapshot) -> PastBlock:
        if snapshot.block_number == 995:
            raise ZeroDivisionError("a spot mid of 0")
        return real(snapshot)

    monkeypatch.setattr(warm_module, "past_block", broken)
    engine = _engine()
    with capture_logs() as logs:
        report = warm_start(engine, _snapshot(1_000), 10)
    assert engine.recorded == [991, 992, 993, 994, 996, 997, 998, 999, 1_000] and report.read == 9
    assert any(e["event"] == "warm_start.failed" and e["block"] == 995 for e in logs)


def test_a_keeper_that_ticked_already_is_not_warm_started() -> None:
    from keeper.runtime import Runtime

    engine = SimpleNamespace(last_block=1_000)
    settings = load_config(None, environ={})
    runtime = Runtime(settings, SimpleNamespace(block_number=lambda: 1_000), engine, None, "dry_run", "0x", "0x",  # type: ignore[arg-type]
                      warm_from=_snapshot(990))
    with capture_logs() as logs:
        runtime.warm_up()
    assert [e["event"] for e in logs] == ["warm_start.skipped"] and runtime.warm_from is None
