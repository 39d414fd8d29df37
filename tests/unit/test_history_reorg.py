"""A reorg under a recording: the common ancestor is found by walking back, the orphaned blocks are
dropped crash-safely (a kill after any step leaves a history that resumes), a reorg deeper than 64
blocks is refused, and a block's reads go out pinned to its hash."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from keeper.history.reorg import MAX_REORG_DEPTH, ReorgTooDeep, find_ancestor
from keeper.history.store import (
    BlockRecord,
    HistoryWriter,
    last_recorded_block,
    read_blocks,
    read_meta,
    recorded_gaps,
    recorded_hashes,
    truncate_history,
    truncation_steps,
)

META = {"chain_id": 31337, "account": None, "sources": {"markets": []}}


def _record(block: int) -> BlockRecord:
    return BlockRecord(block=block, timestamp=1_700_000_000 + 2 * block, hash=block.to_bytes(32, "big"),
                       parent_hash=max(0, block - 1).to_bytes(32, "big"), base_fee_wei=10**9, gas_used=21_000,
                       gas_limit=30_000_000, l1=None, window_ticks={"0xpool": block},
                       reads=[(b"\x01" * 36, block.to_bytes(64, "big"))])


def _history(path: Path, first: int, last: int, part_blocks: int = 10) -> HistoryWriter:
    writer = HistoryWriter(path, META, part_blocks=part_blocks)
    for block in range(first, last + 1):
        writer.append(_record(block))
    writer.flush()
    return writer


def _blocks(path: Path) -> list[int]:
    return [r.block for r in read_blocks(path)]


# ---------------------------------------------------------------------------- truncation
def test_given_three_parts_when_truncated_inside_the_second_then_the_history_ends_there(tmp_path: Path) -> None:
    _history(tmp_path / "h", 100, 129)  # parts 100-109, 110-119, 120-129
    truncate_history(tmp_path / "h", 114)
    assert _blocks(tmp_path / "h") == list(range(100, 115))
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == [
        "part-000000000100-000000000109.parquet", "part-000000000110-000000000114.parquet"]
    assert read_meta(tmp_path / "h")["chain_id"] == 31337  # the rewritten part keeps the metadata


def test_given_a_truncation_at_a_part_boundary_then_whole_parts_go(tmp_path: Path) -> None:
    _history(tmp_path / "h", 100, 129)
    truncate_history(tmp_path / "h", 109)
    assert _blocks(tmp_path / "h") == list(range(100, 110))
    assert len(list((tmp_path / "h").iterdir())) == 1


@pytest.mark.parametrize("steps_done", range(0, 4))
def test_given_a_truncation_killed_after_each_step_then_the_history_resumes(tmp_path: Path, steps_done: int) -> None:
    # Given a history of 3 parts and a reorg that keeps blocks up to 114
    path = tmp_path / "h"
    _history(path, 100, 129)
    steps = truncation_steps(path, 114)
    assert len(steps) == 3  # delete 120-129, write 110-114, delete 110-119
    # When the process is killed after `steps_done` of them
    for step in steps[:steps_done]:
        step()
    # Then the history is whole: contiguous, no block twice, its end one of the recorded ones
    blocks = _blocks(path)
    assert blocks == list(range(100, blocks[-1] + 1)) and recorded_gaps(path) == []
    assert last_recorded_block(path) == blocks[-1] >= 114
    # and a restart (which finds the last block still orphaned) finishes the truncation
    truncate_history(path, 114)
    assert _blocks(path) == list(range(100, 115)) and last_recorded_block(path) == 114
    assert not list(path.glob("*.tmp"))
    # and appending goes on after it
    writer = HistoryWriter(path, META)
    writer.append(_record(115))
    writer.flush()
    assert _blocks(path) == list(range(100, 116))


def test_given_a_kill_while_the_shorter_part_was_written_then_its_temporary_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "h"
    _history(path, 100, 119)
    (path / "part-000000000110-000000000114.tmp").write_bytes(b"half a parquet file")
    assert _blocks(path) == list(range(100, 120))
    truncate_history(path, 114)
    assert _blocks(path) == list(range(100, 115))


def test_given_a_truncation_before_the_first_block_then_no_part_is_left(tmp_path: Path) -> None:
    _history(tmp_path / "h", 100, 112)
    truncate_history(tmp_path / "h", 99)
    assert last_recorded_block(tmp_path / "h") is None


def test_given_unflushed_and_flushed_blocks_then_the_writer_knows_both_hashes(tmp_path: Path) -> None:
    writer = _history(tmp_path / "h", 100, 109)
    writer.append(_record(110))
    writer.append(_record(111))
    assert writer.recorded_hash(105) == (105).to_bytes(32, "big") and writer.recorded_hash(111) == (111).to_bytes(32, "big")
    assert writer.recorded_hash(112) is None and writer.first_block() == 100
    writer.drop_after(110)
    writer.flush()
    assert _blocks(tmp_path / "h")[-1] == 110
    assert recorded_hashes(tmp_path / "h", 108, 109) == {108: (108).to_bytes(32, "big"), 109: (109).to_bytes(32, "big")}


@pytest.mark.parametrize("ancestor", [129, 126])
def test_given_a_rewind_then_record_reorg_tells_only_dropped_blocks(tmp_path: Path, ancestor: int) -> None:
    # Only headers fetched ahead of the tip were of the other chain (ancestor == tip): nothing is
    # dropped, and no `record.reorg` with depth 0 says otherwise
    from structlog.testing import capture_logs

    from keeper.history.reorg import rewind

    writer = _history(tmp_path / "h", 100, 129)

    class Rpc:
        def batch(self, requests: list[Any]) -> list[Any]:
            return [{"hash": "0x" + (int(p[0], 16).to_bytes(32, "big") if int(p[0], 16) <= ancestor else b"\xee" * 32).hex()}
                    for _m, p in requests]

    with capture_logs() as logs:
        assert rewind(writer, Rpc(), 129) == ancestor  # type: ignore[arg-type]
    told = [(e["depth"], e["from_block"], e["ancestor"]) for e in logs if e["event"] == "record.reorg"]
    assert told == ([] if ancestor == 129 else [(3, 129, 126)])
    assert _blocks(tmp_path / "h")[-1] == ancestor


# ---------------------------------------------------------------------------- common ancestor
class _Node:
    """The node's hashes: the recorded chain's up to `ancestor`, another chain's after it."""

    def __init__(self, ancestor: int) -> None:
        self.ancestor = ancestor
        self.asked: list[list[int]] = []

    def hashes(self, heights: Sequence[int]) -> list[bytes | None]:
        self.asked.append(list(heights))
        return [h.to_bytes(32, "big") if h <= self.ancestor else b"\xee" * 32 for h in heights]


