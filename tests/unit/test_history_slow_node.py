"""A node that was slow is not a pruned node: geth answers an eth_call past its --rpc.evmtimeout with
`execution aborted (timeout = 5s)` (code -32000; erigon and reth use the same words), a request past
its HTTP timeout with `request timed out` (-32002). `keeper record` took those for "the node cannot
serve the state of block N" (exit 2) and the default range's bisection for a pruned block (the
range shortened). They are retried; the pruned-state replies still stop the recording."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.errors import KeeperError, RpcError, TransientError, rpc_error_from_reply, state_missing
from keeper.history.record import BlockRecorder, StateUnavailable, read_block
from keeper.history.served import served_start

SLOW = [  # (code, message): the node ran out of time, it has the state
    (-32000, "execution aborted (timeout = 5s)"),  # geth / erigon eth_call past the EVM timeout
    (-32000, "execution aborted (timeout = 5s)".upper()),
    (-32002, "request timed out"),  # geth's RPC server past its HTTP write timeout
    (-32000, "context deadline exceeded"),
    (-32005, "rate limit exceeded, try again later"),  # throttled
]
PRUNED = [  # (code, message): the node has not kept the state of that block
    (-32000, "missing trie node 6f1c5a0f9e7d1b (path ) <nil>"),  # geth, a pruned full node
    (-32000, "header not found"),
    (-32000, "state histories haven't been fully indexed yet"),  # geth's path-based archive, indexing
    (-32000, "required historical state unavailable (reexec=128)"),
    (-32000, "BlockOutOfRangeError: block height is 2000 but requested was 1000"),  # anvil
    (-32001, "resource not found"),  # EIP-1898: a block hash the node does not hold
    (-32002, "No state available for block 0x3f9e02 (1000)"),  # Nethermind: its code says "try again"
    (-32000, "old data not available due to pruning: requested block 1000"),  # Erigon
    (-32000, "World state unavailable"),  # Besu
]
PRUNED_SAYING_BUSY = [  # (code, message): no throttle code, the words say the state is gone
    (-32000, "missing trie node 6f1c5a0f9e7d1b (path ) <nil>; try again with an archive node"),
    (-32000, "header not found (busy syncing)"),
]
UNAVAILABLE = [  # (code, message): transient replies that say neither "slow" nor "gone"
    (-32000, "service temporarily unavailable"),
    (-32002, "resource unavailable"),  # EIP-1474, without "timed out"
    (-32603, "upstream node temporarily unavailable"),
]
NEITHER = [  # (code, message): plain errors, neither transient nor a pruned state
    (-32603, "internal error"),
    (3, "execution reverted: CH_TLRS"),
    (-32602, "invalid argument 1: hex number with leading zero digits"),
]
HEADER = {"number": "0x28", "timestamp": "0x10", "hash": "0x" + "aa" * 32, "parentHash": "0x" + "bb" * 32,
          "gasUsed": "0x1", "gasLimit": "0x2"}


@pytest.mark.parametrize(("code", "message"), SLOW)
def test_given_a_slow_or_busy_reply_then_it_says_nothing_of_the_state_and_is_transient(code: int, message: str) -> None:
    error = rpc_error_from_reply("eth_call", code, message)
    assert not state_missing(error)
    assert isinstance(error, TransientError)  # the live loop skips the tick, as for a timeout


@pytest.mark.parametrize(("code", "message"), PRUNED)
def test_given_a_pruned_state_reply_then_it_is_not_taken_for_a_slow_node(code: int, message: str) -> None:
    assert state_missing(rpc_error_from_reply("eth_call", code, message))


class _Collector:
    """The collector's snapshot read: the node's error replies first, then the block's state."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = list(errors)
        self._last_tick: dict[str, int] = {}

    def fetch_snapshot(self, block: int) -> Any:
        if self.errors:
            raise rpc_error_from_reply("eth_call", *self.errors.pop(0))
        return SimpleNamespace(block_number=block, markets={}, account=None)


