"""One tick: collect -> signals -> risk -> strategies -> plan -> execute -> journal.

Only this module (and the CLI) catches broadly, through the error boundary (keeper/boundary.py):
`tick` never raises. A strategy that raises is isolated and disabled after
`strategies.max_failures` consecutive failures; a market after as many unexpected errors in a row
is quarantined; a transient RPC error skips the tick (or the intent); a skipped opportunity is
logged with its reason; a fatal error stops the keeper in order (`fatal`). Every signed
transaction is in the journal before it is broadcast and is booked whenever its outcome is known
(keeper/inflight.py). Every decision and every transaction is one log event, and every tick ends
with a `tick` summary event.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keeper.adopt import chain_positions
from keeper.boundary import ErrorBoundary
from keeper.booking import book_outcome
from keeper.chain.pending import PendingEntry
from keeper.collect import SnapshotCollector
from keeper.config import KeeperConfig
from keeper.errors import ConfigError, ErrorGroup, SkipOpportunity
from keeper.gas_price import gas_prediction
from keeper.execute import Executor
from keeper.inflight import InFlight
from keeper.logs import get_logger, level_enabled
from keeper.metrics import KeeperMetrics
from keeper.one_book import chain_gas_units, find_hand_over, ladder_intent
from keeper.pairs_desk import build_pair_desk
from keeper.plan import RISK_STRATEGY, Planner, eth_price_x18
from keeper.retention import prune_journal
from keeper.risk import (ExitMark, OracleRecovery, RiskView, assess_risk, cooldown_reason, departure_since_exit,
                          snapshot_stale_reason)
from keeper.skiplog import SkipLog
from keeper.signals import BasisHistory, Signal, compute_signals
from keeper.types import (
    Direction,
    Intent,
    MarketSnapshot,
    Outcome,
    PerpAccountState,
    PerpMarketState,
    PnlEstimate,
    Position,
    USDC_DECIMALS,
)
from keeper.stress import StressParams
from keeper.index_volatility import IndexHistory
from keeper.trade_legs import logged_legs
from strategies import load_strategy
from strategies.base import CostModel, RiskLimits, StrategyContext

log = get_logger("keeper.engine")
PRUNE_EVERY_S = 3_600
_NUMBERS = re.compile(r"[-+]?\d[\d,._]*(?:e[-+]?\d+)?")


@dataclass
class StrategySlot:
    strategy: Any  # strategies.base.Strategy: .name, .decide(ctx)
    failures: int = 0
    disabled: str | None = None


def load_strategy_slots(config: KeeperConfig) -> list[StrategySlot]:
    """strategies.enabled, each built from its strategies.params; a bad parameter is a ConfigError."""
    slots = []
    for name in config.strategies.enabled:
        try:
            slots.append(StrategySlot(load_strategy(name, config.strategies.params.get(name, {}))))
        except ValueError as exc:
            raise ConfigError(f"strategies.params.{name}: {exc}") from exc
    return slots


@dataclass(frozen=True)
class TickReport:
    block_number: int
    snapshot_ms: float
    tick_ms: float
    signals: int
    intents: int
    outcomes: tuple[Outcome, ...]
    skips: tuple[str, ...]
    snapshot: MarketSnapshot | None = None  # what the tick saw, for the live panel
    signals_seen: tuple[Signal, ...] = ()


@dataclass
class Engine:
    config: KeeperConfig
    collector: SnapshotCollector
    strategies: list[StrategySlot]
    planner: Planner
    executor: Executor
    journal: Any  # keeper.journal.Journal
    metrics: KeeperMetrics
    kill_switch: Callable[[], bool]
    history: BasisHistory = field(default_factory=BasisHistory)
    index_history: IndexHistory = field(default_factory=IndexHistory)  # the exit-stress rule's volatility
    last_block: int = -1
    virtual_positions: dict[str, Position] = field(default_factory=dict)  # dry run only
    virtual_owners: dict[str, str] = field(default_factory=dict)  # dry run only: market -> strategy
    _deferred_skips: list[Any] = field(default_factory=list)
    clock: Callable[[], float] = time.time  # wall clock, for the block-age check
    _pruned_at_s: int = 0
    _last_skip_reason: dict[tuple[str, str], str] = field(default_factory=dict)  # (strategy, market) -> words
    last_exit: dict[str, ExitMark] = field(default_factory=dict)  # market -> its last exit (when, side, basis)
    _exit_basis: dict[str, tuple[str, float]] = field(default_factory=dict)  # market -> (venue, basis) at its close
    gas_used: dict[tuple[str, str], int] = field(default_factory=dict)  # (market, kind) -> gas the chain used last
    oracle_recovery: OracleRecovery = field(init=False)
    boundary: ErrorBoundary = field(init=False)
    inflight: InFlight | None = field(init=False)
    skip_log: SkipLog = field(init=False)
    pairs: Any = field(init=False)  # keeper.pairs_desk.PairDesk when pairs_spread is enabled

    def __post_init__(self) -> None:
        self.oracle_recovery = OracleRecovery(self.config.risk.max_oracle_age_s)
        self.boundary = ErrorBoundary(self.metrics, self.config.strategies.max_failures)
        self.inflight = InFlight(self.journal, self.executor) if self.executor.mode == "live" else None
        self.skip_log = SkipLog(self.journal)
        self.pairs = None  # the pair desk, only when pairs_spread is enabled
        if "pairs_spread" in self.config.strategies.enabled:
            self.pairs = build_pair_desk(self.config, self.executor, self.journal, self.planner.executor,
                                         self.collector.sources.perp.clearing_house)

    @property
    def fatal(self) -> BaseException | None:
        """A fatal error caught in a tick: the runtime stops the loop and the process exits 1."""
        return self.boundary.fatal

    # ------------------------------------------------------------------ positions
    def positions(self) -> dict[str, Position]:
        if self.executor.mode == "dry_run":
            return dict(self.virtual_positions)
        return dict(self.journal.open_positions())

    # ------------------------------------------------------------------ tick
    def tick(self, head_block: int | None = None) -> TickReport | None:
        """One tick on the newest block (None when there is none, or the tick was cut short).
        Never raises: every exception is handled by the error boundary, by group."""
        self._deferred_skips.clear()
        try:
            report = self._tick(head_block)
        except Exception as exc:  # noqa: BLE001 - the boundary: the scheduler never sees an exception
            self.boundary.handle(exc, where="tick", block=head_block)
            return None
        self.boundary.succeeded()
        return report

    def _tick(self, head_block: int | None) -> TickReport | None:
        started = time.perf_counter()
        rpc = self.collector.rpc
        head = rpc.block_number() if head_block is None else head_block
        if head <= self.last_block:
            return None
        snapshot = self.collector.fetch_snapshot(head)
        snapshot_ms = (time.perf_counter() - started) * 1000
        self.metrics.snapshot_seconds.observe(snapshot_ms / 1000)
        return self.decide_on(snapshot, head, started, snapshot_ms, head_now=rpc.block_number)

    def decide_on(self, snapshot: MarketSnapshot, head: int, started: float | None = None,
                  snapshot_ms: float = 0.0, head_now: Callable[[], int] | None = None) -> TickReport:
        """Everything after collect, on one snapshot: signals -> risk -> strategies -> plan ->
        execute -> journal. The live tick calls it on the snapshot it read, with `head_now` the
        node's head (read again at decision time, for staleness); the backtest (keeper/history/)
        calls it on recorded snapshots, where the head is the snapshot's block."""
        started = time.perf_counter() if started is None else started
        self.last_block = snapshot.block_number
        signals = [s for s in compute_signals(snapshot, self.history) if isinstance(s, Signal)]
        self.index_history.record(snapshot)  # each market's index, once per block (keeper/index_volatility.py)
        if getattr(self.metrics, "publishes", True):  # a backtest's metrics publish nothing
            self._observe(snapshot, signals)
        outcomes = self.settle_in_flight(snapshot)
        in_flight = self.inflight.markets() if self.inflight is not None else set()
        positions = self.positions()
        self._record_funding(snapshot, positions)
        risk = assess_risk(snapshot, signals, positions, self.config.risk, head_block=head,
                           gas_price_wei=snapshot.base_fee_wei, realized_today_usd=self._realized_today_usd(),
                           kill_switch=self.kill_switch(), settling_until_s=self.oracle_recovery.observe(snapshot),
                           now_s=self.clock())
        held = {m: why for m, why in self.boundary.blocked(positions).items()}
        held.update({m: "a transaction of this market is in flight: booked first" for m in in_flight})
        held.update(self.pairs.held_markets() if self.pairs is not None else {})
        skips: list[str] = []
        intents = self._decide(snapshot, signals, positions, risk, skips, held)
        by_key = {(s.market, s.spot_venue): s for s in signals}
        decided_at = head_now() if intents and head_now is not None else head  # staleness at decision time
        for intent in intents:
            outcome = self._plan_and_execute(intent, snapshot, positions.get(intent.market), by_key, skips, decided_at)
            if self.fatal is not None:
                break
            if outcome is not None:
                outcomes.append(outcome)
        if self.pairs is not None and self.fatal is None:
            self._pairs_tick(snapshot, signals, positions, risk, decided_at)
        self._prune(snapshot)
        for skip in self._deferred_skips:
            self.skip_log.record(block=snapshot.block_number, strategy=skip.strategy, market=skip.market,
                                 reason=skip.reason, timestamp_s=snapshot.block_timestamp)
        self._deferred_skips.clear()
        tick_ms = (time.perf_counter() - started) * 1000
        self.metrics.tick_seconds.observe(tick_ms / 1000)
        held_now = sorted(self.positions())  # read even when not logged: a backtest's books cache it (keeper/history/books.py)
        if level_enabled(logging.INFO):  # the event's fields are built only when it is emitted
            log.info("tick", block=snapshot.block_number, snapshot_ms=round(snapshot_ms, 2), tick_ms=round(tick_ms, 2),
                     rpc_calls=snapshot.rpc_round_trips, signals=len(signals), intents=len(intents),
                     sent=len(outcomes), skips=len(skips), positions=held_now,
                     blocked={k: v for k, v in risk.blocked_markets.items()}, held=held,
                     guard=risk.freeze or risk.unwind_all or risk.no_new_positions)
        return TickReport(snapshot.block_number, snapshot_ms, tick_ms, len(signals), len(intents), tuple(outcomes),
                          tuple(skips), snapshot, tuple(signals))

    # ------------------------------------------------------------------ stages
    def _decide(self, snapshot: MarketSnapshot, signals: list[Signal], positions: Mapping[str, Position],
                risk: RiskView, skips: list[str], held: Mapping[str, str]) -> list[Intent]:
        """Intents, one per market at most, closes first. `held`: markets not traded this tick
        (quarantined, or a transaction in flight), with the reason; strategies do not see them."""
        if risk.freeze:
            skips.append(risk.freeze)
            log.warning("decision.frozen", block=snapshot.block_number, reason=risk.freeze)
            return []
        if risk.unwind_all:
            return [self._unwind_intent(p, snapshot, risk.unwind_all) for p in positions.values() if p.market not in held]
        rehedges, positions = self._residual_drift(snapshot, positions, held)  # the books as reconciled
        positions = {m: p for m, p in positions.items() if m not in held}
        rehedges.update(self._margin_ladder(snapshot, positions, rehedges))
        enabled = set(self.config.markets.enabled) - set(held)
        venues = set(self.config.markets.spot_venues)
        usable = [s for s in signals if s.market in enabled and s.spot_venue in venues]
        context = self.strategy_context(snapshot, usable, positions)
        log_skips = level_enabled(logging.INFO)  # the "decision.skip" events are info or debug
        by_market: dict[str, Intent] = {}
        for slot in self.strategies:
            if slot.disabled:
                continue
            try:
                decisions = slot.strategy.decide(context)
                slot.failures = 0
            except Exception as exc:  # isolate the strategy: it must never take the keeper down
                slot.failures += 1
                log.error("strategy.failed", strategy=slot.strategy.name, failures=slot.failures, error=repr(exc))
                if slot.failures >= self.config.strategies.max_failures:
                    slot.disabled = f"disabled after {slot.failures} consecutive failures: {exc!r}"
                    log.error("strategy.disabled", strategy=slot.strategy.name, reason=slot.disabled)
                continue
            for decision in decisions:
                if not isinstance(decision, Intent):
                    skips.append(f"{decision.strategy} {decision.market}: {decision.reason}")
                    self.metrics.decisions.labels(decision.strategy, "none", "skip").inc()
                    if log_skips:  # the same reason as at the previous block (its words; the numbers move): debug only
                        words = _NUMBERS.sub("#", decision.reason)
                        repeated = self._last_skip_reason.get((decision.strategy, decision.market)) == words
                        self._last_skip_reason[(decision.strategy, decision.market)] = words
                        (log.debug if repeated else log.info)(
                            "decision.skip", block=snapshot.block_number, strategy=decision.strategy,
                            market=decision.market, reason=decision.reason)
                    self._deferred_skips.append(decision)  # journaled after this tick's sends
                    continue
                self._last_skip_reason.pop((decision.strategy, decision.market), None)
                if decision.market not in enabled:
                    continue
                blocked = risk.can_open(decision.market) if decision.kind != "close" else None
                if blocked is None and decision.kind == "open":
                    last = self.last_exit.get(decision.market)
                    moved, round_trip = departure_since_exit(last, decision, context.signals) or (None, None)
                    blocked = cooldown_reason(decision.market, decision.direction.value, last, snapshot.block_timestamp,
                                              self.config.risk.exit_cooldown_s, moved_bps=moved,
                                              round_trip_bps=round_trip)
                if blocked:
                    self._skip(decision, snapshot, "risk", blocked, skips)
                    continue
                if decision.kind == "close" and self._hand_over(decision, context, snapshot, skips):
                    continue
                current = by_market.get(decision.market)
                if current is None or (decision.kind == "close" and current.kind != "close"):
                    by_market[decision.market] = decision  # one intent per market; closes first
        by_market.update(rehedges)  # a drifted hedge is fixed before anything a strategy wants there
        return sorted(by_market.values(), key=lambda i: (i.kind != "close", i.market))

    def _hand_over(self, close: Intent, context: StrategyContext, snapshot: MarketSnapshot, skips: list[str]) -> bool:
        target = find_hand_over(close, context, [slot.strategy for slot in self.strategies if not slot.disabled])
        if target is None:
            return False
        strategy, reason = target
        if self.executor.mode == "dry_run":
            self.virtual_owners[close.market] = strategy
        else:
            self.journal.record_handover(market=close.market, to_strategy=strategy, reason=reason,
                                         block=snapshot.block_number, timestamp_s=snapshot.block_timestamp)
        skips.append(f"{close.strategy} {close.market}: hand-over {reason}")
        log.info("position.handover", block=snapshot.block_number, market=close.market, from_strategy=close.strategy,
                 to_strategy=strategy, reason=reason)
        return True

    def _margin_ladder(self, snapshot: MarketSnapshot, positions: Mapping[str, Position],
                       taken: Mapping[str, Intent]) -> dict[str, Intent]:
        sources = self.collector.sources.markets
        usdc = snapshot.wallet_raw.get(sources[0].usdc, 0) if sources and snapshot.wallet_raw else 0
        intent = ladder_intent(snapshot, {m: p for m, p in positions.items() if m not in taken}, usdc,
                               self.config.risk, self.config.execution.intent_ttl_blocks)
        if intent is None:
            return {}
        log.warning("margin.ladder", block=snapshot.block_number, market=intent.market,
                    deposit_usdc_raw=intent.deposit_usdc_raw, reduce_base_x18=-intent.perp_base_x18, reason=intent.reason)
        return {intent.market: intent}

    def _residual_drift(self, snapshot: MarketSnapshot, positions: Mapping[str, Position],
                        held: Mapping[str, str]) -> tuple[dict[str, Intent], Mapping[str, Position]]:
        """Re-hedge: the chain's perp size is checked against the books every tick (a partial
        liquidation, or anything else outside the keeper, changes it). The journal takes the
        chain's size; when |perp + spot| then exceeds risk.max_residual_delta_bps of the position,
        the position is unwound in one atomic trade, which leaves both legs flat (delta neutral).
        Returns the re-hedges and the positions as reconciled (what the strategies then decide on)."""
        account = snapshot.account
        if self.executor.mode == "dry_run" or not isinstance(account, PerpAccountState):
            return {}, positions
        in_flight = self.inflight.markets() if self.inflight is not None else set()
        in_flight |= set(self.pairs.held_markets()) if self.pairs is not None else set()  # a pair's legs are no basis position
        chain = chain_positions(snapshot, self.collector.sources, positions, in_flight)
        if any(c.perp_base_x18 != (positions[m].perp_base_x18 if m in positions else 0) for m, c in chain.items()):
            self.journal.reconcile(chain, block=snapshot.block_number, timestamp_s=snapshot.block_timestamp)
            positions = self.positions()
        intents = {}
        tolerance = self.config.risk.max_residual_delta_bps
        for market, position in positions.items():
            view = snapshot.markets.get(market)
            if view is None or position.perp_base_x18 == 0 or market in held:
                continue
            scale = 10 ** (18 - view.spot_token_decimals)
            residual = position.perp_base_x18 + position.spot_raw * scale
            drift_bps = abs(residual) / abs(position.perp_base_x18) * 1e4
            if drift_bps > tolerance:
                reason = (f"re-hedge: residual {residual / 1e18:+.6f} base is {drift_bps:.1f} bps of the position "
                          f"(perp {position.perp_base_x18 / 1e18:+.6f}, spot {position.spot_raw * scale / 1e18:+.6f}) "
                          f"> {tolerance} bps: unwind both legs")
                intents[market] = self._unwind_intent(position, snapshot, reason)
        return intents, positions

    def _pairs_tick(self, snapshot: MarketSnapshot, signals: list[Signal], positions: Mapping[str, Position],
                    risk: RiskView, head: int) -> None:
        """The pair desk's part of the tick (keeper/pairs_desk.py), inside the error boundary."""
        try:
            self.pairs.tick(snapshot, self.strategy_context(snapshot, signals, positions), risk, head)
        except Exception as exc:  # noqa: BLE001 - the boundary, for the pair
            self.boundary.handle(exc, where="pairs", block=snapshot.block_number)

    def strategy_context(self, snapshot: MarketSnapshot, signals: list[Signal],
                         positions: Mapping[str, Position]) -> StrategyContext:
        cfg = self.config
        eth = self._eth_usd(snapshot)
        tip_wei = self.planner.tips.tip_wei(snapshot.block_number)  # what the sender would tip (keeper/gas_price.py)
        costs = CostModel(gas_price_wei=snapshot.base_fee_wei + tip_wei, eth_price_usd=eth or 1.0,
                          cost_of_capital_apr=cfg.costs.cost_of_capital_apr,
                          holding_horizon_hours=cfg.costs.holding_horizon_hours,
                          l1_data_fee_wei=self.planner.last_l1_fee_wei, **chain_gas_units(self.gas_used))
        held_usd = 0.0
        for position in positions.values():
            view = snapshot.markets.get(position.market)
            if view is not None and isinstance(view.perp, PerpMarketState):
                held_usd += abs(position.perp_base_x18) * view.perp.mark_price_x18 / 10**36
        account = snapshot.account
        free_usd = account.free_collateral_raw / 10**6 if isinstance(account, PerpAccountState) else 0.0
        limits = RiskLimits(
            max_notional_usd_per_market=cfg.risk.max_notional_usd_per_market,
            remaining_total_notional_usd=max(0.0, cfg.risk.max_notional_usd_total - held_usd),
            max_leverage=cfg.risk.max_leverage, free_collateral_usd=free_usd,
            min_margin_ratio=cfg.risk.min_margin_ratio,
            stress=StressParams(cfg.risk.stress_index_move, cfg.risk.stress_funding_apr, costs.horizon_s,
                                cfg.risk.stress_exit_weight, self.index_history.sigmas(snapshot)),
            **self._wallet_limits(snapshot))
        stats = {}
        for s in signals:
            found = self.history.stats(s.market, s.spot_venue, snapshot.block_number, snapshot.block_timestamp)
            if found is not None:
                stats[(s.market, s.spot_venue)] = found
        owners = dict(self.virtual_owners) if self.executor.mode == "dry_run" else self.journal.position_owners()
        return StrategyContext(snapshot=snapshot, signals={(s.market, s.spot_venue): s for s in signals},
                               positions=positions, costs=costs, limits=limits, basis_stats=stats,
                               position_owner={m: o for m, o in owners.items() if m in positions})

    def _wallet_limits(self, snapshot: MarketSnapshot) -> dict[str, Any]:
        """What the executor holds bounds what it can trade: spot to sell, USDC to buy with."""
        if not snapshot.wallet_raw:
            return {}
        sources = self.collector.sources.markets
        usdc = snapshot.wallet_raw.get(sources[0].usdc) if sources else None
        return {"spot_inventory_raw": {m.name: snapshot.wallet_raw.get(m.spot_token, 0) for m in sources},
                "usdc_wallet_usd": None if usdc is None else usdc / 10**USDC_DECIMALS}

    def _unwind_intent(self, position: Position, snapshot: MarketSnapshot, reason: str) -> Intent:
        return Intent(strategy=RISK_STRATEGY, kind="close", market=position.market, direction=position.direction,
                      spot_venue=position.spot_venue, perp_base_x18=abs(position.perp_base_x18), reason=reason,
                      expected=PnlEstimate(0, 0, 0, 0, 0, 0), created_block=snapshot.block_number,
                      valid_until_block=snapshot.block_number + self.config.execution.intent_ttl_blocks)

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
        log.info("decision.intent", block=snapshot.block_number, strategy=intent.strategy, kind=intent.kind,
                 market=intent.market, direction=intent.direction.value, venue=intent.spot_venue,
                 perp_base_x18=intent.perp_base_x18, expected_net_usd=round(intent.expected.net_usd, 4),
                 reason=intent.reason)
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
            plan = self.planner.plan(intent, snapshot, position, head_block=decided_at)
        except SkipOpportunity as exc:
            self._skip(intent, snapshot, "plan", str(exc), skips, decision_id)
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
            sent.clear()
            sent.append(self.journal.record_tx_sent(decision_id, plan, tx_hash=entry.latest.tx_hash, nonce=entry.nonce,
                                                    sent_block=snapshot.block_number, eth_price_x18=eth_x18))

        outcome = self.executor.execute(plan, on_signed)
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

    def _skip(self, intent: Intent, snapshot: MarketSnapshot, stage: str, reason: str, skips: list[str],
              decision_id: int | None = None) -> None:
        skips.append(f"{intent.strategy} {intent.market} {intent.kind}: {reason}")
        self.metrics.skips.labels(stage).inc()
        self.metrics.decisions.labels(intent.strategy, intent.kind, f"skipped_{stage}").inc()
        log.info("decision.skipped", block=snapshot.block_number, stage=stage, strategy=intent.strategy,
                 market=intent.market, kind=intent.kind, reason=reason)
        if decision_id is not None:
            self.journal.record_skip(block=snapshot.block_number, strategy=intent.strategy, market=intent.market,
                                     reason=f"{stage}: {reason}", decision_id=decision_id)
        else:
            self.skip_log.record(block=snapshot.block_number, strategy=intent.strategy, market=intent.market,
                                 reason=f"{stage}: {reason}", timestamp_s=snapshot.block_timestamp)

    # ------------------------------------------------------------------ bookkeeping
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

    def _record_funding(self, snapshot: MarketSnapshot, positions: Mapping[str, Position]) -> None:
        account = snapshot.account
        if not isinstance(account, PerpAccountState):
            return
        for market in positions:
            held = account.markets.get(market)
            if held is not None:
                self.journal.record_funding(market, block=snapshot.block_number,
                                            pending_funding_x18=held.pending_funding_x18,
                                            timestamp_s=snapshot.block_timestamp)

    def _prune(self, snapshot: MarketSnapshot) -> None:
        """Journal retention, once an hour of block time (keeper/retention.py)."""
        if snapshot.block_timestamp - self._pruned_at_s >= PRUNE_EVERY_S:
            self._pruned_at_s = snapshot.block_timestamp
            prune_journal(self.journal, snapshot.block_timestamp, self.config.monitoring.journal_retention_days)

    def _realized_today_usd(self) -> float:
        return float(self.journal.realized_today_usd())

    def _eth_usd(self, snapshot: MarketSnapshot) -> float:
        price = eth_price_x18(snapshot)
        return 0.0 if price is None else price / 10**18

    def _observe(self, snapshot: MarketSnapshot, signals: list[Signal]) -> None:
        m = self.metrics
        m.block_number.set(snapshot.block_number)
        for s in signals:
            m.basis_bps.labels(s.market, s.spot_venue).set(s.basis_bps)
            if s.basis_zscore is not None:
                m.basis_zscore.labels(s.market, s.spot_venue).set(s.basis_zscore)
            m.funding_apr.labels(s.market).set(s.funding_apr)
            m.carry_apr.labels(s.market, Direction.SHORT_PERP.value).set(s.carry_apr_short_perp)
            m.carry_apr.labels(s.market, Direction.LONG_PERP.value).set(s.carry_apr_long_perp)
        account = snapshot.account
        if isinstance(account, PerpAccountState):
            for market, held in account.markets.items():
                m.position_base.labels(market).set(held.position_size_x18 / 10**18)
            if account.margin_ratio is not None:
                m.margin_ratio.set(account.margin_ratio)

