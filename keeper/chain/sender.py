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

By concern: tx_types.py (request, config, outcome, pending tracking, errors), broadcast.py (nonce,
sign, persist, broadcast, re-broadcast and replacement: the Broadcaster TxSender builds on), this
module (the pipeline's public API: submit, simulate, poll and settle, wait, recover).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from eth_utils import to_checksum_address

from keeper.chain.abi import ContractAbi, describe_revert
from keeper.chain.broadcast import Broadcaster
from keeper.chain.pending import PendingEntry
from keeper.chain.tx_types import (
    OnSigned,
    PendingTx,
    SimulationReverted,
    StaleAtSend,
    TxOutcome,
    TxPendingTimeout,
    TxRequest,
)
from keeper.errors import ConfigError, RpcError, TransientError, is_revert
from keeper.logs import get_logger

log = get_logger(__name__)


GAS_USED_MIN_MARGIN_BPS = 4_000  # gasUsed -> limit: refunds (<= 20% under EIP-3529) + nested-call 63/64


def compute_gas_limit(gas_estimate: int, margin_bps: int) -> int:
    return -(-gas_estimate * (10_000 + margin_bps) // 10_000)


class TxSender(Broadcaster):
    """Signs and sends the keeper's transactions: simulate, price, broadcast (the Broadcaster),
    settle, recover."""

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
                    if is_revert(exc) or (exc.code not in (-32601, -32600)
                                          and "not supported" not in exc.rpc_message.lower()):
                        raise  # a revert's words are the contract's: "not supported" there is not the node's
                    self._access_list_supported = False
                    estimate = self.rpc.call("eth_estimateGas", [call, "pending"])
            else:
                estimate = self.rpc.call("eth_estimateGas", [call, "pending"])
        except RpcError as exc:
            if not is_revert(exc):
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
                    _, result = self._rebroadcast(entry.latest)  # accepted, already_mined, nonce_too_low...
                except TransientError:
                    # Unknown (the node held or lost the send): it stays tracked, and each poll
                    # looks it up by hash and re-broadcasts it; recovery does not wait for it.
                    result = "unknown"
                log.info("tx.recovered", tx_hash=entry.latest.tx_hash, nonce=entry.nonce, label=entry.label,
                         attempts=len(entry.attempts), rebroadcast=result)
            self.nonces.resync(floor=self._nonce_floor())
            self._recovered = True
            return self.tracked()

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


def _revert_reason(exc: RpcError, errors_abi: ContractAbi | None) -> str:
    data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
    if not (isinstance(data, str) and data.startswith("0x")):
        return exc.rpc_message
    raw = bytes.fromhex(data[2:])
    return errors_abi.describe_revert(raw) if errors_abi else describe_revert(raw)
