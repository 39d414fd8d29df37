"""The devnet carries the real protocols and they behave: Perp v2 trades and funding, the Vault,
Uniswap V2 and V3 swaps, the market-activity driver."""

from __future__ import annotations

import math

import pytest

from keeper.devnet.activity import ActivityConfig, MarketActivity, scripted_shock
from keeper.devnet.deploy import DEADLINE_NEVER, MAX_UINT256, Q96
from keeper.devnet.node import latest_block_timestamp
from keeper.devnet.txs import codec
from keeper.errors import TxRevertedError

from .conftest import Devnet

NO_REFERRAL = b"\0" * 32
ETH = 10**18
USDC = 10**6


def open_position(d: Devnet, trader: str, base: str, *, short: bool, exact_input: bool, amount: int, limit: int = 0) -> None:
    d.tx.call_fn(trader, d.contract("ClearingHouse"), codec("ClearingHouse"), "openPosition",
                 (base, short, exact_input, amount, 0, DEADLINE_NEVER, limit, NO_REFERRAL))


def position_size(d: Devnet, trader: str, base: str) -> int:
    return d.tx.read(d.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize", trader, base)


def deposit(d: Devnet, account: str, usdc_raw: int) -> None:
    d.tx.call_fn(account, d.contract("USDC"), codec("MintableERC20"), "approve", d.contract("Vault"), MAX_UINT256)
    d.tx.call_fn(account, d.contract("Vault"), codec("Vault"), "deposit", d.contract("USDC"), usdc_raw)


def balance_of(d: Devnet, token: str, account: str) -> int:
    return d.tx.read(token, codec("MintableERC20"), "balanceOf", account)


# ------------------------------------------------------------------------------------ manifest
def test_every_manifest_address_has_code(devnet: Devnet) -> None:
    addresses = devnet.manifest.all_addresses()
    assert len(addresses) >= 30
    empty = [name for name, address in addresses.items() if not devnet.rpc.get_code(address)]
    assert empty == []


def test_chain_clock_is_reanchored_after_loading_state(devnet: Devnet) -> None:
    # Given the world loaded from a saved state, the head is one re-anchoring block past the save,
    # not at wall-clock time (which would break the 30-minute TWAP the trades need).
    head_ts = latest_block_timestamp(devnet.rpc)
    assert 1 <= head_ts - devnet.manifest.deployed_timestamp <= 3


def test_multicall3_equivalent_sits_at_the_canonical_address(devnet: Devnet) -> None:
    mc = codec("Multicall3")
    assert devnet.contract("Multicall3") == "0xcA11bde05977b3631167028862bE2a173976CA11"
    assert devnet.tx.read(devnet.contract("Multicall3"), mc, "getChainId") == devnet.manifest.chain_id


# ------------------------------------------------------------------------------------ Perp v2
@pytest.mark.parametrize("short", [True, False], ids=["short", "long"])
def test_open_and_close_a_perp_position(devnet: Devnet, short: bool) -> None:
    # Given the keeper with collateral in the Vault
    keeper = devnet.manifest.accounts.keeper
    eth = devnet.manifest.market("ETH")
    deposit(devnet, keeper, 10_000 * USDC)
    # When it opens exactly 1 vETH (short: exact base in; long: exact base out)
    open_position(devnet, keeper, eth.base_token, short=short, exact_input=short, amount=ETH)
    # Then its position is exactly -1 / +1 vETH
    assert position_size(devnet, keeper, eth.base_token) == (-ETH if short else ETH)
    # When it closes, the position is flat
    devnet.tx.call_fn(keeper, devnet.contract("ClearingHouse"), codec("ClearingHouse"), "closePosition",
                      (eth.base_token, 0, 0, DEADLINE_NEVER, NO_REFERRAL))
    assert position_size(devnet, keeper, eth.base_token) == 0
    # And the round trip cost fees: free collateral is below the deposit
    free = devnet.tx.read(devnet.contract("Vault"), codec("Vault"), "getFreeCollateral", keeper)
    assert 9_990 * USDC < free < 10_000 * USDC


def test_deposit_and_withdraw_return_the_exact_amount(devnet: Devnet) -> None:
    keeper = devnet.manifest.accounts.keeper
    usdc = devnet.contract("USDC")
    vault, vault_abi = devnet.contract("Vault"), codec("Vault")
    before = balance_of(devnet, usdc, keeper)
    deposit(devnet, keeper, 12_345_678_901)
    assert balance_of(devnet, usdc, keeper) == before - 12_345_678_901
    assert devnet.tx.read(vault, vault_abi, "getBalance", keeper) == 12_345_678_901
    devnet.tx.call_fn(keeper, vault, vault_abi, "withdraw", usdc, 12_345_678_901)
    assert balance_of(devnet, usdc, keeper) == before
    assert devnet.tx.read(vault, vault_abi, "getBalance", keeper) == 0


def test_perp_refuses_to_open_without_collateral(devnet: Devnet) -> None:
    eth = devnet.manifest.market("ETH")
    with pytest.raises(TxRevertedError, match="CH_NEFCI"):
        open_position(devnet, devnet.manifest.accounts.keeper, eth.base_token, short=True, exact_input=True, amount=ETH)


@pytest.mark.parametrize("premium_sign", [+1, -1], ids=["market-above-index", "market-below-index"])
def test_pending_funding_sign_follows_mark_minus_index(devnet: Devnet, premium_sign: int) -> None:
    eth = devnet.manifest.market("ETH")
    long_trader, short_trader, pusher = devnet.manifest.accounts.traders
    # Given one long and one short of 5 vETH each
    open_position(devnet, long_trader, eth.base_token, short=False, exact_input=False, amount=5 * ETH)
    open_position(devnet, short_trader, eth.base_token, short=True, exact_input=True, amount=5 * ETH)
    # And the market pushed 2% away from the index (3000) by a price-limited trade
    target = 3000 * (1 + premium_sign * 0.02)
    limit = math.isqrt(int(target * 1e6) * Q96 * Q96 // 10**6)
    push_long = premium_sign > 0
    open_position(devnet, pusher, eth.base_token, short=not push_long, exact_input=True,
                  amount=10**26 if push_long else 10**24, limit=limit)
    # When an hour passes with the oracle kept fresh at 3000
    for _ in range(6):
        devnet.rpc.call("evm_increaseTime", [600])
        devnet.post_index("ETH", 3000 * 10**8)
    # Then when the market is above the index longs pay shorts, and below it shorts pay longs
    exchange, ex_abi = devnet.contract("Exchange"), codec("Exchange")
    long_pays = devnet.tx.read(exchange, ex_abi, "getPendingFundingPayment", long_trader, eth.base_token)
    short_pays = devnet.tx.read(exchange, ex_abi, "getPendingFundingPayment", short_trader, eth.base_token)
    assert long_pays * premium_sign > 0
    assert short_pays * premium_sign < 0
    # Size: 5 ETH * ~2% of 3000 * 1/24 day, about 12.5 USD (18 decimals), give or take the TWAP ramp
    assert 3 * ETH < abs(long_pays) < 15 * ETH


# ------------------------------------------------------------------------------------ Uniswap
def test_uniswap_v2_swap_pays_exactly_what_the_router_quotes(devnet: Devnet) -> None:
    keeper = devnet.manifest.accounts.keeper
    eth = devnet.manifest.market("ETH")
    usdc, weth = devnet.contract("USDC"), eth.spot_token
    router, router_abi = devnet.contract("UniswapV2Router02"), codec("UniswapV2Router02")
    devnet.tx.call_fn(keeper, usdc, codec("MintableERC20"), "approve", router, MAX_UINT256)
    amount_in = 25_000 * USDC
    quoted = devnet.tx.read(router, router_abi, "getAmountsOut", amount_in, [usdc, weth])[-1]
    before = balance_of(devnet, weth, keeper)
    devnet.tx.call_fn(keeper, router, router_abi, "swapExactTokensForTokens", amount_in, quoted, [usdc, weth], keeper, DEADLINE_NEVER)
    assert balance_of(devnet, weth, keeper) - before == quoted
    assert 8 * ETH < quoted < 25 * ETH // 3  # about 8.2 WETH at 3000 less fee and impact


def test_uniswap_v3_swap_crosses_initialized_ticks_and_matches_quoter(devnet: Devnet) -> None:
    trader = devnet.manifest.accounts.traders[0]
    eth = devnet.manifest.market("ETH")
    usdc, weth = devnet.contract("USDC"), eth.spot_token
    pool, pool_abi = eth.uniswap_v3_pool, codec("UniswapV3Pool")
    amount_in = 4_000_000 * USDC
    # Given QuoterV2's answer for a large USDC -> WETH swap
    quote = codec("QuoterV2").decode(
        "quoteExactInputSingle",
        devnet.rpc.eth_call(devnet.contract("QuoterV2"), codec("QuoterV2").encode(
            "quoteExactInputSingle", (usdc, weth, amount_in, eth.uniswap_v3_fee_pips, 0))),
    )
    amount_out_quoted, _, ticks_crossed, _ = quote
    liquidity_before = devnet.tx.read(pool, pool_abi, "liquidity")
    tick_before = devnet.tx.read(pool, pool_abi, "slot0")[1]
    before = balance_of(devnet, weth, trader)
    # When the swap runs through SwapRouter
    devnet.tx.call_fn(trader, devnet.contract("SwapRouter"), codec("SwapRouter"), "exactInputSingle",
                      (usdc, weth, eth.uniswap_v3_fee_pips, trader, DEADLINE_NEVER, amount_in, 0, 0))
    # Then it pays exactly the quote, crossed initialized ticks, and the active liquidity changed
    assert balance_of(devnet, weth, trader) - before == amount_out_quoted
    assert ticks_crossed >= 1
    assert devnet.tx.read(pool, pool_abi, "liquidity") != liquidity_before
    assert devnet.tx.read(pool, pool_abi, "slot0")[1] != tick_before


# ------------------------------------------------------------------------------------ activity
def _run_driver(devnet: Devnet, seed: int, steps: int) -> list[object]:
    driver = MarketActivity(devnet.rpc, devnet.manifest, ActivityConfig(seed=seed, step_s=120, jump_probability=0.2))
    driver.shock_premium("ETH", 0.015)
    return [driver.step() for _ in range(steps)]


def test_activity_driver_is_deterministic_for_a_seed(devnet: Devnet) -> None:
    snapshot = devnet.rpc.call("evm_snapshot")
    first = _run_driver(devnet, seed=11, steps=4)
    devnet.rpc.call("evm_revert", [snapshot])
    snapshot = devnet.rpc.call("evm_snapshot")
    second = _run_driver(devnet, seed=11, steps=4)
    devnet.rpc.call("evm_revert", [snapshot])
    other = _run_driver(devnet, seed=12, steps=4)
    assert first == second  # same blocks, timestamps, index, perp and spot prices
    assert first != other


def test_activity_driver_moves_index_perp_and_spot_consistently(devnet: Devnet) -> None:
    reports = _run_driver(devnet, seed=5, steps=6)
    for report in reports:
        for tick in report.markets:  # type: ignore[attr-defined]
            # spot tracks the index; the perp sits at index * (1 + premium target)
            assert tick.spot_v3_price_usd == pytest.approx(tick.index_price_usd, rel=0.005)
            assert tick.spot_v2_price_usd == pytest.approx(tick.index_price_usd, rel=0.005)
            assert tick.perp_price_usd == pytest.approx(tick.index_price_usd * (1 + tick.premium_target), rel=0.002)
    timestamps = [r.timestamp for r in reports]  # type: ignore[attr-defined]
    assert all(b - a >= 120 for a, b in zip(timestamps, timestamps[1:]))
    # and the oracle the Perp index reads moved with it
    eth = devnet.manifest.market("ETH")
    index = devnet.tx.read(eth.base_token, codec("BaseToken"), "getIndexPrice", 0)
    assert index == pytest.approx(reports[-1].markets[1].index_price_usd * 1e18, rel=1e-6)  # type: ignore[attr-defined]


def test_scripted_shocks_take_the_markets_in_turn_and_flip_sign_each_round(devnet: Devnet) -> None:
    config = ActivityConfig(seed=3, step_s=60, premium_vol_daily=0.0, shock_every_steps=2)
    assert [scripted_shock(step, config, ["BTC", "ETH"]) for step in range(1, 9)] == [
        None, ("BTC", 0.02), None, ("ETH", 0.02), None, ("BTC", -0.02), None, ("ETH", -0.02)]
    assert scripted_shock(4, ActivityConfig(), ["BTC", "ETH"]) is None  # off by default
    driver = MarketActivity(devnet.rpc, devnet.manifest, config)
    first, second = driver.step(), driver.step()
    assert first.shock is None and second.shock == ("BTC", 0.02)
    btc = {t.name: t for t in second.markets}["BTC"]
    assert btc.premium_target == pytest.approx(0.02, rel=0.02)  # one step's decay, no noise
    assert btc.perp_price_usd == pytest.approx(btc.index_price_usd * 1.02, rel=0.003)  # the vAMM moved to it