def _recorded(height: int) -> bytes:
    return height.to_bytes(32, "big")


@pytest.mark.parametrize("depth", [1, 3, 10, 16, 17, MAX_REORG_DEPTH])
def test_given_a_reorg_of_some_depth_then_the_ancestor_is_below_it(depth: int) -> None:
    node = _Node(1_000 - depth)
    assert find_ancestor(1_000, 500, _recorded, node.hashes, first_parent=_recorded(499)) == 1_000 - depth
    assert node.asked[0][0] == 1_000 and all(len(batch) <= 16 for batch in node.asked)


def test_given_a_reorg_deeper_than_64_then_refused() -> None:
    node = _Node(1_000 - MAX_REORG_DEPTH - 1)
    with pytest.raises(ReorgTooDeep, match="more than 64 blocks back"):
        find_ancestor(1_000, 500, _recorded, node.hashes, first_parent=_recorded(499))
    assert max(h for batch in node.asked for h in batch) == 1_000 and min(h for batch in node.asked for h in batch) == 936


def test_given_every_recorded_block_orphaned_then_the_ancestor_is_before_the_first() -> None:
    # the node still has the first block's parent: the reorg starts right at the history's first block
    assert find_ancestor(1_010, 1_000, _recorded, _Node(999).hashes, first_parent=_recorded(999)) == 999


@pytest.mark.parametrize("node", [_Node(990), _Node(-1)], ids=["a deeper fork", "another chain"])
def test_given_no_recorded_block_nor_the_first_ones_parent_on_the_node_then_refused(node: _Node) -> None:
    # The audit: a 6-block history, resumed on a reset devnet (its head below the history), was
    # deleted whole, "recorded 0 blocks", exit 0: nothing recorded is on that chain, it is not a reorg to follow
    with pytest.raises(ReorgTooDeep, match=r"no recorded block \(1000-1010\) is on the node's chain, nor the parent of 1000"):
        find_ancestor(1_010, 1_000, _recorded, node.hashes, first_parent=_recorded(999))


