"""One error root, grouped by how the keeper reacts (see ../shared/STYLE.md).

- FatalError: stop the process (bad config, wrong chain, missing contract code, missing tool).
- TransientError: retry with backoff, then skip the tick (RPC timeout, connection refused, 429).
- SkipOpportunity: log the reason and move on (stale data, simulation revert, below min profit).
Only the engine and the CLI catch broadly; everything else raises one of these.
"""

from __future__ import annotations


class KeeperError(Exception):
    """Root of every error the keeper raises on purpose."""


class FatalError(KeeperError):
    """The process cannot go on: configuration, chain identity, missing code or tools."""


class ConfigError(FatalError):
    """A configuration value is wrong; the message names the field."""


class ChainMismatchError(FatalError):
    """The RPC endpoint is not the chain, or the contract is not the one, we were told."""


class ToolMissingError(FatalError):
    """A required binary or artifact (anvil, forge, npm package) is not installed."""


class TransientError(KeeperError):
    """Worth retrying: the endpoint did not answer, or answered with a temporary error."""


class RpcError(KeeperError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class TxRevertedError(KeeperError):
    """A transaction (or its simulation) reverted; `reason` is decoded when we can."""

    def __init__(self, what: str, reason: str, tx_hash: str | None = None) -> None:
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{what} reverted: {reason}{where}")
        self.what = what
        self.reason = reason
        self.tx_hash = tx_hash


class SkipOpportunity(KeeperError):
    """This tick's opportunity is skipped for the stated reason; nothing was sent."""
