"""What a start refuses on the chain, naming the key: an account.executor that is not a
BasisExecutor (a contract whose operator() reverts) exits 2, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.errors import ChainMismatchError
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet


def test_an_executor_address_that_is_another_contract_is_refused_naming_the_key(devnet: Devnet, tmp_path: Path) -> None:
    usdc = devnet.manifest.contracts["USDC"]  # code, but no operator()
    settings = devnet.keeper_config(tmp_path, account={"executor": usdc})
    with pytest.raises(ChainMismatchError, match=f"account.executor: {usdc} on chain \\d+ is not a BasisExecutor"):
        build_runtime(settings, dry_run=True)
