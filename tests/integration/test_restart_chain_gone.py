"""A restart on a chain that is not the one holding the journal's open positions (keeper/journal/
holder.py): before, reconcile read the new chain's empty account and booked them closed "not on
chain", their cash so far as realized PnL (the fourteenth session's brief, reproduced on 2491324).
Now a node's start is refused (exit 2, nothing sent) and the embedded devnet writes an earlier
embedded run's positions off, realized PnL unchanged."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keeper.chain.keys import Signer
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.journal import WRITTEN_OFF, ChainPosition, Journal, PositionsHolder
from keeper.launch import build_runtime
from keeper.status import build_status
from tests.integration.conftest import DEV_ACCOUNT_1_KEY, Devnet

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def fresh_world() -> Iterator[World]:
    """A second devnet started afresh: the same chain id (31337), none of the first one's history."""
    world = start_world(load_state=prebuilt_state())
    yield world
    world.stop()


def _keeper(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", *args], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path, env={**clean, "KEEPER_MONITORING__JOURNAL": str(tmp_path / "journal.sqlite"),
                                             "KEEPER_MONITORING__METRICS_PORT": "0", **(env or {})})


def test_a_node_without_the_journals_executor_is_refused_exit_2_and_nothing_sent(
        devnet: Devnet, signer: Signer, tmp_path: Path, fresh_world: World) -> None:
    # Given a live run on a devnet that provisioned its executor, and an open ETH position in it
    settings = devnet.keeper_config(tmp_path)
    first = build_runtime(settings, dry_run=False)
    first.close()
    with Journal(settings.monitoring.journal) as journal:
        journal.reconcile({"ETH": ChainPosition(-10**18)}, block=devnet.rpc.block_number())
    # When the keeper starts (live, then dry) on a fresh devnet with the same journal
    manifest = tmp_path / "fresh.json"
    fresh_world.manifest.write(manifest)
    rpc = fresh_world.node.rpc
    assert rpc is not None
    head, nonce = rpc.block_number(), rpc.call("eth_getTransactionCount", [signer.address, "latest"])
    runs = [_keeper(tmp_path, "run", "--rpc-url", fresh_world.node.rpc_url, "--manifest", str(manifest),
                    "--blocks", "1", *dry, env={"KEEPER_PRIVATE_KEY": DEV_ACCOUNT_1_KEY}) for dry in ((), ("--dry-run",))]
    # Then each is refused, exit 2, one line naming the executor, the chain, the position and the ways out
    for run in runs:
        assert run.returncode == 2, run.stderr[-2000:]
        (line,) = [x for x in run.stderr.splitlines() if x.startswith("error:")]
        assert re.fullmatch(
            rf"error: monitoring\.journal: .*journal\.sqlite holds open positions \(ETH\) in executor "
            rf"{first.executor_address} on chain 31337, which has no code on this node, whose head \d+ is below the "
            r"journal's last block \d+: a node not yet synced to the executor's deployment, or the chain that held "
            r"them is gone \(a devnet or fork started afresh\?\); the start on http://127\.0\.0\.1:\d+ \(chain 31337\) would "
            r"book them closed, so nothing was sent: wait for the node to sync, or run against the chain that holds "
            r"them; only if that chain is gone \(a devnet or fork started afresh\), point monitoring\.journal at "
            r"another file", line), line
        assert "executor.provisioned" not in run.stderr + run.stdout
    # And nothing was sent to the fresh devnet, and the journal still holds the position, nothing realized
    assert rpc.block_number() == head
    assert rpc.call("eth_getTransactionCount", [signer.address, "latest"]) == nonce
    with Journal(settings.monitoring.journal, readonly=True) as journal:
        assert list(journal.open_positions()) == ["ETH"] and journal.status().written_off == ()
        assert journal.pnl_summary().markets["ETH"].closed_positions == 0
    # And `keeper status` on the fresh devnet says the open position is not on its chain
    fresh = devnet.keeper_config(tmp_path, chain={"rpc_url": fresh_world.node.rpc_url, "manifest": manifest})
    text = build_status(fresh).as_text()
    assert f"NOT ON THIS CHAIN: the open positions (ETH) above are in executor {first.executor_address} on chain " \
           "31337, which has no code on this node" in text
    # And on the devnet that holds it, it is not said
    assert "NOT ON THIS CHAIN" not in build_status(settings).as_text()


