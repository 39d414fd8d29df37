"""Set a fork of a real chain (Optimism) up for a scenario: what the devnet has by construction.

On our devnet the scenario driver (keeper.devnet.activity.MarketActivity) finds everything in the
manifest: aggregators it may post to, traders with collateral and inventory, a spot-liquidity
account. On a real chain nothing of that exists, so on the fork:

- addresses: resolved on chain from the address book (keeper.addressbook.resolve_sources, the
  keeper's own resolution), plus each market's vAMM pool (MarketRegistry.getPool), its
  PriceFeedDispatcher (BaseToken.getPriceFeed) and ChainlinkPriceFeedV3
  (PriceFeedDispatcher.getChainlinkPriceFeedV3);
- oracles: every market's Chainlink aggregator gets MockV3Aggregator's code, its decimals and
  its current answer (keeper/simulate/fork.py: install_mock_aggregator);
- accounts: the fork's anvil dev accounts play the devnet's roles (#0 posts oracle answers, #3 is
  the spot-liquidity account, #4-#6 trade); the traders are funded by storage writes (USDC, spot
  tokens), deposit USDC into the Perp vault and approve the routers;
- Perp's settlement-token cap (ClearingHouseConfig.setSettlementTokenBalanceCap) is lifted by
  impersonating its owner, so that these deposits (and the keeper's collateral) are accepted.

The result is a DevnetManifest for the driver (the keeper itself resolves its addresses as it
does live). Limits: the spot-liquidity account holds no Uniswap positions on a real chain, so a
liquidity_removal event removes nothing there; scenario premiums beyond what Perp's price band
(maxTickCrossedWithinBlock) lets one block move are clamped by Perp, not by us.
"""

from __future__ import annotations

from eth_utils import to_checksum_address

from keeper.addressbook import AddressBook, resolve_sources
from keeper.chain.rpc import JsonRpc
from keeper.collect import Sources
from keeper.devnet.deploy import MAX_UINT256, USDC_DECIMALS
from keeper.devnet.manifest import Accounts, DevnetManifest, MarketAddresses
from keeper.devnet.txs import DevSender, codec
from keeper.errors import ConfigError, FatalError, TxRevertedError
from keeper.logs import get_logger
from keeper.simulate.fork import add_token_balance, balance_of, install_mock_aggregator

log = get_logger("keeper.simulate")
# Uniswap V3's NonfungiblePositionManager, at the same address on Optimism as on mainnet.
OPTIMISM_NONFUNGIBLE_POSITION_MANAGER = "0xC36442b4a4522E871399CD717aBDD847Ab11FE88"
TRADER_VAULT_USDC = 20_000_000
TRADER_WALLET_USDC = 20_000_000
TRADER_SPOT_USD = 15_000_000
ONE_X18 = 10**18


