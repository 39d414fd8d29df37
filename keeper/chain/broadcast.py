"""Putting the keeper's signed transactions on the node and keeping them there: nonce, sign,
persist, broadcast (a send answered with an error is "unknown" until the node is asked for the
transaction by hash); re-broadcast of the same raw bytes when the node forgot them; a same-nonce
replacement with bumped fees when one is stuck. The base of TxSender (keeper/chain/sender.py),
which adds simulation, settling and recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from keeper.chain.fees import (
    Eip1559Fees,
    FeeCapExceeded,
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
from keeper.chain.tx_types import OnSigned, PendingTx, SenderConfig, TxRejected
from keeper.errors import RpcError, TransientError
from keeper.logs import get_logger

log = get_logger("keeper.chain.sender")  # the sender's events, under its name


def rebroadcast_result(refused: SendErrorKind | None, held: Mapping[str, Any] | None = None) -> str:
    """What a re-broadcast did, as tx.recovered (rebroadcast) and tx.rebroadcast (result) say it:
    "accepted" (the node took the bytes); "already_mined" / "already_pending" when it refused them
    (`refused`: why, e.g. nonce too low after a restart) but holds the transaction (`held`, its
    eth_getTransactionByHash: mined, or in its pool); else why it refused them."""
    if held is not None:
        return "already_mined" if held.get("blockNumber") else "already_pending"
    return "accepted" if refused is None else refused.value


class Broadcaster:
    """Signs and broadcasts the keeper's transactions; the only place that sends raw bytes."""

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
        self._access_list_supported = True  # TxSender.simulate: until the node refuses eth_createAccessList
        self._has_l1_oracle: bool | None = None

    @property
    def address(self) -> str:
        return self.signer.address

    def tracked(self) -> list[PendingTx]:
        with self._lock:
            return [self._tracked[n] for n in sorted(self._tracked)]

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

    def _node_holds(self, tx_hash: str, send_error: RpcError) -> dict[str, Any] | None:
        """After a send answered with an error: does the node hold the transaction anyway (in its
        pool or mined)? Its eth_getTransactionByHash, or None. A lookup that fails transiently leaves
        it unknown: TransientError, and the transaction stays tracked."""
        try:
            found = self.rpc.call("eth_getTransactionByHash", [tx_hash])
        except TransientError:
            self._recovered = False
            raise
        if found is not None:
            log.warning("tx.send_error_but_known", tx_hash=tx_hash, reason=send_error.rpc_message)
        return found

    def _rebroadcast(self, attempt: TxAttempt) -> tuple[SendErrorKind | None, str]:
        """Send these exact bytes again: (None, what happened) when the node holds them after it,
        else (why not, its name); the name as rebroadcast_result gives it. TransientError (the
        answer is unknown) propagates."""
        try:
            self._send_raw_with_retries(attempt.raw_tx)
            return None, rebroadcast_result(None)
        except TransientError:
            raise
        except RpcError as exc:
            kind = classify_send_error(exc.rpc_message)
            held = None if kind is SendErrorKind.ALREADY_KNOWN else self._node_holds(attempt.tx_hash, exc)
            return (None, rebroadcast_result(kind, held)) if held is not None else (kind, rebroadcast_result(kind))

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
            refused, result = self._rebroadcast(latest)
            log.warning("tx.rebroadcast", tx_hash=latest.tx_hash, nonce=pending.nonce, result=result,
                        missing_blocks=missing_blocks)
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

    def _nonce_floor(self) -> int:
        return max(self._tracked, default=-1) + 1
