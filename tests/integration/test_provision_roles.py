"""A live `keeper run` on a devnet or fork with account.executor unset, whose key is the devnet's
deployer (anvil's public account #0, the key a new user reaches for first): provisioning would make
that account the executor's admin, treasury and operator, which the constructor refuses
(RolesNotSeparate). Refused before anything is sent, naming the key's setting (exit 2), instead of
a reverted deployment and its raw revert data (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from keeper.errors import ConfigError
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration

DEV_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public anvil key


def test_a_key_that_is_the_devnets_deployer_is_refused_before_provisioning(
        devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deployer = devnet.manifest.accounts.deployer
    monkeypatch.setenv("KEEPER_PRIVATE_KEY", DEV_ACCOUNT_0_KEY)
    nonce_before = devnet.rpc.call("eth_getTransactionCount", [deployer, "latest"])
    with pytest.raises(ConfigError) as refused:
        build_runtime(devnet.keeper_config(tmp_path), dry_run=False)
    assert str(refused.value).startswith(f"account.key_env: the key's address {deployer} is this devnet's deployer")
    assert devnet.rpc.call("eth_getTransactionCount", [deployer, "latest"]) == nonce_before


def test_a_keystore_that_is_the_devnets_deployer_is_refused_naming_account_keystore(
        devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: "account.key_env: the key's address ...", a setting this config does not use
    deployer = devnet.manifest.accounts.deployer
    keystore = tmp_path / "deployer.json"
    keystore.write_text(json.dumps(Account.encrypt(DEV_ACCOUNT_0_KEY, "pw", kdf="pbkdf2", iterations=2)))
    monkeypatch.setenv("KEEPER_KEYSTORE_PASSWORD", "pw")
    monkeypatch.delenv("KEEPER_PRIVATE_KEY", raising=False)
    nonce_before = devnet.rpc.call("eth_getTransactionCount", [deployer, "latest"])
    with pytest.raises(ConfigError) as refused:
        build_runtime(devnet.keeper_config(tmp_path, account={"keystore": keystore}), dry_run=False)
    assert str(refused.value).startswith(f"account.keystore: the key's address {deployer} is this devnet's deployer")
    assert devnet.rpc.call("eth_getTransactionCount", [deployer, "latest"]) == nonce_before
