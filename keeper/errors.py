"""One error root, grouped by how the keeper reacts (see ../shared/STYLE.md).

- FatalError: stop the process (bad config, wrong chain, missing contract code, missing tool).
- TransientError: retry with backoff, then skip the tick (RPC timeout, connection refused, 429).
- SkipOpportunity: log the reason and move on (stale data, simulation revert, below min profit).
- anything else reaching the engine is unexpected: an error event with the traceback, and the
  strategy or market where it happened quarantined after N in a row (`classify_error`).
Only the engine and the CLI catch broadly; everything else raises one of these.
"""

from __future__ import annotations

from enum import Enum


class KeeperError(Exception):
    """Root of every error the keeper raises on purpose."""


class FatalError(KeeperError):
    """The process cannot go on: configuration, chain identity, missing code or tools."""


class ConfigError(FatalError):
    """A configuration value is wrong; the message names the field."""


class ChainMismatchError(FatalError):
    """The RPC endpoint is not the chain, or the contract is not the one, we were told."""


class UrlRefusedError(FatalError):
    """At start, the node answered with a status that says its URL or key is wrong (no retry mends
    it). The message does not say where the URL came from: the command that knows adds it."""


class ToolMissingError(FatalError):
    """A required binary or artifact (anvil, forge, npm package) is not installed."""


class TransientError(KeeperError):
    """Worth retrying: the endpoint did not answer, or answered with a temporary error."""

    refuses = False  # HttpStatusError: a status that says the URL or its key is wrong


class HttpStatusError(TransientError):
    """The node's HTTP server answered with an error status. Transient in the loop (a provider may
    rate-limit with 403, or a gateway fail for a while); at start a status that says the URL or its
    key is wrong (`refuses`) is fatal at once (keeper/startup.py)."""

    REFUSING = frozenset({401, 404, 405})  # unauthorised, no such path, not a JSON-RPC endpoint

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:  # across a process pool
        return type(self), (str(self), self.status)

    @property
    def refuses(self) -> bool:  # type: ignore[override]
        return self.status in self.REFUSING


class SnapshotWrongBlock(TransientError):
    """A snapshot batch was answered from another block than the one asked for, at every read
    (keeper/collect.py, check_block): the tick is skipped, the next head tries again."""

    def __init__(self, phase: str, expected_block: int, got_block: int, reads: int) -> None:
        super().__init__(f"snapshot: the {phase} batch was answered from block {got_block}, not {expected_block}, "
                         f"{reads} reads in a row")
        self.phase = phase
        self.expected_block = expected_block
        self.got_block = got_block
        self.reads = reads

    def __reduce__(self) -> tuple[type, tuple[str, int, int, int]]:  # across a process pool
        return type(self), (self.phase, self.expected_block, self.got_block, self.reads)