def test_given_a_history_of_a_reset_devnet_when_rewound_then_its_files_are_left_as_they_were(tmp_path: Path) -> None:
    from keeper.history.reorg import rewind

    writer = _history(tmp_path / "h", 235, 240)
    before = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()}

    class Rpc:  # the reset devnet: its head is block 159
        def batch(self, requests: list[Any]) -> list[Any]:
            return [None if int(p[0], 16) > 159 else {"hash": "0x" + "ee" * 32} for _m, p in requests]

    with pytest.raises(ReorgTooDeep, match=r"^--out .*h: no recorded block \(235-240\) is on the node's chain.*left as it was"):
        rewind(writer, Rpc(), 240)  # type: ignore[arg-type]
    assert {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()} == before


# ---------------------------------------------------------------------------- hash-pinned reads
class _Rpc:
    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.batches: list[Any] = []

    def eth_call(self, to: str, data: bytes, block: Any = "latest") -> bytes:
        self.calls.append(block)
        return _EMPTY_ANSWER

    def batch(self, requests: list[Any]) -> list[Any]:
        self.batches.append(requests)
        return ["0x" + _EMPTY_ANSWER.hex()] + ["0x" + "00" * 32] * (len(requests) - 1)


_EMPTY_ANSWER = (32).to_bytes(32, "big") + (0).to_bytes(32, "big")  # aggregate3: an empty Result[]


def test_given_a_pinned_block_then_its_reads_and_storage_requests_go_out_by_hash() -> None:
    from keeper.history.record import RecordingMulticall

    rpc = _Rpc()
    multicall = RecordingMulticall(rpc, "0x" + "cA11" * 10)  # type: ignore[arg-type]
    multicall.pinned = (7, "0x" + "ab" * 32)
    multicall.run(b"\x01\x02\x03\x04", 7)
    multicall.run(b"\x01\x02\x03\x04", 8)  # another block: by number, as asked
    multicall.run_with_requests(b"\x01\x02\x03\x04", 7, [("eth_getStorageAt", ["0x" + "11" * 20, "0x5", hex(7)])])
    by_hash = {"blockHash": "0x" + "ab" * 32}
    assert rpc.calls == [by_hash, 8]
    (call, storage), = rpc.batches
    assert call[1][1] == by_hash and storage == ("eth_getStorageAt", ["0x" + "11" * 20, "0x5", by_hash])
    assert len(multicall.captured) == 4  # both answers, the pinned batch's call and its storage word


# ---------------------------------------------------------------------------- pruned nodes
@pytest.mark.parametrize("first_served", [0, 1, 377, 998, 999])
def test_given_a_pruned_node_then_bisection_finds_the_first_block_it_serves(first_served: int) -> None:
    from keeper.history.served import first_served_block

    probes: list[int] = []

    def serves(block: int) -> bool:
        probes.append(block)
        return block >= first_served

    assert first_served_block(serves, 0, 999) == first_served
    assert len(probes) <= 12  # log2(1000) + the two ends


def test_given_a_node_that_serves_not_even_the_end_then_none() -> None:
    from keeper.history.served import first_served_block

    assert first_served_block(lambda block: False, 0, 999) is None


class _PrunedRpc:
    url = "http://127.0.0.1:1"

    def __init__(self, first_served: int, throttle_every: int = 0) -> None:
        self.first_served = first_served
        self.throttle_every = throttle_every  # every n-th call answered "rate limited"
        self.calls = 0

    def call(self, method: str, params: list[Any]) -> Any:
        from keeper.errors import rpc_error_from_reply  # the transport's own classification

        assert method == "eth_getBalance"
        self.calls += 1
        if self.throttle_every and self.calls % self.throttle_every == 0:
            raise rpc_error_from_reply(method, -32005, "rate limit exceeded, try again later")
        if int(params[1], 16) < self.first_served:  # anvil's reply for a pruned block
            raise rpc_error_from_reply(method, -32000, f"BlockOutOfRangeError: block height is 2000 but requested was {int(params[1], 16)}")
        return "0x0"


@pytest.mark.parametrize("throttle_every", [2, 3])
def test_given_a_node_that_throttles_probes_then_the_first_served_block_is_still_found(throttle_every: int) -> None:
    # A rate-limited probe was taken for a pruned block: the range started late, or the end
    # "could not be served"
    from keeper.history.served import first_served_block, state_served

    rpc = _PrunedRpc(1_872, throttle_every)
    pauses: list[float] = []
    assert first_served_block(state_served(rpc, "0x" + "11" * 20, pauses.append), 1_000, 1_999) == 1_872
    assert pauses and set(pauses) == {0.25}