def prepare_optimism_world(rpc: JsonRpc, book: AddressBook,
                           position_manager: str | None = OPTIMISM_NONFUNGIBLE_POSITION_MANAGER
                           ) -> tuple[DevnetManifest, Sources]:
    """Resolve, mock the oracles, fund the driver's accounts; returns (manifest, sources)."""
    sources = resolve_sources(rpc, book)
    tx = DevSender(rpc)
    accounts = [to_checksum_address(a) for a in rpc.call("eth_accounts")]
    if len(accounts) < 7:
        raise FatalError(f"the fork has {len(accounts)} dev accounts; the scenario driver needs 7")
    deployer, keeper, maker, liquidity = accounts[:4]
    traders = accounts[4:7]
    _lift_settlement_cap(rpc, tx, book)
    markets = []
    for source, entry in zip(sources.markets, book.markets):
        if source.uniswap_v2_pair is None or source.uniswap_v3_pool is None:
            raise ConfigError(f"market {source.name}: the scenario driver moves both spot pools; this chain has "
                              f"V2 {source.uniswap_v2_pair} and V3 {source.uniswap_v3_pool}")
        dispatcher = tx.read(source.base_token, codec("BaseToken"), "getPriceFeed")
        feed = tx.read(dispatcher, codec("PriceFeedDispatcher"), "getChainlinkPriceFeedV3")
        perp_pool = tx.read(book.perp.market_registry, codec("MarketRegistry"), "getPool", source.base_token)
        answer = install_mock_aggregator(rpc, source.aggregator, deployer)
        log.info("simulate.oracle_mocked", market=source.name, aggregator=source.aggregator, answer=answer)
        markets.append(MarketAddresses(
            name=source.name, base_token=source.base_token, perp_pool=perp_pool, aggregator=source.aggregator,
            chainlink_price_feed=feed, price_feed_dispatcher=dispatcher, spot_token=source.spot_token,
            spot_token_decimals=source.spot_token_decimals, uniswap_v2_pair=source.uniswap_v2_pair,
            uniswap_v3_pool=source.uniswap_v3_pool, uniswap_v3_fee_pips=entry.uniswap_v3_fee_pips))
    contracts = {
        "USDC": book.usdc, "WETH9": book.weth, "Multicall3": book.multicall3,
        "ClearingHouse": book.perp.clearing_house, "ClearingHouseConfig": book.perp.clearing_house_config,
        "Exchange": book.perp.exchange, "AccountBalance": book.perp.account_balance,
        "MarketRegistry": book.perp.market_registry, "Vault": book.perp.vault,
        "UniswapV3Factory": book.uniswap_v3_factory, "SwapRouter": book.uniswap_v3_swap_router,
    }
    if book.uniswap_v2_router:
        contracts["UniswapV2Router02"] = book.uniswap_v2_router
    if book.uniswap_v2_factory:
        contracts["UniswapV2Factory"] = book.uniswap_v2_factory
    if position_manager:
        contracts["NonfungiblePositionManager"] = position_manager
    for trader in traders:
        _fund_trader(rpc, tx, book, markets, trader)
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    manifest = DevnetManifest(
        rpc_url=rpc.url, chain_id=rpc.chain_id(), deployed_block=int(head["number"], 16),
        deployed_timestamp=int(head["timestamp"], 16),
        accounts=Accounts(deployer=deployer, keeper=keeper, maker=maker, liquidity=liquidity, traders=traders),
        contracts=contracts, markets=markets)
    return manifest, sources


def _lift_settlement_cap(rpc: JsonRpc, tx: DevSender, book: AddressBook) -> None:
    config_abi = codec("ClearingHouseConfig")
    address = book.perp.clearing_house_config
    if tx.read(address, config_abi, "getSettlementTokenBalanceCap") == MAX_UINT256:
        return
    owner = to_checksum_address(tx.read(address, config_abi, "owner"))
    rpc.call("anvil_setBalance", [owner, hex(10**18)])
    rpc.call("anvil_impersonateAccount", [owner])
    try:
        tx.call_fn(owner, address, config_abi, "setSettlementTokenBalanceCap", MAX_UINT256)
    except TxRevertedError as exc:
        raise FatalError(f"cannot lift Perp's settlement-token cap on the fork (as owner {owner}): {exc}") from exc
    finally:
        rpc.call("anvil_stopImpersonatingAccount", [owner])


def _fund_trader(rpc: JsonRpc, tx: DevSender, book: AddressBook, markets: list[MarketAddresses], trader: str) -> None:
    erc20 = codec("MintableERC20")
    usdc_unit = 10**USDC_DECIMALS
    add_token_balance(rpc, book.usdc, trader, (TRADER_VAULT_USDC + TRADER_WALLET_USDC) * usdc_unit)
    tx.call_fn(trader, book.usdc, erc20, "approve", book.perp.vault, MAX_UINT256)
    tx.call_fn(trader, book.perp.vault, codec("Vault"), "deposit", book.usdc, TRADER_VAULT_USDC * usdc_unit)
    spenders = [s for s in (book.uniswap_v2_router, book.uniswap_v3_swap_router) if s]
    for token in [book.usdc, *(m.spot_token for m in markets)]:
        for spender in spenders:
            tx.call_fn(trader, token, erc20, "approve", spender, MAX_UINT256)
    for market in markets:
        index_x18 = tx.read(market.base_token, codec("BaseToken"), "getIndexPrice", 0)
        amount = TRADER_SPOT_USD * 10**market.spot_token_decimals * ONE_X18 // index_x18
        add_token_balance(rpc, market.spot_token, trader, amount)
        if market.spot_token.lower() == book.weth.lower():  # keep WETH9 backed by ETH
            held = int(rpc.call("eth_getBalance", [book.weth, "latest"]), 16)
            rpc.call("anvil_setBalance", [book.weth, hex(held + amount)])
    log.info("simulate.trader_funded", trader=trader, usdc=balance_of(rpc, book.usdc, trader) / usdc_unit)
