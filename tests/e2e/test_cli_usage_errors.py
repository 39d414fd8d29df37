"""Usage errors (an unknown option or command, a value of the wrong type or out of range, a missing
argument) are one line, `error: ...` naming the option, exit code 2, no traceback and no boxed
panel: the same shape as every other bad input. `--help` and a bare group still print the help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def keeper(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", *args], capture_output=True, text=True, timeout=60, env=env,
                          cwd=cwd)


@pytest.mark.parametrize(("args", "named"), [
    (["run", "--blocks", "abc"], "'--blocks'"),
    (["run", "--blocks", "0"], "'--blocks'"),
    (["run", "--bogus"], "--bogus"),
    (["scan", "--history-blocks", "-1"], "'--history-blocks'"),
    (["backtest"], "'history'"),
    (["executor", "deploy", "--treasury"], "'--treasury'"),
    (["nosuch"], "'nosuch'"),
    (["devnet", "--port", "-5"], "'--port'"),  # was an OverflowError traceback
    (["devnet", "--step-interval", "-1", "--drive"], "'--step-interval'"),  # was a ValueError after deploying
    (["devnet", "--log-level", "LOUD"], "--log-level: one of DEBUG"),  # was a KeyError traceback
    (["run", "--drive-interval", "0"], "'--drive-interval'"),
    (["simulate", "--fork-url", "http://127.0.0.1:9", "--fork-block", "-3"], "'--fork-block'"),
])
def test_a_usage_error_is_one_line_exit_2(args: list[str], named: str) -> None:
    result = keeper(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr


def test_help_still_exits_0_and_a_bare_group_shows_its_help() -> None:
    assert keeper("run", "--help").returncode == 0
    bare = keeper("executor")
    assert bare.returncode == 2 and "deploy" in bare.stdout + bare.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["run", "--dry-run", "--rpc-url", "localhost:8545"], "--rpc-url: not a node URL"),
    (["scan", "--rpc-url", "127.0.0.1:8545"], "--rpc-url: not a node URL"),
    (["status", "--rpc-url", "ftp://node"], "--rpc-url: not a node URL"),
    (["simulate", "--fork-url", "localhost", "--blocks", "2", "--scenario", "calm"], "--fork-url: not a node URL"),
    (["stress", "--account", "0x123"], "--account: not an address"),
    (["record", "--rpc-url", "http://127.0.0.1:9", "--out", "h", "--account", "0x" + "zz" * 20], "--account: not an address"),
    (["run", "--dry-run", "-c", "."], "is a directory"),
    (["stress", "--market", "ETH", "--direction", "sideways"], "--direction: short_perp or long_perp (got 'sideways')"),
    (["backtest", "h", "--out", "out-file"], "--out out-file: exists and is not a directory"),
    (["scan", "--manifest", "."], "manifest .: cannot read it"),  # a directory: was an IsADirectoryError traceback
    (["scan", "--manifest", "none.json"], "file not found (`keeper devnet` writes one; give --manifest"),
    (["simulate", "--fork-url", "http://127.0.0.1:9", "--blocks", "2", "--scenario", "calm", "--out", "out-file"],
     "--out out-file: exists and is not a directory"),
])
def test_a_malformed_url_address_or_config_path_is_named_before_anything_starts(args: list[str], named: str,
                                                                               tmp_path: Path) -> None:
    if "--out" in args:
        (tmp_path / args[args.index("--out") + 1]).write_text("a file, not a directory")
    result = keeper(*args, cwd=tmp_path)  # nothing listens at these: a connection attempt would show as a retry or a traceback
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = keeper("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"basis-keeper {version('basis-keeper')}"