def test_given_a_node_that_throttles_every_probe_then_the_throttling_is_raised_not_taken_for_pruning() -> None:
    from keeper.errors import TransientRpcError
    from keeper.history.served import PROBE_TRIES, served_start

    rpc = _PrunedRpc(0, throttle_every=1)
    pauses: list[float] = []
    with pytest.raises(TransientRpcError, match="rate limit"):
        served_start(rpc, "0x" + "11" * 20, 1_000, 1_999, pauses.append)
    assert rpc.calls == PROBE_TRIES and pauses == [0.25, 0.5, 1.0]


def test_given_a_pruned_node_then_the_default_range_starts_past_its_first_served_block() -> None:
    from structlog.testing import capture_logs

    from keeper.errors import ConfigError
    from keeper.history.served import SERVED_MARGIN, served_start

    with capture_logs() as logs:
        assert served_start(_PrunedRpc(1_872), "0x" + "11" * 20, 1_000, 1_999) == 1_872 + SERVED_MARGIN == 1_876
        assert served_start(_PrunedRpc(900), "0x" + "11" * 20, 1_000, 1_999) == 1_000  # an archive node: unchanged
    assert [(e["event"], e["asked"], e["served_from"], e["start"]) for e in logs] == [
        ("record.range_shortened", 1_000, 1_872, 1_876)]
    with pytest.raises(ConfigError, match="cannot serve the state of block 1999"):
        served_start(_PrunedRpc(2_100), "0x" + "11" * 20, 1_000, 1_999)


def test_given_an_op_stack_chain_then_the_l1_fee_reads_go_in_a_second_batch_pinned_by_hash() -> None:
    from types import SimpleNamespace

    from eth_abi import encode

    from keeper.history.record import BlockRecorder

    headers = {b: {"number": hex(b), "timestamp": "0x10", "hash": "0x" + f"{b:064x}", "parentHash": "0x" + f"{b - 1:064x}",
                   "baseFeePerGas": "0x7", "gasUsed": "0x1", "gasLimit": "0x2"} for b in (40, 41)}
    l1_answer = "0x" + encode(["(bool,bytes)[]"], [[(True, (v).to_bytes(32, "big")) for v in (7, 0, 1368, 810_949, 41)]]).hex()
    batches: list[list[Any]] = []

    class Rpc:
        url = "http://127.0.0.1:1"

        def batch(self, requests: list[Any]) -> list[Any]:
            batches.append(requests)
            return [headers[int(p[0], 16)] if m == "eth_getBlockByNumber" else l1_answer for m, p in requests]

    class Collector:
        _last_tick: dict[str, int] = {}

        def fetch_snapshot(self, block: int) -> Any:
            return SimpleNamespace(block_number=block, markets={}, account=None)

    recorder = BlockRecorder(Rpc(), Collector(), SimpleNamespace(captured=[], address="0x" + "cA11" * 10), True)  # type: ignore[arg-type]
    record = recorder.record(40, 41)
    assert [m for m, _ in batches[0]] == ["eth_getBlockByNumber"] * 2
    assert [p[1] for _, p in batches[1]] == [{"blockHash": headers[40]["hash"]}, {"blockHash": headers[41]["hash"]}]
    assert record.l1 == (7, 0, 1368, 810_949, 41) and record.hash == (40).to_bytes(32, "big")
    assert recorder.record(41).l1 == (7, 0, 1368, 810_949, 41) and len(batches) == 2  # fetched ahead


