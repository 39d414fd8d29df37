"""Pair trades in the backtest, on a recorded devnet history where the ETH/BTC spread opens and
reverts (the moves of scenarios/pair_spread_revert.toml), ticked by a live dry-run keeper with
pairs_spread enabled: the backtest books the pair trades in the pairs journal at their predicted
fills to the wei, its PnL is the sum of the legs' fills, funding and gas, the live dry-run desk and
the backtest's dry-run desk trade the same pairs on the same blocks, and with pairs_spread off the
backtest books none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from keeper.chain.rpc import JsonRpc
from keeper.config import with_overrides
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.history.backtest import collect_pair_outcomes, run_backtest
from keeper.history.record import record_history
from keeper.history.report import build_report, summary
from keeper.launch import build_runtime
from keeper.pairs_journal import PairJournal, pair_split, pairs_pnl
from keeper.plan import PRIORITY_FEE_WEI
from keeper.simulate.paper import compute_funding_paid_x18
from keeper.venues.gas import pair_typical_gas_units

from .test_history import live_settings

pytestmark = pytest.mark.integration
STEPS = 40
# (from step, to step, pct per step, markets): scenarios/pair_spread_revert.toml's index moves
MOVES = [(1, 6, 0.005, ("ETH", "BTC")), (7, 12, -0.005, ("ETH", "BTC")), (13, 16, 0.004, ("ETH", "BTC")),
         (17, 20, 0.006, ("ETH",)), (24, 27, -0.006, ("ETH",)), (30, 35, -0.003, ("ETH", "BTC"))]
PAIRS = {"enabled": ["pairs_spread"],
         "params": {"pairs_spread": {"window_s": 1500.0, "min_samples": 15, "entry_z": 2.0, "exit_z": 1.0,
                                     "notional_usd": 10000.0, "hold_s": 900.0}}}


@pytest.fixture(scope="module")
def spread(devnet_world, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A live dry-run keeper (pairs_spread only) ticking on every block while the spread opens and reverts."""
    work = tmp_path_factory.mktemp("history-pairs")
    rpc = devnet_world.node.rpc
    snapshot_id = rpc.call("evm_snapshot")
    settings = live_settings(devnet_world, work, strategies=PAIRS)
    runtime = build_runtime(settings, dry_run=True)
    live: list[dict[str, Any]] = []
    collect_pair_outcomes(runtime.engine.pairs, live)
    driver = MarketActivity(JsonRpc(devnet_world.node.rpc_url), devnet_world.manifest,
                            ActivityConfig(seed=7, step_s=60, index_vol_daily=0.01, premium_vol_daily=0.003,
                                           premium_half_life_s=600, spot_noise=0.0002))
    ticked = []
    for step in range(1, STEPS + 1):
        for first, last, pct, markets in MOVES:
            if first <= step <= last:
                for m in markets:
                    driver.set_index(m, driver.markets[m].answer / 10**8 * (1 + pct))
        driver.step()
        report = runtime.engine.tick()
        assert report is not None
        ticked.append(report.block_number)
    out = work / "history"
    record_history(settings, rpc, out, from_block=ticked[0], to_block=ticked[-1], follow=False,
                   account=runtime.executor_address)
    yield settings, live, ticked, out, work
    runtime.close()
    rpc.call("evm_revert", [snapshot_id])