class _Rpc:
    url = "http://127.0.0.1:1"

    def batch(self, requests: list[Any]) -> list[Any]:
        return [HEADER for _ in requests]


def _recorder(errors: list[tuple[int, str]]) -> BlockRecorder:
    multicall = SimpleNamespace(captured=[], address="0x" + "cA11" * 10, pinned=None)
    return BlockRecorder(_Rpc(), _Collector(errors), multicall, False)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "message"), SLOW[:4])
def test_given_a_read_the_node_timed_out_then_record_retries_it_and_records_the_block(code: int, message: str) -> None:
    # before: StateUnavailable "the node ... cannot serve the state of block 40 (... an archive node
    # keeps every block): eth_call: execution aborted (timeout = 5s)", exit 2, nothing retried
    pauses: list[float] = []
    with capture_logs() as logs:
        record = read_block(_recorder([(code, message), (code, message)]), 40, 40, at_head=False, sleep=pauses.append)
    assert record.block == 40 and record.hash == bytes.fromhex("aa" * 32)
    assert pauses == [0.5, 1.0]
    retries = [e for e in logs if e["event"] == "record.retry"]
    assert [(e["block"], e["tries"]) for e in retries] == [(40, 1), (40, 2)]
    assert message in retries[0]["error"]


@pytest.mark.parametrize(("code", "message"), PRUNED + PRUNED_SAYING_BUSY)
def test_given_a_read_of_a_pruned_block_then_record_stops_there_without_retrying(code: int, message: str) -> None:
    pauses: list[float] = []
    with pytest.raises(StateUnavailable, match="cannot serve the state of block 40"):
        read_block(_recorder([(code, message)]), 40, 40, at_head=False, sleep=pauses.append)
    assert pauses == []


class _SlowNode:
    """eth_getBalance on a node that serves every block from `first_served` on, whose first answer
    for each block is `slow` (an eth_call past its timeout), and the state when asked again."""

    url = "http://127.0.0.1:1"

    def __init__(self, first_served: int, slow: tuple[int, str]) -> None:
        self.first_served = first_served
        self.slow = slow
        self.asked: list[int] = []

    def call(self, method: str, params: list[Any]) -> Any:
        assert method == "eth_getBalance"
        block = int(params[1], 16)
        self.asked.append(block)
        if self.asked.count(block) == 1:
            raise rpc_error_from_reply(method, *self.slow)
        if block < self.first_served:
            raise rpc_error_from_reply(method, -32000, "missing trie node 6f1c5a0f9e7d1b (path ) <nil>")
        return "0x0"


@pytest.mark.parametrize(("code", "message"), SLOW[:4])
def test_given_a_node_that_times_out_a_probe_then_the_range_is_not_shortened(code: int, message: str) -> None:
    # before: the slow probe of the range's first block was taken for pruning: the range was
    # shortened (record.range_shortened), or the node "cannot serve the state of block 1999" (exit 2)
    archive, pruned = _SlowNode(0, (code, message)), _SlowNode(1_872, (code, message))
    pauses: list[float] = []
    with capture_logs() as logs:
        assert served_start(archive, "0x" + "11" * 20, 1_000, 1_999, pauses.append) == 1_000  # type: ignore[arg-type]
        assert served_start(pruned, "0x" + "11" * 20, 1_000, 1_999, pauses.append) == 1_876  # type: ignore[arg-type]
    assert archive.asked == [1_000, 1_000] and set(pauses) == {0.25}
    assert [(e["event"], e["served_from"]) for e in logs] == [("record.range_shortened", 1_872)]


@pytest.mark.parametrize(("code", "message"), UNAVAILABLE)
def test_given_a_read_answered_temporarily_unavailable_then_record_retries_it(code: int, message: str) -> None:
    # before: StateUnavailable "the node ... cannot serve the state of block 40": only a throttled
    # or timed-out reply was retried, any other was taken for pruning (exit 2)
    pauses: list[float] = []
    record = read_block(_recorder([(code, message)]), 40, 40, at_head=False, sleep=pauses.append)
    assert record.block == 40 and pauses == [0.5]


