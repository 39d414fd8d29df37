"""Provisioning an executor for a key anvil does not hold (keeper/devnet/provision.py): sent by
impersonation, which ends afterwards, also when provisioning fails."""

from __future__ import annotations

import pytest
from eth_account import Account

from keeper.devnet.provision import ExecutorFunding, provision_impersonated
from keeper.devnet.txs import codec
from keeper.errors import KeeperError

from .conftest import Devnet


def impersonated(devnet: Devnet, account: str) -> bool:
    """Whether anvil still sends for `account` without its key."""
    try:
        devnet.rpc.call("eth_sendTransaction", [{"from": account, "to": account, "value": "0x0"}])
    except KeeperError:
        return False
    return True


def test_an_executor_for_a_fresh_key_is_provisioned_and_the_impersonation_ends(devnet: Devnet) -> None:
    owner = Account.create().address
    devnet.rpc.call("anvil_setBalance", [owner, hex(100 * 10**18)])
    executor = provision_impersonated(devnet.rpc, devnet.manifest, owner)
    assert devnet.tx.read(executor, codec("BasisExecutor"), "operator").lower() == owner.lower()
    assert not impersonated(devnet, owner)


def test_given_a_provisioning_that_fails_then_the_impersonation_ends_too(devnet: Devnet) -> None:
    owner = Account.create().address  # no ETH: its first transaction fails
    with pytest.raises(KeeperError):
        provision_impersonated(devnet.rpc, devnet.manifest, owner, ExecutorFunding())
    assert not impersonated(devnet, owner)


def test_an_owner_short_of_eth_for_the_weth_inventory_is_topped_up(devnet: Devnet) -> None:
    # Given an owner with gas money but less ETH than the executor's WETH inventory (the audit: a
    # devnet keeper account emptied by ~17 dry-run starts, then `WETH9.deposit reverted`)
    owner = Account.create().address
    devnet.rpc.call("anvil_setBalance", [owner, hex(2 * 10**18)])
    # When an executor is provisioned for it, then it is, holding its full WETH inventory
    executor = provision_impersonated(devnet.rpc, devnet.manifest, owner)
    eth = devnet.manifest.market("ETH")
    index = devnet.tx.read(eth.aggregator, codec("MockV3Aggregator"), "latestAnswer")
    inventory = ExecutorFunding().spot_inventory_usd * 10**18 * 10**8 // index
    assert inventory > 2 * 10**18
    assert devnet.tx.read(devnet.contract("WETH9"), codec("MintableERC20"), "balanceOf", executor) == inventory
