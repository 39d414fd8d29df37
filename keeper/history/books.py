"""The backtest's books: the live journal (keeper/journal.py) fed by a paper executor.

- `PaperExecutor`: a plan's fills are its predicted fills (exact quotes on the recorded pool
  state; the keeper's own impact on later blocks is not modelled). In "dry_run" mode it answers
  like the live dry-run executor (the engine keeps virtual positions); in "backtest" mode the
  trade is included in the block it was planned on and booked by the journal as a live receipt
  is: Perp's fee from the quote, the spot pool's fee, the funding the trade settles, and the
  planner's gas cost (its gas units at that block's base fee plus the priority fee, plus the
  recorded L1 data fee on OP-stack chains). Pair plans: `fill_pair` / `dry_pair` for the pair
  desk (pair_books.py).
- `PaperAccount`: the Perp account the engine reads from a snapshot, built from the books
  (positions, pending funding accrued block by block from the recorded funding premium, account
  value = collateral + the journal's PnL to date), in place of the recorded account.
- `BacktestJournal`: the journal, with what costs a write per block kept in memory: a
  strategy's "no trade" skips are counted, not written; only the latest pending-funding reading of a market is written (before
  its next trade, and at the end), which is all the books use; the daily loss limit counts the
  day by block time. A report sample's readings (every block of a short history) are written
  together, in their order, the next time anything reads or writes the journal (one transaction,
  not one each); the sample's PnL takes them as the position rows' pending funding, which the
  write then checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keeper.errors import FatalError
from keeper.history.pair_books import paper_pair_fill
from keeper.journal import Journal
from keeper.journal.rows import _int, _open_position_row
from keeper.pairs_journal import pairs_realized_since
from keeper.plan import Planner
from keeper.pnl_split import PnlSplit
from keeper.simulate.paper import compute_funding_paid_x18
from keeper.types import (
    USDC_TO_X18,
    MarketSnapshot,
    Outcome,
    PerpAccountMarket,
    PerpAccountState,
    PerpMarketState,
    Position,
    TxPlan,
)

ONE_X18 = 10**18
INITIAL_MARGIN_PPM = 100_000  # Perp v2: 10% initial margin
MAINTENANCE_MARGIN_PPM = 62_500  # 6.25%
PAPER_ACCOUNT = "0x00000000000000000000000000000000000bac7e"
MAX_UNWRITTEN = 256  # report samples' funding readings held before they are written anyway


class _NoMetric:
    def labels(self, *_: Any) -> _NoMetric:
        return self

    def set(self, *_: Any) -> None:
        pass

    inc = observe = set


class NoMetrics:
    """A backtest publishes no Prometheus metrics: every metric the engine touches is a no-op
    (about a tenth of a calm block's time otherwise)."""

    publishes = False  # the engine skips its per-block metric updates

    def __getattr__(self, name: str) -> _NoMetric:
        setattr(self, name, _NO_METRIC)  # found as a plain attribute from then on
        return _NO_METRIC


_NO_METRIC = _NoMetric()


class BacktestJournal:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.now_s = 0
        self.skips = 0
        self._pending: dict[str, tuple[int, int, int]] = {}  # market -> (block, pending x18, timestamp)
        self._unwritten: list[tuple[str, tuple[int, int, int]]] = []  # samples' readings, in order, not written yet
        self._unwritten_latest: dict[str, int] = {}  # market -> the pending funding of its latest unwritten reading
        self._positions: dict[str, Position] | None = None
        self._owners: dict[str, str] | None = None
        self._day = -1
        self._realized_at_day_start = 0.0
        self._realized_x18: int | None = None
        # (journal change count, PnL to date, (market, pending funding) of each open position row it counted)
        self._pnl_total: tuple[int, PnlSplit, dict[int, tuple[str, int]]] | None = None
        self._pending_moved = False  # funding readings written since: the open rows' pending moved
        self._neutral_changes = 0  # journal changes that cannot move the PnL (decision rows)

    def __getattr__(self, name: str) -> Any:  # record_tx_sent, pnl_summary, path, ...: the journal's own
        self.write_readings()  # whoever reads or writes the journal finds the samples' readings there
        return getattr(self.journal, name)

    def connection(self) -> Any:
        """The journal's SQLite connection, with every reading written."""
        self.write_readings()
        return self.journal._conn

    def record_skip(self, *, decision_id: int | None = None, **kwargs: Any) -> None:
        """A skipped intent is booked (its decision row says why); a strategy's per-block "no
        trade here" is counted only."""
        self.skips += 1
        if decision_id is not None:
            self._pnl_neutral(self.journal.record_skip, decision_id=decision_id, **kwargs)

    def record_decision(self, *args: Any, **kwargs: Any) -> int:
        """The journal's decision row; it writes only the decisions table, which no PnL figure
        reads (keeper/journal/reports.py): the cached PnL to date stays valid."""
        return self._pnl_neutral(self.journal.record_decision, *args, **kwargs)

    def record_handover(self, **kwargs: Any) -> int:
        """A hand-over is a decision row too (the PnL to date stays valid), but it changes who owns
        the position: the cached owners are read again."""
        self._owners = None
        return self._pnl_neutral(self.journal.record_handover, **kwargs)

    def _pnl_neutral(self, write: Any, *args: Any, **kwargs: Any) -> int:
        before = self.connection().total_changes
        try:
            return write(*args, **kwargs)  # type: ignore[no-any-return]
        finally:
            self._neutral_changes += self.journal._conn.total_changes - before

    def _pnl_changes(self) -> int:
        """The journal's change count, less the changes no PnL figure depends on."""
        return self.journal._conn.total_changes - self._neutral_changes

    def record_funding(self, market: str, *, block: int, pending_funding_x18: int, timestamp_s: int | None = None) -> None:
        self._pending[market] = (block, pending_funding_x18, timestamp_s or 0)

    def flush_funding(self, market: str | None = None, *, write: bool = True) -> None:
        """The latest readings (of `market`, or of all) go to the journal: now, or with `write=False`
        (a report sample's) the next time the journal is read or written (write_readings)."""
        for name in [market] if market else list(self._pending):
            reading = self._pending.pop(name, None) if name else None
            if reading is not None:
                self._unwritten.append((name, reading))
                self._unwritten_latest[name] = reading[1]
        if write or len(self._unwritten) >= MAX_UNWRITTEN:
            self.write_readings()

    def write_readings(self) -> None:
        """The readings not written yet, in their order, in one transaction; each must leave its
        market's open position row with its pending funding, as pnl_total took it."""
        if not self._unwritten:
            return
        readings = self._unwritten
        before, journal = self._pnl_changes(), self.journal
        try:
            with journal.write_transaction() as db:
                journal.record_fundings([(name, block, pending_x18, timestamp_s)
                                         for name, (block, pending_x18, timestamp_s) in readings])
                for name, (block, pending_x18, _) in {name: reading for name, reading in readings}.items():
                    row = _open_position_row(db, name)
                    if row is not None and (row["funding_pending_block"], _int(row["funding_pending_x18"])) != (block, pending_x18):
                        raise FatalError(f"backtest books: {name}'s open position did not take the funding reading of "
                                         f"block {block} ({pending_x18}); the report's PnL samples would be wrong")
        except BaseException:
            self._pnl_total = None  # the cached PnL counted them: read it from the journal again
            raise
        self._unwritten, self._unwritten_latest = [], {}  # written (kept, in order, when the transaction failed)
        if self._pnl_total is not None and self._pnl_total[0] == before:  # nothing else written since
            self._pnl_total = (self._pnl_changes(), *self._pnl_total[1:])
            self._pending_moved = True

    def record_outcome(self, decision_id: int, outcome: Outcome, **kwargs: Any) -> int:
        if outcome.status == "included":
            self.flush_funding(outcome.plan.intent.market)
        self.write_readings()
        tx_id = self.journal.record_outcome(decision_id, outcome, **kwargs)
        self._positions = self._owners = self._realized_x18 = None
        return tx_id

    def open_positions(self) -> dict[str, Position]:
        if self._positions is None:
            self.write_readings()
            self._positions = self.journal.open_positions()
        return dict(self._positions)

    def position_owners(self) -> dict[str, str]:
        if self._owners is None:
            self.write_readings()
            self._owners = self.journal.position_owners()
        return dict(self._owners)

    def realized_today_usd(self) -> float:
        """Realized PnL since the start of the block's UTC day (the live journal counts by
        wall-clock day, which in a backtest would be all of it)."""
        day = self.now_s // 86_400
        if day != self._day:
            self._day, self._realized_at_day_start = day, self._realized_total_usd()
        return self._realized_total_usd() - self._realized_at_day_start

    def _realized_total_usd(self) -> float:
        return self.realized_total_x18() / ONE_X18

    def pnl_total(self) -> PnlSplit:
        """The journal's PnL to date (pnl_summary().total), read again only when the journal was
        written since (sqlite's change count moved): a report sample per block otherwise re-ran
        the same queries, 10% of a 2,000-block driven backtest (cProfile, 2026-11-30); decision
        rows (record_decision, a planned decision skipped) do not count as writes. When the
        only writes since were funding readings (flush_funding), only the open positions' pending
        funding moved: the total moves by its change (the split's funding is minus settled plus
        pending, exactly), read from those rows alone, or, for a reading not written yet, from
        the reading itself (write_readings checks that the row takes it)."""
        changes = self._pnl_changes()
        if self._pnl_total is not None and self._pnl_total[0] == changes:
            if self._pending_moved or self._unwritten:
                _, total, counted = self._pnl_total
                latest = self._unwritten_latest  # (kept as they come: up to MAX_UNWRITTEN readings, not gone through per sample)
                now = {row_id: (market, latest[market] if market in latest else
                                _pending_of(self.journal._conn, row_id) if self._pending_moved else pending)
                       for row_id, (market, pending) in counted.items()}
                moved = sum(counted[row_id][1] - now[row_id][1] for row_id in counted)
                total = PnlSplit(total.funding_x18 + moved, total.convergence_x18, total.fees_x18, total.gas_x18,
                                 total.total_x18 + moved)
                self._pnl_total, self._pending_moved = (changes, total, now), False
            return self._pnl_total[1]
        db = self.connection()
        summary = self.journal.pnl_summary()
        counted = {}
        for market in summary.markets:  # the open rows pnl_summary counted, as it finds them
            row = _open_position_row(db, market)
            if row is not None:
                counted[row["id"]] = (market, _pending_of(db, row["id"]))
        self._pnl_total, self._pending_moved = (self._pnl_changes(), summary.total, counted), False
        return summary.total

    def realized_total_x18(self) -> int:
        """Realized PnL of the closed positions and closed pairs (read again only after a trade)."""
        if self._realized_x18 is None:
            pairs = pairs_realized_since(self.connection(), 0.0).total_x18
            self._realized_x18 = self.journal.pnl_summary().realized.total_x18 + pairs
        return self._realized_x18


def _pending_of(db: Any, position_id: int) -> int:
    return _int(db.execute("SELECT funding_pending_x18 FROM positions WHERE id = ?", (position_id,)).fetchone()[0])


@dataclass
class PaperAccount:
    collateral_usdc: float
    pending_x18: dict[str, int] = field(default_factory=dict)
    _previous: MarketSnapshot | None = None

    def accrue(self, snapshot: MarketSnapshot, positions: dict[str, Position], legs: Mapping[str, int] = {}) -> None:
        """Funding each open position (and each leg of an open pair: market -> base x18) paid since
        the previous block, at the previous block's premium."""
        previous, self._previous = self._previous, snapshot
        if previous is None:
            return
        dt_s = snapshot.block_timestamp - previous.block_timestamp
        bases = {market: position.perp_base_x18 for market, position in positions.items()} | dict(legs)
        for market, base_x18 in bases.items():
            view = previous.markets.get(market)
            if view is not None and isinstance(view.perp, PerpMarketState) and dt_s > 0:
                paid = compute_funding_paid_x18(base_x18, view.perp.funding_premium_x18, dt_s)
                self.pending_x18[market] = self.pending_x18.get(market, 0) + paid

    def settle(self, market: str) -> int:
        return self.pending_x18.pop(market, 0)

    def state(self, snapshot: MarketSnapshot, positions: dict[str, Position], pnl_to_date_x18: int,
              legs: Mapping[str, int] = {}) -> PerpAccountState:
        markets, position_value = {}, 0
        bases = {market: position.perp_base_x18 for market, position in positions.items()} | dict(legs)
        for market, base_x18 in bases.items():
            view = snapshot.markets.get(market)
            mark = view.perp.mark_price_x18 if view is not None and isinstance(view.perp, PerpMarketState) else 0
            position_value += abs(base_x18) * mark // ONE_X18
            markets[market] = PerpAccountMarket(base_x18, 0, self.pending_x18.get(market, 0))
        value = int(self.collateral_usdc * 10**6) * USDC_TO_X18 + pnl_to_date_x18
        free_x18 = max(0, value - position_value * INITIAL_MARGIN_PPM // 10**6)
        return PerpAccountState(PAPER_ACCOUNT, value, free_x18 // USDC_TO_X18, position_value,
                                position_value * MAINTENANCE_MARGIN_PPM // 10**6, markets)


class PaperExecutor:
    def __init__(self, mode: str, planner: Planner, books: BacktestJournal, account: PaperAccount) -> None:
        self.mode = mode  # "dry_run" or "backtest"
        self.planner = planner
        self.books = books
        self.account = account
        self.snapshot: MarketSnapshot | None = None
        self.trades = 0

    def fill_pair(self, plan: Any, snapshot: MarketSnapshot) -> tuple[Any, Any, int, int]:
        """A pair plan's paper fill for the pair desk (keeper/history/pair_books.py); in dry-run mode
        nothing settles (the pair is virtual)."""
        intent = plan.intent
        settled = 0 if self.mode == "dry_run" else self.account.settle(intent.market_a) + self.account.settle(intent.market_b)
        self.trades += 1
        self.books._realized_x18 = None  # the pair desk books it: the realized PnL is read again
        return paper_pair_fill(plan, snapshot, settled, self.planner.recorded_l1_fee_wei, self.trades)  # type: ignore[attr-defined]

    def dry_pair(self, plan: Any, snapshot: MarketSnapshot) -> tuple[Any, str]:
        """A pair open in dry-run mode: (its predicted fills, "") as the live dry run's eth_call
        returns them, or (None, why) where that call reverts on the recorded account: an open
        needs both markets flat. (A dry run's closes never reach here: the desk prices them.)"""
        intent, account = plan.intent, snapshot.account
        held = [account.markets.get(m) if isinstance(account, PerpAccountState) else None
                for m in (intent.market_a, intent.market_b)]
        sizes = [h.position_size_x18 if h is not None else 0 for h in held]
        if any(sizes):
            return None, f"dry run: the executor holds {intent.market_a}/{intent.market_b} positions {sizes}: not flat"
        return self.fill_pair(plan, snapshot)[1], ""

    def execute(self, plan: TxPlan, on_signed: Any = None) -> Outcome:
        """The executor's interface (keeper/execute.py); a paper trade signs nothing (`on_signed`
        is never called)."""
        intent, snapshot = plan.intent, self.snapshot
        assert snapshot is not None
        fills = plan.predicted
        detail = (f"paper {intent.kind} {intent.market}: perp base {fills.perp_base_x18}, spot {fills.spot_raw}, "
                  f"net quote {fills.net_quote_x18}")
        if self.mode == "dry_run":  # as the live dry run: the predicted fills (eth_call's for an open, equal)
            return Outcome(plan, "dry_run", None, None, 0, 0, fills, detail)
        position = self.books.open_positions().get(intent.market)
        quote = self.planner.quote(intent, snapshot, position)
        self.trades += 1
        before = position.perp_base_x18 if position else 0
        return Outcome(plan, "included", f"paper-{snapshot.block_number}-{self.trades}", snapshot.block_number,
                       plan.gas_limit, plan.gas_cost_wei, fills, detail,
                       block_timestamp_s=snapshot.block_timestamp, position_base_after_x18=before + fills.perp_base_x18,
                       perp_fee_x18=quote.perp.fee_x18, settled_funding_x18=self.account.settle(intent.market))
