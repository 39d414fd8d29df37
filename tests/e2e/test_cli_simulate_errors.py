"""`keeper simulate` refuses bad input with one line naming the option, exit code 2, before it
starts any fork (the --fork-url given here answers nothing)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keeper.artifacts import PROJECT_ROOT


def run_simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "simulate", "--fork-url", "http://127.0.0.1:9", *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=PROJECT_ROOT)


@pytest.mark.parametrize(("args", "message"), [
    (["--suite", "--seeds", "1,x"], "--seeds"),
    (["--suite", "--scenarios", "no/such/file.toml"], "scenario no/such/file.toml: file not found"),
    (["--suite", "--scenario", "calm"], "--scenario: one run only"),
    (["--scenario", "calm"], "--blocks: required for one run"),
    (["--scenarios", "scenarios", "--blocks", "3"], "--scenarios: only with --suite"),
])
def test_bad_suite_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = run_simulate(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
