"""The execution stage of a tick (Engine, keeper/engine.py): each intent is journaled as a
decision, checked for staleness at decision time, planned, executed and booked; a transaction in
flight is booked when its outcome is known (keeper/inflight.py). What the chain used (gas) and
where a market was exited are kept for the next decisions; a dry run keeps its virtual books.

A mixin of Engine: it works on the Engine's state (config, journal, planner, executor, metrics,
error boundary, in-flight tracker, exit marks, gas used, dry-run books), records skips through
Engine._skip, prices a plan's gas as the strategies did (gas_units_for, keeper/engine_decide.py) and
reads the executor's USDC as they do (_wallet_usdc_raw, the same module);
it imports nothing from keeper/engine.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from keeper.booking import book_outcome
from keeper.chain.pending import PendingEntry
from keeper.errors import ErrorGroup, SkipOpportunity
from keeper.gas_price import gas_prediction
from keeper.logs import get_logger
from keeper.plan import RISK_STRATEGY, eth_price_x18
from keeper.risk import ExitMark, snapshot_stale_reason
from keeper.signals import Signal
from keeper.trade_legs import logged_legs
from keeper.types import USDC_DECIMALS, Intent, MarketSnapshot, Outcome, Position

log = get_logger("keeper.engine")


class ExecuteStage:
    """intent -> decision -> plan -> execute -> book (see the module docstring)."""

    def _plan_and_execute(self, intent: Intent, snapshot: MarketSnapshot, position: Position | None,
                          signals: Mapping[tuple[str, str], Signal], skips: list[str],
                          decided_at: int) -> Outcome | None:
        signal = signals.get((intent.market, intent.spot_venue))
        if intent.kind == "close":  # the basis this close leaves (none without a signal: the plain cooldown then)
            if signal is not None:
                self._exit_basis[intent.market] = (intent.spot_venue, signal.basis_bps)
            else:
                self._exit_basis.pop(intent.market, None)  # never an earlier failed close's
        inputs = {} if signal is None else {"basis_bps": signal.basis_bps, "basis_zscore": signal.basis_zscore,
                                            "funding_apr": signal.funding_apr, "spot_usd": signal.spot_price_usd,
                                            "mark_usd": signal.mark_price_usd, "index_usd": signal.index_price_usd}
        decision_id = self.journal.record_decision(intent, block=snapshot.block_number,
                                                   timestamp_s=snapshot.block_timestamp,
                                                   basis_bps=None if signal is None else signal.basis_bps, inputs=inputs)
        e = intent.expected
        log.info("decision.intent", block=snapshot.block_number, strategy=intent.strategy, kind=intent.kind,
                 market=intent.market, direction=intent.direction.value, venue=intent.spot_venue,
                 perp_base_x18=intent.perp_base_x18, expected_net_usd=round(e.net_usd, 4),
                 expected={"convergence_usd": round(e.convergence_usd, 4), "funding_usd": round(e.funding_usd, 4),
                           "fees_usd": round(e.fees_usd, 4), "impact_usd": round(e.price_impact_usd, 4),
                           "gas_usd": round(e.gas_usd, 4), "capital_usd": round(e.capital_cost_usd, 4)},
                 **inputs, vamm_usd=None if signal is None else signal.vamm_price_usd, reason=intent.reason)
        stale = snapshot_stale_reason(snapshot.block_number, decided_at, self.config.risk.max_snapshot_age_blocks)
        if stale:
            self._skip(intent, snapshot, "risk", f"at decision time: {stale}", skips, decision_id)
            return None
        sent: list[int] = []  # journal ids of the transactions signed for this decision
        try:
            outcome = self._execute(intent, snapshot, position, signal, decision_id, decided_at, skips, sent)
        except Exception as exc:  # noqa: BLE001 - the boundary, for this intent's market
            group = self.boundary.handle(exc, where="execute", block=snapshot.block_number, market=intent.market)
            if not sent and self.journal.decision(decision_id).status == "planned":
                self._skip(intent, snapshot, "execute", f"{group.value}: {exc}", skips, decision_id)
            elif group is ErrorGroup.TRANSIENT:
                log.warning("tx.in_flight", market=intent.market, tx_ids=sent,
                            reason=f"outcome unknown ({exc}); booked when known")
            return None
        self.boundary.succeeded(intent.market)
        return outcome

    def _execute(self, intent: Intent, snapshot: MarketSnapshot, position: Position | None, signal: Signal | None,
                 decision_id: int, decided_at: int, skips: list[str], sent: list[int]) -> Outcome | None:
        try:
            plan = self.planner.plan(intent, snapshot, position, head_block=decided_at,
                                     gas_units=self.gas_units_for(intent.market).get(f"gas_units_{intent.kind}"))
        except SkipOpportunity as exc:
            self._skip(intent, snapshot, "plan", str(exc), skips, decision_id)
            return None
        short = self._wallet_short(intent, plan.predicted.usdc_raw, snapshot)
        if short is not None:
            self._skip(intent, snapshot, "plan", short, skips, decision_id)
            return None
        log.info("tx.planned", block=snapshot.block_number, market=intent.market, kind=intent.kind,
                 gas_limit=plan.gas_limit, gas_cost_usd=round(plan.gas_cost_usd, 4),
                 expected_net_usd=round(plan.expected_net_usd, 4), predicted=plan.predicted.__dict__,
                 perp_bound_x18=plan.perp_opposite_amount_bound_x18, spot_limit_raw=plan.spot_limit_raw,
                 min_net_quote_x18=plan.min_net_quote_x18, legs=logged_legs(intent, plan.predicted, snapshot))
        eth_x18 = eth_price_x18(snapshot)

        def on_signed(entry: PendingEntry) -> None:
            for tx_id in sent:  # the sender re-signs only after the node refused the previous one
                self.journal.record_tx_outcome(tx_id, Outcome(plan, "dropped", None, None, 0, 0, None,
                                                              "refused by the node; re-signed"))
            self._tick_sent += 0 if sent else 1  # a re-signed transaction replaces the refused one
            sent.clear()
            sent.append(self.journal.record_tx_sent(decision_id, plan, tx_hash=entry.latest.tx_hash, nonce=entry.nonce,
                                                    sent_block=snapshot.block_number, eth_price_x18=eth_x18))

        outcome = self.executor.execute(plan, on_signed)
        if outcome.status == "included" and outcome.fills is not None:  # the wallet the next intent of this tick meets
            self._tick_usdc_change_raw += outcome.fills.usdc_raw - intent.deposit_usdc_raw
        self.metrics.tx_outcomes.labels(outcome.status).inc()
        self.metrics.decisions.labels(intent.strategy, intent.kind, outcome.status).inc()
        log.info("tx.outcome", block=snapshot.block_number, market=intent.market, kind=intent.kind,
                 status=outcome.status, tx_hash=outcome.tx_hash, gas_used=outcome.gas_used,
                 fee_paid_wei=outcome.fee_paid_wei, fills=outcome.fills.__dict__ if outcome.fills else None,
                 detail=outcome.detail, legs=logged_legs(intent, outcome.fills, snapshot), **gas_prediction(outcome))
        self._book(decision_id, outcome, snapshot, sent[-1] if sent else None)
        if outcome.status == "dry_run" and outcome.fills is not None:
            self._apply_virtual(intent, outcome, snapshot, signal)
        return outcome

    def _wallet_short(self, intent: Intent, usdc_change_raw: int, snapshot: MarketSnapshot) -> str | None:
        """Live: why the executor's USDC cannot pay this trade's spot buy and deposit (the chain
        would revert it), or None. A close or a risk trade that cannot pay is an alarm
        (`unwind.wallet_short`, error): the position stays until USDC reaches the executor."""
        read = self._wallet_usdc_raw(snapshot) if self.executor.mode == "live" else None
        if read is None:
            return None
        needed = max(0, -usdc_change_raw) + intent.deposit_usdc_raw
        wallet = read + self._tick_usdc_change_raw  # after this tick's trades
        if needed <= wallet:
            return None
        why = (f"executor USDC {wallet / 10**USDC_DECIMALS:,.2f} < {needed / 10**USDC_DECIMALS:,.2f} this "
               f"{intent.kind} needs (spot buy {max(0, -usdc_change_raw) / 10**USDC_DECIMALS:,.2f}, deposit "
               f"{intent.deposit_usdc_raw / 10**USDC_DECIMALS:,.2f})")
        if intent.kind == "close" or intent.strategy == RISK_STRATEGY:
            log.error("unwind.wallet_short", block=snapshot.block_number, market=intent.market, kind=intent.kind,
                      strategy=intent.strategy, wallet_usdc_raw=wallet, needed_usdc_raw=needed,
                      shortfall_usdc_raw=needed - wallet, reason=f"{why}: send USDC to the executor")
        return why

    def settle_in_flight(self, snapshot: MarketSnapshot) -> list[Outcome]:
        """Book every transaction in flight whose outcome is known now (see keeper/inflight.py)."""
        if self.inflight is None:
            return []
        self.inflight.check_reorgs(snapshot.block_number)
        booked = []
        for tx, outcome in self.inflight.settle(snapshot.block_number):
            self.metrics.tx_outcomes.labels(outcome.status).inc()
            log.info("tx.outcome", block=snapshot.block_number, market=tx.market, kind=tx.kind, status=outcome.status,
                     tx_hash=outcome.tx_hash, gas_used=outcome.gas_used, fee_paid_wei=outcome.fee_paid_wei,
                     fills=outcome.fills.__dict__ if outcome.fills else None, detail=outcome.detail, late=True,
                     legs=logged_legs(outcome.plan.intent, outcome.fills, snapshot), **gas_prediction(outcome))
            self._book(tx.decision_id, outcome, snapshot, tx.id)
            booked.append(outcome)
        return booked

    def _book(self, decision_id: int, outcome: Outcome, snapshot: MarketSnapshot, tx_id: int | None) -> None:
        book_outcome(self.journal, decision_id, outcome, snapshot, tx_id)
        intent = outcome.plan.intent  # what the chain used and when a market was exited, for the next decisions
        if outcome.status == "included" and outcome.gas_used > 0:
            self.gas_used[(intent.market, intent.kind)] = outcome.gas_used
            self.planner.tips.learn(outcome.effective_gas_price_wei, outcome.block_number or snapshot.block_number)
        if intent.kind == "close" and outcome.status in ("included", "dry_run"):
            venue, basis = self._exit_basis.pop(intent.market, (None, None))
            self.last_exit[intent.market] = ExitMark(outcome.block_timestamp_s or snapshot.block_timestamp,
                                                     intent.direction.value, venue, basis)
        if tx_id is not None and self.inflight is not None:
            self.inflight.acknowledge(outcome.nonce)
            self.inflight.watch(outcome)

    def _apply_virtual(self, intent: Intent, outcome: Outcome, snapshot: MarketSnapshot, signal: Signal | None) -> None:
        fills = outcome.fills
        assert fills is not None
        if intent.kind == "close":
            self.virtual_positions.pop(intent.market, None)
            self.virtual_owners.pop(intent.market, None)
            return
        if intent.kind == "open":
            self.virtual_owners[intent.market] = intent.strategy
        previous = self.virtual_positions.get(intent.market)
        self.virtual_positions[intent.market] = Position(
            market=intent.market, direction=intent.direction, spot_venue=intent.spot_venue,
            perp_base_x18=(previous.perp_base_x18 if previous else 0) + fills.perp_base_x18,
            spot_raw=(previous.spot_raw if previous else 0) + fills.spot_raw,
            entry_block=previous.entry_block if previous else snapshot.block_number,
            entry_timestamp_s=previous.entry_timestamp_s if previous else snapshot.block_timestamp,
            entry_basis_bps=previous.entry_basis_bps if previous else (signal.basis_bps if signal else 0.0),
            net_quote_x18=(previous.net_quote_x18 if previous else 0) + fills.net_quote_x18)