def test_given_a_block_that_leaves_the_chain_while_read_then_block_replaced_else_state_unavailable() -> None:
    from types import SimpleNamespace

    from keeper.errors import RpcError
    from keeper.history.record import BlockRecorder, BlockReplaced, StateUnavailable

    header = {"number": "0x28", "timestamp": "0x10", "hash": "0x" + "aa" * 32, "parentHash": "0x" + "bb" * 32,
              "gasUsed": "0x1", "gasLimit": "0x2"}
    now_at_40: list[dict[str, str]] = [header | {"hash": "0x" + "cc" * 32}]  # what the node holds at 40 when asked again

    class Rpc:
        url = "http://127.0.0.1:1"

        def batch(self, requests: list[Any]) -> list[Any]:
            return [now_at_40[0] if now_at_40 else header for _ in requests]

    class Collector:
        _last_tick: dict[str, int] = {}

        def fetch_snapshot(self, block: int) -> Any:
            raise RpcError("eth_call", -32001, "Resource not found")

    multicall = SimpleNamespace(captured=[], address="0x" + "cA11" * 10, pinned=None)
    recorder = BlockRecorder(Rpc(), Collector(), multicall, False)  # type: ignore[arg-type]
    recorder._ahead[40] = (header, None)
    with pytest.raises(BlockReplaced, match="block 40 0xaaaa"):
        recorder.record(40)
    assert recorder._ahead == {} and multicall.pinned is None  # the headers fetched ahead are forgotten
    # the same failure with the block still the node's: its state is not served (a pruned node)
    now_at_40.clear()
    with pytest.raises(StateUnavailable, match="cannot serve the state of block 40"):
        recorder.record(40)


@pytest.mark.parametrize("failure", ["timeout", "rate_limited"])
def test_given_a_read_that_fails_transiently_then_it_is_not_called_a_pruned_block(failure: str) -> None:
    # before: "cannot serve the state of block 40 (... an archive node keeps every block)", exit 2
    from types import SimpleNamespace

    from keeper.errors import TransientError, rpc_error_from_reply
    from keeper.history.record import BlockRecorder, StateUnavailable

    header = {"number": "0x28", "timestamp": "0x10", "hash": "0x" + "aa" * 32, "parentHash": "0x" + "bb" * 32,
              "gasUsed": "0x1", "gasLimit": "0x2"}

    class Rpc:
        url = "http://127.0.0.1:1"

        def batch(self, requests: list[Any]) -> list[Any]:
            return [header for _ in requests]

    class Collector:
        _last_tick: dict[str, int] = {}

        def fetch_snapshot(self, block: int) -> Any:
            if failure == "timeout":
                raise TransientError("RPC http://127.0.0.1:1 unreachable: ReadTimeout")
            raise rpc_error_from_reply("eth_call", 429, "Too Many Requests")

    multicall = SimpleNamespace(captured=[], address="0x" + "cA11" * 10, pinned=None)
    recorder = BlockRecorder(Rpc(), Collector(), multicall, False)  # type: ignore[arg-type]
    recorder._ahead[40] = (header, None)
    with pytest.raises(TransientError, match="reading block 40: .*the same command again resumes") as raised:
        recorder.record(40)
    assert not isinstance(raised.value, StateUnavailable)


@pytest.mark.parametrize("failures", [0, 2, 5, 6])
def test_given_transient_read_failures_then_the_block_is_asked_again_after_growing_pauses(failures: int) -> None:
    from structlog.testing import capture_logs

    from keeper.errors import TransientError
    from keeper.history.record import READ_TRIES, read_block

    asked: list[int] = []

    class Recorder:
        def record(self, block: int, last: int | None, *, at_head: bool) -> str:
            asked.append(block)
            if len(asked) <= failures:
                raise TransientError(f"reading block {block}: timed out")
            return "the record"

    pauses: list[float] = []
    with capture_logs() as logs:
        if failures >= READ_TRIES:
            with pytest.raises(TransientError, match="reading block 40"):
                read_block(Recorder(), 40, 99, at_head=False, sleep=pauses.append)  # type: ignore[arg-type]
        else:
            assert read_block(Recorder(), 40, 99, at_head=False, sleep=pauses.append) == "the record"  # type: ignore[arg-type]
    retried = min(failures, READ_TRIES - 1)
    assert len(asked) == min(failures + 1, READ_TRIES)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0][:retried]
    assert [(e["event"], e["block"], e["tries"]) for e in logs] == [("record.retry", 40, t) for t in range(1, retried + 1)]


def test_given_a_stop_while_reads_fail_then_the_error_is_raised_at_once_not_retried() -> None:
    from keeper.errors import TransientError
    from keeper.history.record import read_block

    asked: list[int] = []

    class Recorder:
        def record(self, block: int, last: int | None, *, at_head: bool) -> str:
            asked.append(block)
            raise TransientError(f"reading block {block}: timed out")

    pauses: list[float] = []
    with pytest.raises(TransientError, match="reading block 40"):
        read_block(Recorder(), 40, 99, at_head=False, sleep=pauses.append, stop=lambda: True)  # type: ignore[arg-type]
    assert asked == [40] and pauses == []

