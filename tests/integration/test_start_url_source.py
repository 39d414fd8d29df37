"""A start-up chain check that fails names where the node's URL is set: the environment variable
that holds it (KEEPER_CHAIN__RPC_URL), never the URL itself, whose path may carry a provider's
key (the thirteenth session's operations audit)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration
SECRET = "v3-0123456789abcdef"  # a provider's key in the URL's path


def _run(tmp_path: Path, devnet: Devnet, **env: str) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "run", "--dry-run", "--blocks", "1"], capture_output=True,
                          text=True, timeout=120, env={**base, "KEEPER_CHAIN__MANIFEST": str(manifest),
                                                       "KEEPER_MONITORING__JOURNAL": str(tmp_path / "journal.sqlite"),
                                                       "KEEPER_CHAIN__STARTUP_RETRY_S": "0", **env})


def test_an_unreachable_node_is_named_by_the_variable_that_holds_its_url(devnet: Devnet, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(tmp_path, devnet, KEEPER_CHAIN__RPC_URL=f"http://127.0.0.1:{port}/{SECRET}")
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == [error[0]] and error[0].startswith("error: environment KEEPER_CHAIN__RPC_URL: chain.rpc_url: "), error
    assert SECRET not in result.stderr + result.stdout


def test_a_node_on_another_chain_is_named_by_the_variable_that_holds_its_url(devnet: Devnet, tmp_path: Path) -> None:
    result = _run(tmp_path, devnet, KEEPER_CHAIN__RPC_URL=devnet.manifest.rpc_url, KEEPER_CHAIN__CHAIN_ID="10")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == ("error: chain.chain_id: the node (environment KEEPER_CHAIN__RPC_URL: "
                                              "chain.rpc_url) is chain 31337, config says 10")
