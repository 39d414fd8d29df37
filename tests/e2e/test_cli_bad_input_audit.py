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
    assert_one_line_exit_2(result, "journal /proc/x/j.sqlite: cannot open")
    assert "monitoring.journal" in result.stderr


def test_a_journal_path_holding_another_file_is_refused_before_any_chain_is_used(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a journal\n" * 200)
    result = keeper("run", "--dry-run", "--rpc-url", NODE, cwd=tmp_path,
                    env={"KEEPER_MONITORING__JOURNAL": "notes.txt", "KEEPER_MONITORING__LIVE_PANEL": "off"})
    assert_one_line_exit_2(result, "journal notes.txt: not a usable SQLite database")
