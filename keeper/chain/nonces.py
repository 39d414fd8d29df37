"""Nonces handed out locally (no round trip per transaction), resynced from the chain's pending
count when the node says ours is off: nonce too low / too high, replacement underpriced.

`classify_send_error` maps a node's `eth_sendRawTransaction` error message (geth, reth, anvil,
nethermind wording) to what the sender should do about it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum

from keeper.chain.rpc import JsonRpc


class SendErrorKind(Enum):
    NONCE_TOO_LOW = "nonce_too_low"  # the nonce is used (mined): resync
    NONCE_TOO_HIGH = "nonce_too_high"  # a gap below it: resync
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"  # the pool holds another tx at this nonce
    ALREADY_KNOWN = "already_known"  # the pool has this very transaction: success
    FEE_TOO_LOW = "fee_too_low"  # below the base fee or the pool's minimum: reprice
    OTHER = "other"  # insufficient funds, gas limit, bad signature...


# Checked in order: "replacement transaction underpriced" before plain "underpriced".
_SEND_ERROR_PATTERNS: tuple[tuple[SendErrorKind, tuple[str, ...]], ...] = (
    (SendErrorKind.NONCE_TOO_LOW, ("nonce too low", "noncetoolow", "old nonce", "nonce has already been used")),
    (SendErrorKind.NONCE_TOO_HIGH, ("nonce too high", "noncetoohigh", "nonce gap")),
    (SendErrorKind.REPLACEMENT_UNDERPRICED, ("replacement transaction underpriced", "replacement underpriced",
                                             "replacementnotallowed")),
    (SendErrorKind.ALREADY_KNOWN, ("already known", "already imported", "known transaction", "alreadyknown")),
    (SendErrorKind.FEE_TOO_LOW, ("less than block base fee", "fee cap less than", "feecap too low",
                                 "underpriced", "max fee per gas less than")),
)

RESYNC_KINDS = frozenset({
    SendErrorKind.NONCE_TOO_LOW, SendErrorKind.NONCE_TOO_HIGH, SendErrorKind.REPLACEMENT_UNDERPRICED,
})


def classify_send_error(message: str) -> SendErrorKind:
    text = message.lower()
    for kind, needles in _SEND_ERROR_PATTERNS:
        if any(needle in text for needle in needles):
            return kind
    return SendErrorKind.OTHER


def fetch_pending_nonce(rpc: JsonRpc, address: str) -> int:
    """The next nonce counting the node's pending pool."""
    return int(rpc.call("eth_getTransactionCount", [address, "pending"]), 16)


class NonceAllocator:
    """Hands out consecutive nonces from a local counter; thread-safe. Syncs from the chain on
    first use and on `resync`; `release` gives back the last nonce when it was never broadcast."""

    def __init__(self, fetch_chain_nonce: Callable[[], int]) -> None:
        self._fetch_chain_nonce = fetch_chain_nonce
        self._lock = threading.Lock()
        self._next: int | None = None

    def next_nonce(self) -> int:
        with self._lock:
            if self._next is None:
                self._next = self._fetch_chain_nonce()
            nonce = self._next
            self._next += 1
            return nonce

    def resync(self, floor: int = 0) -> int:
        """Take the chain's pending count (but at least `floor`, e.g. past nonces a pending-tx
        store still holds) as the next nonce; returns it."""
        with self._lock:
            self._next = max(self._fetch_chain_nonce(), floor)
            return self._next

    def release(self, nonce: int) -> None:
        """`nonce` was handed out but never reached the node. The last one handed out is taken
        back; any other leaves a gap, so the next hand-out resyncs from the chain."""
        with self._lock:
            if self._next is not None and nonce == self._next - 1:
                self._next = nonce
            else:
                self._next = None

    def peek(self) -> int | None:
        """The nonce the next hand-out will return, or None when it will sync from the chain first."""
        with self._lock:
            return self._next
