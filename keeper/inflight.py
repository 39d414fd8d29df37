"""Transactions in flight: every signed keeper transaction is booked once its outcome is known,
in this process or after a restart.

The engine records a transaction in the journal (status pending) as soon as it is signed, before
the pending-tx store and before the broadcast (TxSender's `on_signed`), and the sender keeps a
settled nonce in its store until the engine has booked it (`SenderConfig.keep_settled`). So
whatever is interrupted (an RPC error while waiting, a receipt read that fails, kill -9 between
send and receipt), a pending journal row is left, and each tick `settle_in_flight` looks at it:

- the store holds its nonce: the sender polls it (receipt, replacement, reorg, dropped) and the
  outcome is booked, then acknowledged (the store entry goes);
- the store never held it (signed and recorded, never broadcast): once `never_sent_after_blocks`
  have passed with the node not knowing its hash, it is booked as dropped.

A market with a transaction in flight is not traded again, nor reconciled with the chain, until
it is settled: no duplicate open, no position adopted from under a trade being booked.

A booked transaction stays watched for `watch_blocks`: should a reorg deeper than the
confirmations take it out of its block (receipt gone or in another block:
`tx.reorged_after_booking`, an error event), its booking is reversed (keeper/reorg_booking.py:
back to pending, its fills taken out of the position) and its signed bytes are tracked again by
the sender, so it is booked afresh once it settles: included in its new block, or dropped (a
reorged transaction the node no longer holds is not re-broadcast: the intent is decided again on
fresh state). The nonce is resynced from the chain at once (no gap that would queue the next
transaction). Watching is in memory: a reorg this deep across a restart is corrected from the
chain by the reconcile, without reversing the PnL booking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from keeper.chain.pending import PendingEntry
from keeper.errors import TransientError
from keeper.journal import DecisionRecord, Journal, TxRecord
from keeper.logs import get_logger
from keeper.reorg_booking import reverse_booking
from keeper.types import Direction, Intent, Outcome, PnlEstimate, TxPlan

log = get_logger("keeper.inflight")


def plan_from_journal(decision: DecisionRecord, tx: TxRecord) -> TxPlan:
    """The plan of a recorded transaction, rebuilt from the journal (after a restart)."""
    expected = decision.expected or PnlEstimate(0, 0, 0, 0, 0, 0)
    intent = Intent(strategy=decision.strategy, kind=tx.kind, market=tx.market,  # type: ignore[arg-type]
                    direction=decision.direction or Direction.SHORT_PERP,
                    spot_venue=decision.spot_venue or "uniswap_v3",  # type: ignore[arg-type]
                    perp_base_x18=decision.perp_base_x18 or 0, reason=decision.reason, expected=expected,
                    created_block=decision.created_block or decision.block,
                    valid_until_block=decision.valid_until_block or decision.block)
    b = tx.bounds
    return TxPlan(intent=intent, to=tx.to, calldata=tx.calldata, value_wei=tx.value_wei, predicted=tx.predicted,
                  perp_opposite_amount_bound_x18=b.perp_opposite_amount_bound_x18, spot_limit_raw=b.spot_limit_raw,
                  max_residual_base_x18=b.max_residual_base_x18, min_net_quote_x18=b.min_net_quote_x18,
                  deadline_s=b.deadline_s, gas_limit=b.gas_limit, gas_cost_wei=b.gas_cost_wei, gas_cost_usd=0.0,
                  expected_net_usd=0.0)


@dataclass
class InFlight:
    """Settles the journal's pending transactions through the live executor's sender."""

    journal: Journal
    executor: Any  # keeper.execute.LiveExecutor: its sender, rpc and outcome_of
    never_sent_after_blocks: int = 3
    watch_blocks: int = 64
    watched: deque[tuple[str, int]] = field(default_factory=lambda: deque(maxlen=32))  # (tx hash, block)
    signed: dict[int, PendingEntry] = field(default_factory=dict)  # nonce -> its signed attempts, once booked
    entries: dict[str, PendingEntry] = field(default_factory=dict)  # watched tx hash -> its signed attempts

    def markets(self) -> set[str]:
        return {tx.market for tx in self.journal.pending_transactions()}

    def settle(self, head_block: int) -> Iterator[tuple[TxRecord, Outcome]]:
        """Each pending transaction whose outcome is known now, with that outcome (book it, then
        `acknowledge`). A transaction whose poll fails transiently (a held re-broadcast, a read
        error) is skipped with `tx.settle_deferred` and looked at again next tick; the others are
        settled meanwhile (a start-up or a tick never waits on one unknown send)."""
        from keeper.venues.executor import EXECUTOR

        sender = self.executor.sender
        for tx in self.journal.pending_transactions():
            if tx.nonce is None:
                continue
            pending = sender.tracked_nonce(tx.nonce, EXECUTOR)
            hashes = set(tx.attempt_hashes) | ({tx.tx_hash} if tx.tx_hash else set())
            if pending is None or not hashes & {a.tx_hash for a in pending.entry.attempts}:
                outcome = self._never_stored(tx, head_block)
                if outcome is not None:
                    yield tx, outcome
                continue
            try:
                result = sender.poll(pending)
            except TransientError as exc:
                # Unknown for now (a read or a re-broadcast failed): the next tick looks again;
                # the market stays held meanwhile, and the rest of the tick goes on.
                log.warning("tx.settle_deferred", tx_hash=pending.tx_hash, nonce=tx.nonce, tx_id=tx.id,
                            market=tx.market, error=str(exc))
                continue
            if result is None:
                continue
            plan = plan_from_journal(self.journal.decision(tx.decision_id), tx)
            log.info("tx.settled_later", tx_hash=result.tx_hash, nonce=result.nonce, status=result.status,
                     tx_id=tx.id, market=tx.market, kind=tx.kind)
            yield tx, self.executor.outcome_of(plan, result)
        # Tracked nonces with no pending journal row were booked before a crash, not acknowledged.
        booked = {tx.nonce for tx in self.journal.pending_transactions()}
        for pending in sender.tracked():
            if pending.nonce in booked:
                continue
            try:
                settled = sender.poll(pending) is not None
            except TransientError as exc:
                log.warning("tx.settle_deferred", tx_hash=pending.tx_hash, nonce=pending.nonce, error=str(exc))
                continue
            if settled:
                sender.acknowledge(pending.nonce)

    def acknowledge(self, nonce: int | None) -> None:
        if nonce is not None:
            pending = self.executor.sender.tracked_nonce(nonce)
            if pending is not None:  # kept while watched: re-tracked should a reorg take it out
                self.signed[nonce] = pending.entry
            self.executor.sender.acknowledge(nonce)

    def watch(self, outcome: Outcome) -> None:
        """A booked, mined transaction: watched for reorgs deeper than its confirmations."""
        entry = self.signed.pop(outcome.nonce, None) if outcome.nonce is not None else None
        self.signed.clear()
        if outcome.tx_hash and outcome.block_number is not None:
            if len(self.watched) == self.watched.maxlen:
                self.entries.pop(self.watched[0][0], None)
            self.watched.append((outcome.tx_hash, outcome.block_number))
            if entry is not None:
                self.entries[outcome.tx_hash] = entry

    def check_reorgs(self, head_block: int) -> list[str]:
        """Hashes of watched transactions a reorg took out of their block (one batch call)."""
        from keeper.venues.executor import EXECUTOR

        while self.watched and head_block - self.watched[0][1] > self.watch_blocks:
            self.entries.pop(self.watched.popleft()[0], None)
        if not self.watched:
            return []
        rpc, sender = self.executor.rpc, self.executor.sender
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h, _ in self.watched])
        gone = [(h, b, r) for (h, b), r in zip(self.watched, receipts) if r is None or int(r["blockNumber"], 16) != b]
        for tx_hash, block, receipt in gone:
            self.watched.remove((tx_hash, block))
            entry = self.entries.pop(tx_hash, None)
            where = "gone" if receipt is None else f"moved to block {int(receipt['blockNumber'], 16)}"
            reversed_ = reverse_booking(self.journal, tx_hash, block=head_block,
                                        reason=f"reorg deeper than the confirmations: receipt {where}")
            if reversed_ is not None and entry is not None:
                sender.store.put(entry)  # tracked again: its outcome is booked afresh when it settles
                pending = sender.tracked_nonce(entry.nonce, EXECUTOR)
                if pending is not None:
                    pending.reorgs += 1  # not re-broadcast if the node lost it: decided again instead
            next_nonce = sender.nonces.resync(floor=max((p.nonce for p in sender.tracked()), default=-1) + 1)
            log.error("tx.reorged_after_booking", tx_hash=tx_hash, block=block, receipt=where, next_nonce=next_nonce,
                      booking="reversed, re-booked when it settles" if reversed_ is not None
                      else "not reversed (not booked here, or later trades): position corrected from the chain",
                      tx_id=reversed_.tx_id if reversed_ else None, tracked_again=entry is not None)
        return [h for h, _, _ in gone]

    def _never_stored(self, tx: TxRecord, head_block: int) -> Outcome | None:
        if tx.sent_block is not None and head_block - tx.sent_block < self.never_sent_after_blocks:
            return None
        rpc = self.executor.rpc
        if any(rpc.call("eth_getTransactionByHash", [h]) is not None for h in tx.attempt_hashes or (tx.tx_hash,)):
            log.error("tx.untracked", tx_hash=tx.tx_hash, nonce=tx.nonce, tx_id=tx.id,
                      detail="the node knows it but the pending-tx store does not: left pending")
            return None
        plan = plan_from_journal(self.journal.decision(tx.decision_id), tx)
        log.warning("tx.dropped", tx_hash=tx.tx_hash, nonce=tx.nonce, tx_id=tx.id,
                    detail="signed and recorded, never broadcast (the node does not know it)")
        return Outcome(plan, "dropped", tx.tx_hash, None, 0, 0, None, "signed, never broadcast",
                       nonce=tx.nonce, attempt_hashes=tx.attempt_hashes)
