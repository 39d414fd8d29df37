"""Every command that reads the config checks the strategies' names and parameters as `keeper run`
does, before anything else reaches out: a typo under strategies.params is one line naming the key,
exit 2, whichever command met it first (before: status, stress, scan, record, simulate and the
executor commands took it silently, and `keeper run` refused the same file later)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NODE = "http://127.0.0.1:9"  # nothing listens there: a command that reached out first fails on that instead
ADDRESS_1 = "0x" + "00" * 19 + "01"
ADDRESS_2 = "0x" + "00" * 19 + "02"
EXPECTED = ("error: strategies.params.basis_convergence.entry_zz: strategy 'basis_convergence': unknown "
            "parameter(s) entry_zz (known: ")

COMMANDS = {
    "run": ["run", "--dry-run", "--rpc-url", NODE, "--blocks", "1"],
    "status": ["status", "--rpc-url", NODE],
    "stress": ["stress", "--rpc-url", NODE],
    "scan": ["scan", "--rpc-url", NODE],
    "record": ["record", "--rpc-url", NODE, "--out", "history"],
    "simulate": ["simulate", "--fork-url", NODE, "--scenario", "calm", "--blocks", "2"],
    "simulate-suite": ["simulate", "--fork-url", NODE, "--suite"],
    "simulate-replay": ["simulate", "--fork-url", NODE, "--replay", "--from-block", "1", "--to-block", "2"],
    "backtest": ["backtest", "no-such-history"],  # the config is read before the history
    "backtest-sweep": ["backtest", "no-such-history", "--sweep", "basis_convergence.entry_z=1,2"],
    "executor-deploy": ["executor", "deploy", "--treasury", ADDRESS_1, "--operator", ADDRESS_2, "--rpc-url", NODE],
    "executor-migrate": ["executor", "migrate", "--from", ADDRESS_1, "--to", ADDRESS_2, "--rpc-url", NODE],
}


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_every_command_refuses_a_misspelled_strategy_parameter_before_the_node(command: list[str], tmp_path: Path) -> None:
    config = tmp_path / "keeper.toml"  # the Optimism preset: no manifest needed, every address read from the node
    config.write_text("[chain]\npreset = 'optimism'\n\n[strategies.params.basis_convergence]\nentry_zz = 2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    result = subprocess.run([sys.executable, "-m", "keeper", *command, "--config", str(config)], capture_output=True,
                            text=True, timeout=60, env=env, cwd=tmp_path)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("{")]  # JSON log lines aside
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(EXPECTED), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keeper.toml"]  # nothing written (no history, no report)
