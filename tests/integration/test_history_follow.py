"""`keeper record --follow` records a block once the node has the next one (the audit: on a driven
devnet, reads of the head block while anvil mined the next answered with the next block's number
or a TWAP underflow, and those answers went into the history as the head's); a --from-block past
the head names the head, not a --to-block nobody gave."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.history.record import record_history
from keeper.history.store import read_blocks

pytestmark = pytest.mark.integration


def test_follow_records_the_head_once_the_next_block_is_there(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        devnet.rpc.call("evm_mine", [])
    head = devnet.rpc.block_number()
    devnet.manifest.write(tmp_path / "manifest.json")
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": tmp_path / "manifest.json"},
                                                        "monitoring": {"journal": tmp_path / "j.sqlite"}})
    h = tmp_path / "h"

    def follow(from_block: int | None) -> int:
        deadline = time.monotonic() + 0.5
        return record_history(settings, devnet.rpc, h, from_block=from_block, to_block=None, follow=True,
                              account=None, poll_s=0.05, stop=lambda: time.monotonic() > deadline)[0]

    # Given a node whose head does not move: following records up to the block before it
    assert follow(head - 2) == 2
    assert [r.block for r in read_blocks(h)] == [head - 2, head - 1]
    # When the next block comes: the old head is recorded, from its own state
    devnet.rpc.call("evm_mine", [])
    assert follow(None) == 1
    assert [r.block for r in read_blocks(h)] == [head - 2, head - 1, head]


def test_a_from_block_past_the_head_names_the_head(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    head = devnet.rpc.block_number()
    devnet.manifest.write(tmp_path / "manifest.json")
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": tmp_path / "manifest.json"}})
    # Given no --to-block (the audit: "--from-block 3001 is after --to-block 2007", an option not given)
    with pytest.raises(ConfigError, match=f"^--from-block {head + 50}: after the node's head, block {head} "):
        record_history(settings, devnet.rpc, tmp_path / "h", from_block=head + 50, to_block=None, follow=False,
                       account=None)
