"""The transaction pipeline: simulate -> estimate gas -> price -> nonce -> sign -> persist -> send
-> confirm, replacing a stuck transaction with bumped fees and re-checking after reorgs.

    send(request)            = wait(submit(request))
    submit(request)          simulate (a revert raises SimulationReverted: nothing is sent), gas
                             estimate + margin, fees (FeeCapExceeded above the cap), nonce, sign,
                             write the pending entry, broadcast
    poll(pending)            one look at the chain; returns the TxOutcome once settled, else None.
                             Re-broadcasts a transaction the node forgot, replaces one not included
                             within `replace_after_blocks` (same nonce, fees bumped >= 12.5%),
                             notices when the block that held it is no longer canonical (reorg)
    wait(pending)            poll until settled; TxPendingTimeout (transient) after the limits
    recover()                on start: reload the pending-tx store, re-broadcast the same raw
                             bytes (a re-broadcast that fails transiently is left "unknown" to
                             the next poll, never waited for), and only then hand out new nonces
                             (submit calls it first)

Outcome statuses: included, reverted (mined with status 0; reason decoded), replaced (another
transaction took the nonce), dropped (the node has not held it for `dropped_after_blocks` blocks,
refusing each look's re-broadcast and replacement; the nonce is free again).

Log events, each with the tx hash once there is one (simulation comes before signing, so
tx.simulated has none): tx.simulated, tx.simulation_reverted, tx.signed, tx.sent, tx.rejected,
tx.nonce_resynced, tx.rebroadcast, tx.replaced, tx.replace_refused (cap), tx.replace_rejected
(node), tx.mined, tx.reorged, tx.included, tx.reverted, tx.superseded, tx.dropped, tx.recovered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from eth_utils import to_checksum_address

from keeper.chain.abi import ContractAbi, describe_revert
from keeper.chain.fees import (
    Eip1559Fees,
    FeeCapExceeded,
    FeePolicy,
    build_fee_history,
    build_fee_history_request,
    compute_fees,
    compute_replacement_fees,
    GAS_PRICE_ORACLE,
    fetch_l1_data_fee_wei,
)
from keeper.chain.keys import Eip1559Tx, Signer
from keeper.chain.nonces import RESYNC_KINDS, NonceAllocator, SendErrorKind, classify_send_error, fetch_pending_nonce
from keeper.chain.pending import PendingEntry, PendingTxStore, TxAttempt
from keeper.chain.rpc import JsonRpc
from keeper.errors import ConfigError, RpcError, SkipOpportunity, TransientError, TxRevertedError
from keeper.logs import get_logger

log = get_logger(__name__)

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


GAS_USED_MIN_MARGIN_BPS = 4_000  # gasUsed -> limit: refunds (<= 20% under EIP-3529) + nested-call 63/64


def compute_gas_limit(gas_estimate: int, margin_bps: int) -> int:
    return -(-gas_estimate * (10_000 + margin_bps) // 10_000)


class TxSender:
    """Signs and sends the keeper's transactions; the only place that broadcasts."""

    def __init__(
        self,
        rpc: JsonRpc,
        signer: Signer,
        config: SenderConfig,
        store: PendingTxStore,
        chain_id: int | None = None,
        nonces: NonceAllocator | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpc = rpc
        self.signer = signer
        self.config = config
        self.store = store
        self.chain_id = rpc.chain_id() if chain_id is None else chain_id
        self.nonces = nonces or NonceAllocator(lambda: fetch_pending_nonce(rpc, signer.address))
        self._sleep = sleep
        self._lock = threading.RLock()
        self._tracked: dict[int, PendingTx] = {}
        self._recovered = False
        self._access_list_supported = True
        self._has_l1_oracle: bool | None = None

    @property
    def address(self) -> str:
        return self.signer.address

    def tracked(self) -> list[PendingTx]:
        with self._lock:
            return [self._tracked[n] for n in sorted(self._tracked)]

    # ------------------------------------------------------------------------------ pipeline
    def send(self, request: TxRequest, on_signed: OnSigned | None = None) -> TxOutcome:
        return self.wait(self.submit(request, on_signed))

    def submit(self, request: TxRequest, on_signed: OnSigned | None = None) -> PendingTx:
        """`on_signed(entry)` is called with each first attempt once signed, before it is stored
        or broadcast (the caller records it: a crash after this point leaves a record to look up)."""
        self.recover()
        gas_estimate = self.simulate(request)
        gas_limit = compute_gas_limit(gas_estimate, self.config.gas_margin_bps)
        head, fees = self._fetch_head_and_fees()  # FeeCapExceeded here: no nonce handed out yet
        if request.valid_until_block is not None and head > request.valid_until_block:
            log.warning("tx.stale_at_send", label=request.label, head=head, valid_until_block=request.valid_until_block)
            raise StaleAtSend(f"{request.label}: head {head} is past the intent's last block {request.valid_until_block}"
                              f" at send time: not sent")
        with self._lock:
            entry = PendingEntry(
                chain_id=self.chain_id, sender=self.address, nonce=-1,
                to=to_checksum_address(request.to) if request.to else "", data=request.data, value_wei=request.value_wei,
                gas_limit=gas_limit, label=request.label, attempts=(),
            )
            pending = PendingTx(entry, request.errors_abi, head=head)
            self._broadcast_first(pending, fees, head, on_signed)
            return pending

    def simulate(self, request: TxRequest) -> int:
        """Execute the call once on the pending state (on top of our own transactions not mined
        yet); returns the gas it needs. A revert raises SimulationReverted with the decoded reason.

        eth_createAccessList runs the call once and reports gasUsed (eth_estimateGas binary-searches,
        running it many times: ~8x slower on anvil). gasUsed is after refunds and before the 63/64
        rule of nested calls, so the limit gets at least GAS_USED_MIN_MARGIN_BPS on top (unused gas
        is not paid for). Nodes without the method fall back to eth_estimateGas."""
        call = {"from": self.address, "data": "0x" + request.data.hex(), "value": hex(request.value_wei)}
        if request.to:
            call["to"] = request.to
        try:
            if self._access_list_supported:
                try:
                    result = self.rpc.call("eth_createAccessList", [call, "pending"])
                    used = int(result["gasUsed"], 16)
                    estimate = hex(compute_gas_limit(used, GAS_USED_MIN_MARGIN_BPS - self.config.gas_margin_bps)
                                   if GAS_USED_MIN_MARGIN_BPS > self.config.gas_margin_bps else used)
                except RpcError as exc:
                    if exc.code not in (-32601, -32600) and "not supported" not in exc.rpc_message.lower():
                        raise
                    self._access_list_supported = False
                    estimate = self.rpc.call("eth_estimateGas", [call, "pending"])
            else:
                estimate = self.rpc.call("eth_estimateGas", [call, "pending"])
        except RpcError as exc:
            if not _is_revert(exc):
                raise
            reason = _revert_reason(exc, request.errors_abi)
            log.warning("tx.simulation_reverted", label=request.label, to=request.to, reason=reason)
            raise SimulationReverted(request.label, reason) from exc
        gas_estimate = int(estimate, 16)
        log.info("tx.simulated", label=request.label, to=request.to, gas_estimate=gas_estimate)
        return gas_estimate

    def poll(self, pending: PendingTx) -> TxOutcome | None:
        """One look at the chain. Returns the outcome once the nonce is settled."""
        with self._lock:
            entry = pending.entry
            hashes = [attempt.tx_hash for attempt in entry.attempts]
            # The nonce is read before the receipts: a transaction mined in between shows up in
            # the receipts.
            replies = self.rpc.batch(
                [("eth_blockNumber", []), ("eth_getTransactionCount", [self.address, "latest"])]
                + [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in hashes]
            )
            head, chain_nonce = int(replies[0], 16), int(replies[1], 16)
            pending.head = head
            receipt = next((r for r in replies[2:] if r), None)
            if receipt is not None or chain_nonce <= entry.nonce:
                pending.nonce_taken_at = None
            canonical = receipt is not None and self._is_canonical(receipt)
            now_at = (int(receipt["blockNumber"], 16), receipt["blockHash"]) if receipt and canonical else None
            if pending.included_at is not None and now_at != pending.included_at:
                pending.reorgs += 1
                log.warning("tx.reorged", tx_hash=pending.tx_hash, nonce=entry.nonce,
                            block=pending.included_at[0], block_hash=pending.included_at[1],
                            now_block=now_at[0] if now_at else None)
                pending.included_at = None
            if receipt is not None and not canonical:
                return None  # the node is still switching chains; look again
            if receipt is not None and now_at is not None:
                if pending.included_at is None:
                    pending.included_at = now_at
                    log.info("tx.mined", tx_hash=receipt["transactionHash"], nonce=entry.nonce, block=now_at[0])
                if head - now_at[0] + 1 < self.config.confirmations:
                    return None
                return self._settle_mined(pending, receipt)
            if chain_nonce > entry.nonce:
                # Used, but by none of our attempts. Some nodes (anvil) update the nonce a moment
                # before the receipt is queryable: conclude only once a later block confirms it.
                if pending.nonce_taken_at is None:
                    pending.nonce_taken_at = head
                if head <= pending.nonce_taken_at:
                    return None
                return self._settle_without_receipt(pending, "replaced")
            if not self._keep_in_pool(pending, head):
                return self._settle_without_receipt(pending, "dropped")
            return None

    def wait(self, pending: PendingTx) -> TxOutcome:
        """Poll until settled; TxPendingTimeout after `max_wait_blocks` / `max_wait_s` of this wait."""
        started_s = time.monotonic()
        first_head: int | None = None
        while True:
            outcome = self.poll(pending)
            if outcome is not None:
                return outcome
            first_head = pending.head if first_head is None else first_head
            waited_blocks = pending.head - first_head
            waited_s = time.monotonic() - started_s
            if waited_blocks >= self.config.max_wait_blocks or waited_s >= self.config.max_wait_s:
                raise TxPendingTimeout(pending.tx_hash, pending.nonce, waited_blocks, waited_s)
            self._sleep(self.config.poll_interval_s)

    def recover(self) -> list[PendingTx]:
        """Reload the store's entries (once per sender), re-broadcast each one's latest raw
        transaction, and resync nonces past them. Returns what is tracked; poll or wait on it."""
        with self._lock:
            if self._recovered:
                return self.tracked()
            entries = self.store.load()
            for entry in entries:
                if entry.chain_id != self.chain_id or entry.sender.lower() != self.address.lower():
                    raise ConfigError(
                        f"pending-tx store holds nonce {entry.nonce} of {entry.sender} on chain {entry.chain_id}; "
                        f"this sender is {self.address} on chain {self.chain_id}: use a store per key and chain"
                    )
            for entry in entries:
                # Entries already tracked are those whose broadcast failed transiently in this process.
                self._tracked.setdefault(entry.nonce, PendingTx(entry))
                try:
                    kind = self._rebroadcast(entry.latest)
                    result = kind.value if kind else "accepted"
                except TransientError:
                    # Unknown (the node held or lost the send): it stays tracked, and each poll
                    # looks it up by hash and re-broadcasts it; recovery does not wait for it.
                    result = "unknown"
                log.info("tx.recovered", tx_hash=entry.latest.tx_hash, nonce=entry.nonce, label=entry.label,
                         attempts=len(entry.attempts), rebroadcast=result)
            self.nonces.resync(floor=self._nonce_floor())
            self._recovered = True
            return self.tracked()

    # ------------------------------------------------------------------------------ sending
    def _fetch_head_and_fees(self) -> tuple[int, Eip1559Fees]:
        """The chain head and the market's fees, in one round trip. Raises FeeCapExceeded."""
        policy = self.config.fee_policy
        head, reply = self.rpc.batch([
            ("eth_blockNumber", []), build_fee_history_request(policy.history_blocks, policy.reward_percentile),
        ])
        return int(head, 16), compute_fees(build_fee_history(reply), policy)

    def _broadcast_first(self, pending: PendingTx, fees: Eip1559Fees, head: int,
                         on_signed: OnSigned | None = None) -> None:
        """Nonce, sign, persist, send; on a nonce error resync and try once more. A send answered
        with an error is "unknown", not "refused": the node is asked for the transaction by hash
        before its nonce is freed."""
        for try_no in (1, 2):
            nonce = self.nonces.next_nonce()
            try:
                pending.entry = replace(pending.entry, nonce=nonce)
                attempt = self._sign_attempt(pending.entry, fees, head)
                pending.entry = pending.entry.with_attempt(attempt)
                if on_signed is not None:
                    on_signed(pending.entry)
                self.store.put(pending.entry)
            except BaseException:
                # Nothing reached the node: the nonce goes back (never a gap that queues the next one).
                self.nonces.release(nonce)
                pending.entry = replace(pending.entry, nonce=-1, attempts=())
                raise
            self._tracked[nonce] = pending
            try:
                self._send_raw_with_retries(attempt.raw_tx)
            except TransientError:
                # It may or may not have reached the node: keep it tracked and stored; the next
                # submit re-runs recover(), which re-broadcasts these very bytes.
                self._recovered = False
                raise
            except RpcError as exc:
                kind = classify_send_error(exc.rpc_message)
                if kind is not SendErrorKind.ALREADY_KNOWN and self._node_holds(attempt.tx_hash, exc):
                    kind = SendErrorKind.ALREADY_KNOWN
                if kind is not SendErrorKind.ALREADY_KNOWN:
                    self.store.remove(nonce)
                    del self._tracked[nonce]
                    pending.entry = replace(pending.entry, nonce=-1, attempts=())
                    if kind in RESYNC_KINDS and try_no == 1:
                        resynced = self.nonces.resync(floor=self._nonce_floor())
                        log.warning("tx.nonce_resynced", tx_hash=attempt.tx_hash, nonce=nonce,
                                    next_nonce=resynced, reason=exc.rpc_message)
                        continue
                    if kind in RESYNC_KINDS:
                        self.nonces.resync(floor=self._nonce_floor())
                    else:
                        self.nonces.release(nonce)
                    log.warning("tx.rejected", tx_hash=attempt.tx_hash, nonce=nonce, reason=exc.rpc_message)
                    raise TxRejected(
                        f"{pending.entry.label}: node refused tx {attempt.tx_hash}: {exc.rpc_message}") from exc
            log.info("tx.sent", tx_hash=attempt.tx_hash, nonce=nonce, label=pending.entry.label, block=head,
                     max_fee_per_gas_wei=attempt.max_fee_per_gas_wei,
                     max_priority_fee_per_gas_wei=attempt.max_priority_fee_per_gas_wei)
            return

    def _sign_attempt(self, entry: PendingEntry, fees: Eip1559Fees, head: int) -> TxAttempt:
        signed = self.signer.sign(Eip1559Tx(
            chain_id=entry.chain_id, nonce=entry.nonce, to=entry.to, data=entry.data, value_wei=entry.value_wei,
            gas_limit=entry.gas_limit, max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
            max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei,
        ))
        log.info("tx.signed", tx_hash=signed.tx_hash, nonce=entry.nonce, label=entry.label,
                 gas_limit=entry.gas_limit, max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
                 max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei,
                 l1_data_fee_wei=self._l1_data_fee_wei(signed.raw_tx))
        return TxAttempt(signed.tx_hash, signed.raw_tx, fees.max_fee_per_gas_wei,
                         fees.max_priority_fee_per_gas_wei, head)

    def _l1_data_fee_wei(self, raw_tx: bytes) -> int:
        """OP-stack L1 data fee of a signed tx; whether the oracle exists is asked once."""
        if self._has_l1_oracle is None:
            self._has_l1_oracle = bool(self.rpc.get_code(GAS_PRICE_ORACLE))
        return fetch_l1_data_fee_wei(self.rpc, raw_tx) if self._has_l1_oracle else 0

    def _send_raw_with_retries(self, raw_tx: bytes) -> None:
        for attempt_no in range(1, self.config.broadcast_attempts + 1):
            try:
                self.rpc.call("eth_sendRawTransaction", ["0x" + raw_tx.hex()])
                return
            except TransientError:
                if attempt_no == self.config.broadcast_attempts:
                    raise
                self._sleep(0.2 * attempt_no)

    def _node_holds(self, tx_hash: str, send_error: RpcError) -> bool:
        """After a send answered with an error: does the node hold the transaction anyway (in its
        pool or mined)? A lookup that fails transiently leaves it unknown: TransientError, and the
        transaction stays tracked."""
        try:
            found = self.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None
        except TransientError:
            self._recovered = False
            raise
        if found:
            log.warning("tx.send_error_but_known", tx_hash=tx_hash, reason=send_error.rpc_message)
        return found

    def _rebroadcast(self, attempt: TxAttempt) -> SendErrorKind | None:
        """Send these exact bytes again. None when the node accepted them, else why not.
        TransientError (the answer is unknown) propagates."""
        try:
            self._send_raw_with_retries(attempt.raw_tx)
            return None
        except TransientError:
            raise
        except RpcError as exc:
            kind = classify_send_error(exc.rpc_message)
            if kind is not SendErrorKind.ALREADY_KNOWN and self._node_holds(attempt.tx_hash, exc):
                return None
            return kind

    def _keep_in_pool(self, pending: PendingTx, head: int) -> bool:
        """Not mined and the nonce is free: make sure the node has it, bump it when stuck.
        False when the transaction is proven dropped: the node has not held it for
        `dropped_after_blocks` blocks, each look's re-broadcast and replacement refused or lost."""
        latest = pending.entry.latest
        reprice = head - latest.sent_at_block >= self.config.replace_after_blocks
        if self.rpc.call("eth_getTransactionByHash", [latest.tx_hash]) is None:
            if pending.reorgs:
                # A reorg took it out of the chain and the node did not keep it: its bytes were
                # signed for a state that is gone. Dropped: the nonce is resynced from the chain
                # and the intent is decided again on fresh state.
                return False
            if pending.missing_since is None:
                pending.missing_since = head
            missing_blocks = head - pending.missing_since
            refused = self._rebroadcast(latest)
            log.warning("tx.rebroadcast", tx_hash=latest.tx_hash, nonce=pending.nonce,
                        result=refused.value if refused else "accepted", missing_blocks=missing_blocks)
            if refused in (None, SendErrorKind.ALREADY_KNOWN, SendErrorKind.NONCE_TOO_LOW):
                return True  # the node holds it again, or it was mined meanwhile (the next poll finds the receipt)
            if refused is not SendErrorKind.NONCE_TOO_HIGH and self._replace(pending, head, forced_by=refused):
                return True
            return missing_blocks < self.config.dropped_after_blocks
        pending.missing_since = None
        if reprice:
            self._replace(pending, head, forced_by=None)
        return True

    def _replace(self, pending: PendingTx, head: int, forced_by: SendErrorKind | None) -> bool:
        """A same-nonce replacement with bumped fees. True when the node took it."""
        entry = pending.entry
        previous = entry.latest
        policy = self.config.fee_policy
        try:
            _, market = self._fetch_head_and_fees()
            fees = compute_replacement_fees(
                Eip1559Fees(previous.max_fee_per_gas_wei, previous.max_priority_fee_per_gas_wei), market, policy)
        except FeeCapExceeded as exc:
            log.warning("tx.replace_refused", tx_hash=previous.tx_hash, nonce=entry.nonce, reason=str(exc))
            return False
        attempt = self._sign_attempt(entry, fees, head)
        pending.entry = entry.with_attempt(attempt)
        self.store.put(pending.entry)  # before sending, like every attempt
        try:
            self._send_raw_with_retries(attempt.raw_tx)
        except TransientError:
            raise  # unknown: the attempt stays stored and tracked
        except RpcError as exc:
            kind = classify_send_error(exc.rpc_message)
            if kind is not SendErrorKind.ALREADY_KNOWN and self._node_holds(attempt.tx_hash, exc):
                kind = SendErrorKind.ALREADY_KNOWN
            if kind is not SendErrorKind.ALREADY_KNOWN:
                pending.entry = entry  # never in flight: forget it
                self.store.put(entry)
                log.warning("tx.replace_rejected", tx_hash=attempt.tx_hash, replaces=previous.tx_hash,
                            nonce=entry.nonce, reason=exc.rpc_message)
                # Nonce too low: the previous attempt was mined meanwhile; the next poll sees it.
                return kind is SendErrorKind.NONCE_TOO_LOW
        log.info("tx.replaced", tx_hash=attempt.tx_hash, replaces=previous.tx_hash, nonce=entry.nonce,
                 reason=forced_by.value if forced_by else f"not mined within {head - previous.sent_at_block} blocks",
                 max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
                 max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei)
        return True

    # ------------------------------------------------------------------------------ settling
    def _is_canonical(self, receipt: dict[str, Any]) -> bool:
        block = self.rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
        return block is not None and block["hash"] == receipt["blockHash"]

    def _settle_mined(self, pending: PendingTx, receipt: dict[str, Any]) -> TxOutcome:
        entry = pending.entry
        gas_used = int(receipt["gasUsed"], 16)
        price_wei = int(receipt["effectiveGasPrice"], 16)
        l1_fee_wei = int(receipt.get("l1Fee") or "0x0", 16)
        succeeded = int(receipt["status"], 16) == 1
        outcome = TxOutcome(
            tx_hash=receipt["transactionHash"], nonce=entry.nonce,
            status="included" if succeeded else "reverted",
            block_number=int(receipt["blockNumber"], 16), block_hash=receipt["blockHash"],
            gas_used=gas_used, effective_gas_price_wei=price_wei, fee_paid_wei=gas_used * price_wei + l1_fee_wei,
            attempt_hashes=tuple(a.tx_hash for a in entry.attempts), reorgs=pending.reorgs,
            revert_reason=None if succeeded else self._fetch_revert_reason(entry, receipt, pending.errors_abi),
        )
        fields = dict(tx_hash=outcome.tx_hash, nonce=entry.nonce, label=entry.label, block=outcome.block_number,
                      gas_used=gas_used, effective_gas_price_wei=price_wei, fee_paid_wei=outcome.fee_paid_wei,
                      attempts=len(entry.attempts), reorgs=pending.reorgs)
        if succeeded:
            log.info("tx.included", **fields)
        else:
            log.warning("tx.reverted", reason=outcome.revert_reason, **fields)
        self._forget(entry.nonce)
        return outcome

    def _settle_without_receipt(self, pending: PendingTx, status: Literal["replaced", "dropped"]) -> TxOutcome:
        """`replaced`: another transaction took the nonce. `dropped`: the node lost ours and would
        not take it (or a replacement) back; the nonce is free again."""
        entry = pending.entry
        log.warning("tx.superseded" if status == "replaced" else "tx.dropped", tx_hash=pending.tx_hash,
                    nonce=entry.nonce, label=entry.label, attempts=len(entry.attempts))
        self._forget(entry.nonce)
        self.nonces.resync(floor=self._nonce_floor())
        return TxOutcome(tx_hash=pending.tx_hash, nonce=entry.nonce, status=status, block_number=None,
                         block_hash=None, gas_used=0, effective_gas_price_wei=0, fee_paid_wei=0,
                         attempt_hashes=tuple(a.tx_hash for a in entry.attempts), reorgs=pending.reorgs)

    def _forget(self, nonce: int) -> None:
        if not self.config.keep_settled:
            self.store.remove(nonce)
        self._tracked.pop(nonce, None)

    def acknowledge(self, nonce: int) -> None:
        """The outcome of `nonce` is booked: its store entry may go (see SenderConfig.keep_settled)."""
        with self._lock:
            self._tracked.pop(nonce, None)
            self.store.remove(nonce)

    def tracked_nonce(self, nonce: int, errors_abi: ContractAbi | None = None) -> PendingTx | None:
        """The tracking of `nonce`; resumed from the store when this process no longer tracks it
        (settled but not acknowledged, or from before a restart). None: the store never held it."""
        with self._lock:
            pending = self._tracked.get(nonce)
            if pending is None:
                entry = next((e for e in self.store.load() if e.nonce == nonce), None)
                if entry is not None:
                    pending = self._tracked[nonce] = PendingTx(entry, errors_abi)
            return pending

    def _nonce_floor(self) -> int:
        return max(self._tracked, default=-1) + 1

    def _fetch_revert_reason(self, entry: PendingEntry, receipt: dict[str, Any], errors_abi: ContractAbi | None) -> str:
        """The revert data from a call trace of the mined tx; where the node has no debug API,
        from replaying the call at the parent block (which misses changes made earlier in the block)."""
        try:
            trace = self.rpc.call("debug_traceTransaction", [receipt["transactionHash"], {"tracer": "callTracer"}])
            output = trace.get("output") or "0x"
            raw = bytes.fromhex(output[2:])
            return errors_abi.describe_revert(raw) if errors_abi else describe_revert(raw)
        except (RpcError, AttributeError, ValueError):
            pass
        parent = hex(int(receipt["blockNumber"], 16) - 1)
        call = {"from": entry.sender, "to": entry.to or None, "data": "0x" + entry.data.hex(),
                "value": hex(entry.value_wei), "gas": hex(entry.gas_limit)}
        try:
            self.rpc.call("eth_call", [call, parent])
        except RpcError as exc:
            return _revert_reason(exc, errors_abi)
        return "reverted on chain; the same call at the parent block succeeds (state changed within the block)"


def _is_revert(exc: RpcError) -> bool:
    return exc.code == 3 or "revert" in exc.rpc_message.lower()


def _revert_reason(exc: RpcError, errors_abi: ContractAbi | None) -> str:
    data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
    if not (isinstance(data, str) and data.startswith("0x")):
        return exc.rpc_message
    raw = bytes.fromhex(data[2:])
    return errors_abi.describe_revert(raw) if errors_abi else describe_revert(raw)
