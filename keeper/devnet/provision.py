"""Put a BasisExecutor on a devnet (or an anvil fork) for the keeper account: deploy it with its
three roles, register the markets, fund it with USDC and spot inventory, deposit collateral.

Roles (contracts/src/interfaces/IBasisExecutor.sol): the keeper account is the operator (it only
trades); the admin (withdrawals, markets, pause) and the treasury (where withdrawals go) are the
devnet's deployer account unless given. No allowances are set: the executor approves each deposit
and swap for its exact amount itself.

Uses anvil's unlocked (or impersonated) accounts, so it needs no key: a dry run on a fork can
provision the same way. On a real chain: `keeper executor deploy` (keeper/executor_admin.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keeper.chain.rpc import JsonRpc
from keeper.devnet.deploy import USDC_DECIMALS
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec
from keeper.errors import ConfigError


GAS_RESERVE_WEI = 10**18  # what the owner keeps for the gas of the transactions after the WETH deposit


@dataclass(frozen=True)
class ExecutorFunding:
    """What the owner moves into the executor (raw units by market's spot token)."""

    usdc_wallet_raw: int = 400_000 * 10**USDC_DECIMALS  # for buying spot
    usdc_collateral_raw: int = 100_000 * 10**USDC_DECIMALS  # into the Perp vault
    spot_inventory_usd: int = 150_000  # per market, for LONG_PERP (sell spot) trades


@dataclass(frozen=True)
class ExecutorRoles:
    admin: str
    treasury: str
    operator: str


def deploy_executor(tx: DevSender, roles: ExecutorRoles, clearing_house: str, uniswap_v2_router: str,
                    uniswap_v3_swap_router: str, markets: Iterable[tuple[str, str, int]]) -> str:
    """Deploy from the admin and register each (Perp base token, spot token, V3 fee pips)."""
    executor = tx.deploy(roles.admin, "BasisExecutor", roles.admin, roles.treasury, roles.operator, clearing_house,
                         uniswap_v2_router, uniswap_v3_swap_router)
    ex = codec("BasisExecutor")
    for base_token, spot_token, v3_fee_pips in markets:
        tx.call_fn(roles.admin, executor, ex, "setMarket", base_token, spot_token, v3_fee_pips)
    return executor


def provision_executor(tx: DevSender, manifest: DevnetManifest, owner: str,
                       funding: ExecutorFunding = ExecutorFunding(), admin: str | None = None,
                       key_setting: str = "account.key_env") -> str:
    """An executor operated by `owner` (admin and treasury: `admin`, default the deployer),
    funded from the owner's wallet (minted on the devnet when short; the ETH wrapped for the WETH
    inventory topped up by anvil when short). `key_setting`: where the owner's key came from, named
    when it is refused."""
    c = manifest.contracts
    admin = admin or manifest.accounts.deployer
    if owner.lower() == admin.lower():  # the constructor would revert (RolesNotSeparate): send nothing
        raise ConfigError(f"{key_setting}: the key's address {owner} is this devnet's deployer, the admin and "
                          f"treasury of the executor provisioned for it; the operator must be another key (the "
                          f"devnet's keeper account is {manifest.accounts.keeper}), or set account.executor to one "
                          "deployed with `keeper executor deploy`")
    executor = deploy_executor(
        tx, ExecutorRoles(admin, admin, owner), c["ClearingHouse"], c["UniswapV2Router02"], c["SwapRouter"],
        ((m.base_token, m.spot_token, m.uniswap_v3_fee_pips) for m in manifest.markets))
    ex, erc20 = codec("BasisExecutor"), codec("MintableERC20")
    usdc = c["USDC"]
    # Fund: USDC from the owner (mint more on the devnet when short), spot inventory per market.
    need_usdc = funding.usdc_wallet_raw + funding.usdc_collateral_raw
    have_usdc = tx.read(usdc, erc20, "balanceOf", owner)
    if have_usdc < need_usdc:
        tx.call_fn(manifest.accounts.deployer, usdc, erc20, "mint", owner, need_usdc - have_usdc)
    tx.call_fn(owner, usdc, erc20, "transfer", executor, need_usdc)
    for market in manifest.markets:
        index = tx.read(market.aggregator, codec("MockV3Aggregator"), "latestAnswer")
        amount = funding.spot_inventory_usd * 10**market.spot_token_decimals * 10**8 // index
        if market.spot_token == c["WETH9"]:
            top_up_eth(tx.rpc, owner, amount + GAS_RESERVE_WEI)
            tx.call_fn(owner, market.spot_token, codec("WETH9"), "deposit", value_wei=amount)
        else:
            have = tx.read(market.spot_token, erc20, "balanceOf", owner)
            if have < amount:
                tx.call_fn(manifest.accounts.deployer, market.spot_token, erc20, "mint", owner, amount - have)
        tx.call_fn(owner, market.spot_token, erc20, "transfer", executor, amount)
    if funding.usdc_collateral_raw:  # Perp's vault refuses a zero deposit
        tx.call_fn(owner, executor, ex, "depositCollateral", funding.usdc_collateral_raw)
    return executor


def top_up_eth(rpc: JsonRpc, account: str, need_wei: int) -> None:
    """At least `need_wei` of ETH on `account`, set by anvil when short (provisioning runs on anvil
    only): each executor takes its WETH inventory from the owner's ETH, and a devnet's keeper
    account (1,000 ETH) would run dry after ~17 dry-run starts with account.executor unset."""
    have = int(rpc.call("eth_getBalance", [account, "latest"]), 16)
    if have < need_wei:
        rpc.call("anvil_setBalance", [account, hex(need_wei)])


def provision_impersonated(rpc: JsonRpc, manifest: DevnetManifest, owner: str,
                           funding: ExecutorFunding = ExecutorFunding(), key_setting: str = "account.key_env") -> str:
    """provision_executor for an owner whose key anvil does not hold (a fresh keeper key, or none
    in a dry run): its transactions are sent by impersonation, which ends whatever happens."""
    rpc.call("anvil_impersonateAccount", [owner])
    try:
        return provision_executor(DevSender(rpc), manifest, owner, funding, key_setting=key_setting)
    finally:
        rpc.call("anvil_stopImpersonatingAccount", [owner])
