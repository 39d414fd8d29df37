"""The decision stage of a tick (Engine, keeper/engine.py): the risk view, the books as the chain
has them (re-hedges), the margin ladder and the strategies turn one snapshot's signals into
intents, one per market at most, closes first; a strategy that raises is isolated and disabled
after `strategies.max_failures` consecutive failures.

A mixin of Engine: it works on the Engine's state (config, strategy slots, journal, executor,
collector, planner, basis and index histories, exit marks, in-flight and pair markets) and records
skips through Engine._skip; it imports nothing from keeper/engine.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from keeper.adopt import chain_positions
from keeper.logs import get_logger, level_enabled
from keeper.margin_ladder import buyback_reserve_raw
from keeper.one_book import chain_gas_units, find_hand_over, ladder_intent
from keeper.plan import RISK_STRATEGY, eth_price_x18
from keeper.risk import RiskView, cooldown_reason, departure_since_exit
from keeper.signals import Signal
from keeper.stress import StressParams
from keeper.types import Intent, MarketSnapshot, PerpAccountState, PerpMarketState, PnlEstimate, Position, USDC_DECIMALS
from strategies.base import CostModel, RiskLimits, StrategyContext

log = get_logger("keeper.engine")
_NUMBERS = re.compile(r"[-+]?\d[\d,._]*(?:e[-+]?\d+)?")


class DecideStage:
    """signals + risk view -> intents (see the module docstring)."""

    def _decide(self, snapshot: MarketSnapshot, signals: list[Signal], positions: Mapping[str, Position],
                risk: RiskView, skips: list[str], held: Mapping[str, str]) -> list[Intent]:
        """Intents, one per market at most, closes first. `held`: markets not traded this tick
        (quarantined, or a transaction in flight), with the reason; strategies do not see them."""
        if risk.frozen_margin:  # a freeze (of every market or some) holds what the guard would unwind
            log.error("margin.frozen_below_guard", block=snapshot.block_number, reason=risk.frozen_margin)
        if risk.freeze:
            skips.append(risk.freeze)
            log.warning("decision.frozen", block=snapshot.block_number, reason=risk.freeze)
            return []
        if risk.unwind_all:
            return [self._unwind_intent(p, snapshot, risk.unwind_all) for p in positions.values() if p.market not in held]
        killed = {m: self._unwind_intent(p, snapshot, risk.unwind_markets[m]) for m, p in positions.items()
                  if m in risk.unwind_markets and m not in held}  # the kill switch names these markets
        held = {**held, **risk.unwind_markets}  # the strategies leave them alone
        rehedges, book = self._residual_drift(snapshot, positions, held)  # the books as reconciled
        positions = {m: p for m, p in book.items() if m not in held}  # what may be traded this tick
        rehedges.update(self._margin_ladder(snapshot, positions, rehedges, book))
        enabled = set(self.config.markets.enabled) - set(held)
        venues = set(self.config.markets.spot_venues)
        usable = [s for s in signals if s.market in enabled and s.spot_venue in venues]
        context = self.strategy_context(snapshot, usable, positions, book)
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
                if decision.market not in enabled:  # held this tick (in flight, quarantined, killed) or not traded
                    continue
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
        by_market.update(killed)
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
                       taken: Mapping[str, Intent], book: Mapping[str, Position]) -> dict[str, Intent]:
        """`positions`: the ones it may resize; `book`: every position, held ones too (their buy-backs)."""
        found = ladder_intent(snapshot, {m: p for m, p in positions.items() if m not in taken},
                              self._spare_usdc_raw(snapshot, book) or 0, self.config.risk,
                              self.config.execution.intent_ttl_blocks)
        if found is None:
            return {}
        intent, step = found
        log.warning("margin.ladder", block=snapshot.block_number, market=intent.market,
                    margin_ratio=round(step.margin_ratio, 6), ratio_after_deposit=round(step.margin_ratio_after_deposit, 6),
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

    def strategy_context(self, snapshot: MarketSnapshot, signals: list[Signal], positions: Mapping[str, Position],
                         book: Mapping[str, Position] | None = None) -> StrategyContext:
        """`positions`: what the strategies may trade; `book` (default: the same): every position,
        held ones too, for the account-level limits (total notional, the long perps' buy-backs)."""
        cfg = self.config
        book = positions if book is None else book
        eth = self._eth_usd(snapshot)
        tip_wei = self.planner.tips.tip_wei(snapshot.block_number)  # what the sender would tip (keeper/gas_price.py)
        common = dict(gas_price_wei=snapshot.base_fee_wei + tip_wei, eth_price_usd=eth or 1.0,
                      cost_of_capital_apr=cfg.costs.cost_of_capital_apr,
                      holding_horizon_hours=cfg.costs.holding_horizon_hours, l1_data_fee_wei=self.planner.last_l1_fee_wei)
        units, own_units = self._gas_units()
        costs = CostModel(**common, **units)  # type: ignore[arg-type]
        market_costs = {market: CostModel(**common, **own) for market, own in own_units.items()}  # type: ignore[arg-type]
        held_usd = 0.0
        for position in book.values():
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
            **self._wallet_limits(snapshot, book))
        stats = {}
        for s in signals:
            found = self.history.stats(s.market, s.spot_venue, snapshot.block_number, snapshot.block_timestamp)
            if found is not None:
                stats[(s.market, s.spot_venue)] = found
        owners = dict(self.virtual_owners) if self.executor.mode == "dry_run" else self.journal.position_owners()
        return StrategyContext(snapshot=snapshot, signals={(s.market, s.spot_venue): s for s in signals},
                               positions=positions, costs=costs, limits=limits, basis_stats=stats,
                               market_costs=market_costs,
                               position_owner={m: o for m, o in owners.items() if m in positions})

    def gas_units_for(self, market: str) -> dict[str, int]:
        """The gas units `market` is costed with (its own receipts', else the largest over markets;
        a kind never seen is absent): the strategies' CostModel and the planner's gate alike."""
        units, own = self._gas_units()
        return own.get(market, units)

    def _gas_units(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """chain_gas_units over all markets, and per market where its own differ: worked out again
        only when a receipt changed what the chain used (not every block)."""
        key = tuple(self.gas_used.items())
        cached = self._gas_units_memo
        if cached is None or cached[0] != key:
            units = chain_gas_units(self.gas_used)
            own = {market: chain_gas_units(self.gas_used, market) for market in {m for m, _ in self.gas_used}}
            cached = self._gas_units_memo = (key, units, {m: u for m, u in own.items() if u != units})
        return cached[1], cached[2]

    def _wallet_limits(self, snapshot: MarketSnapshot, positions: Mapping[str, Position]) -> dict[str, Any]:
        """What the executor holds bounds what it can trade: spot to sell, USDC to buy with (less
        what the long perps' buy-backs need, keeper/margin_ladder.py)."""
        if not snapshot.wallet_raw:
            return {}
        usdc = self._spare_usdc_raw(snapshot, positions)
        return {"spot_inventory_raw": {m.name: snapshot.wallet_raw.get(m.spot_token, 0)
                                       for m in self.collector.sources.markets},
                "usdc_wallet_usd": None if usdc is None else usdc / 10**USDC_DECIMALS}

    def _wallet_usdc_raw(self, snapshot: MarketSnapshot) -> int | None:
        """The executor's USDC as the snapshot read it (None: not read)."""
        sources = self.collector.sources.markets
        return snapshot.wallet_raw.get(sources[0].usdc) if sources else None

    def _spare_usdc_raw(self, snapshot: MarketSnapshot, book: Mapping[str, Position]) -> int | None:
        """The executor's USDC less what the long perps of `book` need to buy their spot back
        (keeper/margin_ladder.py; 0 when a price for that is unreadable); None: the wallet not read."""
        usdc = self._wallet_usdc_raw(snapshot)
        if usdc is None:
            return None
        reserve = buyback_reserve_raw(snapshot.markets, book)
        return 0 if reserve is None else max(0, usdc - reserve)

    def _unwind_intent(self, position: Position, snapshot: MarketSnapshot, reason: str) -> Intent:
        return Intent(strategy=RISK_STRATEGY, kind="close", market=position.market, direction=position.direction,
                      spot_venue=position.spot_venue, perp_base_x18=abs(position.perp_base_x18), reason=reason,
                      expected=PnlEstimate(0, 0, 0, 0, 0, 0), created_block=snapshot.block_number,
                      valid_until_block=snapshot.block_number + self.config.execution.intent_ttl_blocks)

    def _eth_usd(self, snapshot: MarketSnapshot) -> float:
        price = eth_price_x18(snapshot)
        return 0.0 if price is None else price / 10**18