@pytest.mark.parametrize(("code", "message"), NEITHER)
def test_given_a_read_answered_with_another_error_then_record_raises_it_neither_pruned_nor_retried(
        code: int, message: str) -> None:
    pauses: list[float] = []
    with pytest.raises(KeeperError, match=f"reading block 40: eth_call: {message}") as raised:
        read_block(_recorder([(code, message)]), 40, 40, at_head=False, sleep=pauses.append)
    assert not isinstance(raised.value, (StateUnavailable, TransientError))  # exit 1, not "use an archive node"
    assert pauses == []


@pytest.mark.parametrize(("code", "message"), UNAVAILABLE)
def test_given_an_archive_node_answering_a_probe_temporarily_unavailable_then_the_range_is_kept(
        code: int, message: str) -> None:
    # before: ConfigError "the node at ... cannot serve the state of block 1999" (the probe of the
    # range's last block answered so was taken for pruning)
    archive = _SlowNode(0, (code, message))
    pauses: list[float] = []
    with capture_logs() as logs:
        assert served_start(archive, "0x" + "11" * 20, 1_000, 1_999, pauses.append) == 1_000  # type: ignore[arg-type]
    assert archive.asked == [1_000, 1_000] and pauses == [0.25] and logs == []


@pytest.mark.parametrize(("code", "message"), NEITHER)
def test_given_a_probe_answered_with_another_error_then_it_is_raised_at_once(code: int, message: str) -> None:
    node = _SlowNode(0, (code, message))
    pauses: list[float] = []
    with pytest.raises(RpcError, match=message) as raised:
        served_start(node, "0x" + "11" * 20, 1_000, 1_999, pauses.append)  # type: ignore[arg-type]
    assert not isinstance(raised.value, (TransientError, StateUnavailable))
    assert node.asked == [1_000] and pauses == []


THROTTLED_SAYING_STATE = [  # (code, message): a throttle code says "slow down", whatever the words
    (429, "historical state requests are limited to 10/s"),
    (-32005, "limit exceeded for missing trie node lookups"),
]


@pytest.mark.parametrize(("code", "message"), THROTTLED_SAYING_STATE)
def test_given_a_throttle_code_whose_words_name_the_state_then_it_is_retried(code: int, message: str) -> None:
    # before: the state-missing words overrode the throttle code: StateUnavailable at once (exit 2)
    assert not state_missing(rpc_error_from_reply("eth_call", code, message))
    pauses: list[float] = []
    assert read_block(_recorder([(code, message)]), 40, 40, at_head=False, sleep=pauses.append).block == 40
    assert pauses == [0.5]
    archive = _SlowNode(0, (code, message))
    assert served_start(archive, "0x" + "11" * 20, 1_000, 1_999, pauses.append) == 1_000  # type: ignore[arg-type]
    assert archive.asked == [1_000, 1_000]


class _PrunedNode:
    """eth_getBalance on a node that serves every block from `first_served` on and answers an older
    one with `reply` at once."""

    url = "http://127.0.0.1:1"

    def __init__(self, first_served: int, reply: tuple[int, str]) -> None:
        self.first_served = first_served
        self.reply = reply

    def call(self, method: str, params: list[Any]) -> Any:
        if int(params[1], 16) < self.first_served:
            raise rpc_error_from_reply(method, *self.reply)
        return "0x0"


@pytest.mark.parametrize(("code", "message"), PRUNED + PRUNED_SAYING_BUSY)
def test_given_a_node_pruned_below_a_block_then_the_probes_find_it_without_retrying(code: int, message: str) -> None:
    # the veto itself: every pruned-state reply ("header not found" is transient in the live loop) is a "no"
    pauses: list[float] = []
    node = _PrunedNode(1_872, (code, message))
    assert served_start(node, "0x" + "11" * 20, 1_000, 1_999, pauses.append) == 1_876  # type: ignore[arg-type]
    assert pauses == []
