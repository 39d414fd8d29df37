"""The live loop's snapshot is read at one block: a batch the node answers from another block than
the one asked for is read again (`snapshot.reread`); after three such answers the tick is skipped
(`snapshot.wrong_block`) and the loop goes on; a snapshot that is right but old is still refused
at decision time (the staleness check is not masked by the block check)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.engine import StrategySlot
from keeper.launch import build_runtime
from keeper.runtime import Runtime
from keeper.types import Direction, Intent, PnlEstimate
from tests.integration.conftest import Devnet


class OtherBlockRpc(JsonRpc):
    """A node mining while it answers: after `honest` pinned eth_calls, the next `wrong` ones are
    answered with the state of the block after the one asked for (as a node mid-way through mining
    block H+1 answers a read of H)."""

    def __init__(self, url: str, *, honest: int = 0, wrong: int = 0) -> None:
        super().__init__(url)
        self.honest, self.wrong, self.asked = honest, wrong, 0

    def _pinned(self, params: list[Any]) -> list[Any]:
        tag = params[1]
        if not (isinstance(tag, str) and tag.startswith("0x")):
            return params
        self.asked += 1
        if self.asked <= self.honest or self.wrong == 0:
            return params
        self.wrong -= 1
        return [params[0], hex(int(tag, 16) + 1)]

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_call" and params:
            params = self._pinned(params)
        return super().call(method, params)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return super().batch([(m, self._pinned(p) if m == "eth_call" else p) for m, p in calls])


def checked_collector(devnet: Devnet, rpc: JsonRpc, *, learned: bool) -> SnapshotCollector:
    collector = SnapshotCollector(rpc, Sources.from_manifest(devnet.manifest), account=devnet.manifest.accounts.keeper,
                                  check_block=True)
    collector.prepare()
    if learned:
        collector.fetch_snapshot()  # learns the tick windows: the steady state is two batches
    return collector


@pytest.mark.parametrize(("learned", "honest", "phase", "batches"), [
    (True, 0, "heads", 2), (True, 1, "ticks", 2), (False, 1, "windows", 3)])  # the first snapshot reads its windows
def test_given_a_batch_answered_from_the_next_block_then_it_is_read_again_at_the_block_asked_for(
        devnet: Devnet, learned: bool, honest: int, phase: str, batches: int) -> None:
    rpc = OtherBlockRpc(devnet.rpc.url)
    collector = checked_collector(devnet, rpc, learned=learned)
    head = devnet.rpc.block_number()
    devnet.rpc.call("evm_mine", [])  # the block after exists: the node can answer from it
    plain = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=devnet.manifest.accounts.keeper)
    expected = plain.fetch_snapshot(head)
    rpc.honest, rpc.wrong, rpc.asked = honest, 1, 0
    with capture_logs() as logs:
        snapshot = collector.fetch_snapshot(head)
    rereads = [e for e in logs if e["event"] == "snapshot.reread"]
    assert [(e["log_level"], e["phase"], e["expected_block"], e["got_block"], e["read"]) for e in rereads] == \
        [("info", phase, head, head + 1, 1)]
    assert snapshot.block_number == head and snapshot.rpc_round_trips == batches + 1  # one batch twice
    assert snapshot.markets == expected.markets and snapshot.account == expected.account
    rpc.close()


def test_given_an_unchecked_collector_then_a_batch_from_the_next_block_is_taken_as_it_came(devnet: Devnet) -> None:
    rpc = OtherBlockRpc(devnet.rpc.url)
    collector = SnapshotCollector(rpc, Sources.from_manifest(devnet.manifest))  # replay, history: unchecked
    collector.prepare()
    head = devnet.rpc.block_number()
    devnet.rpc.call("evm_mine", [])
    rpc.wrong = 1
    with capture_logs() as logs:
        snapshot = collector.fetch_snapshot(head)
    assert snapshot.block_number == head + 1 and not logs  # what the check exists for
    rpc.close()


@dataclass
class MiningCloser:
    """A strategy that, while it decides, lets the chain move `blocks` on, then wants ETH closed."""

    devnet: Devnet
    blocks: int
    name: str = "mining_closer"

    def decide(self, context: Any) -> list[Intent]:
        for _ in range(self.blocks):
            self.devnet.rpc.call("evm_mine", [])
        block = context.snapshot.block_number
        return [Intent(self.name, "close", "ETH", Direction.SHORT_PERP, "uniswap_v3", 10**18, "test: close",
                       PnlEstimate(0, 0, 0, 0, 0, 0), created_block=block, valid_until_block=block + 100)]


@pytest.fixture()
def runtime(devnet: Devnet, tmp_path: Path) -> Iterator[Runtime]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    built = build_runtime(devnet.keeper_config(tmp_path), dry_run=True)
    try:
        yield built
    finally:
        built.close()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_given_three_answers_from_another_block_then_the_tick_is_skipped_and_the_loop_goes_on(
        devnet: Devnet, runtime: Runtime) -> None:
    engine = runtime.engine
    assert engine.collector.check_block  # the live loop's collector checks, as runtime.py builds it
    devnet.rpc.call("evm_mine", [])
    head = devnet.rpc.block_number()
    devnet.rpc.call("evm_mine", [])
    lying = OtherBlockRpc(devnet.rpc.url, wrong=3)
    engine.collector.multicall.rpc = lying
    with capture_logs() as logs:
        assert engine.tick(head) is None  # skipped, nothing raised
        report = engine.tick(head + 1)  # the next head: the node answers right again
    events = [(e["event"], e["log_level"]) for e in logs if e["event"].startswith("snapshot.")]
    assert events == [("snapshot.reread", "info"), ("snapshot.reread", "info"), ("snapshot.wrong_block", "warning")]
    wrong = next(e for e in logs if e["event"] == "snapshot.wrong_block")
    assert (wrong["phase"], wrong["expected_block"], wrong["got_block"], wrong["reads"]) == ("heads", head, head + 1, 3)
    assert report is not None and report.block_number == head + 1 and report.snapshot.block_number == head + 1
    assert engine.fatal is None
    lying.close()


def test_given_a_right_snapshot_that_the_head_left_behind_then_staleness_still_refuses_at_decision_time(
        devnet: Devnet, runtime: Runtime) -> None:
    engine = runtime.engine
    max_age = engine.config.risk.max_snapshot_age_blocks
    engine.strategies = [StrategySlot(MiningCloser(devnet, max_age + 1))]
    devnet.rpc.call("evm_mine", [])
    head = devnet.rpc.block_number()
    with capture_logs() as logs:
        report = engine.tick(head)
    assert report is not None and report.snapshot.block_number == head  # read at its block: no re-read
    assert not [e for e in logs if e["event"].startswith("snapshot.")]
    skipped = [e["reason"] for e in logs if e["event"] == "decision.skipped"]
    assert len(skipped) == 1 and skipped[0].startswith("at decision time: ")
    assert f"{max_age + 1} blocks old" in skipped[0]
