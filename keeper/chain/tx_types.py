"""The transaction pipeline's types (keeper/chain/sender.py): what to send (TxRequest) and how
(SenderConfig), one nonce in flight (PendingTx), how it settled (TxOutcome), and the errors that
say nothing was sent, or that it is not settled yet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from keeper.chain.abi import ContractAbi
from keeper.chain.fees import FeePolicy
from keeper.chain.pending import PendingEntry
from keeper.errors import ConfigError, SkipOpportunity, TransientError, TxRevertedError


TxStatus = Literal["included", "reverted", "dropped", "replaced"]
OnSigned = Callable[[PendingEntry], None]


class SimulationReverted(TxRevertedError, SkipOpportunity):
    """The call reverted in simulation (eth_call or gas estimation); nothing was sent."""


class StaleAtSend(SkipOpportunity):
    """The chain moved past the request's last valid block before it was signed; nothing was sent."""


class TxRejected(SkipOpportunity):
    """The node refused the broadcast (insufficient funds, gas, ...); nothing is pending."""


class TxPendingTimeout(TransientError):
    """Still not settled after the wait limits. The transaction stays tracked (and in the store):
    poll or wait on it again, or let recover() pick it up after a restart."""

    def __init__(self, tx_hash: str, nonce: int, waited_blocks: int, waited_s: float) -> None:
        super().__init__(f"tx {tx_hash} (nonce {nonce}) not settled after {waited_blocks} blocks / {waited_s:.1f} s")
        self.tx_hash = tx_hash
        self.nonce = nonce


@dataclass(frozen=True)
class TxRequest:
    """What to call (`to` None: create a contract from `data`). `errors_abi` decodes the target's
    custom errors in revert reasons; `valid_until_block`: not signed once the chain head is past
    it (StaleAtSend)."""

    to: str | None
    data: bytes = b""
    value_wei: int = 0
    label: str = "tx"
    errors_abi: ContractAbi | None = field(default=None, compare=False, repr=False)
    valid_until_block: int | None = None


@dataclass(frozen=True)
class SenderConfig:
    fee_policy: FeePolicy
    gas_margin_bps: int = 2_000  # gas limit = estimate * (1 + 20%)
    confirmations: int = 1  # 1: settled as soon as it is in a block
    replace_after_blocks: int = 3  # blocks since the last broadcast before a fee bump
    max_wait_blocks: int = 100  # since the first broadcast, then TxPendingTimeout
    max_wait_s: float = 600.0
    poll_interval_s: float = 0.5
    broadcast_attempts: int = 3  # on transient RPC errors, with the same raw bytes
    # True: a settled nonce stays in the store until `acknowledge(nonce)` (its outcome is booked),
    # so a crash between settling and booking still finds it after a restart.
    keep_settled: bool = False
    # Dropped: the node has not held it (re-broadcasts and replacements refused or lost) for this many blocks.
    dropped_after_blocks: int = 3

    def __post_init__(self) -> None:
        for name in ("confirmations", "replace_after_blocks", "max_wait_blocks", "broadcast_attempts",
                     "dropped_after_blocks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gas_margin_bps < 0:
            raise ConfigError(f"gas_margin_bps must be >= 0, got {self.gas_margin_bps}")


@dataclass(frozen=True)
class TxOutcome:
    """How a nonce settled. `tx_hash` is the attempt that was mined (or the last one sent).
    `fee_paid_wei` = gas used * effective gas price + the receipt's L1 fee (OP-stack), if any."""

    tx_hash: str
    nonce: int
    status: TxStatus
    block_number: int | None
    block_hash: str | None
    gas_used: int
    effective_gas_price_wei: int
    fee_paid_wei: int
    attempt_hashes: tuple[str, ...]
    reorgs: int
    revert_reason: str | None = None


@dataclass
class PendingTx:
    """In-flight tracking of one nonce; owned and updated by the sender."""

    entry: PendingEntry
    errors_abi: ContractAbi | None = None
    included_at: tuple[int, str] | None = None  # (block number, block hash) last seen holding it
    nonce_taken_at: int | None = None  # head when the nonce was first seen used with no receipt of ours
    reorgs: int = 0
    head: int = 0  # chain head at the last poll
    missing_since: int | None = None  # head when the node was first found not holding it (None: it holds it)

    @property
    def nonce(self) -> int:
        return self.entry.nonce

    @property
    def tx_hash(self) -> str:
        return self.entry.latest.tx_hash
