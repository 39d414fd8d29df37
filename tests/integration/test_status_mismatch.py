"""`keeper status` exits 1 when the journal and the chain disagree (after printing the whole report),
and `--json` says whether the chain was read (`chain_read`), so a script need not parse
`chain_checked` (the thirteenth session's operations audit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.chain.keys import Signer
from keeper.journal import ChainPosition, Journal
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration


def _status(devnet: Devnet, tmp_path: Path, *extra: str, rpc: bool = True) -> subprocess.CompletedProcess[str]:
    chain = ["--rpc-url", devnet.manifest.rpc_url, "--manifest", str(tmp_path / "manifest.json")] if rpc else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "status", *chain, *extra], capture_output=True, text=True,
                          timeout=60, env={**env, "KEEPER_MONITORING__JOURNAL": str(tmp_path / "journal.sqlite")})


def _journal_with_executor(devnet: Devnet, tmp_path: Path) -> None:
    """A live keeper provisioned its executor (recorded in the journal) and stopped."""
    build_runtime(devnet.keeper_config(tmp_path), dry_run=False).close()


def test_a_mismatch_prints_the_whole_report_then_exits_1(devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a journal that books an ETH short its executor does not hold on chain
    _journal_with_executor(devnet, tmp_path)
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.reconcile({"ETH": ChainPosition(-10**18)}, block=devnet.rpc.block_number())
    # When `keeper status` checks it against the chain, as text and as JSON
    text, as_json = _status(devnet, tmp_path), _status(devnet, tmp_path, "--json")
    # Then both print the whole report (the position, the PnL and the mismatch) and exit 1
    assert text.returncode == 1, text.stderr
    assert "ETH" in text.stdout and "PnL total" in text.stdout
    assert f"MISMATCH ETH: journal perp {-10**18}, chain 0" in text.stdout
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["chain_read"] is True and report["mismatches"] == [f"ETH: journal perp {-10**18}, chain 0"]


def test_no_mismatch_exits_0_and_json_says_the_chain_was_read(devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a journal whose executor holds what the journal books (nothing)
    _journal_with_executor(devnet, tmp_path)
    # When `keeper status --json` runs with and without a node
    read, unread = _status(devnet, tmp_path, "--json"), _status(devnet, tmp_path, "--json", rpc=False)
    # Then both exit 0, and chain_read says which one read the chain
    assert read.returncode == 0, read.stderr
    assert unread.returncode == 0, unread.stderr
    assert json.loads(read.stdout)["chain_read"] is True and json.loads(read.stdout)["mismatches"] == []
    assert json.loads(unread.stdout)["chain_read"] is False
