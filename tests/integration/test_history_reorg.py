"""`keeper record` under reorgs and on a pruned node, on anvil (`anvil_reorg` replaces the last N
blocks): the history always ends up holding the node's chain, a reorg deeper than 64 blocks is
refused with the files untouched, and the default range starts where the node serves state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.history.record import record_history
from keeper.history.served import SERVED_MARGIN
from keeper.history.store import read_blocks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[World, Path]]:  # type: ignore[no-untyped-def]
    """A node of its own: reorgs and the blocks they revert shorten anvil's pruning window, which
    the session devnet's other tests read back through."""
    world = start_world(load_state=prebuilt_state())
    work = tmp_path_factory.mktemp("reorg")
    world.manifest.write(work / "manifest.json")
    (work / "keeper.toml").write_text(f'[chain]\nmanifest = "{work / "manifest.json"}"\n')
    yield world, work
    world.stop()


def _rpc(world: World) -> JsonRpc:
    assert world.node.rpc is not None
    return world.node.rpc


def _mine(rpc: JsonRpc, blocks: int) -> int:
    """`blocks` new blocks, the clock warped first (a block re-mined at a height anvil reverted
    must not look like the one it replaced); returns the head."""
    rpc.call("evm_increaseTime", [7])
    for _ in range(blocks):
        rpc.call("evm_mine", [])
    return rpc.block_number()


def _reorg(world: World, depth: int) -> None:
    """The last `depth` blocks replaced (a transfer in the first: empty re-mined blocks may come
    out identical to the ones they replace); the head stays at its height."""
    account = world.manifest.accounts.deployer
    _rpc(world).call("anvil_reorg", [depth, [[{"from": account, "to": account, "value": "0x1"}, 0]]])


def _record(world: World, work: Path, out: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "record", "--rpc-url", world.node.rpc_url, "--out", out,
                           "-c", "keeper.toml", *args], capture_output=True, text=True, timeout=300, env=environment,
                          cwd=work)


def _events(result: subprocess.CompletedProcess[str], name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == name]


