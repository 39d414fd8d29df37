"""`keeper record`, `keeper backtest` and `keeper simulate --replay` as processes: bad input is
one line naming the option, exit 2; a recording made by the CLI backtests from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.chain.rpc import JsonRpc
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.world import World, prebuilt_state, start_world


def keeper(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", *args], capture_output=True, text=True, timeout=300,
                          env=environment, cwd=cwd)


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    world: World = start_world(load_state=prebuilt_state())
    work = tmp_path_factory.mktemp("cli-history")
    world.manifest.write(work / "manifest.json")
    (work / "keeper.toml").write_text(f'[chain]\nmanifest = "{work / "manifest.json"}"\n')
    driver = MarketActivity(JsonRpc(world.node.rpc_url), world.manifest, ActivityConfig(seed=11, step_s=30))
    for _ in range(40):
        driver.step()
    yield world, work
    world.stop()


def test_record_then_backtest_from_the_cli(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    head = node.node.rpc.block_number()  # type: ignore[union-attr]
    recorded = keeper("record", "--rpc-url", node.node.rpc_url, "--from-block", str(head - 29), "--to-block", str(head),
                      "--out", "hist", "-c", "keeper.toml", cwd=work)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded 30 blocks" in recorded.stdout
    again = keeper("record", "--rpc-url", node.node.rpc_url, "--from-block", str(head - 29), "--to-block", str(head),
                   "--out", "hist", "-c", "keeper.toml", cwd=work)
    assert "recorded 0 blocks" in again.stdout  # resumed after the last block on disk: nothing to do
    result = keeper("backtest", "hist", "-c", "keeper.toml", "--json", "--out", "bt", cwd=work)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["blocks"] == 30 and summary["first_block"] == head - 29 and summary["last_block"] == head
    assert {"blocks_per_s", "keeper_usd", "optimum_usd", "trades"} <= set(summary)
    assert summary["processes"] == 1  # 30 blocks: too few to pay for the snapshot worker
    assert (work / "bt" / "report.html").exists()
    past = keeper("backtest", "hist", "-c", "keeper.toml", "--to-block", str(head + 5), "--out", "bt2", cwd=work)
    _one_error_line(past, f"--to-block {head + 5}: history hist holds blocks {head - 29}-{head}")
    assert not (work / "bt2").exists()


def test_resuming_with_the_same_account_in_lower_case_continues(world) -> None:  # type: ignore[no-untyped-def]
    # The audit: --account in lower case after a recording with its checksum was refused as another account
    node, work = world
    head = node.node.rpc.block_number()  # type: ignore[union-attr]
    account = node.manifest.accounts.keeper
    first = keeper("record", "--rpc-url", node.node.rpc_url, "--from-block", str(head - 5), "--to-block", str(head - 3),
                   "--out", "acct", "--account", account, "-c", "keeper.toml", cwd=work)
    assert first.returncode == 0, first.stderr
    resumed = keeper("record", "--rpc-url", node.node.rpc_url, "--to-block", str(head), "--out", "acct",
                     "--account", account.lower(), "-c", "keeper.toml", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert "recorded 3 blocks" in resumed.stdout


def test_record_of_pruned_state_exits_2_naming_the_first_block(world) -> None:  # type: ignore[no-untyped-def]
    node, work = world
    result = keeper("record", "--rpc-url", node.node.rpc_url, "--from-block", "1", "--to-block", "5", "--out", "old",
                    "-c", "keeper.toml", cwd=work)
    _one_error_line(result, "cannot serve the state of block 1")


def test_replay_from_a_pruned_block_exits_2_naming_from_block(world) -> None:  # type: ignore[no-untyped-def]
    # The audit: "--fork-url URL: cannot fork it at block 1: anvil exited with code 1: Error: failed to
    # create genesis; ... BlockOutOfRangeError ...", the option to change not named
    node, work = world
    result = keeper("simulate", "--replay", "--fork-url", node.node.rpc_url, "--from-block", "1", "--to-block", "3",
                    "-c", "keeper.toml", "--out", "rp", cwd=work)
    _one_error_line(result, "--from-block 1:", "cannot serve the state of block 1", "an archive node")


@pytest.mark.parametrize("args, named", [
    (["record", "--rpc-url", "http://127.0.0.1:9", "--out", "x"], "--rpc-url"),
    (["record", "--rpc-url", "http://127.0.0.1:9", "--out", "x", "--follow", "--to-block", "3"], "--follow"),
    (["backtest", "no-such-history"], "no-such-history"),
    (["backtest", "no-such-history", "--strategy", "nope"], "--strategy nope"),
    (["simulate", "--replay", "--fork-url", "http://127.0.0.1:9", "--to-block", "3"], "--from-block"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    _one_error_line(keeper(*args, cwd=tmp_path), named)


def test_a_sweep_of_a_cost_setting_is_refused_by_name(tmp_path: Path) -> None:
    result = keeper("backtest", "hist", "--sweep", "risk.max_leverage=2", "--sweep", "costs.min_profit_usd=1,2",
                    cwd=tmp_path)
    _one_error_line(result, "--sweep costs.min_profit_usd: not a strategy or risk setting")
