"""The new-user audit's bad inputs: each is one line `error: ...` naming the option, key or
environment variable, exit code 2, before anything is sent or any long work is done; never a
traceback. (Nothing listens at 127.0.0.1:9: a connection attempt would show as a retry or a
traceback, not as this error.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NODE = "http://127.0.0.1:9"


def keeper(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, cwd=cwd)


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], named: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["record", "--rpc-url", NODE, "--out", "/proc/hist"], "--out /proc/hist: cannot write in /proc"),
    (["backtest", "hist", "--out", "/proc/x"], "--out /proc/x: cannot write in /proc"),
    (["backtest", "hist", "--out", "/dev/null/x"], "--out /dev/null/x: cannot be created (/dev/null is not a directory)"),
    (["simulate", "--fork-url", NODE, "--blocks", "2", "--scenario", "calm", "--out", "/proc/s2"],
     "--out /proc/s2: cannot write in /proc"),
])
def test_an_output_path_that_cannot_be_written_is_refused_up_front(args: list[str], named: str, tmp_path: Path) -> None:
    assert_one_line_exit_2(keeper(*args, cwd=tmp_path), named)


def test_a_journal_that_cannot_be_created_is_refused_before_any_chain_is_used(tmp_path: Path) -> None:
    result = keeper("run", "--dry-run", "--rpc-url", NODE, cwd=tmp_path,
                    env={"KEEPER_MONITORING__JOURNAL": "/proc/x/j.sqlite", "KEEPER_MONITORING__LIVE_PANEL": "off"})
    assert_one_line_exit_2(result, "cannot create the lock file /proc/x/j.sqlite.lock")  # the lock is taken first
    assert "monitoring.journal" in result.stderr


def test_a_journal_path_holding_another_file_is_refused_before_any_chain_is_used(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a journal\n" * 200)
    result = keeper("run", "--dry-run", "--rpc-url", NODE, cwd=tmp_path,
                    env={"KEEPER_MONITORING__JOURNAL": "notes.txt", "KEEPER_MONITORING__LIVE_PANEL": "off"})
    assert_one_line_exit_2(result, "journal notes.txt: not a usable SQLite database")


ADDRESS = "0x" + "11" * 20


def test_a_keystore_or_scenario_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe\x00 binary \x80")
    deploy = keeper("executor", "deploy", "--treasury", ADDRESS, "--operator", ADDRESS, "--rpc-url", NODE,
                    "--admin-keystore", "bad.toml", cwd=tmp_path)
    assert_one_line_exit_2(deploy, "keystore bad.toml: not a JSON keystore (not UTF-8")
    scenario = keeper("simulate", "--fork-url", NODE, "--blocks", "2", "--scenario", "bad.toml", cwd=tmp_path)
    assert_one_line_exit_2(scenario, "scenario bad.toml: not UTF-8 text")


def test_a_market_given_twice_to_executor_deploy_is_refused_before_the_key_is_read(tmp_path: Path) -> None:
    result = keeper("executor", "deploy", "--treasury", ADDRESS, "--operator", ADDRESS, "--rpc-url", NODE,
                    "--markets", "ETH,BTC,ETH", cwd=tmp_path)  # was: setMarket(ETH) sent twice
    assert_one_line_exit_2(result, "--markets: ETH given more than once")


@pytest.mark.parametrize("command", [["executor", "deploy"], ["executor", "migrate"], ["run"], ["simulate"], ["record"],
                                     ["backtest"], ["status"], ["stress"], ["scan"], ["devnet"]])
def test_help_at_80_columns_shows_every_option_name_and_default_whole(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "keeper", *command, "--help"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
    assert result.returncode == 0
    assert "…" not in result.stdout  # nothing cut short (was: --admin-keystore-password-… and its default)
    if command[0] == "executor":
        assert "--admin-password-env " in result.stdout and "KEEPER_ADMIN_KEYSTORE_PASSWORD;" in result.stdout


def test_the_password_option_s_old_name_still_works_but_not_both(tmp_path: Path) -> None:
    both = keeper("executor", "deploy", "--treasury", ADDRESS, "--operator", ADDRESS, "--rpc-url", NODE,
                  "--admin-password-env", "A", "--admin-keystore-password-env", "B", cwd=tmp_path)
    assert_one_line_exit_2(both, "--admin-password-env and --admin-keystore-password-env (its old name) both given")
    (tmp_path / "k.json").write_text('{"crypto": {}}')
    old = keeper("executor", "deploy", "--treasury", ADDRESS, "--operator", ADDRESS, "--rpc-url", NODE,
                 "--admin-keystore", "k.json", "--admin-keystore-password-env", "MY_PASSWORD", cwd=tmp_path)
    assert_one_line_exit_2(old, "keystore password: set $MY_PASSWORD")


@pytest.mark.parametrize(("args", "named"), [
    (["stress", "--notional-usd", "inf", "--collateral-usd", "10000"], "'--notional-usd': inf is not a finite number"),
    (["stress", "--collateral-usd", "inf", "--json"], "'--collateral-usd': inf is not a finite number"),
    (["stress", "--collateral-usd", "nan"], "'--collateral-usd': nan is not a finite number"),
    (["run", "--dry-run", "--drive-interval", "inf"], "'--drive-interval': inf is not a finite number"),
    (["run", "--dry-run", "--rpc-url", "http://127.0.0.1:99999"], "--rpc-url: not a node URL"),  # was retried 28 s
    (["scan", "--rpc-url", "http://127.0.0.1:0"], "--rpc-url: not a node URL"),
])
def test_non_finite_numbers_and_invalid_ports_are_usage_errors(args: list[str], named: str, tmp_path: Path) -> None:
    assert_one_line_exit_2(keeper(*args, cwd=tmp_path), named)


def test_an_error_from_a_keeper_variable_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "k.toml").write_text("[risk]\nmax_leverage = 2\n")
    result = keeper("run", "--dry-run", "-c", "k.toml", "--rpc-url", NODE, cwd=tmp_path,
                    env={"KEEPER_RISK__MAX_LEVRAGE": "2"})
    assert_one_line_exit_2(result, "error: environment KEEPER_RISK__MAX_LEVRAGE: risk.max_levrage: unknown key")


@pytest.mark.parametrize(("args", "named"), [
    (["simulate", "--fork-url", NODE, "--blocks", "5", "--scenario", "mispricing", "--seeds", "1,2"],
     "--seeds: only with --suite (one run takes --seed)"),  # was: ran seed 7, the seeds ignored
    (["simulate", "--fork-url", NODE, "--suite", "--seed", "3"], "--seed: one scenario run only, not with --suite"),
    (["simulate", "--fork-url", NODE, "--check", "--scenario", "calm"], "--check: needs --replay"),  # was: --from-block: required with --replay
    (["simulate", "--fork-url", NODE, "--blocks", "5", "--scenario", "calm", "--from-block", "3"], "--from-block: only with --replay"),
    (["simulate", "--fork-url", NODE, "--replay", "--from-block", "1", "--to-block", "2", "--scenario", "calm"],
     "--scenario: not with --replay"),
    (["backtest", "hist", "--workers", "2"], "--workers: only with --sweep"),
    (["backtest", "hist", "--folds", "2", "--dask", "tcp://127.0.0.1:9"], "--folds, --dask: only with --sweep"),
    (["backtest", "hist", "--sweep", "risk.exit_cooldown_s=1,2", "--dry-run"], "--dry-run: not with --sweep"),
    (["backtest", "hist", "--sweep", "risk.exit_cooldown_s=1,2", "--out", "r"], "--out: not with --sweep"),
    (["run", "--dry-run", "--rpc-url", NODE, "--seed", "3"], "--seed: only for the embedded devnet; not with an RPC"),
    (["run", "--dry-run", "--rpc-url", NODE, "--drive-interval", "1"], "--drive-interval: only for the embedded devnet"),
    (["run", "--dry-run", "--rpc-url", NODE, "--shock-every", "5"], "--shock-every: only for the embedded devnet"),
])
def test_an_option_the_chosen_mode_would_ignore_is_refused_naming_both(args: list[str], named: str,
                                                                     tmp_path: Path) -> None:
    assert_one_line_exit_2(keeper(*args, cwd=tmp_path), named)


def test_an_rpc_from_the_config_also_refuses_the_embedded_devnet_options(tmp_path: Path) -> None:
    (tmp_path / "k.toml").write_text(f'[chain]\nrpc_url = "{NODE}"\n')
    result = keeper("run", "--dry-run", "-c", "k.toml", "--seed", "3", cwd=tmp_path)
    assert_one_line_exit_2(result, "--seed: only for the embedded devnet; not with an RPC (--rpc-url or chain.rpc_url)")
