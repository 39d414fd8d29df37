"""Failover between RPC endpoints and demotion of lagging nodes, with in-memory endpoints."""

from __future__ import annotations

import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.chain.failover import FailoverRpc, RetryingFailoverRpc, connect_rpc
from keeper.chain.retry import RetryCalls
from keeper.chain.rpc import JsonRpc
from keeper.config import ChainConfig
from keeper.errors import HttpStatusError, TransientError


class FakeNode(JsonRpc):
    """An endpoint that answers eth_blockNumber with `head`, or fails when `down`."""

    def __init__(self, url: str, head: int = 100) -> None:
        super().__init__(url)
        self.head = head
        self.down = False
        self.served = 0

    def _post(self, payload: Any) -> Any:
        if self.down:
            raise TransientError(f"RPC {self.url} unreachable: connection refused")
        self.served += 1
        return {"jsonrpc": "2.0", "id": payload["id"], "result": hex(self.head)}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(heads: tuple[int, ...] = (100, 100), **kwargs: Any) -> tuple[FailoverRpc, list[FakeNode], Clock]:
    nodes = [FakeNode(f"http://node{i}", head) for i, head in enumerate(heads)]
    clock = Clock()
    return FailoverRpc(nodes, clock=clock, probes=nodes, **kwargs), nodes, clock


def test_the_primary_serves_while_it_is_healthy() -> None:
    rpc, nodes, _ = make()
    assert rpc.block_number() == 100
    assert (nodes[0].served, nodes[1].served) == (1, 0)


def test_a_failing_primary_hands_the_call_to_the_backup_and_comes_back_after_its_bench_time() -> None:
    rpc, nodes, clock = make(bench_s=5.0)
    nodes[0].down = True
    with capture_logs() as logs:
        assert rpc.block_number() == 100  # the same call, answered by the backup
    assert rpc.active_url == "http://node1"
    assert {"rpc.endpoint_failed", "rpc.failover"} <= {e["event"] for e in logs}
    # while benched, the primary is not tried again
    nodes[0].down = False
    rpc.block_number()
    assert nodes[0].served == 0
    # after its bench time it serves again
    clock.now += 5.1
    rpc.block_number()
    assert nodes[0].served == 1 and rpc.active_url == "http://node0"


def test_every_endpoint_down_is_a_transient_error() -> None:
    rpc, nodes, _ = make()
    for node in nodes:
        node.down = True
    with pytest.raises(TransientError):
        rpc.block_number()


def test_a_refusal_is_reported_only_when_every_endpoint_refuses_and_logs_name_the_setting() -> None:
    rpc, nodes, _ = make(heads=(100, 100, 100))
    nodes[0].down = True  # connection refused: it may come back

    def refuse(_payload: Any) -> Any:
        raise HttpStatusError("RPC http://node1 answered HTTP 404", 404)

    nodes[1]._post = refuse  # type: ignore[method-assign]
    nodes[2]._post = refuse  # type: ignore[method-assign]
    with capture_logs() as logs, pytest.raises(TransientError) as raised:
        rpc.block_number()
    assert not isinstance(raised.value, HttpStatusError)  # the start-up keeps waiting for the primary
    failed = [e["endpoint"] for e in logs if e["event"] == "rpc.endpoint_failed"]
    assert failed == ["chain.rpc_url", "chain.backup_rpc_urls[0]", "chain.backup_rpc_urls[1]"]
    rpc2, nodes2, _ = make()
    for node in nodes2:
        node._post = refuse  # type: ignore[method-assign]
    with pytest.raises(HttpStatusError):
        rpc2.block_number()


def test_a_node_blocks_behind_is_demoted_and_restored_when_it_catches_up() -> None:
    rpc, nodes, _ = make(heads=(100, 104), max_lag_blocks=3)
    with capture_logs() as logs:
        rpc.check_heads()
    assert rpc.endpoints[0].demoted and not rpc.endpoints[1].demoted
    assert [e["url"] for e in logs if e["event"] == "rpc.demoted"] == ["http://node0"]
    rpc.block_number()
    assert nodes[1].served > 1 and rpc.active_url == "http://node1"
    # caught up
    nodes[0].head = 104
    with capture_logs() as logs:
        rpc.check_heads()
    assert not rpc.endpoints[0].demoted
    assert [e["event"] for e in logs] == ["rpc.restored"]


def test_a_node_whose_head_stalls_while_another_moves_is_demoted_after_max_lag_s() -> None:
    rpc, nodes, clock = make(heads=(100, 100), max_lag_blocks=50, max_lag_s=30.0)
    rpc.check_heads()
    clock.now += 31
    nodes[1].head = 101  # one block ahead: under max_lag_blocks, but node0 has not moved for 31 s
    rpc.check_heads()
    assert rpc.endpoints[0].demoted is not None and "not moved" in rpc.endpoints[0].demoted


def test_a_lagging_node_still_serves_when_it_is_the_only_one_answering() -> None:
    rpc, nodes, _ = make(heads=(100, 110), max_lag_blocks=3)
    rpc.check_heads()  # node0 demoted
    nodes[1].down = True
    assert rpc.block_number() == 100


def test_one_url_needs_no_failover_and_backups_make_one() -> None:
    single = connect_rpc(ChainConfig(), "http://a", attempts=6)
    assert not isinstance(single, FailoverRpc) and isinstance(single, RetryCalls) and single.attempts == 6
    rpc = connect_rpc(ChainConfig(backup_rpc_urls=["http://b", "http://a"]), "http://a", attempts=4)
    assert isinstance(rpc, FailoverRpc) and isinstance(rpc, RetryCalls) and rpc.attempts == 4
    assert [e.url for e in rpc.endpoints] == ["http://a", "http://b"]


class FailsOnce(FakeNode):
    """Down for its first request only."""

    failed = False

    def _post(self, payload: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise TransientError(f"RPC {self.url} unreachable: connection refused")
        return super()._post(payload)


def test_a_failover_client_retries_when_every_node_failed() -> None:
    # Given two nodes that both fail their first request
    nodes = [FailsOnce("http://node0"), FailsOnce("http://node1")]
    rpc = RetryingFailoverRpc(nodes, probes=nodes, bench_s=0.0)
    rpc.configure_retries(3, backoff_s=0.0, sleep=lambda _s: None)
    # When a call is made, Then the retry (after every node failed once) is answered
    assert rpc.block_number() == 100
    assert rpc.retried == 1 and nodes[0].served == 1


def test_head_checks_run_in_the_background_until_stopped() -> None:
    rpc, nodes, _ = make(heads=(100, 110), max_lag_blocks=3)
    rpc.start_head_checks(0.01)
    try:
        deadline = time.monotonic() + 5
        while not rpc.endpoints[0].demoted and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rpc.stop_head_checks()
    assert rpc.endpoints[0].demoted
    served = nodes[0].served
    time.sleep(0.05)
    assert nodes[0].served == served  # stopped: no more checks
