"""A restart on a devnet with account.executor unset (README's `keeper run` against a separately
started `keeper devnet`) carries on with the executor the journal's last live run traded through,
instead of provisioning a new one whose empty account would close the journal's open positions as
"not on chain" while the old executor still holds them (the eleventh session's operations audit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from keeper.chain.keys import Signer
from keeper.devnet.provision import provision_impersonated
from keeper.errors import ChainMismatchError, ConfigError
from keeper.journal import ChainPosition, Journal
from keeper.launch import build_runtime
from keeper.status import build_status
from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration

DEV_ACCOUNT_2_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # public anvil key


def test_a_live_restart_with_account_executor_unset_carries_on_with_the_journals_executor(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a live keeper that provisioned its executor (account.executor unset) and stopped
    settings = devnet.keeper_config(tmp_path)
    first = build_runtime(settings, dry_run=False)
    executor = first.executor_address
    first.close()
    # When it starts again on the same journal, live and then dry
    with capture_logs() as logs:
        again = build_runtime(settings, dry_run=False)
    again.close()
    dry = build_runtime(settings, dry_run=True)
    dry.close()
    # Then both run on the first executor, none is provisioned, and the reuse is logged
    assert again.executor_address == executor and dry.executor_address == executor
    assert not [e for e in logs if e["event"] == "executor.provisioned"]
    assert [e["executor"] for e in logs if e["event"] == "executor.reused"] == [executor]


def test_a_recorded_executor_without_code_on_this_chain_is_not_reused(devnet: Devnet, signer: Signer,
                                                                       tmp_path: Path) -> None:
    # Given a journal naming an executor the chain has no code at (a devnet started afresh)
    settings = devnet.keeper_config(tmp_path)
    gone = Account.create().address
    with Journal(settings.monitoring.journal) as journal:
        journal.record_executor(devnet.rpc.chain_id(), gone)
    # When the keeper starts, then it provisions one, says why the recorded one was skipped
    # (`executor.skipped`, the thirteenth session's audit), and records the new one
    with capture_logs() as logs:
        runtime = build_runtime(settings, dry_run=False)
    runtime.close()
    assert runtime.executor_address != gone and devnet.rpc.get_code(runtime.executor_address)
    skipped = [e["reason"] for e in logs if e["event"] == "executor.skipped"]
    assert len(skipped) == 1 and f"{gone} has no code on chain {devnet.rpc.chain_id()}" in skipped[0]
    assert [e["event"] for e in logs if e["event"].startswith("executor.")] == ["executor.skipped", "executor.provisioned"]
    with Journal(settings.monitoring.journal) as journal:
        assert journal.recorded_executors().get(devnet.rpc.chain_id()) == runtime.executor_address


def test_another_key_on_the_journals_executor_is_refused_naming_the_journal(
        devnet: Devnet, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a journal whose live run traded through an executor operated by the keeper's key
    settings = devnet.keeper_config(tmp_path)
    build_runtime(settings, dry_run=False).close()
    # When another key starts live on it with account.executor unset
    monkeypatch.setenv("KEEPER_PRIVATE_KEY", DEV_ACCOUNT_2_KEY)
    # Then it is refused, saying the executor came from the journal and what to do
    with pytest.raises(ChainMismatchError, match=r"^account\.executor: unset, and the executor this journal traded "
                                                 r"through, 0x[0-9a-fA-F]{40}, is operated by .*; set account\.executor, "
                                                 r"or use another monitoring\.journal$"):
        build_runtime(settings, dry_run=False)


def test_status_checks_the_chain_against_the_journals_executor_when_account_executor_is_unset(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a live keeper that provisioned its executor (account.executor unset) and stopped
    settings = devnet.keeper_config(tmp_path)
    first = build_runtime(settings, dry_run=False)
    first.close()
    # When `keeper status` runs with the same config, then it reads that executor on the chain
    view = build_status(settings)
    assert view.chain_checked.startswith("yes, at block ")
    assert view.chain_checked.endswith(f"(executor {first.executor_address}, the journal's: account.executor is unset)")
    assert view.mismatches == ()


def test_another_configured_executor_is_refused_while_the_journal_holds_positions_in_its_own(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a journal whose live run traded through its executor and holds an open ETH position
    settings = devnet.keeper_config(tmp_path)
    first = build_runtime(settings, dry_run=False)
    first.close()
    with Journal(settings.monitoring.journal) as journal:
        journal.reconcile({"ETH": ChainPosition(-10**18)}, block=devnet.rpc.block_number())
    other = provision_impersonated(devnet.rpc, devnet.manifest, signer.address)
    # When the keeper starts with account.executor set to another executor of the key
    # Then it is refused naming both executors, and nothing is sent (the journal's ETH stays open)
    _refused_for_another_executor(devnet, tmp_path, other, first.executor_address)


def _refused_for_another_executor(devnet: Devnet, tmp_path: Path, other: str, held: str) -> None:
    """A live start on `tmp_path`'s journal with account.executor = `other` is refused naming `held`, where its
    open ETH position is; nothing sent, the position still open."""
    block = devnet.rpc.block_number()
    moved = devnet.keeper_config(tmp_path, account={"executor": other})
    with pytest.raises(ConfigError, match=rf"^account\.executor: {other}, but this journal's open positions \(ETH\) "
                                          rf"are in {held} on chain 31337: close them there first"):
        build_runtime(moved, dry_run=False)
    assert devnet.rpc.block_number() == block
    with Journal(moved.monitoring.journal) as journal:
        assert list(journal.open_positions()) == ["ETH"]


def test_another_configured_executor_is_refused_while_positions_a_dry_run_adopted_are_in_its_own(
        devnet: Devnet, signer: Signer, tmp_path: Path) -> None:
    # Given a journal whose only start, a dry run on executor E, adopted E's open ETH position (no live run recorded E)
    held = provision_impersonated(devnet.rpc, devnet.manifest, signer.address)
    settings = devnet.keeper_config(tmp_path, account={"executor": held})
    build_runtime(settings, dry_run=True).close()
    with Journal(settings.monitoring.journal) as journal:
        journal.reconcile({"ETH": ChainPosition(-10**18)}, block=devnet.rpc.block_number())
        assert journal.recorded_executors() == {}
    other = provision_impersonated(devnet.rpc, devnet.manifest, signer.address)
    # When a live start names another executor of the key, then it is refused naming E, nothing sent
    _refused_for_another_executor(devnet, tmp_path, other, held)
