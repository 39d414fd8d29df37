"""`keeper devnet` as a user runs it: a process, its exit code, its files and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.devnet.manifest import DevnetManifest

KEEPER = [sys.executable, "-m", "keeper"]


def run_keeper(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEEPER, *args], capture_output=True, text=True, timeout=timeout)


def test_deploy_dump_then_load_from_state(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    state = tmp_path / "state.json"
    # Given a deploy from scratch that saves its state and drives two market steps
    deployed = run_keeper("devnet", "--port", "0", "--manifest", str(manifest), "--dump-state", str(state),
                          "--drive", "--steps", "2", "--step-interval", "0")
    assert deployed.returncode == 0, deployed.stderr
    first = DevnetManifest.read(manifest)
    assert {m.name for m in first.markets} == {"ETH", "BTC"}
    assert state.exists() and (tmp_path / "state.json.manifest.json").exists()
    events = [json.loads(line) for line in deployed.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events].count("market.step") == 4  # 2 steps x 2 markets
    assert "ETH" in deployed.stdout and first.accounts.keeper in deployed.stdout
    # When loading that state on another port
    loaded = run_keeper("devnet", "--port", "0", "--manifest", str(manifest), "--load-state", str(state),
                        "--drive", "--steps", "1", "--step-interval", "0")
    # Then the same contracts come back, at a new rpc_url, reported as loaded
    assert loaded.returncode == 0, loaded.stderr
    second = DevnetManifest.read(manifest)
    assert second.contracts == first.contracts
    ready = next(json.loads(l) for l in loaded.stderr.splitlines() if '"devnet.ready"' in l)
    assert ready["how"].startswith("loaded from")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dump-state", "a.json", "--load-state", "b.json"], "exclusive"),
        (["--load-state", "does-not-exist.json"], "file not found"),
        (["--steps", "2"], "--steps: counts driver steps; it needs --drive"),  # was: ran 2 idle steps, no driver
        (["--manifest", "/proc/x/m.json"], "--manifest /proc/x/m.json: cannot write in /proc"),  # was: a traceback after deploying
        (["--manifest", "/dev/null/m.json"], "--manifest /dev/null/m.json: cannot be created (/dev/null is not a directory)"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([*KEEPER, "devnet", "--port", "0", *args], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_the_devnet_command() -> None:
    result = run_keeper("devnet", "--help")
    assert result.returncode == 0
    for option in ("--port", "--manifest", "--dump-state", "--load-state", "--drive", "--seed"):
        assert option in result.stdout