class RpcError(KeeperError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data

    def __reduce__(self) -> tuple[type, tuple[str, int, str, object]]:  # across a process pool
        return type(self), (self.method, self.code, self.rpc_message, self.data)


class TxRevertedError(KeeperError):
    """A transaction (or its simulation) reverted; `reason` is decoded when we can."""

    def __init__(self, what: str, reason: str, tx_hash: str | None = None) -> None:
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{what} reverted: {reason}{where}")
        self.what = what
        self.reason = reason
        self.tx_hash = tx_hash

    def __reduce__(self) -> tuple[type, tuple[str, str, str | None]]:  # across a process pool
        return type(self), (self.what, self.reason, self.tx_hash)


class SkipOpportunity(KeeperError):
    """This tick's opportunity is skipped for the stated reason; nothing was sent."""


class TransientRpcError(RpcError, TransientError):
    """A JSON-RPC error reply that means "try again" (rate limited, busy, timed out upstream)."""


# "Slow down" replies: rate limited or busy (EIP-1474 limit exceeded, the 429 some gateways put in
# the JSON body), whatever was asked; a subset of the transient ones below.
_THROTTLED_RPC_CODES = frozenset({-32005, 429})
_THROTTLED_RPC_WORDS = ("rate limit", "too many requests", "try again", "busy", "capacity", "limit exceeded", "quota",
                        "overloaded")
# "Out of time" replies: the node has the state but gave up on the request (geth, erigon, reth:
# "execution aborted (timeout = 5s)" for an eth_call past the EVM timeout; geth's server: "request
# timed out", -32002, past its HTTP timeout; "context deadline exceeded"); a subset too.
_SLOW_RPC_WORDS = ("execution aborted", "timed out", "timeout", "deadline exceeded")
# Replies that say the node has not kept the state asked for (a pruned node: geth "missing trie
# node", "header not found", "state histories haven't been fully indexed yet", "required historical
# state unavailable"; anvil BlockOutOfRange): the only ones taken for pruning, unless the code says
# throttled (-32005, 429: those words then name what was throttled) or reverted.
_STATE_MISSING_WORDS = ("missing trie node", "header not found", "fully indexed", "historical state",  # geth, reth
                        "no state available",  # Nethermind (-32002 "No state available for block 0x...")
                        "due to pruning",  # Erigon ("old data not available due to pruning")
                        "world state unavailable",  # Besu
                        "blockoutofrange", "unknown block", "pruned")  # anvil; "pruned history unavailable"
_STATE_MISSING_RPC_CODES = frozenset({-32001})  # EIP-1474 resource not found: EIP-1898's block it does not hold
# JSON-RPC error codes that mean "try again": the throttled ones and EIP-1474 resource unavailable.
_TRANSIENT_RPC_CODES = _THROTTLED_RPC_CODES | {-32002}
# Wording of try-again replies (geth, erigon, alchemy, infura, quicknode, anvil forks).
_TRANSIENT_RPC_WORDS = _THROTTLED_RPC_WORDS + _SLOW_RPC_WORDS + (
    "temporarily", "unavailable", "header not found",
    "blockoutofrange", "unknown block")  # the head moved back (reorg) under a pinned read; or a pruned block


def _reverted(code: int, text: str) -> bool:
    """A revert (code 3, or "revert" in the message): its reason is the contract's words, never the
    node's, whatever they say ("oracle timeout", "pool busy", "deposit limit exceeded")."""
    return code == 3 or "revert" in text


def is_revert(exc: RpcError) -> bool:
    """The node's error reply is a revert (see `_reverted`)."""
    return _reverted(exc.code, exc.rpc_message.lower())


def state_missing(exc: RpcError) -> bool:
    """A reply that says the node has not kept the state asked for (a pruned block): the only reply
    `keeper record` and its default range's probes (history/served.py) take for pruning. Any other
    transient reply (slow, busy, "temporarily unavailable") is asked again; any other error is raised."""
    text = exc.rpc_message.lower()
    if _reverted(exc.code, text) or exc.code in _THROTTLED_RPC_CODES:  # a 429 saying "historical state": slow down
        return False
    return exc.code in _STATE_MISSING_RPC_CODES or any(word in text for word in _STATE_MISSING_WORDS)


def rpc_error_from_reply(method: str, code: int, message: str, data: object = None) -> RpcError:
    """The exception for a JSON-RPC error reply: TransientRpcError when it means "try again",
    else RpcError (a revert, a refused transaction, a bad request). The transport calls this."""
    text = message.lower()
    if _reverted(code, text):
        return RpcError(method, code, message, data)
    if code in _TRANSIENT_RPC_CODES or any(word in text for word in _TRANSIENT_RPC_WORDS):
        return TransientRpcError(method, code, message, data)
    return RpcError(method, code, message, data)


class ErrorGroup(Enum):
    """How the keeper reacts to an exception that reached the engine."""

    TRANSIENT = "transient"  # metric + warning, skip the tick (the next one retries)
    OPPORTUNITY = "opportunity"  # skip with its reason
    FATAL = "fatal"  # orderly stop, exit 1
    UNEXPECTED = "unexpected"  # error event with the traceback; quarantine after N in a row


def classify_error(exc: BaseException) -> ErrorGroup:
    if isinstance(exc, TransientError):
        return ErrorGroup.TRANSIENT
    if isinstance(exc, SkipOpportunity):
        return ErrorGroup.OPPORTUNITY
    if isinstance(exc, FatalError):
        return ErrorGroup.FATAL
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return ErrorGroup.TRANSIENT  # a socket-level failure that escaped the transport's mapping
    return ErrorGroup.UNEXPECTED
