"""`keeper executor deploy` and `keeper executor migrate` on an anvil fork of the devnet: the admin
key from an environment variable, transactions through the keeper's own sender, the roles and
markets read back from the chain, the migration refused (nothing sent) while a position is open,
then every unit of collateral and inventory moved to the new executor."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from keeper.chain.rpc import JsonRpc
from keeper.devnet.deploy import MAX_UINT256
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.node import AnvilNode
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World
from keeper.simulate.fork import fund_gas, start_fork

EX, ERC20, VAULT = codec("BasisExecutor"), codec("MintableERC20"), codec("Vault")
KEY_ENV = "KEEPER_ADMIN_PRIVATE_KEY"  # the documented default: a KEEPER_ name that is not a setting


@pytest.fixture(scope="module")
def fork(devnet_world: World) -> Iterator[AnvilNode]:
    node = start_fork(devnet_world.manifest.rpc_url)
    yield node
    node.stop()


@pytest.fixture()
def chain(fork: AnvilNode, devnet_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    rpc = fork.rpc
    assert rpc is not None
    snapshot = rpc.call("evm_snapshot")
    admin = Account.create()
    fund_gas(rpc, admin.address)
    manifest_path = tmp_path / "manifest.json"
    devnet_world.manifest.write(manifest_path)
    monkeypatch.setenv(KEY_ENV, admin.key.hex())
    monkeypatch.setenv("KEEPER_MONITORING__JOURNAL", str(tmp_path / "journal.sqlite"))
    yield {"rpc": rpc, "tx": DevSender(rpc), "admin": admin.address, "manifest": devnet_world.manifest,
           "args": ["--admin-key-env", KEY_ENV, "--rpc-url", rpc.url, "--manifest", str(manifest_path)]}
    assert rpc.call("evm_revert", [snapshot]) is True


@dataclass(frozen=True)
class Ran:
    exit_code: int
    output: str


def _keeper(*args: str) -> Ran:
    """The keeper command as a process (the environment carries the admin key's variable)."""
    result = subprocess.run([sys.executable, "-m", "keeper", *args], env=dict(os.environ), capture_output=True,
                            text=True, timeout=120, check=False)
    return Ran(result.returncode, result.stdout + result.stderr)


def _deploy(chain: dict[str, Any], *extra: str) -> str:
    result = _keeper("executor", "deploy", "--treasury", chain["admin"], "--operator",
                     chain["manifest"].accounts.keeper, *extra, *chain["args"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[lines.index("[account]") + 1].startswith("executor = ")  # the TOML lines to paste, section included
    line = next(line for line in lines if line.startswith("executor = "))
    return line.split('"')[1]


def _balance(rpc: JsonRpc, token: str, account: str) -> int:
    return int(ERC20.decode("balanceOf", rpc.eth_call(token, ERC20.encode("balanceOf", account)))[0])


def _vault_balance(chain: dict[str, Any], account: str) -> int:
    return int(chain["tx"].read(chain["manifest"].contracts["Vault"], VAULT, "getBalance", account))


def _nonce(rpc: JsonRpc, account: str) -> int:
    return int(rpc.call("eth_getTransactionCount", [account, "latest"]), 16)


def _trade(chain: dict[str, Any], executor: str, fn: str) -> None:
    """The keeper (operator) opens or closes 0.1 vETH short + WETH, with loose bounds."""
    eth = chain["manifest"].market("ETH")
    bounds = (MAX_UINT256, 10**18, -(2**255))
    if fn == "openBasis":
        args: tuple[Any, ...] = (0, (eth.base_token, True, True, 10**17, 1, 0), (0, True, False, 10**17, MAX_UINT256), bounds)
    else:
        args = ((eth.base_token, MAX_UINT256, 0), (0, False, True, 10**17, 1), bounds)
    chain["tx"].call_fn(chain["manifest"].accounts.keeper, executor, EX, fn, *args)


def test_deploy_sets_the_roles_and_markets_and_prints_the_config(chain: dict[str, Any]) -> None:
    executor = _deploy(chain, "--markets", "ETH")
    tx, manifest = chain["tx"], chain["manifest"]
    assert tx.read(executor, EX, "admin").lower() == tx.read(executor, EX, "treasury").lower() == chain["admin"].lower()
    assert tx.read(executor, EX, "operator").lower() == manifest.accounts.keeper.lower()
    eth_market = tx.read(executor, EX, "spotMarket", manifest.market("ETH").base_token)
    assert eth_market[0].lower() == manifest.market("ETH").spot_token.lower() and eth_market[2] == 500
    assert tx.read(executor, EX, "spotMarket", manifest.market("BTC").base_token)[0] == "0x" + "00" * 20


def test_deploy_and_migrate_say_which_chain_and_node_they_sent_to(chain: dict[str, Any]) -> None:
    """On a fork, a forgotten --rpc-url sends to the devnet manifest's node, the origin: the output
    and the log name the chain and the node (scheme, host and port) each command sent to."""
    rpc = chain["rpc"]
    node = f"chain {rpc.chain_id()} via {rpc.url}"
    deployed = _keeper("executor", "deploy", "--treasury", chain["admin"], "--operator", chain["manifest"].accounts.keeper,
                       *chain["args"])
    assert deployed.exit_code == 0 and f" on {node} (tx 0x" in deployed.output, deployed.output
    logged = next(line for line in deployed.output.splitlines() if '"executor.deployed"' in line)
    assert f'"chain_id": {rpc.chain_id()}' in logged and f'"rpc_url": "{rpc.url}"' in logged
    old = next(line for line in deployed.output.splitlines() if line.startswith("executor = ")).split('"')[1]
    migrated = _keeper("executor", "migrate", "--from", old, "--to", _deploy(chain), *chain["args"])
    assert migrated.exit_code == 0 and f" on {node} (the old executor is paused)" in migrated.output, migrated.output


def test_deploy_refuses_bad_input_before_sending(chain: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    rpc, admin = chain["rpc"], chain["admin"]
    same = _keeper("executor", "deploy", "--treasury", admin, "--operator", admin, *chain["args"])
    assert same.exit_code == 2 and "--operator" in same.output
    unknown = _keeper("executor", "deploy", "--treasury", admin, "--operator", chain["manifest"].accounts.keeper,
                      "--markets", "DOGE", *chain["args"])
    assert unknown.exit_code == 2 and "--markets" in unknown.output
    monkeypatch.delenv(KEY_ENV)
    no_key = _keeper("executor", "deploy", "--treasury", admin, "--operator", chain["manifest"].accounts.keeper,
                     *chain["args"])
    assert no_key.exit_code == 2 and f"${KEY_ENV} is not set" in no_key.output
    assert _nonce(rpc, admin) == 0


def test_migrate_moves_collateral_and_inventory_and_refuses_while_a_position_is_open(chain: dict[str, Any]) -> None:
    rpc, tx, manifest = chain["rpc"], chain["tx"], chain["manifest"]
    keeper, usdc = manifest.accounts.keeper, manifest.contracts["USDC"]
    weth, wbtc = manifest.market("ETH").spot_token, manifest.market("BTC").spot_token
    old, new = _deploy(chain), _deploy(chain)
    # Given the old executor funded by the keeper, with collateral and an open position
    tx.call_fn(keeper, usdc, ERC20, "transfer", old, 50_000 * 10**6)
    tx.call_fn(keeper, weth, ERC20, "transfer", old, 2 * 10**18)
    tx.call_fn(keeper, wbtc, ERC20, "transfer", old, 10**7)
    tx.call_fn(keeper, old, EX, "depositCollateral", 20_000 * 10**6)
    _trade(chain, old, "openBasis")
    migrate = ("executor", "migrate", "--from", old, "--to", new, *chain["args"])

    # When the admin migrates with the position open: refused, nothing sent
    nonce_before = _nonce(rpc, chain["admin"])
    refused = _keeper(*migrate)
    assert refused.exit_code == 2 and "still holds positions" in refused.output
    # naming the market, not only its Perp base token (the operator reads "ETH")
    assert f"in ETH (base token {manifest.market('ETH').base_token}); close them first" in " ".join(refused.output.split())
    assert _nonce(rpc, chain["admin"]) == nonce_before and tx.read(old, EX, "paused") is False

    # When the keeper has closed it and the admin migrates
    _trade(chain, old, "closeBasis")
    held = {token: _balance(rpc, token, old) for token in (usdc, weth, wbtc)}
    collateral = int(tx.read(manifest.contracts["Vault"], VAULT, "getFreeCollateralByToken", old, usdc))
    treasury_before = {token: _balance(rpc, token, chain["admin"]) for token in held}
    result = _keeper(*migrate)
    assert result.exit_code == 0, result.output

    # Then the old executor is paused and empty, the new one holds exactly what the old one had
    assert tx.read(old, EX, "paused") is True
    assert all(_balance(rpc, token, old) == 0 for token in held)
    assert _vault_balance(chain, old) == 0
    assert all(_balance(rpc, token, new) == amount for token, amount in held.items())
    assert _vault_balance(chain, new) == collateral > 19_000 * 10**6
    assert {token: _balance(rpc, token, chain["admin"]) for token in held} == treasury_before
    # and the keeper cannot trade the old one any more
    with pytest.raises(Exception, match=keccak(text="IsPaused()")[:4].hex()):
        _trade(chain, old, "openBasis")


def test_migrate_refuses_a_key_that_is_not_the_admin(chain: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = _deploy(chain), _deploy(chain)
    monkeypatch.setenv(KEY_ENV, Account.create().key.hex())
    result = _keeper("executor", "migrate", "--from", old, "--to", new, *chain["args"])
    assert result.exit_code == 2 and "--from" in result.output and "admin is" in result.output


def test_migrate_refuses_a_new_executor_without_the_old_ones_markets(chain: dict[str, Any]) -> None:
    """The old executor trades ETH and BTC and holds WBTC; a new one deployed with --markets ETH
    cannot trade BTC: moving the WBTC inventory there would leave it where the keeper cannot trade
    it. Refused before anything is sent, naming --to and the market."""
    rpc, tx, manifest = chain["rpc"], chain["tx"], chain["manifest"]
    old, new = _deploy(chain), _deploy(chain, "--markets", "ETH")
    tx.call_fn(manifest.accounts.keeper, manifest.market("BTC").spot_token, ERC20, "transfer", old, 10**7)
    nonce_before = _nonce(rpc, chain["admin"])
    refused = _keeper("executor", "migrate", "--from", old, "--to", new, *chain["args"])
    assert refused.exit_code == 2, refused.output
    assert f"error: --to: {new} has no market BTC with spot token" in " ".join(refused.output.split())
    assert _nonce(rpc, chain["admin"]) == nonce_before and tx.read(old, EX, "paused") is False
    assert _balance(rpc, manifest.market("BTC").spot_token, old) == 10**7
    # a market dropped on purpose, with no inventory to move, is no reason to refuse
    old_without_wbtc = _deploy(chain)
    tx.call_fn(manifest.accounts.keeper, manifest.market("ETH").spot_token, ERC20, "transfer", old_without_wbtc, 10**17)
    moved = _keeper("executor", "migrate", "--from", old_without_wbtc, "--to", new, *chain["args"])
    assert moved.exit_code == 0, moved.output
    assert _balance(rpc, manifest.market("ETH").spot_token, new) == 10**17


def test_migrate_refuses_a_treasury_without_eth_for_its_transfers_before_sending(
        chain: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold-wallet treasury (not the admin) signs the transfers to the new executor; without ETH
    for their gas the migration would stop midway: the old executor paused and emptied, everything
    in the treasury, the new executor empty. Refused before anything is sent, naming the option."""
    rpc, tx, manifest = chain["rpc"], chain["tx"], chain["manifest"]
    treasury = Account.create()
    monkeypatch.setenv("TREASURY_KEY", treasury.key.hex())
    deploy = ("executor", "deploy", "--treasury", treasury.address, "--operator", manifest.accounts.keeper, *chain["args"])
    old, new = (next(line for line in _keeper(*deploy).output.splitlines() if line.startswith("executor = ")).split('"')[1]
                for _ in range(2))
    tx.call_fn(manifest.accounts.keeper, manifest.contracts["USDC"], ERC20, "transfer", old, 1_000 * 10**6)
    nonce_before = _nonce(rpc, chain["admin"])
    refused = _keeper("executor", "migrate", "--from", old, "--to", new, "--treasury-key-env", "TREASURY_KEY",
                      *chain["args"])
    assert refused.exit_code == 2, refused.output
    assert f"error: --treasury-key-env: the treasury {treasury.address} has too little ETH for the gas" in " ".join(refused.output.split())
    assert _nonce(rpc, chain["admin"]) == nonce_before and tx.read(old, EX, "paused") is False
    assert _balance(rpc, manifest.contracts["USDC"], old) == 1_000 * 10**6


def test_migrate_refuses_an_admin_without_eth_for_its_transactions_before_sending(chain: dict[str, Any]) -> None:
    """The admin pauses, withdraws and deposits (and, as the treasury, transfers): without ETH for
    that gas the migration would stop midway, as a treasury's would. Refused before anything is sent,
    naming the option, by the same check as the treasury's."""
    rpc, tx, manifest = chain["rpc"], chain["tx"], chain["manifest"]
    old, new = _deploy(chain), _deploy(chain)
    tx.call_fn(manifest.accounts.keeper, manifest.contracts["USDC"], ERC20, "transfer", old, 1_000 * 10**6)
    rpc.call("anvil_setBalance", [chain["admin"], hex(10**9)])
    nonce_before = _nonce(rpc, chain["admin"])
    refused = _keeper("executor", "migrate", "--from", old, "--to", new, *chain["args"])
    assert refused.exit_code == 2, refused.output
    assert (f"error: --admin-key-env: the admin {chain['admin']} has too little ETH for the gas of its transactions "
            f"({10**9} wei;") in " ".join(refused.output.split())
    assert _nonce(rpc, chain["admin"]) == nonce_before and tx.read(old, EX, "paused") is False
    assert _balance(rpc, manifest.contracts["USDC"], old) == 1_000 * 10**6



def test_a_migrate_rerun_after_one_stopped_midway_says_the_funds_are_in_the_treasury(chain: dict[str, Any]) -> None:
    """A migration stopped after the withdrawals (the old executor paused and emptied into the
    treasury, the new one not funded): a re-run finds nothing in the old executor. It says where the
    funds are (the treasury's balances of the collateral and the tokens) and what sends them on."""
    rpc, tx, manifest = chain["rpc"], chain["tx"], chain["manifest"]
    admin, usdc, weth = chain["admin"], manifest.contracts["USDC"], manifest.market("ETH").spot_token
    old, new = _deploy(chain), _deploy(chain)
    tx.call_fn(manifest.accounts.keeper, usdc, ERC20, "transfer", old, 1_000 * 10**6)
    tx.call_fn(manifest.accounts.keeper, weth, ERC20, "transfer", old, 2 * 10**18)
    rpc.call("anvil_impersonateAccount", [admin])
    tx.call_fn(admin, old, EX, "setPaused", True)  # the stopped run's first steps
    tx.call_fn(admin, old, EX, "withdrawToken", usdc, 1_000 * 10**6)
    tx.call_fn(admin, old, EX, "withdrawToken", weth, 2 * 10**18)
    rpc.call("anvil_stopImpersonatingAccount", [admin])
    result = _keeper("executor", "migrate", "--from", old, "--to", new, *chain["args"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "nothing to move: the old executor is paused and holds no collateral, tokens or ETH" in said
    assert f"the treasury {admin} holds 1000000000 raw of USDC ({usdc}), 2000000000000000000 raw of WETH ({weth})" in said
    assert f"send them to the new executor {new}" in said
    assert _balance(rpc, usdc, new) == 0 and _balance(rpc, usdc, admin) == 1_000 * 10**6
