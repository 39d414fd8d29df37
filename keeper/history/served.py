"""Which blocks a node can serve the state of: a pruned full node keeps only its recent states
(anvil its last --prune-history, geth 128), and answers a read of an older block with an error.

`keeper record`'s default range (the 1,000 blocks up to the head) starts, on such a node, at the
first block it serves plus SERVED_MARGIN (the node prunes on while the recording reads), found by
bisection, and says so (`record.range_shortened`); an explicit --from-block is never moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from keeper.chain.rpc import JsonRpc
from keeper.errors import ConfigError, RpcError, TransientError, state_missing
from keeper.logs import get_logger, redacted_url

SERVED_MARGIN = 4  # blocks past the first served one: the node prunes on as it mines
# Only a probe answered with a reply that says the state is gone (keeper/errors.py: state_missing)
# counts as pruning. Any other transient reply (throttled, timed out, geth's "execution aborted
# (timeout = 5s)", "temporarily unavailable") is asked again after a pause, PROBE_TRIES times in all,
# then that error is raised; any other error (a revert, an internal error) is raised at once.
PROBE_TRIES = 4
FIRST_PAUSE_S = 0.25
log = get_logger("keeper.record")


def first_served_block(serves: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The first block in [lo, hi] that `serves` answers True for, where a node that serves a
    block serves every later one (about log2(hi - lo) probes); None when it does not serve `hi`."""
    if serves(lo):
        return lo
    if not serves(hi):
        return None
    while hi - lo > 1:  # not served at lo, served at hi
        mid = (lo + hi) // 2
        if serves(mid):
            hi = mid
        else:
            lo = mid
    return hi


def state_served(rpc: JsonRpc, address: str, sleep: Callable[[float], None] = time.sleep) -> Callable[[int], bool]:
    """Does the node serve the state of a block (a balance read of `address` there)? A transport
    failure (timeout, 5xx) is raised, and so is a transient reply after PROBE_TRIES, and any other
    error that does not say the state is gone at once: none is taken for a pruned block."""
    def serves(block: int) -> bool:
        for attempt in range(PROBE_TRIES):
            try:
                rpc.call("eth_getBalance", [address, hex(block)])
                return True
            except RpcError as exc:
                if state_missing(exc):
                    return False
                if not isinstance(exc, TransientError) or attempt == PROBE_TRIES - 1:
                    raise
                sleep(FIRST_PAUSE_S * 2 ** attempt)
        raise AssertionError("unreachable")

    return serves


def served_start(rpc: JsonRpc, address: str, start: int, end: int, sleep: Callable[[float], None] = time.sleep) -> int:
    """The default range's first block: `start`, or the first block the node serves past it plus
    SERVED_MARGIN (logged as record.range_shortened). A node that serves not even `end`: ConfigError."""
    served = first_served_block(state_served(rpc, address, sleep), start, end)
    if served is None:
        raise ConfigError(f"the node at {redacted_url(rpc.url)} cannot serve the state of block {end} (its head "
                          "or --to-block): an archive node keeps every block")
    if served == start:
        return start
    shortened = min(served + SERVED_MARGIN, end)
    log.warning("record.range_shortened", asked=start, served_from=served, start=shortened)
    return shortened
