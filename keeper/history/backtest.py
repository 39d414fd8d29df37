"""`keeper backtest`: the keeper's decision pipeline over a recorded history, with no node.

Per recorded block: the snapshot is rebuilt by the live collector from the recorded bytes
(replay.py), and the engine's `decide_on` runs on it: the same signals, risk, strategies and
planner as `keeper run`, with exact quotes on the recorded pool state. Trades fill at their
predicted fills and are booked by the live journal (books.py). In "dry_run" mode the recorded
account is used as it is and positions are virtual, exactly as `keeper run --dry-run` keeps
them: the decisions are the live dry-run keeper's on the same blocks. What remains open after
the last block is closed on it (an exact close quote), so that the PnL is realized. With
pairs_spread enabled the pair desk runs too, on the paper executor (pair_books.py): its trades
are in the journal's pair tables, its open pair's legs in the paper account.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keeper.basis_history import BasisHistory
from keeper.config import KeeperConfig, with_overrides
from keeper.engine import Engine, load_strategy_slots
from keeper.errors import ConfigError
from keeper.history.basis_answers import AnsweredBasisHistory
from keeper.history.books import PAPER_ACCOUNT, BacktestJournal, NoMetrics, PaperAccount, PaperExecutor
from keeper.history.pair_books import pair_legs
from keeper.history.pipeline import (MIN_PIPELINE_BLOCKS, ReplayedBlock, SnapshotPipeline, pipeline_available,
                                     quiet_collector, serial_blocks)
from keeper.history.replay import replay_collector
from keeper.history.store import BlockRecord, count_blocks, read_blocks, read_meta, require_contiguous
from keeper.journal import Journal
from keeper.pairs_desk import check_pair_markets
from keeper.pairs_journal import pairs_realized_since
from keeper.plan import Planner
from keeper.types import MarketSnapshot, Outcome
from strategies import STRATEGIES

MAX_SAMPLES = 1_500  # report samples: a month of blocks stays quick to open


@dataclass
class BacktestRun:
    """What a backtest leaves: its journal (books), outcomes, samples for the report."""

    config: KeeperConfig
    mode: str
    markets: list[str]
    blocks: int = 0
    first_block: int | None = None
    last_block: int | None = None
    replay_s: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    # (snapshot the tick decided on, keeper state after it): every k-th block and every trade's block
    samples: list[tuple[MarketSnapshot, dict[str, Any]]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    journal: Journal | None = None
    skips: int = 0
    open_at_end: list[str] = field(default_factory=list)
    pairs: bool = False  # the pair desk ran (pairs_spread enabled): its books are the journal's pair tables
    pair_outcomes: list[dict[str, Any]] = field(default_factory=list)  # the desk's outcomes, with their block
    processes: int = 1  # 2: the snapshots and basis statistics came from the worker process (pipeline.py)

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.replay_s if self.replay_s > 0 else 0.0


class RecordedPlanner(Planner):
    """The live planner, with the L1 data fee the chain's GasPriceOracle charged a typical executor
    trade at the recorded block (0 on chains without one) instead of asking a node."""

    recorded_l1_fee_wei = 0

    def l1_fee_wei(self, calldata: bytes) -> int:
        return self.recorded_l1_fee_wei


def backtest_config(settings: KeeperConfig, strategy: str | None, markets: Sequence[str]) -> KeeperConfig:
    unknown = sorted(set(settings.markets.enabled) - set(markets))
    overrides: dict[str, Any] = {"monitoring": {"metrics_port": 0}}
    if unknown:
        overrides["markets"] = {"enabled": [m for m in settings.markets.enabled if m in markets]}
        if not overrides["markets"]["enabled"]:
            raise ConfigError(f"markets.enabled: {unknown} not in the history (it has {list(markets)})")
    if strategy is not None:
        overrides["strategies"] = {"enabled": [strategy]}
    return with_overrides(settings, overrides, where="backtest settings")


def build_engine(config: KeeperConfig, collector: Any, mode: str, journal: Journal, account_address: str | None,
                 history: BasisHistory) -> tuple[Engine, PaperExecutor, BacktestJournal, PaperAccount]:
    slots = load_strategy_slots(config)
    books = BacktestJournal(journal)
    account = PaperAccount(config.account.collateral_usdc)
    planner = RecordedPlanner(config, account_address or PAPER_ACCOUNT, rpc=None)
    executor = PaperExecutor(mode, planner, books, account)
    engine = Engine(config=config, collector=collector, strategies=slots, planner=planner, executor=executor,
                    journal=books, metrics=NoMetrics(),  # type: ignore[arg-type]
                    kill_switch=lambda: False,
                    history=history,
                    clock=lambda: books.now_s)  # the block-age check against the recorded block's time
    return engine, executor, books, account


def run_backtest(path: Path, settings: KeeperConfig, *, strategy: str | None = None, from_block: int | None = None,
                 to_block: int | None = None, mode: str = "backtest", work_dir: Path | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 records: Sequence[BlockRecord] | None = None, pipeline: bool | None = None) -> BacktestRun:
    """Run the keeper over the recorded blocks [from_block, to_block] of `path` (or over
    `records`, already read). The journal is written under work_dir (a temporary directory by
    default) and left open on the result. `pipeline`: rebuild the snapshots in a worker process
    while the engine runs (pipeline.py); None: when the machine has a second core and the range is
    long enough to pay for it; never for `records`."""
    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy}: unknown (known: {', '.join(sorted(STRATEGIES))})")
    meta = read_meta(path)
    if mode == "dry_run" and not meta.get("account"):  # it would decide on no collateral: never a trade
        raise ConfigError(f"--dry-run: history {path} was recorded without an account, and a dry run decides on the "
                          "recorded one (record with --account ADDR or account.executor; or backtest on the paper "
                          "account without --dry-run)")
    markets = [m["name"] for m in meta["sources"]["markets"]]
    config = backtest_config(settings, strategy, markets)
    check_pair_markets(config, markets)
    if records is None:
        require_contiguous(path, from_block, to_block)  # never across a hole in the recording, named
    total = len(records) if records is not None else count_blocks(path, from_block, to_block)
    if pipeline is None:
        pipeline = total >= MIN_PIPELINE_BLOCKS and pipeline_available()
    pipeline = pipeline and records is None
    basis = (config.strategies.basis_window_s, config.strategies.basis_min_samples)
    with SnapshotPipeline(path, meta, from_block, to_block, basis) if pipeline else nullcontext() as worker:
        source = worker if worker is not None else \
            serial_blocks(meta, records if records is not None else read_blocks(path, from_block, to_block))
        return _run(meta, markets, config, mode, work_dir, progress, total, source, answered=worker is not None)


def _run(meta: dict[str, Any], markets: list[str], config: KeeperConfig, mode: str, work_dir: Path | None,
         progress: Callable[[int, int], None] | None, total: int, source: Iterable[ReplayedBlock],
         answered: bool) -> BacktestRun:
    collector, _ = replay_collector(meta)  # the engine reads its sources (the snapshots come from `source`)
    work = work_dir or Path(tempfile.mkdtemp(prefix="keeper-backtest-"))
    journal = Journal(work / "journal.sqlite")
    journal._conn.execute("PRAGMA synchronous = OFF")  # a throwaway journal: no fsync per write
    history = (AnsweredBasisHistory if answered else BasisHistory)(config.strategies.basis_window_s,
                                                                   config.strategies.basis_min_samples)
    engine, executor, books, account = build_engine(config, collector, mode, journal,
                                                    meta.get("account") if mode == "dry_run" else None, history)
    run = BacktestRun(config, mode, markets, journal=journal, meta=meta, processes=2 if answered else 1)
    if engine.pairs is not None:
        collect_pair_outcomes(engine.pairs, run.pair_outcomes)
    stride = max(1, total // MAX_SAMPLES)
    started = time.perf_counter()
    snapshot = None
    with quiet_collector():  # what the set-up left alive, and each batch of snapshots: not gone through by the gc
        for snapshot, l1_fee, answers, signals in source:
            engine.planner.recorded_l1_fee_wei = l1_fee  # type: ignore[attr-defined]
            if answers is not None:
                history.load(snapshot.block_number, answers)  # type: ignore[attr-defined]
            traded = len(run.outcomes)
            snapshot = _step(engine, executor, books, account, snapshot, run, signals)
            if run.blocks % stride == 0 or run.blocks == total - 1 or len(run.outcomes) > traded:
                run.samples.append((snapshot, _keeper_state(engine, books, snapshot)))  # every trade's block too
            run.blocks += 1
            run.first_block = snapshot.block_number if run.first_block is None else run.first_block
            run.last_block = snapshot.block_number
            if progress and run.blocks % 1000 == 0:
                progress(run.blocks, total)
        if snapshot is not None and mode != "dry_run" and (engine.positions() or _pair_legs(engine)):
            engine.kill_switch = lambda: True  # risk "unwind": close what is open on the last block
            snapshot = _step(engine, executor, books, account, snapshot, run)
            run.samples.append((snapshot, _keeper_state(engine, books, snapshot)))
    run.replay_s = time.perf_counter() - started
    books.flush_funding()
    run.skips = books.skips
    run.open_at_end = sorted(engine.positions()) + (["/".join(engine.pairs.markets)] if _pair_legs(engine) else [])
    run.pairs = engine.pairs is not None
    return run


def collect_pair_outcomes(desk: Any, into: list[dict[str, Any]]) -> None:
    """The pair desk's outcomes of each tick, with their block, appended to `into` (the engine only
    logs them): the backtest's, and a live desk's in the tests."""
    tick = desk.tick

    def collecting(snapshot: MarketSnapshot, *args: Any) -> list[dict[str, Any]]:
        outcomes = tick(snapshot, *args)
        into.extend({"block": snapshot.block_number} | o for o in outcomes)
        return outcomes

    desk.tick = collecting


def _pair_legs(engine: Engine) -> dict[str, int]:
    """The open pair's legs (the pair desk's, when pairs_spread is enabled)."""
    return pair_legs(engine.pairs.position()) if engine.pairs is not None else {}


def _step(engine: Engine, executor: PaperExecutor, books: BacktestJournal, account: PaperAccount,
          snapshot: MarketSnapshot, run: BacktestRun, signals: list[Any] | None = None) -> MarketSnapshot:
    books.now_s = snapshot.block_timestamp
    if executor.mode != "dry_run":
        positions, legs = engine.positions(), _pair_legs(engine)
        account.accrue(snapshot, positions, legs)
        snapshot = snapshot.with_account(account.state(snapshot, positions, _pnl_to_date_x18(books), legs))
    executor.snapshot = snapshot
    report = engine.decide_on(snapshot, snapshot.block_number, computed=signals)  # the worker's, or None: computed
    run.outcomes.extend(report.outcomes)
    if engine.fatal is not None:  # caught in the tick (a journal that cannot be written): the run stops, as live
        raise engine.fatal
    return snapshot


def _pnl_to_date_x18(books: BacktestJournal) -> int:
    """Realized PnL (cached by the books between trades): the account value's change so far."""
    return books.realized_total_x18()


def _keeper_state(engine: Engine, books: BacktestJournal, snapshot: MarketSnapshot) -> dict[str, Any]:
    books.flush_funding(write=False)  # written with the next write (or read) of the journal: one transaction
    pnl = books.pnl_total()
    if engine.pairs is not None:  # the pairs closed so far (an open pair's books are its entry, not its value)
        pnl = pnl + pairs_realized_since(books.connection(), 0.0)
    return {"positions": engine.positions(), "pnl": pnl}
