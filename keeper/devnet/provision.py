"""Put a BasisExecutor on a devnet (or an anvil fork) for the keeper account: deploy it, register
the markets, set the allowances it needs, fund it with USDC and spot inventory, deposit collateral.

Uses anvil's unlocked accounts (the keeper account is unlocked on anvil), so it needs no key: a
dry run on a fork can provision the same way. On a real chain the owner does these steps itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.devnet.deploy import MAX_UINT256, USDC_DECIMALS
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec


@dataclass(frozen=True)
class ExecutorFunding:
    """What the owner moves into the executor (raw units by market's spot token)."""

    usdc_wallet_raw: int = 400_000 * 10**USDC_DECIMALS  # for buying spot
    usdc_collateral_raw: int = 100_000 * 10**USDC_DECIMALS  # into the Perp vault
    spot_inventory_usd: int = 150_000  # per market, for LONG_PERP (sell spot) trades


def provision_executor(tx: DevSender, manifest: DevnetManifest, owner: str,
                       funding: ExecutorFunding = ExecutorFunding()) -> str:
    c = manifest.contracts
    executor = tx.deploy(owner, "BasisExecutor", owner, c["ClearingHouse"], c["UniswapV2Router02"], c["SwapRouter"])
    ex, erc20 = codec("BasisExecutor"), codec("MintableERC20")
    usdc = c["USDC"]
    for market in manifest.markets:
        tx.call_fn(owner, executor, ex, "setMarket", market.base_token, market.spot_token, market.uniswap_v3_fee_pips)
    for token in {usdc, *(m.spot_token for m in manifest.markets)}:
        for spender in (c["UniswapV2Router02"], c["SwapRouter"]):
            tx.call_fn(owner, executor, ex, "setAllowance", token, spender, MAX_UINT256)
    tx.call_fn(owner, executor, ex, "setAllowance", usdc, c["Vault"], MAX_UINT256)
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
            tx.call_fn(owner, market.spot_token, codec("WETH9"), "deposit", value_wei=amount)
        else:
            have = tx.read(market.spot_token, erc20, "balanceOf", owner)
            if have < amount:
                tx.call_fn(manifest.accounts.deployer, market.spot_token, erc20, "mint", owner, amount - have)
        tx.call_fn(owner, market.spot_token, erc20, "transfer", executor, amount)
    tx.call_fn(owner, executor, ex, "depositCollateral", funding.usdc_collateral_raw)
    return executor
