"""`keeper executor deploy | migrate` read two keys by variable name (--admin-key-env and, for a
treasury that is not the admin, --treasury-key-env): a variable that is not set is refused in one
line naming the option it came from, exit 2, before the node is contacted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import structlog

from keeper.cli import app
from keeper.cli_console import run_app

NODE = "http://127.0.0.1:9"  # nothing listens there: the key is checked first
ADDRESS_A, ADDRESS_B = "0x" + "11" * 20, "0x" + "22" * 20
DEV_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # public anvil key


def cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The command line in this process; the logging it configures (onto the captured stderr, closed
    after the test) is restored after it."""
    monkeypatch.setattr(sys, "argv", ["keeper", *argv])
    previous = structlog.get_config()
    try:
        code = run_app(app)
    finally:
        structlog.configure(**previous)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "option", "variable"), [
    (["executor", "deploy", "--treasury", ADDRESS_A, "--operator", ADDRESS_B, "--admin-key-env", "ADMN_KEY"],
     "--admin-key-env", "ADMN_KEY"),
    (["executor", "migrate", "--from", ADDRESS_A, "--to", ADDRESS_B, "--admin-key-env", "ADMN_KEY"],
     "--admin-key-env", "ADMN_KEY"),
    (["executor", "migrate", "--from", ADDRESS_A, "--to", ADDRESS_B, "--treasury-key-env", "TREAS_KEY"],
     "--treasury-key-env", "TREAS_KEY"),
])
def test_an_unset_key_variable_is_refused_naming_its_option(
        argv: list[str], option: str, variable: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KEEPER_ADMIN_PRIVATE_KEY", DEV_KEY)
    monkeypatch.delenv(variable, raising=False)
    code, err = cli([*argv, "--rpc-url", NODE], monkeypatch, capsys)
    lines = [line for line in err.strip().splitlines() if not line.startswith("{")]
    assert code == 2 and lines == [f"error: {option}: ${variable} is not set: put the signing key there (64 hex "
                                   "digits), or use a keystore file"], err


def test_a_keystore_without_its_password_names_the_password_option(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    keystore = tmp_path / "k.json"
    keystore.write_text('{"crypto": {}}')
    monkeypatch.delenv("KEEPER_ADMIN_KEYSTORE_PASSWORD", raising=False)
    code, err = cli(["executor", "deploy", "--treasury", ADDRESS_A, "--operator", ADDRESS_B, "--admin-keystore",
                     str(keystore), "--rpc-url", NODE], monkeypatch, capsys)
    lines = [line for line in err.strip().splitlines() if not line.startswith("{")]
    assert code == 2 and lines == ["error: --admin-password-env: keystore password: set $KEEPER_ADMIN_KEYSTORE_PASSWORD "
                                   "or give a password file"], err
