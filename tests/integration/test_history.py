"""History on the devnet's own driven history: record the blocks a live dry-run keeper ticked on,
backtest them in dry-run, and check that the backtest took the same decisions (same intents,
same predicted fills, fills equal to the chain's)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from keeper.chain.rpc import JsonRpc
from keeper.config import KeeperConfig, load_config, with_overrides
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.history.backtest import run_backtest
from keeper.history.record import record_history
from keeper.history.store import read_blocks
from keeper.journal import Journal
from keeper.launch import build_runtime

pytestmark = pytest.mark.integration
WARMUP, SHOCKED = 30, 24


def _decisions(journal: Journal) -> list[tuple]:
    rows = journal._conn.execute(
        "SELECT d.block, d.strategy, d.kind, d.market, d.direction, d.spot_venue, d.perp_base_x18, d.reason, "
        "d.status, d.status_reason IS NULL, t.predicted_perp_base_x18, t.predicted_perp_quote_x18, t.predicted_spot_raw, "
        "t.predicted_usdc_raw, t.predicted_residual_base_x18, t.predicted_net_quote_x18 "
        "FROM decisions d LEFT JOIN transactions t ON t.decision_id = d.id WHERE d.kind IS NOT NULL ORDER BY d.id").fetchall()
    return [tuple(r) for r in rows]


_GAS = re.compile(r"- gas ([\d,.]+)")
_GAS_DERIVED = re.compile(r"(expected net \$|closed now \$|- gas )[-\d,.]+")


def _without_gas(row: tuple) -> tuple:
    """A decision row with the figures gas moves (the gas, the expected net, the round trip) blanked in its reason."""
    return row[:7] + (_GAS_DERIVED.sub(r"\1…", row[7] or ""),) + row[8:]


def live_settings(devnet_world, work: Path, **sections: Any) -> KeeperConfig:  # type: ignore[no-untyped-def]
    """The live dry-run keeper's settings on the devnet (its manifest written under work)."""
    manifest = work / "manifest.json"
    devnet_world.manifest.write(manifest)
    return load_config(None, environ={}, overrides={
        "chain": {"rpc_url": devnet_world.node.rpc_url, "manifest": manifest},
        "monitoring": {"journal": work / "live.sqlite", "log_level": "WARNING"}, **sections})


