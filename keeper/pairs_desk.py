"""The pair desk: the pairs_spread strategy's tick inside the engine (a hook, called after the basis
intents), from the price history to the pair transaction and its records.

Per tick: record the two vAMM prices (log, by block time); the risk stage first (freeze: nothing;
unwind / kill switch: close the pair); else the strategy decides on the history and the pair held
(keeper/pairs_journal.py); an open must pass the risk stage for both markets; then plan
(keeper/pairs_plan.py: exact quote, bounds, profit gate), send both legs in ONE executor call
(openPair / closePair) through the live executor's sender (simulated first; a plan that fails
simulation is not sent), and book the Pair* event's fills, Perp's fee and settled funding and the
gas. A dry run eth_calls the plan and logs the would-be fills. In `keeper backtest` the executor is
the paper one (keeper/history/books.py, pair_books.py): its `fill_pair` stands for the send and
the receipt, and the fills are booked the same way (`_book`).

The markets of an open pair are held from the basis pipeline (no basis trade, no adoption of its
legs as basis positions). A pair transaction whose outcome is unknown (an RPC failure after it was
sent) stops pair trading, logged, until the process restarts and the chain is read again: the
desk never guesses a pair's legs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keeper.chain.tx_types import SimulationReverted, TxRequest
from keeper.config import KeeperConfig
from keeper.execute import DryRunExecutor, LiveExecutor
from keeper.errors import ConfigError, RpcError, SkipOpportunity, TransientError
from keeper.logs import get_logger
from keeper.pairs_journal import PairJournal
from keeper.pairs_plan import PairTxPlan, plan_pair
from keeper.pairs_types import PairIntent, PairPosition
from keeper.plan import eth_price_x18
from keeper.pnl_split import compute_gas_usd_x18
from keeper.risk import RiskView
from keeper.signals import vamm_price_usd
from keeper.skiplog import reason_shape
from keeper.types import BASIS_PERP_VENUE, MarketSnapshot, PerpMarketState
from keeper.venues.executor import EXECUTOR, PairFills, decode_pair_fills_return, pair_fills_from_receipt
from keeper.venues.registry import perp_adapter
from strategies.base import Skip, StrategyContext
from strategies.pairs_spread import PairContext, PairsSpread

log = get_logger("keeper.pairs")


@dataclass
class PairDesk:
    strategy: PairsSpread
    config: KeeperConfig
    executor_address: str
    executor: Any  # keeper.execute.LiveExecutor | DryRunExecutor
    book: PairJournal
    clearing_house: str
    samples: deque[tuple[float, float, float]] = field(default_factory=deque)  # (time s, log A, log B)
    stopped: str | None = None
    virtual: PairPosition | None = None  # dry run: the pair the would-be fills hold
    _last_shape: str = ""

    @property
    def markets(self) -> tuple[str, str]:
        return self.strategy.params.market_a, self.strategy.params.market_b

    def position(self) -> PairPosition | None:
        return self.virtual if self.executor.mode == "dry_run" else self.book.open_position()

    def held_markets(self) -> dict[str, str]:
        """Markets the basis pipeline must leave alone this tick, with the reason."""
        if self.stopped or self.position() is not None:
            why = self.stopped or "held by the open pair (pairs_spread)"
            return {m: why for m in self.markets}
        return {}

    def observe(self, snapshot: MarketSnapshot) -> None:
        a, b = (snapshot.markets.get(m) for m in self.markets)
        if a is None or b is None or not isinstance(a.perp, PerpMarketState) or not isinstance(b.perp, PerpMarketState):
            return
        self.observe_mids(snapshot.block_timestamp, vamm_price_usd(a.perp), vamm_price_usd(b.perp))

    def observe_past(self, timestamp_s: int, vamm: Mapping[str, float]) -> None:
        """A past block's vAMM mids (the warm start's PastBlock.vamm), recorded as a tick would."""
        a, b = (vamm.get(m) for m in self.markets)
        if a is not None and b is not None:
            self.observe_mids(timestamp_s, a, b)

    def observe_mids(self, timestamp_s: int, vamm_a: float, vamm_b: float) -> None:
        t = float(timestamp_s)
        if self.samples and self.samples[-1][0] >= t:
            return
        self.samples.append((t, math.log(vamm_a), math.log(vamm_b)))
        horizon = t - self.strategy.params.window_s
        while self.samples and self.samples[0][0] < horizon:
            self.samples.popleft()

    # ------------------------------------------------------------------ the tick
    def tick(self, snapshot: MarketSnapshot, ctx: StrategyContext, risk: RiskView, head_block: int) -> list[dict[str, Any]]:
        """The desk's part of one tick; returns the pair outcomes (for the tick's log). Raises only
        what the engine's error boundary maps (transient RPC trouble, fatal errors)."""
        self.observe(snapshot)
        if self.stopped:
            return []
        if risk.freeze:
            return []
        position = self.position()
        decision: PairIntent | Skip
        if any(m in risk.frozen_markets for m in self.markets):
            return []
        unwind = risk.unwind_all or next((risk.unwind_markets[m] for m in self.markets if m in risk.unwind_markets), None)
        if unwind and position is not None:
            decision = self.strategy._close(ctx, position, f"risk: {unwind}")
        elif unwind:
            return []
        else:
            times, la, lb = (list(x) for x in zip(*self.samples)) if self.samples else ([], [], [])
            decision = self.strategy.decide_pair(PairContext(ctx, times, la, lb, position))
        if isinstance(decision, Skip):
            self._log_skip(snapshot, decision.reason)
            return []
        if decision.kind == "open":
            blocked = risk.can_open(decision.market_a) or risk.can_open(decision.market_b)
            if blocked:
                self._log_skip(snapshot, f"risk: {blocked}")
                return []
        log.info("pair.intent", block=snapshot.block_number, kind=decision.kind, side=decision.side,
                 base_change_x18_a=decision.base_change_x18_a, base_change_x18_b=decision.base_change_x18_b,
                 hedge_ratio_x18=decision.hedge_ratio_x18, expected_net_usd=round(decision.expected.net_usd, 4),
                 reason=decision.reason)
        try:
            plan = plan_pair(self.config, self.executor_address, decision, snapshot, position, head_block,
                             tip_wei=ctx.costs.gas_price_wei - snapshot.base_fee_wei)
        except SkipOpportunity as exc:
            self._log_skip(snapshot, f"plan: {exc}")
            return []
        return [self._execute(plan, snapshot, position)]

    def _log_skip(self, snapshot: MarketSnapshot, reason: str) -> None:
        shape = reason_shape(reason)
        (log.debug if shape == self._last_shape else log.info)(
            "pair.skip", block=snapshot.block_number, pair="/".join(self.markets), reason=reason)
        self._last_shape = shape

    # ------------------------------------------------------------------ execution
    def _execute(self, plan: PairTxPlan, snapshot: MarketSnapshot, position: PairPosition | None) -> dict[str, Any]:
        intent, predicted = plan.intent, plan.quote.predicted
        log.info("pair.planned", block=snapshot.block_number, kind=intent.kind, function=plan.function,
                 predicted=predicted.__dict__, bounds=plan.bounds_dict(), gas_cost_usd=round(plan.gas_cost_usd, 4),
                 expected_net_usd=round(plan.expected_net_usd, 4))
        if self.executor.mode == "dry_run":
            return self._dry_run(plan, snapshot, position)
        trade_id = self.book.record_trade(intent, block=snapshot.block_number, timestamp_s=snapshot.block_timestamp,
                                          predicted=predicted, bounds=plan.bounds_dict(),
                                          pair_id=position.pair_id if position else None)
        if self.executor.mode == "backtest":  # the backtest's paper executor (keeper/history/pair_books.py)
            return self._book(plan, snapshot, position, trade_id, *self.executor.fill_pair(plan, snapshot))
        request = TxRequest(to=plan.to, data=plan.calldata, label=f"{plan.function} {'/'.join(self.markets)}",
                            errors_abi=EXECUTOR, valid_until_block=intent.valid_until_block)
        sender = self.executor.sender
        try:
            result = sender.send(request)
        except SimulationReverted as exc:
            return self._not_sent(trade_id, plan, snapshot, "simulation_reverted", exc.reason)
        except TransientError as exc:
            self.stopped = f"pair transaction outcome unknown ({exc}): pair trading stopped until a restart"
            self.book.record_outcome(trade_id, status="unknown", tx_hash=None, fills=None, gas_used=0, fee_paid_wei=0,
                                     gas_x18=0, perp_fee_x18=0, settled_funding_x18=0, detail=str(exc))
            log.error("pair.unknown", block=snapshot.block_number, reason=self.stopped)
            raise
        except SkipOpportunity as exc:
            return self._not_sent(trade_id, plan, snapshot, "dropped", str(exc))
        sender.acknowledge(result.nonce)
        fills = None
        fee = settled = 0
        if result.status == "included":
            receipt = self.executor.rpc.call("eth_getTransactionReceipt", [result.tx_hash])
            found = pair_fills_from_receipt(receipt or {}, plan.to)
            fills = found[1] if found else None
            facts = perp_adapter(BASIS_PERP_VENUE).receipt_facts(receipt or {}, self.clearing_house, plan.to)
            fee, settled = facts.fee_x18, facts.settled_funding_x18  # both legs' events: one venue, decoded once
        return self._book(plan, snapshot, position, trade_id, result, fills, fee, settled)

    def _book(self, plan: PairTxPlan, snapshot: MarketSnapshot, position: PairPosition | None, trade_id: int,
              result: Any, fills: PairFills | None, fee: int, settled: int) -> dict[str, Any]:
        """Book a sent (or paper-filled) pair transaction: its outcome, the pair's fills and costs."""
        intent, predicted = plan.intent, plan.quote.predicted
        gas_x18 = compute_gas_usd_x18(result.fee_paid_wei, eth_price_x18(snapshot) or 0)
        status = result.status if fills is not None or result.status != "included" else "included_without_event"
        if status == "included_without_event":  # the legs' sizes are unknown: never guess them
            self.stopped = f"pair transaction {result.tx_hash} included without a Pair* event: pair trading stopped"
            log.error("pair.unknown", block=snapshot.block_number, reason=self.stopped)
        detail = result.revert_reason or f"{result.status} in block {result.block_number}"
        self.book.record_outcome(trade_id, status=status, tx_hash=result.tx_hash, fills=fills, gas_used=result.gas_used,
                                 fee_paid_wei=result.fee_paid_wei, gas_x18=gas_x18, perp_fee_x18=fee,
                                 settled_funding_x18=settled, detail=detail)
        exact = fills == predicted if fills is not None else None
        log.info("pair.outcome", block=snapshot.block_number, kind=intent.kind, status=status, tx_hash=result.tx_hash,
                 gas_used=result.gas_used, fills=fills.__dict__ if fills else None, fills_equal_predicted=exact,
                 gas_price_predicted_wei=plan.gas_price_wei, gas_price_paid_wei=result.effective_gas_price_wei,
                 detail=detail)
        if fills is not None and intent.kind == "open":
            self.book.open_pair(intent, trade_id, fills, block=snapshot.block_number,
                                timestamp_s=snapshot.block_timestamp, gas_x18=gas_x18, perp_fee_x18=fee,
                                settled_funding_x18=settled)
        elif fills is not None and position is not None:
            self.book.book_close(position.pair_id, fills, block=snapshot.block_number, reason=intent.reason,
                                 gas_x18=gas_x18, perp_fee_x18=fee, settled_funding_x18=settled)
        elif position is not None and gas_x18:
            self.book.add_gas(position.pair_id, gas_x18)
        return {"kind": intent.kind, "status": status, "tx_hash": result.tx_hash, "fills_equal_predicted": exact}

    def _not_sent(self, trade_id: int, plan: PairTxPlan, snapshot: MarketSnapshot, status: str, why: str) -> dict[str, Any]:
        self.book.record_outcome(trade_id, status=status, tx_hash=None, fills=None, gas_used=0, fee_paid_wei=0,
                                 gas_x18=0, perp_fee_x18=0, settled_funding_x18=0, detail=why)
        log.info("pair.outcome", block=snapshot.block_number, kind=plan.intent.kind, status=status, detail=why)
        return {"kind": plan.intent.kind, "status": status, "tx_hash": None, "fills_equal_predicted": None}

    def _dry_run(self, plan: PairTxPlan, snapshot: MarketSnapshot, position: PairPosition | None) -> dict[str, Any]:
        """An open is eth_called; a close or resize acts on the dry run's virtual pair, which the
        chain never held: its would-be fills are the plan's exact quote (keeper/execute.py's
        DryRunExecutor does the same for basis trades)."""
        if plan.intent.kind != "open":
            return self._dry_fills(plan, snapshot, plan.quote.predicted)
        if not hasattr(self.executor, "rpc"):  # the backtest's paper executor in dry-run mode (keeper/history/books.py)
            fills, why = self.executor.dry_pair(plan, snapshot)
            return self._dry_fills(plan, snapshot, fills) if fills is not None else self._dry_reverted(plan, snapshot, why)
        call = {"from": self.executor.owner, "to": plan.to, "data": "0x" + plan.calldata.hex()}
        try:
            data = bytes.fromhex(self.executor.rpc.call("eth_call", [call, "latest"])[2:])
        except TransientError:
            raise
        except RpcError as exc:
            return self._dry_reverted(plan, snapshot, exc.rpc_message)
        fills = decode_pair_fills_return(plan.function, data)
        return self._dry_fills(plan, snapshot, fills)

    def _dry_reverted(self, plan: PairTxPlan, snapshot: MarketSnapshot, why: str) -> dict[str, Any]:
        log.info("pair.outcome", block=snapshot.block_number, kind=plan.intent.kind, status="simulation_reverted",
                 detail=why)
        return {"kind": plan.intent.kind, "status": "simulation_reverted", "tx_hash": None, "fills_equal_predicted": None}

    def _dry_fills(self, plan: PairTxPlan, snapshot: MarketSnapshot, fills: PairFills) -> dict[str, Any]:
        """The would-be fills of a dry run: the virtual pair they hold."""
        intent = plan.intent
        if intent.kind == "open":
            fit = intent.fit
            self.virtual = PairPosition(0, intent.market_a, intent.market_b, intent.side, fills.position_base_x18_after_a,
                                        fills.position_base_x18_after_b, intent.hedge_ratio_x18, snapshot.block_number,
                                        snapshot.block_timestamp, fit.beta if fit else 0.0, fit.z if fit else 0.0,
                                        fit.spread if fit else 0.0, fills.perp_quote_x18_a + fills.perp_quote_x18_b,
                                        fit.mean if fit else 0.0, fit.scale if fit else 0.0)
        else:
            self.virtual = None
        log.info("pair.outcome", block=snapshot.block_number, kind=intent.kind, status="dry_run", fills=fills.__dict__,
                 fills_equal_predicted=fills == plan.quote.predicted)
        return {"kind": intent.kind, "status": "dry_run", "tx_hash": None,
                "fills_equal_predicted": fills == plan.quote.predicted}