def test_backtest_books_the_pair_trades_at_their_predicted_fills(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _, ticked, out, _ = spread
    run = run_backtest(out, settings, work_dir=tmp_path / "bt")
    book = PairJournal(run.journal)
    trades = book.trades()
    assert [t["kind"] for t in trades][:2] == ["open", "close"], trades
    assert run.open_at_end == []  # a pair still open is closed on the last block
    for t in trades:
        assert t["status"] == "included" and t["fills"] == t["predicted"]  # predicted = booked, to the wei
        assert t["gas_used"] == pair_typical_gas_units(t["kind"])
    # the PnL identity: every leg's quote (Perp's fee in) - funding settled - gas = the reported PnL
    rows = book.rows()
    assert rows and all(r["status"] == "closed" for r in rows)
    fills = [{k: int(v) for k, v in json.loads(t["fills"]).items()} for t in trades]
    quote = sum(f["perp_quote_x18_a"] + f["perp_quote_x18_b"] for f in fills)
    settled = sum(int(t["settled_funding_x18"]) for t in trades)
    gas = sum(int(t["gas_x18"]) for t in trades)
    assert gas > 0 and sum(int(t["perp_fee_x18"]) for t in trades) > 0
    assert all(f["position_base_x18_after_a"] == 0 == f["position_base_x18_after_b"] for f in fills[1::2])
    total = pairs_pnl(run.journal)
    assert total.total_x18 == quote - settled - gas == sum(pair_split(r).total_x18 for r in rows)
    # funding on both legs, from the recorded premium of each block the pair was held over
    by_block = {snap.block_number: snap for snap, _ in run.samples}  # every block: fewer than MAX_SAMPLES
    opened, closed = trades[0]["block"], trades[1]["block"]
    legs = {"ETH": fills[0]["position_base_x18_after_a"], "BTC": fills[0]["position_base_x18_after_b"]}
    expected = sum(compute_funding_paid_x18(base, by_block[b - 1].markets[m].perp.funding_premium_x18,
                                            by_block[b].block_timestamp - by_block[b - 1].block_timestamp)
                   for b in range(opened + 1, closed + 1) for m, base in legs.items())
    assert int(trades[1]["settled_funding_x18"]) == expected != 0 and int(trades[0]["settled_funding_x18"]) == 0
    # gas: the pair gas table's typical row at the recorded base fee plus the tip (no L1 fee on the devnet)
    for t in trades:
        assert int(t["fee_paid_wei"]) == pair_typical_gas_units(t["kind"]) * (by_block[t["block"]].base_fee_wei
                                                                              + PRIORITY_FEE_WEI)
    report = build_report(run, out)
    brief = summary(report)
    assert brief["pair_trades"] == len(trades) and brief["trades"] == len(trades)  # pairs_spread only: no basis trade
    assert brief["keeper_usd"] == round(total.total_x18 / 10**18, 6) == brief["pair_usd"]
    assert any(t.get("pair") for t in report["keeper"]["round_trips"])
    assert report["comparison"]["optimum_dominates"], report["comparison"]["violations"]


def test_backtest_dry_run_desk_trades_the_live_dry_run_desks_pairs(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, live, ticked, out, _ = spread
    run = run_backtest(out, settings, mode="dry_run", work_dir=tmp_path / "bt")
    assert [o["kind"] for o in live][:2] == ["open", "close"], live
    # the live dry run's pair is virtual: its close is priced by the exact quote (an eth_call would
    # revert: the executor holds no pair), and the virtual pair is gone after it
    assert live[0]["status"] == "dry_run" and live[0]["fills_equal_predicted"] is True
    assert live[1]["status"] == "dry_run" and live[1]["fills_equal_predicted"] is True
    assert "simulation_reverted" not in {o["status"] for o in live}
    assert run.pair_outcomes == live  # same blocks, kinds, statuses; the live fills from eth_call = predicted


def test_backtest_with_pairs_spread_off_books_no_pair(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _, _, out, _ = spread
    off = with_overrides(settings, {"strategies": {"enabled": ["basis_convergence", "funding_carry"]}}, where="test")
    run = run_backtest(out, off, work_dir=tmp_path / "bt")
    assert PairJournal(run.journal).trades() == [] and run.pair_outcomes == [] and not run.pairs
    assert summary(build_report(run, out))["pair_trades"] == 0


def test_a_pair_open_at_the_end_is_closed_on_the_last_block(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, live, _, out, _ = spread
    opened = live[0]["block"]
    run = run_backtest(out, settings, to_block=opened + 2, work_dir=tmp_path / "bt")
    trades = PairJournal(run.journal).trades()
    assert [(t["kind"], t["block"]) for t in trades] == [("open", opened), ("close", opened + 2)]
    assert trades[1]["reason"].startswith("risk: kill switch") and trades[1]["fills"] == trades[1]["predicted"]
    assert run.open_at_end == [] and PairJournal(run.journal).open_position() is None
    assert summary(build_report(run, out))["keeper_usd"] == round(pairs_pnl(run.journal).total_x18 / 10**18, 6)


def test_backtest_cli_json_includes_the_pair_trades(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _, _, out, work = spread
    params = PAIRS["params"]["pairs_spread"]
    (tmp_path / "keeper.toml").write_text(
        f'[chain]\nmanifest = "{work / "manifest.json"}"\n[strategies]\nenabled = ["pairs_spread"]\n'
        "[strategies.params.pairs_spread]\n" + "".join(f"{k} = {v}\n" for k, v in params.items()))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    result = subprocess.run([sys.executable, "-m", "keeper", "backtest", str(out), "-c", "keeper.toml", "--json",
                             "--out", "bt"], capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    brief = json.loads(result.stdout)
    run = run_backtest(out, settings, work_dir=tmp_path / "again")
    assert brief["pair_trades"] == len(PairJournal(run.journal).trades()) >= 2
    assert brief["keeper_usd"] == brief["pair_usd"] == round(pairs_pnl(run.journal).total_x18 / 10**18, 6)


def test_a_sweep_job_scores_the_pair_trades(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.history.sweep import Job, run_job

    settings, live, ticked, out, _ = spread
    params = (("strategies.params.pairs_spread.entry_z", 2.0),)
    saved = structlog.get_config()  # a job quiets the logging of the worker process it runs in: this one's is restored
    try:
        result = run_job(Job(str(out), settings.model_dump(), params, 0, ticked[0], ticked[-1]))
    finally:
        structlog.configure(**saved)
    run = run_backtest(out, settings, work_dir=tmp_path)
    assert result.trades == len(PairJournal(run.journal).trades()) >= 2
    assert result.pnl_usd == pairs_pnl(run.journal).total_x18 / 10**18 != 0



def test_with_the_basis_strategies_too_the_pair_legs_stay_out_of_the_basis_books(spread, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, live, _, out, _ = spread
    both = with_overrides(settings, {"strategies": {"enabled": ["basis_convergence", "funding_carry", "pairs_spread"]}},
                          where="test")
    run = run_backtest(out, both, work_dir=tmp_path / "bt")
    trades = PairJournal(run.journal).trades()
    assert [(t["kind"], t["status"]) for t in trades] == [("open", "included"), ("close", "included")]
    assert trades[0]["block"] == live[0]["block"]
    # the paper account shows the pair's legs (as the chain would); no basis position adopts them
    assert run.journal._conn.execute("SELECT COUNT(*) FROM positions").fetchone()[0] == 0


def test_pipelined_backtest_books_the_serial_pair_trades(spread, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the pair desk, the snapshots from the worker process (batches of 4): the same pair
    outcomes block for block and the same journal, row for row, as the serial backtest."""
    import keeper.history.pipeline as pipeline

    from .test_history import _journal_rows

    monkeypatch.setattr(pipeline, "BATCH_BLOCKS", 4)
    settings, _, ticked, out, _ = spread
    serial = run_backtest(out, settings, work_dir=tmp_path / "serial", pipeline=False)
    piped = run_backtest(out, settings, work_dir=tmp_path / "piped", pipeline=True)
    assert any(o["status"] == "included" for o in serial.pair_outcomes), "the spread makes the desk trade"
    assert piped.pair_outcomes == serial.pair_outcomes
    assert _journal_rows(piped.journal) == _journal_rows(serial.journal)