def test_positions_a_dry_run_adopted_are_held_by_its_executor_and_a_live_restart_there_starts(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given an executor E with code (a live run provisioned it), and a fresh journal whose first start is a dry run on E
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    first = build_runtime(devnet.keeper_config(tmp_path / "a"), dry_run=False)
    executor = first.executor_address
    first.close()
    settings = devnet.keeper_config(tmp_path / "b", account={"executor": executor})
    build_runtime(settings, dry_run=True).close()
    # Then that start's reconcile recorded where the journal's open positions are: E on this chain, not embedded
    with Journal(settings.monitoring.journal, readonly=True) as journal:
        assert journal.positions_holder() == PositionsHolder(31337, executor, False)
        assert journal.recorded_executors() == {}  # a dry run records no executor to reuse
    # When a position comes in through that reconcile (E's account, as the dry run adopted it)
    with Journal(settings.monitoring.journal) as journal:
        journal.reconcile({"ETH": ChainPosition(-10**18)}, block=devnet.rpc.block_number())
    # Then a live restart on the same chain, E still with its code, starts (before: refused as an embedded run's)
    again = build_runtime(settings, dry_run=False)
    again.close()
    with Journal(settings.monitoring.journal, readonly=True) as journal:
        assert journal.status().written_off == ()
        assert journal.positions_holder() == PositionsHolder(31337, executor, False)


def _status(tmp_path: Path, config: Path) -> str:
    result = _keeper(tmp_path, "status", "-c", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_a_second_embedded_devnet_run_writes_the_first_ones_positions_off_realized_unchanged(tmp_path: Path) -> None:
    # Given an embedded devnet run (make demo) that stopped holding open positions
    config = tmp_path / "demo.toml"
    config.write_text((REPO / "config" / "devnet.toml").read_text())
    first = _keeper(tmp_path, "run", "-c", str(config), "--blocks", "30", "--shock-every", "8",
                    "--drive-interval", "0.3")
    assert first.returncode == 0, first.stderr[-3000:]
    with Journal(tmp_path / "journal.sqlite", readonly=True) as journal:
        held = journal.positions("open")
        realized_before = journal.pnl_summary().realized
    assert held, "the first run opened no position: nothing to test"
    before = _status(tmp_path, config)
    realized_line = re.search(r"\(realized [-+]\d+\.\d{4}\)", before)
    assert realized_line is not None
    started = [json.loads(x) for x in (first.stdout + first.stderr).splitlines() if x.startswith("{")]
    executor = next(e["executor"] for e in started if e["event"] == "keeper.started")
    # When a second embedded run starts on the same journal (a new chain)
    second = _keeper(tmp_path, "run", "-c", str(config), "--blocks", "5", "--drive-interval", "0.3")
    # Then it starts, and writes the first run's positions off: warned, not closed against the new chain
    assert second.returncode == 0, second.stderr[-3000:]
    events = [json.loads(x) for x in (second.stdout + second.stderr).splitlines() if x.startswith("{")]
    written = [e for e in events if e["event"] == "journal.position_written_off"]
    assert sorted((e["market"], e["position_id"]) for e in written) == sorted((p.position.market, p.id) for p in held)
    assert {(e["executor"], e["chain_id"]) for e in written} == {(executor, 31337)}
    assert not [e for e in events if e["event"] == "journal.reconciled"]
    # And `keeper status`: realized PnL unchanged, the write-off shown apart
    after = _status(tmp_path, config)
    assert realized_line.group(0) in after
    assert "written off: the chain that held them is gone: " in after
    with Journal(tmp_path / "journal.sqlite", readonly=True) as journal:
        assert journal.pnl_summary().realized == realized_before
        assert {p.id for p in journal.status().written_off} == {p.id for p in held}
        assert all(p.close_reason == WRITTEN_OFF and journal.realized(p.id) is None
                   for p in journal.status().written_off)
