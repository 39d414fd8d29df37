"""`keeper run` refuses bad input with one line naming the problem, exit code 2, before starting
anything or sending anything."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from keeper.devnet.world import World, prebuilt_state, start_world


def run_keeper(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "run", *args], capture_output=True, text=True,
                          timeout=60, env={**environment, **(env or {})}, cwd=cwd)


@pytest.mark.parametrize(("toml", "message"), [
    ("[risk]\nmax_levrage = 2\n", "risk.max_levrage: unknown key"),
    ("[execution]\nslippage_bps = -5\n", "execution.slippage_bps"),
    ("[chain]\npreset = 'optimism'\n", "chain.rpc_url: required with preset 'optimism'"),
])
def test_a_bad_config_exits_2_naming_the_field(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "keeper.toml"
    config.write_text(toml)
    result = run_keeper("--config", str(config), "--blocks", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_an_unknown_keeper_variable_exits_2(tmp_path: Path) -> None:
    result = run_keeper("--blocks", "1", env={"KEEPER_RISK__MAX_LEVRAGE": "2"}, cwd=tmp_path)
    assert result.returncode == 2 and "risk.max_levrage" in result.stderr


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__ENTRY_Z", "-3", "parameter entry_z must be > 0"),
    ("KEEPER_STRATEGIES__PARAMS__FUNDING_CARRY__MIN_CARRY_APRR", "0.1", "unknown parameter(s) min_carry_aprr"),
])
def test_a_bad_strategy_parameter_from_the_environment_exits_2_naming_the_variable(
        tmp_path: Path, variable: str, value: str, message: str) -> None:
    result = run_keeper("--blocks", "1", "--dry-run", env={variable: value}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: environment {variable}: strategies.params."), lines
    assert message in lines[0]


def test_live_mode_without_a_key_exits_2_before_sending(tmp_path: Path) -> None:
    world: World = start_world(load_state=prebuilt_state())
    try:
        manifest = tmp_path / "manifest.json"
        world.manifest.write(manifest)
        nonce = world.node.rpc.call("eth_getTransactionCount", [world.manifest.accounts.keeper, "latest"])  # type: ignore[union-attr]
        result = run_keeper("--rpc-url", world.node.rpc_url, "--manifest", str(manifest), "--blocks", "1",
                            env={"KEEPER_MONITORING__JOURNAL": str(tmp_path / "j.sqlite")}, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "KEEPER_PRIVATE_KEY" in result.stderr and "is not set" in result.stderr
        assert world.node.rpc.call("eth_getTransactionCount", [world.manifest.accounts.keeper, "latest"]) == nonce  # type: ignore[union-attr]
    finally:
        world.stop()


def test_an_unset_key_variable_of_the_config_names_account_key_env(tmp_path: Path) -> None:
    world: World = start_world(load_state=prebuilt_state())
    try:
        manifest = tmp_path / "manifest.json"
        world.manifest.write(manifest)
        config = tmp_path / "keeper.toml"
        config.write_text(f'[account]\nkey_env = "MY_KEEPER_KEY"\n[monitoring]\njournal = "{tmp_path / "j.sqlite"}"\n')
        nonce = world.node.rpc.call("eth_getTransactionCount", [world.manifest.accounts.keeper, "latest"])  # type: ignore[union-attr]
        result = run_keeper("--config", str(config), "--rpc-url", world.node.rpc_url, "--manifest", str(manifest),
                            "--blocks", "1", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("{")]
        assert lines == ["error: account.key_env: $MY_KEEPER_KEY is not set: put the signing key there (64 hex "
                         "digits), or use a keystore file"], result.stderr
        assert world.node.rpc.call("eth_getTransactionCount", [world.manifest.accounts.keeper, "latest"]) == nonce  # type: ignore[union-attr]
    finally:
        world.stop()


def test_an_unreachable_rpc_exits_2_naming_it(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    world = start_world(load_state=prebuilt_state())
    world.manifest.write(manifest)
    world.stop()
    result = run_keeper("--rpc-url", "http://127.0.0.1:9", "--manifest", str(manifest), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and "http://127.0.0.1:9" in result.stderr


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.send_response(401)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_a_node_that_refuses_the_url_exits_2_at_once_without_showing_the_key(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    manifest = tmp_path / "manifest.json"
    world = start_world(load_state=prebuilt_state())
    world.manifest.write(manifest)
    world.stop()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v2/SECRETKEY123"
        result = run_keeper("--rpc-url", url, "--manifest", str(manifest), "--dry-run", cwd=tmp_path)
    finally:
        server.shutdown()
    assert result.returncode == 2, result.stderr
    assert "answered HTTP 401" in result.stderr and "refuses the URL" in result.stderr
    assert "error: --rpc-url: RPC http://127.0.0.1" in result.stderr  # the option it came from, not chain.rpc_url
    assert "SECRETKEY123" not in result.stderr + result.stdout
    assert "keeper.start_failed" in result.stderr and "keeper.start_retry" not in result.stderr  # not retried


def test_help_shows_the_environment_override_form(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "keeper", "run", "--help"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    assert result.returncode == 0
    assert "KEEPER_<SECTION>__<KEY>" in result.stdout and "KEEPER___" not in result.stdout


def test_help_gives_the_drivers_own_shock_premium(tmp_path: Path) -> None:
    from keeper.devnet.activity_config import ActivityConfig

    result = subprocess.run([sys.executable, "-m", "keeper", "run", "--help"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    assert result.returncode == 0
    assert f"jumps to +-{ActivityConfig().shock_premium * 100:g}%" in " ".join(result.stdout.replace("│", " ").split())
