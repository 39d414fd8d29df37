"""One tick: collect -> signals -> risk -> strategies -> plan -> execute -> journal.

Only this module (and the CLI) catches broadly, through the error boundary (keeper/boundary.py):
`tick` never raises. A strategy that raises is isolated and disabled after
`strategies.max_failures` consecutive failures; a market after as many unexpected errors in a row
is quarantined; a transient RPC error skips the tick (or the intent); a skipped opportunity is
logged with its reason; a fatal error stops the keeper in order (`fatal`). Every signed
transaction is in the journal before it is broadcast and is booked whenever its outcome is known
(keeper/inflight.py). Every decision and every transaction is one log event, and every tick ends
with a `tick` summary event.

By stage: this module (the Engine: its state, the tick and its bookkeeping), engine_decide.py
(signals + risk view -> intents: DecideStage) and engine_execute.py (intent -> plan -> execute ->
book: ExecuteStage), the two mixins the Engine is built from.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keeper.boundary import ErrorBoundary
from keeper.collect import SnapshotCollector
from keeper.config import KeeperConfig
from keeper.engine_decide import DecideStage
from keeper.engine_execute import ExecuteStage
from keeper.errors import ConfigError
from keeper.execute import Executor
from keeper.frozen import quick_init
from keeper.inflight import InFlight
from keeper.logs import get_logger, level_enabled
from keeper.metrics import KeeperMetrics
from keeper.pairs_desk import build_pair_desk
from keeper.plan import Planner
from keeper.retention import prune_journal
from keeper.risk import ExitMark, OracleRecovery, RiskView, assess_risk
from keeper.skiplog import SkipLog
from keeper.signals import BasisHistory, PastBlock, Signal, SkippedSignal, compute_signals
from keeper.types import Direction, Intent, MarketSnapshot, Outcome, PerpAccountState, Position
from keeper.index_volatility import IndexHistory
from keeper.venues.sources import MarketSource
from strategies import STRATEGIES, load_strategy

log = get_logger("keeper.engine")
PRUNE_EVERY_S = 3_600


@dataclass
class StrategySlot:
    strategy: Any  # strategies.base.Strategy: .name, .decide(ctx)
    failures: int = 0
    disabled: str | None = None


def load_strategy_slots(config: KeeperConfig) -> list[StrategySlot]:
    """strategies.enabled, each built from its strategies.params. An unknown name in enabled or in
    params, or a bad parameter (of an enabled strategy or not: a typo waits for no one to enable
    it), is a ConfigError naming the key."""
    known = ", ".join(sorted(STRATEGIES))
    for key, names in (("enabled", config.strategies.enabled), ("params", list(config.strategies.params))):
        unknown = [n for n in names if n not in STRATEGIES]
        if unknown:
            where = config.where("strategies", key, *unknown[:1 if key == "params" else 0])
            raise ConfigError(f"{where}: unknown strategy {', '.join(map(repr, unknown))} (known: {known})")
    built = {}
    for name in dict.fromkeys([*config.strategies.enabled, *config.strategies.params]):
        try:
            built[name] = load_strategy(name, config.strategies.params.get(name, {}))
        except ValueError as exc:  # a ParamError names the parameter, and so the variable that set it, if one did
            param = getattr(exc, "param", None)
            key = ("strategies", "params", name, *([param] if param else []))
            raise ConfigError(f"{config.where(*key) if param else '.'.join(key)}: {exc}") from exc
    return [StrategySlot(built[name]) for name in config.strategies.enabled]


@quick_init  # built per block (keeper/frozen.py)
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
class Engine(DecideStage, ExecuteStage):
    config: KeeperConfig
    collector: SnapshotCollector
    strategies: list[StrategySlot]
    planner: Planner
    executor: Executor
    journal: Any  # keeper.journal.Journal
    metrics: KeeperMetrics
    kill_switch: Callable[[], bool | frozenset[str]]  # keeper/kill_switch.py
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
    _gas_units_memo: tuple[Any, dict[str, int], dict[str, dict[str, int]]] | None = None  # engine_decide._gas_units
    _tick_sent: int = 0  # transactions signed this tick (the `tick` event's sent)
    _tick_usdc_change_raw: int = 0  # the executor's USDC moved by this tick's included trades (engine_execute)
    oracle_recovery: OracleRecovery = field(init=False)
    boundary: ErrorBoundary = field(init=False)
    inflight: InFlight | None = field(init=False)
    skip_log: SkipLog = field(init=False)
    pairs: Any = field(init=False)  # keeper.pairs_desk.PairDesk when pairs_spread is enabled
    _pooled: frozenset[tuple[str, str]] = field(init=False)  # (market, spot venue) with a pool at all: static

    def __post_init__(self) -> None:
        self.oracle_recovery = OracleRecovery(self.config.risk.max_oracle_age_s)
        self.boundary = ErrorBoundary(self.metrics, self.config.strategies.max_failures)
        self.inflight = InFlight(self.journal, self.executor) if self.executor.mode == "live" else None
        self.skip_log = SkipLog(self.journal)
        self._pooled = MarketSource.pooled(self.collector.sources.markets)
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
                  snapshot_ms: float = 0.0, head_now: Callable[[], int] | None = None,
                  computed: Sequence[Signal | SkippedSignal] | None = None) -> TickReport:
        """Everything after collect, on one snapshot: signals -> risk -> strategies -> plan ->
        execute -> journal. The live tick calls it on the snapshot it read, with `head_now` the
        node's head (read again at decision time, for staleness); the backtest (keeper/history/)
        calls it on recorded snapshots, where the head is the snapshot's block, and with the
        snapshot's signals when its worker process computed them (`computed`: compute_signals
        on this snapshot, against a basis history whose numbers are this engine's)."""
        started = time.perf_counter() if started is None else started
        self.last_block = snapshot.block_number
        given = computed is not None
        if computed is None:
            computed = compute_signals(snapshot, self.history)
        signals = [s for s in computed if isinstance(s, Signal)]
        if given and any(s.block_number != snapshot.block_number for s in signals):
            raise ValueError(f"signals computed for another block than {snapshot.block_number}")
        self.index_history.record(snapshot)  # each market's index, once per block (keeper/index_volatility.py)
        if getattr(self.metrics, "publishes", True):  # a backtest's metrics publish nothing
            self._observe(snapshot, computed)
        outcomes = self.settle_in_flight(snapshot)
        settled = len(outcomes)  # booked now, sent at an earlier tick
        self._tick_sent = self._tick_usdc_change_raw = 0
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
        held.update(risk.frozen_markets)  # the kill switch freezes these: no transaction there
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
                     sent=self._tick_sent, settled=settled,
                     skips=len(skips), positions=held_now,
                     blocked={k: v for k, v in risk.blocked_markets.items()}, held=held,
                     guard=risk.freeze or risk.unwind_all or risk.no_new_positions
                     or "; ".join([*risk.unwind_markets.values(), *risk.frozen_markets.values()]) or None)
        return TickReport(snapshot.block_number, snapshot_ms, tick_ms, len(signals), len(intents), tuple(outcomes),
                          tuple(skips), snapshot, tuple(signals))

    def record_past(self, past: PastBlock) -> None:
        """What a tick records of a block (keeper/signals.py past_block: its basis per market and
        venue, its index per market, the pair desk's vAMM mids), nothing decided: the warm start's feed (keeper/warm_start.py),
        blocks in increasing order. The same calls as the tick's recording, with the same numbers."""
        for market, venue, basis_bps in past.basis:
            self.history.zscore_then_record(market, venue, past.block_number, basis_bps, past.block_timestamp)
        for market, index_x18 in past.index:
            self.index_history.record_price(market, past.block_number, past.block_timestamp, index_x18)
        if self.pairs is not None:  # the pair desk's price history (pairs_spread)
            self.pairs.observe_past(past.block_timestamp, dict(past.vamm))

    # ------------------------------------------------------------------ stages
    def _pairs_tick(self, snapshot: MarketSnapshot, signals: list[Signal], positions: Mapping[str, Position],
                    risk: RiskView, head: int) -> None:
        """The pair desk's part of the tick (keeper/pairs_desk.py), inside the error boundary."""
        try:
            self.pairs.tick(snapshot, self.strategy_context(snapshot, signals, positions), risk, head)
        except Exception as exc:  # noqa: BLE001 - the boundary, for the pair
            self.boundary.handle(exc, where="pairs", block=snapshot.block_number)

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

    def _observe(self, snapshot: MarketSnapshot, computed: Sequence[Signal | SkippedSignal]) -> None:
        """The block's numbers; what this block could not read (a venue, a market's perp) is NaN,
        never the last block's numbers shown as current."""
        m = self.metrics
        m.block_number.set(snapshot.block_number)
        signalled = {s.market for s in computed if not isinstance(s, SkippedSignal)}
        for name in snapshot.markets:
            if name not in signalled:  # its perp, or every spot venue of it, unread this block
                m.funding_apr.labels(name).set(math.nan)
                for direction in Direction:
                    m.carry_apr.labels(name, direction.value).set(math.nan)
        for s in computed:
            if isinstance(s, SkippedSignal):
                if (s.market, s.spot_venue) not in self._pooled:
                    continue  # no pool there at all: no series, not a NaN one that can never be a number
                m.basis_bps.labels(s.market, s.spot_venue).set(math.nan)
                m.basis_zscore.labels(s.market, s.spot_venue).set(math.nan)
                continue
            m.basis_bps.labels(s.market, s.spot_venue).set(s.basis_bps)
            z = s.basis_zscore  # undefined (basis flat over the window, too few samples): NaN, never a stale z
            m.basis_zscore.labels(s.market, s.spot_venue).set(math.nan if z is None else z)
            m.funding_apr.labels(s.market).set(s.funding_apr)
            m.carry_apr.labels(s.market, Direction.SHORT_PERP.value).set(s.carry_apr_short_perp)
            m.carry_apr.labels(s.market, Direction.LONG_PERP.value).set(s.carry_apr_long_perp)
        account = snapshot.account
        if isinstance(account, PerpAccountState):
            dry_run = self.executor.mode == "dry_run"  # its own (virtual) book only: the chain never holds it
            for market, held in account.markets.items():
                virtual = self.virtual_positions.get(market) if dry_run else None
                base_x18 = (virtual.perp_base_x18 if virtual else 0) if dry_run else held.position_size_x18
                m.position_base.labels(market).set(base_x18 / 10**18)
            m.publish_margin_ratio(account.margin_ratio)
