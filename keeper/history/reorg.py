"""A reorg under a recording: the recorded blocks the node's chain no longer holds.

`keeper record` notices one when a block's parent hash is not the recorded hash of the block
before it (also on resume), or when the range's last recorded block is no longer the node's block
at that height. It then walks back to the common ancestor, the last recorded block whose hash the
node still has at that height, drops the blocks after it (store.truncate_history) and records on
from there. Deeper than MAX_REORG_DEPTH blocks it stops with one line and leaves the history as it
was: that is not a reorg a node ordinarily makes (another chain, a reset devnet), and no history
should be rewritten for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keeper.chain.rpc import JsonRpc
from keeper.errors import ConfigError
from keeper.history.store import HistoryWriter, truncate_history
from keeper.logs import get_logger

log = get_logger("keeper.record")

MAX_REORG_DEPTH = 64
HEADERS_PER_BATCH = 16  # node headers fetched per round trip while walking back


class ReorgTooDeep(ConfigError):
    """The node's chain left the recorded one more than MAX_REORG_DEPTH blocks back (exit 2)."""


def find_ancestor(tip: int, first: int, recorded_hash: Callable[[int], bytes | None],
                  node_hashes: Callable[[Sequence[int]], Sequence[bytes | None]], *, first_parent: bytes) -> int:
    """The last block at or below `tip` whose recorded hash is the node's at that height (the
    common ancestor; first - 1 when every recorded block from `first` is orphaned and the node's
    block first - 1 is still `first_parent`, the first block's recorded parent). The node's
    hashes are asked for HEADERS_PER_BATCH blocks at a time, `tip` first. Raises ReorgTooDeep when
    more than MAX_REORG_DEPTH blocks above the ancestor were orphaned, or when no recorded block
    nor the first one's parent is on the node's chain (another chain, a reset devnet: nothing
    recorded is dropped for it)."""
    block = tip
    while block >= first and tip - block <= MAX_REORG_DEPTH:
        heights = list(range(block, max(first, tip - MAX_REORG_DEPTH) - 1, -1))[:HEADERS_PER_BATCH]
        for height, node_hash in zip(heights, node_hashes(heights)):
            if node_hash is not None and node_hash == recorded_hash(height):
                return height
        block = heights[-1] - 1
    if tip - block > MAX_REORG_DEPTH:
        raise ReorgTooDeep(f"the node's chain leaves the recorded one more than {MAX_REORG_DEPTH} blocks back "
                           f"(no recorded block in {tip - MAX_REORG_DEPTH}-{tip} is on it)")
    if first == 0 or list(node_hashes([first - 1])) != [first_parent]:
        raise ReorgTooDeep(f"no recorded block ({first}-{tip}) is on the node's chain, nor the parent of {first} "
                           f"(another chain, or a reset devnet?)")
    return first - 1


def node_hashes(rpc: JsonRpc, heights: Sequence[int]) -> list[bytes | None]:
    """The hashes of the node's blocks at `heights` (None: it has no block there), one batch."""
    replies = rpc.batch([("eth_getBlockByNumber", [hex(h), False]) for h in heights])
    return [bytes.fromhex(r["hash"][2:]) if r else None for r in replies]


def rewind(writer: HistoryWriter, rpc: JsonRpc, tip: int) -> int:
    """Drop the recorded blocks after the common ancestor of the recorded chain (ending at `tip`)
    and the node's; returns the ancestor (the recording goes on after it). `record.reorg` names
    the depth. Deeper than MAX_REORG_DEPTH: ReorgTooDeep, the history's files untouched."""
    first = writer.first_block()
    assert first is not None
    try:
        ancestor = find_ancestor(tip, first, writer.recorded_hash, lambda heights: node_hashes(rpc, heights),
                                 first_parent=writer.first_parent_hash())
    except ReorgTooDeep as exc:
        raise ReorgTooDeep(f"--out {writer.path}: {exc}; left as it was (record into another --out)") from exc
    if ancestor < tip:  # else only headers fetched ahead were of the other chain: nothing recorded is dropped
        log.warning("record.reorg", depth=tip - ancestor, from_block=tip, ancestor=ancestor)
    writer.drop_after(ancestor)
    truncate_history(writer.path, ancestor)
    return ancestor