def check_pair_markets(config: KeeperConfig, chain_markets: Sequence[str]) -> None:
    """pairs_spread's market_a / market_b, checked at start: a market the chain does not have
    (whenever its params are set, enabled or not), or, when it is enabled, one not in
    markets.enabled (the snapshot reads the enabled markets only: the desk would wait for prices
    that never come, saying nothing), is a ConfigError naming the parameter."""
    name = PairsSpread.name
    enabled = name in config.strategies.enabled
    if not enabled and name not in config.strategies.params:
        return
    try:
        params = PairsSpread.from_params(config.strategies.params.get(name, {})).params
    except ValueError:
        return  # a bad parameter: load_strategy_slots names it
    for key in ("market_a", "market_b"):
        market, where = getattr(params, key), config.where("strategies", "params", name, key)  # or its variable
        if market not in chain_markets:
            raise ConfigError(f"{where}: {market!r} is not a market of this chain (it has {list(chain_markets)})")
        if enabled and market not in config.markets.enabled:
            raise ConfigError(f"{where}: {market!r} is not in markets.enabled "
                              f"{list(config.markets.enabled)} (the pair is read and traded on enabled markets only)")


def build_pair_desk(config: KeeperConfig, executor: Any, journal: Any, executor_address: str,
                    clearing_house: str) -> PairDesk | None:
    """The desk when pairs_spread is enabled (its params from strategies.params.pairs_spread), else None."""
    if PairsSpread.name not in config.strategies.enabled:
        return None
    if not isinstance(executor, (LiveExecutor, DryRunExecutor)) and not hasattr(executor, "fill_pair"):
        log.warning("pair.desk_off", reason=f"pairs_spread needs a live, dry-run or paper executor, not "
                                            f"{type(executor).__name__}")
        return None
    strategy = PairsSpread.from_params(config.strategies.params.get(PairsSpread.name, {}))
    return PairDesk(strategy, config, executor_address, executor, PairJournal(journal), clearing_house)
