"""The CLI's last word on an error: one line, the exit code, and no URL's secret part."""

from __future__ import annotations

import pytest

from keeper import cli_console
from keeper.errors import ConfigError, KeeperError


def test_an_error_naming_a_keyed_url_prints_only_its_scheme_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = cli_console.fail(KeeperError("node at https://user:pw@eth.example.org:8545/v3/SECRETKEY?x=1 refused"))
    out = capsys.readouterr().err
    assert exit_.exit_code == 1
    assert "SECRETKEY" not in out and "pw@" not in out
    assert "https://eth.example.org:8545/..." in out


def test_bad_input_exits_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = cli_console.fail(ConfigError("chain.rpc_url: must start with http:// or https://"))
    assert exit_.exit_code == 2
    assert "error: chain.rpc_url: must start with http:// or https://" in " ".join(capsys.readouterr().err.split())
