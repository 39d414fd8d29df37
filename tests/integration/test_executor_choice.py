"""One executor choice for `keeper run`, `status` and `stress` (keeper/journal/executors.py): a
given one (an option, account.executor), else the journal's recorded one if it has code on this
chain; a recorded one without code is skipped, saying so (the thirteenth session's operations audit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from keeper.chain.keys import Signer
from keeper.journal import Journal
from keeper.launch import build_runtime
from keeper.status import build_status
from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration


def _stress(devnet: Devnet, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", "stress", "--manifest", str(tmp_path / "manifest.json"),
                           *extra], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**env, "KEEPER_MONITORING__JOURNAL": str(tmp_path / "journal.sqlite"),
                               "KEEPER_MONITORING__LOG_LEVEL": "DEBUG"})


def test_stress_names_the_account_and_where_it_came_from_and_json_is_only_json(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a journal whose live run provisioned (and recorded) its executor
    runtime = build_runtime(devnet.keeper_config(tmp_path), dry_run=False)
    runtime.close()
    executor = runtime.executor_address
    # When `keeper stress --json` runs with no --account and account.executor unset (logs at debug)
    result = _stress(devnet, tmp_path, "--json")
    # Then stdout is one JSON document naming the journal's executor; the logs went to stderr
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["account"], report["account_source"]) == (executor, "journal")
    assert "journal.opened" in result.stderr
    # And --account wins, named as the source, in the text report too
    dead = "0x000000000000000000000000000000000000dEaD"
    text = _stress(devnet, tmp_path, "--account", dead)
    assert text.returncode == 0, text.stderr
    assert f"account {dead} (from --account)" in text.stdout
    journal_text = _stress(devnet, tmp_path)
    assert f"account {executor} (from the journal's last live run on this chain)" in journal_text.stdout


def test_status_skips_a_recorded_executor_without_code_saying_so(devnet: Devnet, tmp_path: Path) -> None:
    # Given a journal that recorded an executor the chain has no code at (a devnet started afresh)
    settings = devnet.keeper_config(tmp_path)
    gone = Account.create().address
    with Journal(settings.monitoring.journal) as journal:
        journal.record_executor(devnet.rpc.chain_id(), gone)
    # When `keeper status` runs with account.executor unset
    view = build_status(settings)
    # Then the chain is not checked against it, and the line says why
    assert not view.chain_read and view.mismatches == ()
    assert view.chain_checked == (f"no: the journal's executor {gone} has no code on chain {devnet.rpc.chain_id()}: "
                                  "skipped (a devnet started afresh?); set account.executor to check the journal "
                                  "against the chain")