def _reorgs(events: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    return [(e["depth"], e["from_block"], e["ancestor"]) for e in events if e["event"] == "record.reorg"]


def _recorded_then_reorged(world: World, work: Path, out: str, blocks: int, depth: int) -> int:
    """`blocks` new blocks recorded into `out` by the CLI, then the last `depth` of them replaced;
    returns the head (the same height after the reorg)."""
    head = _mine(_rpc(world), blocks)
    assert _record(world, work, out, "--from-block", str(head - blocks + 1)).returncode == 0
    _reorg(world, depth)
    assert _rpc(world).block_number() == head
    return head


def _on_the_nodes_chain(rpc: JsonRpc, history: Path) -> list[int]:
    """The history's blocks, after checking each one's hash against the node's at that height."""
    records = list(read_blocks(history))
    for record in records:
        assert record.hash.hex() == rpc.call("eth_getBlockByNumber", [hex(record.block), False])["hash"][2:], record.block
    assert all(b.parent_hash == a.hash for a, b in zip(records, records[1:]))
    return [r.block for r in records]


def test_a_10_block_reorg_between_two_runs_is_dropped_and_recorded_again(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    rpc = _rpc(node)
    # Given a reorg of the last 10 recorded blocks, and 2 new blocks on the new chain
    head = _recorded_then_reorged(node, work, "h10", 20, 10)
    new_head = _mine(rpc, 2)
    # When the recording resumes
    second = _record(node, work, "h10")
    # Then the orphaned blocks were found and dropped, and the new chain's recorded in their place
    assert second.returncode == 0, second.stderr
    assert _reorgs(_events(second, "record.reorg")) == [(10, head, head - 10)]
    assert "recorded 12 blocks" in second.stdout
    assert _on_the_nodes_chain(rpc, work / "h10") == list(range(head - 19, new_head + 1))


def test_a_3_block_reorg_at_the_same_height_is_found_at_the_ranges_end(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    rpc = _rpc(node)
    # Given 3 blocks replaced, the head at the same height
    head = _recorded_then_reorged(node, work, "h3", 8, 3)
    # When recorded again: nothing new to read, but the last recorded block is no longer the node's
    again = _record(node, work, "h3")
    assert again.returncode == 0, again.stderr
    assert _reorgs(_events(again, "record.reorg")) == [(3, head, head - 3)]
    assert "recorded 3 blocks" in again.stdout
    assert _on_the_nodes_chain(rpc, work / "h3") == list(range(head - 7, head + 1))


def test_a_10_block_reorg_during_a_recording(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    rpc = _rpc(node)
    head = _mine(rpc, 30)
    settings = load_config(work / "keeper.toml", environ={}, overrides={"chain": {"rpc_url": node.node.rpc_url}})
    reorged: list[int] = []

    def progress(done: int, total: int, block: int) -> None:
        if block == head - 5 and not reorged:  # blocks head-9..head-5 recorded, head-4.. fetched ahead
            _reorg(node, 10)
            reorged.append(block)

    with capture_logs() as logs:
        written, _ = record_history(settings, rpc, tmp_path / "h", from_block=head - 29, to_block=head, follow=False,
                                    account=None, progress=progress)
    assert reorged
    # the 5 recorded blocks of the orphaned chain were dropped, the new chain's 10 recorded
    assert _reorgs(logs) == [(5, head - 5, head - 10)]
    assert written == 30
    assert _on_the_nodes_chain(rpc, tmp_path / "h") == list(range(head - 29, head + 1))


def test_a_node_that_fails_twice_mid_recording_is_asked_again_and_the_history_is_whole(
        world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # before: the first HTTP 503 ended the recording with "cannot serve the state of block N", exit 2
    from keeper import errors
    from keeper.history import record as record_module

    node, work = world
    head = _mine(_rpc(node), 20)
    monkeypatch.setattr(record_module, "FIRST_PAUSE_S", 0.01)

    class Flaky(JsonRpc):
        calls = 0

        def _post(self, payload: Any) -> Any:
            requests = payload if isinstance(payload, list) else [payload]
            if any(r["method"] == "eth_call" and isinstance(r["params"][1], dict) for r in requests):  # a block's reads
                Flaky.calls += 1
                if Flaky.calls in (8, 9):  # two round trips in a row, mid-range
                    raise errors.HttpStatusError("RPC answered HTTP 503", 503)
            return super()._post(payload)

    rpc = Flaky(node.node.rpc_url)
    settings = load_config(work / "keeper.toml", environ={}, overrides={"chain": {"rpc_url": node.node.rpc_url}})
    with capture_logs() as logs:
        written, _ = record_history(settings, rpc, tmp_path / "h", from_block=head - 19, to_block=head, follow=False,
                                    account=None)
    retries = [e for e in logs if e["event"] == "record.retry"]
    assert [(e["tries"], e["pause_s"]) for e in retries] == [(1, 0.01), (2, 0.02)] and Flaky.calls > 9
    assert written == 20
    assert _on_the_nodes_chain(_rpc(node), tmp_path / "h") == list(range(head - 19, head + 1))


def test_a_65_block_reorg_exits_2_and_leaves_the_files_as_they_were(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    rpc = _rpc(node)
    _mine(rpc, 70)
    assert _record(node, work, "h65", "--from-block", str(rpc.block_number() - 69)).returncode == 0
    before = {p.name: p.read_bytes() for p in (work / "h65").iterdir()}
    _reorg(node, 65)
    _mine(rpc, 1)
    result = _record(node, work, "h65")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out h65: ") and "more than 64 blocks back" in lines[0], lines
    assert {p.name: p.read_bytes() for p in (work / "h65").iterdir()} == before


def test_the_default_range_on_a_pruned_node_starts_where_it_serves_state(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    rpc = _rpc(node)
    head = _mine(rpc, 200)  # past anvil's --prune-history 128: the 1,000 blocks up to the head are not all kept
    result = _record(node, work, "hp")
    assert result.returncode == 0, result.stderr
    (shortened,) = _events(result, "record.range_shortened")
    assert shortened["asked"] == max(0, head - 999) and shortened["start"] == shortened["served_from"] + SERVED_MARGIN
    assert head - 128 <= shortened["served_from"] <= head
    with pytest.raises(Exception):  # the block before it is pruned indeed
        rpc.call("eth_getBalance", ["0x" + "00" * 20, hex(shortened["served_from"] - 1)])
    blocks = _on_the_nodes_chain(rpc, work / "hp")
    assert blocks[0] == shortened["start"] and blocks[-1] >= head