@pytest.fixture(scope="module")
def driven(devnet_world, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A live dry-run keeper ticking on every block of a driven devnet, with premium shocks."""
    work = tmp_path_factory.mktemp("history")
    rpc = devnet_world.node.rpc
    snapshot_id = rpc.call("evm_snapshot")
    settings = live_settings(devnet_world, work, strategies={"warm_start_blocks": 0})  # blind, as the backtest starts
    runtime = build_runtime(settings, dry_run=True)
    driver = MarketActivity(JsonRpc(devnet_world.node.rpc_url), devnet_world.manifest,
                            ActivityConfig(seed=5, step_s=60, premium_vol_daily=0.0))
    ticked = []
    for i in range(WARMUP + SHOCKED):
        if i >= WARMUP:
            market = ("ETH", "BTC")[i % 2]
            driver.shock_premium(market, (0.03, -0.025, 0.0)[(i // 2) % 3])
        driver.step()
        report = runtime.engine.tick()
        assert report is not None
        ticked.append(report.block_number)
    out = work / "history"
    written, _ = record_history(settings, rpc, out, from_block=ticked[0], to_block=ticked[-1], follow=False,
                                account=runtime.executor_address)
    yield settings, runtime, ticked, out, written, work
    runtime.close()
    rpc.call("evm_revert", [snapshot_id])


def test_record_writes_every_ticked_block_with_header_and_reads(driven) -> None:  # type: ignore[no-untyped-def]
    settings, runtime, ticked, out, written, _ = driven
    records = list(read_blocks(out))
    assert written == len(ticked)
    assert [r.block for r in records] == ticked
    assert all(len(r.reads) >= 2 and len(r.hash) == 32 for r in records)
    assert all(b.parent_hash == a.hash for a, b in zip(records, records[1:]))


def test_backtest_dry_run_takes_the_live_dry_run_keepers_decisions(driven) -> None:  # type: ignore[no-untyped-def]
    settings, runtime, ticked, out, _, work = driven
    run = run_backtest(out, settings, mode="dry_run", work_dir=work / "bt")
    live = _decisions(runtime.journal)
    replayed = _decisions(run.journal)
    assert run.blocks == len(ticked)
    assert any(row[2] == "open" for row in live), "the shocks must make the live keeper want to trade"
    # the same decisions; only the gas figures differ: the live keeper prices gas at the tip the
    # chain pays (eth_feeHistory), the backtest has no fee history and keeps the constant tip
    live_gas = [float(g.replace(",", "")) for row in live for g in _GAS.findall(row[7] or "")]
    replayed_gas = [float(g.replace(",", "")) for row in replayed for g in _GAS.findall(row[7] or "")]
    assert len(live_gas) == len(replayed_gas) and all(a >= b for a, b in zip(live_gas, replayed_gas))
    for mine, theirs in zip(map(_without_gas, replayed), map(_without_gas, live)):
        assert mine == theirs, [(i, a, b) for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    assert len(replayed) == len(live)
    # the live dry run's fills came from eth_call on the chain; the backtest's are the predicted ones
    rows = runtime.journal._conn.execute(
        "SELECT detail, predicted_perp_base_x18, predicted_spot_raw, predicted_net_quote_x18 FROM transactions "
        "WHERE status = 'dry_run' ORDER BY id").fetchall()
    assert rows
    for detail, *predicted in rows:
        assert re.findall(r"-?\d+", detail.split(":", 1)[1]) == [str(v) for v in predicted], detail


def test_record_of_a_block_the_node_no_longer_keeps_names_it(driven, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.history.record import StateUnavailable

    settings, runtime, ticked, out, _, _ = driven
    head = runtime.rpc.block_number()
    pruned = head - 200  # anvil keeps the states of its last 128 blocks (a block before 0 is no pruned one)
    assert pruned > 0
    with pytest.raises(StateUnavailable, match=f"block {pruned} "):
        record_history(settings, runtime.rpc, tmp_path / "h", from_block=pruned, to_block=head, follow=False,
                       account=None)
    assert not (tmp_path / "h").exists()  # a new --out that got no block is not left behind, empty


def _sources_for(settings):  # type: ignore[no-untyped-def]
    from keeper.collect import Sources
    from keeper.devnet.manifest import DevnetManifest

    return lambda rpc: Sources.from_manifest(DevnetManifest.read(settings.chain.manifest))


def test_replay_check_reproduces_every_block_of_the_origin(driven, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.history.forkreplay import run_replay

    settings, runtime, ticked, _, _, _ = driven
    report = run_replay(settings, fork_url=runtime.rpc.url, from_block=ticked[0] - 1, to_block=ticked[-1], check=True,
                        out_dir=tmp_path, sources_for=_sources_for(settings))
    origin_txs = sum(len(runtime.rpc.call("eth_getBlockByNumber", [hex(b), False])["transactions"]) for b in ticked)
    assert [b.origin_block for b in report.blocks] == ticked
    assert [b.fork_block for b in report.blocks] == ticked
    assert report.blocks_equal == len(ticked), [b.difference for b in report.blocks if not b.snapshot_equal]
    assert report.replayed_txs == origin_txs > 0
    assert not report.reverted and not report.logs_changed and not report.unreplayable
    assert json.loads((tmp_path / "replay.json").read_text())["blocks_equal"] == len(ticked)


def test_replay_with_the_keeper_trading_between_the_origins_blocks(driven, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.history.forkreplay import run_replay

    settings, runtime, ticked, _, _, _ = driven
    settings = with_overrides(settings, {"monitoring": {"log_level": "INFO"}})
    report = run_replay(settings, fork_url=runtime.rpc.url, from_block=ticked[0] - 1, to_block=ticked[-1], check=False,
                        out_dir=tmp_path, sources_for=_sources_for(settings))
    trades = report.keeper["trades"]
    assert any(t["kind"] == "open" for t in trades), "the shocks make the keeper trade on the fork"
    # the keeper's log is beside replay.json, as `keeper simulate` leaves it: its trades can be reconstructed
    logged = [json.loads(line) for line in (tmp_path / "keeper.log").read_text().splitlines()]
    outcomes = [e["tx_hash"] for e in logged if e["event"] == "tx.outcome" and e["status"] == "included"]
    assert {e["event"] for e in logged} >= {"keeper.started", "tick", "tx.planned"} and len(outcomes) == len(trades)
    # and it ends as `keeper simulate`'s does: the replay's end, then stopped, with the ticks the keeper ran
    ticks = sum(1 for e in logged if e["event"] == "tick")
    assert [(e["event"], e.get("reason"), e.get("steps"), e["ticks"]) for e in logged[-2:]] == [
        ("keeper.stopping", "replay_end", len(ticked), ticks), ("keeper.stopped", None, None, ticks)]
    assert report.keeper["open_after"] == []
    # its own blocks sit between the origin's: the fork numbers run ahead of the origin's
    assert report.blocks[-1].fork_block > report.blocks[-1].origin_block
    # every origin transaction was replayed; the ones its trades changed are counted, not lost
    assert report.replayed_txs == sum(b.transactions for b in report.blocks)
    assert len(report.logs_changed) + len(report.reverted) <= report.replayed_txs


def test_backtest_books_paper_trades_like_the_live_journal(driven, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.history.report import build_report, summary, write_backtest_report

    settings, _, ticked, out, _, _ = driven
    run = run_backtest(out, settings, work_dir=tmp_path / "bt")
    included = [o for o in run.outcomes if o.status == "included"]
    assert included, "the shocks make the backtest trade"
    assert all(o.fills == o.plan.predicted for o in included)
    assert run.open_at_end == []  # closed on the last block
    pnl = run.journal.pnl_summary().total
    assert pnl.total_x18 == pnl.funding_x18 + pnl.convergence_x18 - pnl.fees_x18 - pnl.gas_x18
    assert pnl.gas_x18 > 0 and pnl.fees_x18 > 0
    report = build_report(run, out)
    brief = summary(report)
    assert brief["blocks"] == len(ticked) and brief["trades"] == len(included)
    assert brief["keeper_usd"] == round(pnl.total_x18 / 10**18, 6)
    assert report["comparison"]["optimum_dominates"], report["comparison"]["violations"]
    assert report["backtest"]["impact_modelled"] is False
    json_path, html_path = write_backtest_report(report, tmp_path / "report")
    page = html_path.read_text()
    assert "own impact on later blocks is not modelled" in page
    assert 'src="http' not in page and 'href="http' not in page and "<script" not in page  # one self-contained file
    assert json.loads(json_path.read_text())["backtest"]["blocks"] == len(ticked)


def test_sweep_walk_forward_on_every_core(driven) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    from keeper.history.sweep import run_sweep

    settings, _, ticked, out, _, _ = driven
    result = run_sweep(out, settings, ["basis_convergence.entry_z=1.5,50", "risk.exit_cooldown_s=150"], folds=2,
                       workers=2, strategy="basis_convergence")
    assert result["jobs"] == 2 * 3 and result["executor"] == "2 processes"
    assert [w[0] for w in result["windows"]][0] == ticked[0] and result["windows"][-1][1] == ticked[-1]
    sets = {s["params"]["strategies.params.basis_convergence.entry_z"]: s for s in result["parameter_sets"]}
    # entry_z = 50 never opens a basis position: nothing in or out of sample
    assert sets[50]["in_sample_usd"] == 0 and sets[50]["out_of_sample_usd"] == 0
    assert len(result["walk_forward"]) == 2
    for fold in result["walk_forward"]:  # fit on the window before, scored on the next
        i = fold["fold"]
        best = max(sets.values(), key=lambda s: s["by_window_usd"][i - 1])
        assert fold["chosen"] == best["params"] and fold["in_sample_usd"] == best["by_window_usd"][i - 1]
        assert fold["out_of_sample_usd"] == best["by_window_usd"][i]
    fragment = tomllib.loads(result["toml"])
    assert fragment["risk"]["exit_cooldown_s"] == 150
    assert fragment["strategies"]["params"]["basis_convergence"]["entry_z"] in (1.5, 50)


def test_sweep_on_a_dask_cluster_gives_the_local_result(driven) -> None:  # type: ignore[no-untyped-def]
    from distributed import LocalCluster

    from keeper.history.sweep import run_sweep

    settings, _, _, out, _, _ = driven
    specs = ["basis_convergence.entry_z=1.5,3", "risk.exit_cooldown_s=150"]
    local = run_sweep(out, settings, specs, folds=1, workers=2)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = run_sweep(out, settings, specs, folds=1, dask_address=cluster.scheduler_address)
    assert remote["executor"] == f"dask {cluster.scheduler_address}"
    for key in ("parameter_sets", "walk_forward", "chosen", "toml"):
        assert remote[key] == local[key]


def test_record_keeps_the_l1_fee_inputs_where_the_chain_has_them(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.chain.fees import GAS_PRICE_ORACLE, build_get_l1_fee_calldata
    from keeper.simulate.paper import PAPER_TX_BYTES

    # Given an oracle at the OP-stack predeploy that answers 16 x the calldata size
    devnet.rpc.call("anvil_setCode", [GAS_PRICE_ORACLE, "0x3660100260005260206000f3"])
    for _ in range(3):
        devnet.rpc.call("evm_mine", [])
    head = devnet.rpc.block_number()
    devnet.manifest.write(tmp_path / "manifest.json")
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": tmp_path / "manifest.json"}})
    record_history(settings, devnet.rpc, tmp_path / "h", from_block=head - 2, to_block=head, follow=False, account=None)
    fee = 16 * len(build_get_l1_fee_calldata(PAPER_TX_BYTES))
    assert [r.l1 for r in read_blocks(tmp_path / "h")] == [(64, 64, 64, 64, fee)] * 3


def test_report_samples_are_bounded_but_keep_every_trade_block(driven, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import keeper.history.backtest as backtest

    settings, _, ticked, out, _, _ = driven
    monkeypatch.setattr(backtest, "MAX_SAMPLES", 5)  # as a month of blocks would be against 1,500
    run = run_backtest(out, settings, work_dir=tmp_path / "bt")
    sampled = [s.block_number for s, _ in run.samples]
    traded = {o.plan.intent.created_block for o in run.outcomes}
    assert run.blocks == len(ticked) and len(sampled) <= 5 + 1 + 2 * len(traded) + 1
    assert traded and traded <= set(sampled)


def test_incremental_basis_statistics_change_no_decision(driven, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The basis history's incremental statistics (keeper/basis_window.py) against the brute-force
    recomputation of every window: the same decisions, the same predicted fills and fills, the
    same PnL to the wei."""
    import keeper.history.backtest as backtest
    from tests.unit.test_basis_window import BruteForceHistory

    settings, _, _, out, _, _ = driven
    fast = run_backtest(out, settings, work_dir=tmp_path / "fast")
    monkeypatch.setattr(backtest, "BasisHistory", BruteForceHistory)
    plain = run_backtest(out, settings, work_dir=tmp_path / "plain")
    assert any(o.status == "included" for o in plain.outcomes)
    assert _decisions(fast.journal) == _decisions(plain.journal)
    assert [(o.status, o.plan.intent, o.plan.predicted, o.fills) for o in fast.outcomes] == \
        [(o.status, o.plan.intent, o.plan.predicted, o.fills) for o in plain.outcomes]
    assert fast.journal.pnl_summary().total == plain.journal.pnl_summary().total
    assert fast.skips == plain.skips


def _journal_rows(journal: Journal) -> dict[str, list[tuple]]:
    """Every row of every journal table, with the wall-clock times blanked (the backtest's rows carry
    the time they were written)."""
    db = journal._conn
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    rows = {}
    for table in tables:
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        rows[table] = [tuple(None if c.endswith("_at_s") else v for c, v in zip(columns, r))
                       for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")
                       if not str(r[0]).endswith("_at_s")]  # the meta table's creation time
    return rows


@pytest.mark.parametrize("mode", ["backtest", "dry_run"])
def test_pipelined_backtest_is_the_serial_backtest(driven, tmp_path: Path, monkeypatch, mode: str) -> None:  # type: ignore[no-untyped-def]
    """The snapshots and basis statistics from the worker process (keeper/history/pipeline.py), in
    batches of 5 through a pipe of 4 KiB (the worker waits for the engine): the same journal, row
    for row, the same outcomes and report samples as the serial backtest's."""
    import keeper.history.pipeline as pipeline

    monkeypatch.setattr(pipeline, "BATCH_BLOCKS", 5)
    monkeypatch.setattr(pipeline, "PIPE_BYTES", 4096)
    settings, _, ticked, out, _, _ = driven
    serial = run_backtest(out, settings, mode=mode, work_dir=tmp_path / "serial", pipeline=False)
    piped = run_backtest(out, settings, mode=mode, work_dir=tmp_path / "piped", pipeline=True)
    assert piped.blocks == serial.blocks == len(ticked)
    assert any(o.status in ("included", "dry_run") for o in serial.outcomes), "the shocks make the backtest trade"
    assert _journal_rows(piped.journal) == _journal_rows(serial.journal)
    assert [(o.status, o.plan.intent, o.plan.predicted, o.fills) for o in piped.outcomes] == \
        [(o.status, o.plan.intent, o.plan.predicted, o.fills) for o in serial.outcomes]
    assert piped.samples == serial.samples
    assert (piped.processes, serial.processes) == (2, 1)
    assert (piped.skips, piped.open_at_end, piped.first_block, piped.last_block) == \
        (serial.skips, serial.open_at_end, serial.first_block, serial.last_block)


def _history_with_a_hole(out: Path, to: Path, hole: int) -> None:
    """A copy of the history in which block `hole` lost its recorded reads."""
    from dataclasses import replace

    from keeper.history.store import HistoryWriter, read_meta

    writer = HistoryWriter(to, read_meta(out), part_blocks=10)
    for record in read_blocks(out):
        writer.append(replace(record, reads=[]) if record.block == hole else record)
    writer.flush()


def test_pipelined_backtest_raises_the_serial_error_at_the_same_block(driven, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from keeper.engine import Engine
    from keeper.errors import ConfigError

    settings, _, ticked, out, _, _ = driven
    hole = ticked[len(ticked) // 2]
    _history_with_a_hole(out, tmp_path / "holed", hole)
    decided: dict[bool, list[int]] = {False: [], True: []}
    decide_on = Engine.decide_on
    errors = {}
    for piped in (False, True):
        monkeypatch.setattr(Engine, "decide_on", lambda engine, snapshot, *args, _on=decided[piped], **kwargs: (
            _on.append(snapshot.block_number), decide_on(engine, snapshot, *args, **kwargs))[1])
        with pytest.raises(ConfigError) as raised:
            run_backtest(tmp_path / "holed", settings, work_dir=tmp_path / str(piped), pipeline=piped,
                         progress=lambda done, total: None)
        errors[piped] = str(raised.value)
    assert errors[True] == errors[False] and f"block {hole} has no recorded answer" in errors[True]
    # and every block before the hole was backtested first, as the serial run backtests them
    assert decided[True] == decided[False] == [b for b in ticked if b < hole]
    assert _journal_rows(Journal(tmp_path / "True" / "journal.sqlite")) == \
        _journal_rows(Journal(tmp_path / "False" / "journal.sqlite"))


def test_a_worker_that_dies_is_an_error_naming_its_exit_code(driven, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    import keeper.history.pipeline as pipeline
    from keeper.errors import KeeperError

    settings, _, _, out, _, _ = driven
    monkeypatch.setattr(pipeline, "_produce", lambda *args: os._exit(3))
    with pytest.raises(KeeperError, match="exit code 3"):
        run_backtest(out, settings, work_dir=tmp_path / "bt", pipeline=True)


def test_a_sweep_job_backtests_in_its_own_process_only(driven, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The sweep's jobs already take every core: a job never starts a snapshot worker of its own,
    however long its window."""
    import keeper.history.backtest as backtest
    from keeper.history.sweep import Job, run_job

    def refused(*args: Any) -> None:
        raise AssertionError("a sweep job started a snapshot worker")

    monkeypatch.setattr(backtest, "SnapshotPipeline", refused)
    monkeypatch.setattr(backtest, "MIN_PIPELINE_BLOCKS", 1)
    monkeypatch.setattr(backtest, "pipeline_available", lambda: True)  # whatever the machine's load
    monkeypatch.setattr("keeper.logs.configure_logging", lambda *args: None)  # a job's own process sets ERROR; not this one
    settings, _, ticked, out, _, _ = driven
    result = run_job(Job(str(out), settings.model_dump(mode="json"), (), 0, ticked[0], ticked[-1]))
    assert result.blocks == len(ticked)
