"""What a start refuses on the chain, naming the key: an account.executor that is not a
BasisExecutor (a contract whose operator() reverts) exits 2, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.chain.keys import Signer
from keeper.errors import ChainMismatchError
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet


def test_an_executor_address_that_is_another_contract_is_refused_naming_the_key(devnet: Devnet, tmp_path: Path) -> None:
    usdc = devnet.manifest.contracts["USDC"]  # code, but no operator()
    settings = devnet.keeper_config(tmp_path, account={"executor": usdc})
    with pytest.raises(ChainMismatchError, match=f"account.executor: {usdc} on chain \\d+ is not a BasisExecutor"):
        build_runtime(settings, dry_run=True)


def test_a_held_journal_is_refused_before_it_is_opened(devnet: Devnet, tmp_path: Path) -> None:
    from keeper.errors import ConfigError
    from keeper.journal.lock import JournalLock

    settings = devnet.keeper_config(tmp_path)
    running = JournalLock(settings.monitoring.journal).acquire()
    try:
        with pytest.raises(ConfigError, match="monitoring.journal: .* is in use by another keeper"):
            build_runtime(settings, dry_run=True)
        assert not settings.monitoring.journal.exists()  # not created (nor, were it there, migrated) by the refused start
    finally:
        running.release()


def test_two_live_keepers_on_one_key_are_refused_even_with_two_journals(devnet: Devnet, tmp_path: Path,
                                                                        signer: Signer) -> None:
    from keeper.errors import ConfigError

    first = build_runtime(devnet.keeper_config(tmp_path), dry_run=False)
    try:
        other = devnet.keeper_config(tmp_path, account={"executor": first.executor_address},
                                     monitoring={"journal": tmp_path / "other.sqlite"})
        with pytest.raises(ConfigError, match="the pending-transaction store of this key and chain: .* is in use"):
            build_runtime(other, dry_run=False)
    finally:
        first.close()
    build_runtime(other, dry_run=False).close()  # free once the first stopped
