"""quote_pair_trade predicts the executor's PairFills to the wei: a pair (long one Perp market,
short the other, both legs in one transaction) quoted from a SnapshotCollector snapshot and run
through the executor with bounds at 0 bps (any wei of difference would revert) reports exactly
`predicted`, in the eth_call simulation and in the mined event; so does the close quoted from the
next snapshot. A bound one wei too tight reverts with the executor's decoded custom error (or
Perp's own reason for a leg's bound), and the transaction changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.bounds_guard import check_protective_pair_bounds
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.deploy import MAX_UINT256
from keeper.errors import RpcError, TxRevertedError
from keeper.quotes_pair import (
    PairTradeBounds,
    PairTradeQuote,
    build_pair_call,
    compute_pair_bounds,
    div_toward_zero,
    quote_pair_trade,
)
from keeper.types import PerpAccountState
from keeper.venues.executor import EXECUTOR, PairFills, decode_pair_fills_return, pair_fills_from_receipt

from .conftest import Devnet
from .executor_setup import Executor, deploy_executor, token_balance

ETH_SIZE_X18 = 2 * 10**18 + 123_456_789_012_345  # ~6,400 USD
BTC_SIZE_X18 = 105_555_555_555_555_555  # ~6,300 USD: no rounding, any 18-decimal size trades
HEDGE_RATIO_X18 = 1_010_000_000_000_000_000  # beta = 1.01
DEPOSIT_USDC_RAW = 5_000 * 10**6


def collector_for(devnet: Devnet, account: str) -> SnapshotCollector:
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=account)
    collector.prepare()
    return collector


def simulate(devnet: Devnet, ex: Executor, fn: str, args: tuple[Any, ...]) -> PairFills:
    return decode_pair_fills_return(fn, devnet.rpc.eth_call(ex.address, EXECUTOR.encode(fn, *args), sender=ex.owner))


def send(devnet: Devnet, ex: Executor, fn: str, args: tuple[Any, ...]) -> PairFills:
    receipt = devnet.tx.call_fn(ex.owner, ex.address, EXECUTOR, fn, *args)
    found = pair_fills_from_receipt(receipt, ex.address)
    assert found is not None, "no Pair* event in the receipt"
    name, fills = found
    assert name == {"openPair": "PairOpened", "resizePair": "PairResized", "closePair": "PairClosed"}[fn]
    return fills


def run_exactly(devnet: Devnet, ex: Executor, quote: PairTradeQuote, deposit_usdc_raw: int = 0) -> PairFills:
    """Simulate, then send the quoted pair with 0-bps bounds; both report exactly `predicted`."""
    bounds = compute_pair_bounds(quote, slippage_bps=0)
    assert bounds.max_net_exposure_quote_x18 == abs(quote.predicted.net_exposure_quote_x18)
    check_protective_pair_bounds(quote, bounds)  # the planner's guard accepts them
    fn, args = build_pair_call(quote, bounds, MAX_UINT256, deposit_usdc_raw)
    assert simulate(devnet, ex, fn, args) == quote.predicted
    fills = send(devnet, ex, fn, args)
    assert fills == quote.predicted
    return fills


def positions(devnet: Devnet, collector: SnapshotCollector) -> tuple[int, int]:
    account = collector.fetch_snapshot().account
    assert isinstance(account, PerpAccountState)
    return account.markets["ETH"].position_size_x18, account.markets["BTC"].position_size_x18


@pytest.mark.parametrize("eth_sign", [1, -1], ids=["long_eth_short_btc", "short_eth_long_btc"])
def test_pair_open_then_close_fills_equal_the_quotes_to_the_wei(devnet: Devnet, eth_sign: int) -> None:
    # Given a funded executor and a snapshot of the chain
    ex = deploy_executor(devnet)
    collector = collector_for(devnet, ex.address)
    snapshot = collector.fetch_snapshot()
    usdc = devnet.manifest.contracts["USDC"]
    usdc_before = token_balance(devnet, usdc, ex.address)

    # When the pair is quoted on it (beta 1.01) and opened with a deposit
    opened = quote_pair_trade(snapshot.markets["ETH"], snapshot.markets["BTC"], "open",
                              eth_sign * ETH_SIZE_X18, -eth_sign * BTC_SIZE_X18, hedge_ratio_x18=HEDGE_RATIO_X18)
    fills = run_exactly(devnet, ex, opened, DEPOSIT_USDC_RAW)

    # Then both legs filled exactly as predicted (checked inside), in opposite directions, and the
    # chain holds exactly those positions; the deposit moved exactly its amount
    assert fills.perp_base_x18_a == eth_sign * ETH_SIZE_X18 and fills.perp_base_x18_b == -eth_sign * BTC_SIZE_X18
    assert positions(devnet, collector) == (eth_sign * ETH_SIZE_X18, -eth_sign * BTC_SIZE_X18)
    assert token_balance(devnet, usdc, ex.address) == usdc_before - DEPOSIT_USDC_RAW
    # and the net exposure is the documented formula on the fills (toward zero, like Solidity)
    exposure_a = div_toward_zero(fills.position_base_x18_after_a * abs(fills.perp_quote_x18_a), ETH_SIZE_X18)
    exposure_b = div_toward_zero(fills.position_base_x18_after_b * abs(fills.perp_quote_x18_b), BTC_SIZE_X18)
    assert fills.net_exposure_quote_x18 == exposure_a + div_toward_zero(exposure_b * HEDGE_RATIO_X18, 10**18)
    assert (exposure_a > 0) == (eth_sign > 0) and (exposure_b > 0) == (eth_sign < 0)

    # When the close is quoted on the next snapshot and executed
    after_open = collector.fetch_snapshot()
    closing = quote_pair_trade(after_open.markets["ETH"], after_open.markets["BTC"], "close",
                               position_x18_a=fills.position_base_x18_after_a,
                               position_x18_b=fills.position_base_x18_after_b, hedge_ratio_x18=HEDGE_RATIO_X18)
    assert not closing.leg_a.is_partial_close and not closing.leg_b.is_partial_close
    closed = run_exactly(devnet, ex, closing)

    # Then both markets are flat, the net exposure is 0, and the round trip cost fees and impact
    assert closed.perp_base_x18_a == -fills.perp_base_x18_a and closed.perp_base_x18_b == -fills.perp_base_x18_b
    assert closed.net_exposure_quote_x18 == 0
    assert positions(devnet, collector) == (0, 0)
    assert fills.perp_quote_x18_a + fills.perp_quote_x18_b + closed.perp_quote_x18_a + closed.perp_quote_x18_b < 0


def expect_revert(devnet: Devnet, ex: Executor, fn: str, args: tuple[Any, ...]) -> str:
    """The decoded revert of the simulation; then the same transaction, sent, reverts on chain."""
    with pytest.raises(RpcError) as simulated:
        devnet.rpc.eth_call(ex.address, EXECUTOR.encode(fn, *args), sender=ex.owner)
    data = simulated.value.data
    assert isinstance(data, str) and data.startswith("0x"), simulated.value
    reason = EXECUTOR.describe_revert(bytes.fromhex(data[2:]))
    with pytest.raises(TxRevertedError):
        devnet.tx.send(ex.owner, ex.address, EXECUTOR.encode(fn, *args), what=fn)  # mined, status 0
    return reason


def test_a_bound_one_wei_too_tight_reverts_decoded_and_changes_nothing(devnet: Devnet) -> None:
    # Given a funded executor, a quoted pair open and its exact bounds
    ex = deploy_executor(devnet)
    collector = collector_for(devnet, ex.address)
    snapshot = collector.fetch_snapshot()
    quote = quote_pair_trade(snapshot.markets["ETH"], snapshot.markets["BTC"], "open", ETH_SIZE_X18, -BTC_SIZE_X18)
    exact = compute_pair_bounds(quote, slippage_bps=0)
    usdc = devnet.manifest.contracts["USDC"]
    usdc_before = token_balance(devnet, usdc, ex.address)
    net = quote.predicted.net_exposure_quote_x18
    assert net != 0

    def tighter(**changes: int) -> tuple[str, tuple[Any, ...]]:
        return build_pair_call(quote, PairTradeBounds(**{**exact.__dict__, **changes}), MAX_UINT256, DEPOSIT_USDC_RAW)

    # When the net exposure bound is one wei under the prediction: the executor's custom error,
    # decoded from the ABI, carries both numbers
    fn, args = tighter(max_net_exposure_quote_x18=abs(net) - 1)
    assert expect_revert(devnet, ex, fn, args) == f"NetExposureTooLarge({net}, {abs(net) - 1})"
    # When leg A's max quote in (long vETH) is one wei under: Perp's own reason
    fn, args = tighter(opposite_amount_bound_x18_a=exact.opposite_amount_bound_x18_a - 1)
    assert expect_revert(devnet, ex, fn, args) == "CH_TMRL"
    # When leg B's min quote out (short vBTC) is one wei over, after leg A filled
    fn, args = tighter(opposite_amount_bound_x18_b=exact.opposite_amount_bound_x18_b + 1)
    assert expect_revert(devnet, ex, fn, args) == "CH_TLRS"

    # Then nothing changed: no position, no USDC moved (the deposit was undone too)
    assert positions(devnet, collector) == (0, 0)
    assert token_balance(devnet, usdc, ex.address) == usdc_before
    # And the exact bounds still pass, with the predicted fills
    run_exactly(devnet, ex, quote, DEPOSIT_USDC_RAW)
