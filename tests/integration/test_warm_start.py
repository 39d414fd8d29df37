"""The warm start on the devnet (keeper/warm_start.py): a keeper started with a warm start over the
last K blocks holds, at its first tick, the basis statistics and index history of a keeper that
ticked through those K blocks; off, it starts blind as before; a node that cannot serve old state
gives a partial warm start, its event, and a keeper that ticks; blocks mined after the start-up
block are caught up; the block loop runs it with its signal handlers in place (a SIGTERM during it
stops the keeper without a tick)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import keeper.warm_start as warm_module
from keeper.blockloop import run_blocks
from keeper.stop_signals import StartStopped
from keeper.chain.keys import Signer
from keeper.collect import SnapshotCollector
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.node import HISTORY_STATES_KEPT
from keeper.engine import Engine
from keeper.errors import RpcError
from keeper.launch import build_runtime
from keeper.runtime import Runtime
from keeper.types import SPOT_VENUES
from tests.integration.conftest import Devnet

K = 30


def _move(devnet: Devnet, blocks: int, seed: int = 11) -> None:
    """`blocks` blocks of market activity, one block per step (the basis and the index move)."""
    activity = MarketActivity(devnet.rpc, devnet.manifest, ActivityConfig(seed=seed))
    for _ in range(blocks):
        activity.step()


def _runtime(devnet: Devnet, tmp_path: Path, warm_blocks: int, executor: str | None = None,
             pairs: bool = False) -> Runtime:
    """A dry-run keeper; with `executor`, on that executor (none is provisioned: no block is mined);
    `pairs`: with pairs_spread enabled too (the pair desk's price history)."""
    sections: dict[str, Any] = {"strategies": {"warm_start_blocks": warm_blocks}}
    if pairs:
        sections["strategies"]["enabled"] = ["basis_convergence", "funding_carry", "pairs_spread"]
    if executor is not None:
        sections["account"] = {"executor": executor}
    runtime = build_runtime(devnet.keeper_config(tmp_path, **sections), dry_run=True)
    runtime.warm_up()  # as the block loop does before its first tick
    return runtime


def _state(engine: Engine, markets: list[str], before_block: int, timestamp_s: int) -> dict[str, Any]:
    """The histories as the next tick reads them: the basis statistics (and their windows) of each
    market and venue, each market's index records and volatility."""
    out: dict[str, Any] = {}
    for market in markets:
        for venue in SPOT_VENUES:
            stats = engine.history.stats(market, venue, before_block, timestamp_s)
            out[f"{market}/{venue}"] = None if stats is None else (stats, list(stats.window_bps), stats.spacing_s)
        series = engine.index_history._series.get(market)
        out[f"{market}/index"] = None if series is None else (
            series.blocks[series.first:], series.times[series.first:], series.logs[series.first:],
            engine.index_history.sigma_per_sqrt_s(market, 900.0))
    return out


def test_a_warm_start_over_k_blocks_equals_ticking_through_them(devnet: Devnet, tmp_path: Path) -> None:
    ticked = _runtime(devnet, tmp_path / "ticked", 0)
    try:
        start = devnet.rpc.block_number()
        activity = MarketActivity(devnet.rpc, devnet.manifest, ActivityConfig(seed=11))
        for _ in range(K):
            activity.step()
            head = devnet.rpc.block_number()
            assert ticked.engine.tick(head) is not None
        assert head == start + K  # one block per step: the keeper ticked through every block
        markets = ticked.config.markets.enabled
        next_ts = int(devnet.rpc.call("eth_getBlockByNumber", [hex(head), False])["timestamp"], 16) + 60
        expected = _state(ticked.engine, markets, head + 1, next_ts)
        executor = ticked.executor_address
    finally:
        ticked.close()
    with capture_logs() as logs:
        warm = _runtime(devnet, tmp_path / "warm", K, executor)
    assert devnet.rpc.block_number() == head
    try:
        assert _state(warm.engine, markets, head + 1, next_ts) == expected
        some = expected[f"{markets[0]}/{SPOT_VENUES[0]}"]
        assert some is not None and some[0].samples == K and some[0].scale_bps > 0  # a real, moving window
        done = next(e for e in logs if e["event"] == "warm_start.done")
        assert (done["asked"], done["read"], done["oldest_block"], done["newest_block"]) == (K, K, head - K + 1, head)
        report = warm.engine.tick(head)  # the first live tick at the start-up block: decides, records nothing twice
        assert report is not None and all(s.basis_zscore is not None for s in report.signals_seen)
        assert _state(warm.engine, markets, head + 1, next_ts) == expected
    finally:
        warm.close()


def test_warm_start_off_starts_blind_as_before(devnet: Devnet, tmp_path: Path) -> None:
    _move(devnet, 5)
    with capture_logs() as logs:
        runtime = _runtime(devnet, tmp_path, 0)
    try:
        assert runtime.engine.history._series == {} and runtime.engine.index_history._series == {}
        assert not [e for e in logs if str(e["event"]).startswith("warm_start")]
        report = runtime.engine.tick(devnet.rpc.block_number())
        assert report is not None and report.signals_seen and all(s.basis_zscore is None for s in report.signals_seen)
    finally:
        runtime.close()


def test_a_node_without_old_state_gives_a_partial_warm_start_and_the_keeper_ticks(
        devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _move(devnet, 12)
    head = devnet.rpc.block_number()
    oldest_kept = head - 7  # the node serves the state of its newest 8 blocks only
    real_fetch = SnapshotCollector.fetch_snapshot

    def pruned_fetch(self: SnapshotCollector, block: int | str = "latest") -> Any:
        if isinstance(block, int) and block < oldest_kept:
            raise RpcError("eth_call", -32000, f"missing trie node 0xabc (path ) state {block} is not available")
        return real_fetch(self, block)

    monkeypatch.setattr(SnapshotCollector, "fetch_snapshot", pruned_fetch)
    monkeypatch.setattr(warm_module, "PROGRESS_EVERY", 3)
    with capture_logs() as logs:
        runtime = _runtime(devnet, tmp_path, 100)
    try:
        partial = next(e for e in logs if e["event"] == "warm_start.partial")
        newest = partial["newest_block"]  # the start-up block (provisioning the executor mined a few)
        readable = newest - oldest_kept + 1
        assert partial["log_level"] == "warning" and readable >= 8
        assert (partial["asked"], partial["read"], partial["first_unreadable"]) == (100, readable, oldest_kept - 1)
        assert partial["oldest_block"] == oldest_kept and "missing trie node" in partial["reason"]
        assert partial["seconds"] >= 0
        progress = [e["read"] for e in logs if e["event"] == "warm_start.progress"]
        assert progress == list(range(3, readable + 1, 3))
        market = runtime.config.markets.enabled[0]
        series = runtime.engine.history._series[(market, SPOT_VENUES[0])]
        assert list(series.blocks[series.first - series.base:]) == list(range(oldest_kept, newest + 1))
        devnet.rpc.call("evm_mine", [])
        assert runtime.engine.tick() is not None and runtime.engine.fatal is None
    finally:
        runtime.close()


def test_a_bad_warm_start_value_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "keeper.toml"
    config.write_text("[strategies]\nwarm_start_blocks = -5\n")
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-m", "keeper", "run", "--dry-run", "-c", str(config)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "strategies.warm_start_blocks" in ran.stderr and time.monotonic() - started < 120


def test_the_devnet_node_keeps_128_states_so_a_longer_warm_start_is_partial(devnet: Devnet, tmp_path: Path) -> None:
    """The devnet's anvil keeps the last HISTORY_STATES_KEPT states (keeper/devnet/node.py): a
    real node that refuses older blocks."""
    devnet.rpc.call("anvil_mine", [hex(HISTORY_STATES_KEPT + 40)])
    with capture_logs() as logs:
        runtime = _runtime(devnet, tmp_path, 1_000)
    try:
        partial = next(e for e in logs if e["event"] == "warm_start.partial")
        assert HISTORY_STATES_KEPT // 2 <= partial["read"] <= HISTORY_STATES_KEPT + 1
        assert partial["first_unreadable"] == partial["oldest_block"] - 1
        assert partial["newest_block"] - partial["oldest_block"] + 1 == partial["read"]
        market = runtime.config.markets.enabled[0]
        assert len(runtime.engine.history._series[(market, SPOT_VENUES[0])]) == partial["read"]
        devnet.rpc.call("evm_mine", [])
        report = runtime.engine.tick()
        assert report is not None and report.snapshot is not None and runtime.engine.fatal is None
        stats = runtime.engine.history.stats(market, SPOT_VENUES[0], report.block_number, report.snapshot.block_timestamp)
        assert stats is not None and stats.samples == partial["read"]  # empty blocks: a flat basis, no z-score (MAD 0)
    finally:
        runtime.close()


def test_a_live_keeper_warm_starts_too(devnet: Devnet, tmp_path: Path, signer: Signer) -> None:
    _move(devnet, 25)
    settings = devnet.keeper_config(tmp_path, strategies={"warm_start_blocks": 20})
    with capture_logs() as logs:
        runtime = build_runtime(settings, dry_run=False)
        assert not [e for e in logs if str(e["event"]).startswith("warm_start")]  # the loop's, not the build's
        runtime.warm_up()
    try:
        assert runtime.mode == "live" and runtime.owner == signer.address
        done = next(e for e in logs if e["event"] == "warm_start.done")
        assert done["read"] == 20 and done["oldest_block"] == done["newest_block"] - 19
        market = settings.markets.enabled[0]
        assert len(runtime.engine.history._series[(market, SPOT_VENUES[0])]) == 20
    finally:
        runtime.close()


def test_blocks_mined_after_the_start_up_block_are_caught_up_oldest_first(devnet: Devnet, tmp_path: Path) -> None:
    _move(devnet, 10)
    runtime = build_runtime(devnet.keeper_config(tmp_path, strategies={"warm_start_blocks": 10}), dry_run=True)
    try:
        start = runtime.warm_from.block_number if runtime.warm_from is not None else -1
        _move(devnet, 3, seed=12)  # mined between the start-up snapshot and the loop's warm start
        with capture_logs() as logs:
            runtime.warm_up()
        done = next(e for e in logs if e["event"] == "warm_start.done")
        assert (done["read"], done["caught_up"], done["newest_block"]) == (10, 3, start + 3)
        market = runtime.config.markets.enabled[0]
        series = runtime.engine.history._series[(market, SPOT_VENUES[0])]
        assert list(series.blocks[series.first - series.base:]) == list(range(start - 9, start + 4))
        runtime.warm_up()  # once only: the start-up snapshot is spent
        assert runtime.warm_from is None
    finally:
        runtime.close()


def test_a_sigterm_during_the_warm_start_ends_it_and_the_start_without_a_tick(
        devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _move(devnet, 12)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    runtime = build_runtime(devnet.keeper_config(tmp_path, strategies={"warm_start_blocks": 12}), dry_run=True)
    real_fetch = SnapshotCollector.fetch_snapshot
    reads: list[int] = []

    def fetch_then_sigterm(self: SnapshotCollector, block: int | str = "latest") -> Any:
        reads.append(1)
        if len(reads) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler, installed before the warm start
        return real_fetch(self, block)

    monkeypatch.setattr(SnapshotCollector, "fetch_snapshot", fetch_then_sigterm)
    try:
        with capture_logs() as logs, pytest.raises(StartStopped, match="SIGTERM"):  # `keeper run`: exit 130
            run_blocks(runtime, blocks=5)
    finally:
        runtime.close()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    events = [e["event"] for e in logs]
    partial = next(e for e in logs if e["event"] == "warm_start.partial")
    assert partial["reason"] == "stop requested" and 3 <= partial["read"] < 12
    assert "tick" not in events and "keeper.stopping" not in events  # the start's stop: `keeper run` logs it


def test_the_pair_desk_s_price_history_is_warm_started_too(devnet: Devnet, tmp_path: Path) -> None:
    ticked = _runtime(devnet, tmp_path / "ticked", 0, pairs=True)
    try:
        activity = MarketActivity(devnet.rpc, devnet.manifest, ActivityConfig(seed=13))
        for _ in range(12):
            activity.step()
            assert ticked.engine.tick(devnet.rpc.block_number()) is not None
        expected = list(ticked.engine.pairs.samples)
        executor = ticked.executor_address
    finally:
        ticked.close()
    warm = _runtime(devnet, tmp_path / "warm", 12, executor, pairs=True)
    try:
        assert len(expected) == 12 and list(warm.engine.pairs.samples) == expected  # the same (time, log A, log B)
    finally:
        warm.close()
