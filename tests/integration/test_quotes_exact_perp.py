"""The pure Perp v2 quotes equal ClearingHouse to the wei: openPosition / closePosition, static
calls and real trades, across the vAMM's range edges and Perp's tick band. Each hypothesis example
runs inside its own evm_snapshot / evm_revert (exact_quote_checks.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_abi import decode
from eth_utils import keccak
from hypothesis import event, given, target
from hypothesis import strategies as st

from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.txs import codec
from keeper.errors import RpcError, TxRevertedError
from keeper.venues.perp_v2_math import PerpPriceBand, PerpQuote, PerpSwapReverted, quote_perp_close, quote_perp_open
from keeper.venues.uniswap_v3_math import V3PoolState

from .conftest import Devnet
from .exact_quote_checks import examples, isolated, sizes, tick_price
from .helpers_v3 import POOL, load_v3_pool

CH = codec("ClearingHouse")
NO_REFERRAL = b"\0" * 32
ETH = 10**18
USD = 10**18
POSITION_DUST_RAW = 10  # AccountBalance._DUST
POSITION_CHANGED = keccak(text="PositionChanged(address,address,int256,int256,uint256,int256,int256,uint256)")


def reverted_reason(exc: Exception) -> str:
    return exc.rpc_message if isinstance(exc, RpcError) else str(exc)


# ------------------------------------------------------------------------------ Perp v2
@dataclass(frozen=True)
class PerpMarket:
    base_token: str
    pool: str
    exchange_fee_ratio_ppm: int
    insurance_fund_fee_ratio_ppm: int
    max_tick_crossed_within_block: int


def perp_market(d: Devnet, trader: str) -> PerpMarket:
    eth = d.manifest.market("ETH")
    pool, exchange_fee, _uniswap_fee, insurance_fee, _spread = d.tx.read(
        d.contract("MarketRegistry"), codec("MarketRegistry"), "getMarketInfoByTrader", trader, eth.base_token)
    max_ticks = d.tx.read(d.contract("Exchange"), codec("Exchange"), "getMaxTickCrossedWithinBlock", eth.base_token)
    return PerpMarket(eth.base_token, pool, exchange_fee, insurance_fee, max_ticks)


def pass_price_limit_interval(d: Devnet) -> None:
    """16 s later the next trade's settleFunding re-centres the tick band on the pool's tick."""
    d.rpc.call("evm_increaseTime", [16])
    d.rpc.call("evm_mine", [])


def open_params(market: PerpMarket, short: bool, exact_input: bool, amount: int, limit: int) -> tuple[object, ...]:
    return (market.base_token, short, exact_input, amount, 0, DEADLINE_NEVER, limit, NO_REFERRAL)


def position_changed(receipt: dict[str, object]) -> tuple[int, int, int, int]:
    """(exchangedPositionSize, exchangedPositionNotional, fee, sqrtPriceAfterX96) from the receipt."""
    for log in receipt["logs"]:  # type: ignore[attr-defined]
        if bytes.fromhex(log["topics"][0][2:]) == POSITION_CHANGED:
            size, notional, fee, _open_notional, _pnl, sqrt_price = decode(
                ["int256", "int256", "uint256", "int256", "int256", "uint256"], bytes.fromhex(log["data"][2:]))
            return size, notional, fee, sqrt_price
    raise AssertionError("no PositionChanged event in the receipt")


def assert_perp_trade_matches_chain(d: Devnet, market: PerpMarket, trader: str, q: PerpQuote, fn: str,
                                    params: tuple[object, ...]) -> None:
    ch = d.contract("ClearingHouse")
    # the static call returns (base, quote) = (|exchangedPositionSize|, |notional - fee|)
    assert CH.decode(fn, d.rpc.eth_call(ch, CH.encode(fn, params), sender=trader)) == (q.base_abs_raw, q.quote_abs_raw)
    size_before = d.tx.read(d.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize", trader, market.base_token)
    receipt = d.tx.call_fn(trader, ch, CH, fn, params)
    assert position_changed(receipt) == (q.base_delta_raw, q.exchanged_notional_raw, q.fee_quote_raw, q.sqrt_price_after_x96)
    size_after = d.tx.read(d.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize", trader, market.base_token)
    # (the view reads positions under 10 wei as 0; the traders start flat in every example)
    raw_after = size_before + q.base_delta_raw
    assert size_after == (0 if abs(raw_after) < POSITION_DUST_RAW else raw_after)
    sqrt_price, tick = d.tx.read(market.pool, POOL, "slot0")[:2]
    assert (sqrt_price, tick) == (q.sqrt_price_after_x96, q.tick_after)
    assert d.tx.read(market.pool, POOL, "liquidity") == q.liquidity_after


def perp_capacity(pool: V3PoolState, market: PerpMarket, short: bool, exact_input: bool, ticks: int) -> int:
    """The specified-side amount of an open that moves the vAMM `ticks` ticks."""
    far = tick_price(pool.tick - ticks if short else pool.tick + ticks)
    q = quote_perp_open(pool, market.exchange_fee_ratio_ppm, short, exact_input, 10**30, far)
    return q.base_abs_raw if short == exact_input else q.quote_abs_raw


def move_perp_price(d: Devnet, market: PerpMarket, ticks: int) -> None:
    if ticks == 0:
        return
    mover = d.manifest.accounts.traders[2]
    tick = d.tx.read(market.pool, POOL, "slot0")[1]
    short = ticks < 0
    amount = 2_000 * ETH if short else 6_000_000 * USD  # more than needed: the limit stops it
    d.tx.call_fn(mover, d.contract("ClearingHouse"), CH, "openPosition",
                 open_params(market, short, True, amount, tick_price(tick + ticks)))


@examples
@given(
    # half the time just inside the deep maker range [79500, 80580), so that trades cross its edges
    pre_move_ticks=st.integers(min_value=-550, max_value=550) | st.sampled_from([-550, -520, 480, 500]),
    short=st.booleans(),
    exact_input=st.booleans(),
    size=sizes(max_move_ticks=300, max_raw=10**15),
    limit_ticks=st.none() | st.sampled_from(range(1, 301)),
    close_after=st.booleans(),
)
def test_perp_open_and_close_quotes_equal_clearinghouse_to_the_wei(
    devnet: Devnet, pre_move_ticks: int, short: bool, exact_input: bool, size: tuple[str, int, int],
    limit_ticks: int | None, close_after: bool,
) -> None:
    trader = devnet.manifest.accounts.traders[0]
    market = perp_market(devnet, trader)
    with isolated(devnet):
        # Given the vAMM moved by another trader, and the band re-centred on its tick
        move_perp_price(devnet, market, pre_move_ticks)
        pass_price_limit_interval(devnet)
        pool = load_v3_pool(devnet.rpc, market.pool)
        band = PerpPriceBand.refreshed(pool.tick, market.max_tick_crossed_within_block)
        # When we quote an open of dust, or of about the size that moves the price up to 300
        # ticks (at most ~8.5% from the index with the pre-move: inside Perp's 10% band), maybe
        # price-limited
        kind, value, nudge = size
        event(f"size: {kind}")
        amount = value if kind == "raw" else max(1, perp_capacity(pool, market, short, exact_input, value) + nudge)
        limit = 0 if limit_ticks is None else tick_price(pool.tick - limit_ticks if short else pool.tick + limit_ticks)
        params = open_params(market, short, exact_input, amount, limit)
        try:
            q = quote_perp_open(pool, market.exchange_fee_ratio_ppm, short, exact_input, amount, limit,
                                insurance_fund_fee_ratio_ppm=market.insurance_fund_fee_ratio_ppm, price_band=band)
        except PerpSwapReverted as expected:
            # Then a trade we call reverting reverts on chain with the same reason
            event(f"open reverts {expected.reason}")
            with pytest.raises(RpcError) as err:
                devnet.rpc.eth_call(devnet.contract("ClearingHouse"), CH.encode("openPosition", params), sender=trader)
            assert expected.reason in reverted_reason(err.value)
            return
        crossed = q.liquidity_after != pool.liquidity
        event(f"vAMM initialized ticks crossed: {'>= 1' if crossed else '0'}")
        target(float(crossed), label="vAMM range edge crossed")
        # Then the static call, the PositionChanged event and the pool after all agree with it
        assert_perp_trade_matches_chain(devnet, market, trader, q, "openPosition", params)
        if not close_after:
            return
        # And closing that position later quotes exactly, too
        pass_price_limit_interval(devnet)
        pool = load_v3_pool(devnet.rpc, market.pool)
        band = PerpPriceBand.refreshed(pool.tick, market.max_tick_crossed_within_block)
        close_params = (market.base_token, 0, 0, DEADLINE_NEVER, NO_REFERRAL)
        position = devnet.tx.read(devnet.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize",
                                  trader, market.base_token)
        try:
            closing = quote_perp_close(pool, market.exchange_fee_ratio_ppm, position, band,
                                       insurance_fund_fee_ratio_ppm=market.insurance_fund_fee_ratio_ppm)
        except PerpSwapReverted as expected:
            event(f"close reverts {expected.reason}")
            with pytest.raises(TxRevertedError, match=expected.reason):
                devnet.tx.call_fn(trader, devnet.contract("ClearingHouse"), CH, "closePosition", close_params)
            return
        assert_perp_trade_matches_chain(devnet, market, trader, closing, "closePosition", close_params)


def test_perp_quote_across_the_deep_range_edge_equals_the_chain(devnet: Devnet) -> None:
    # Given the vAMM 500 ticks below the index, near the deep maker range's lower edge (79500)
    trader = devnet.manifest.accounts.traders[0]
    market = perp_market(devnet, trader)
    move_perp_price(devnet, market, -500)
    pass_price_limit_interval(devnet)
    pool = load_v3_pool(devnet.rpc, market.pool)
    band = PerpPriceBand.refreshed(pool.tick, market.max_tick_crossed_within_block)
    # When a short sized to end 100 ticks below that edge takes the price through it
    amount = perp_capacity(pool, market, True, True, pool.tick - 79400)
    q = quote_perp_open(pool, market.exchange_fee_ratio_ppm, True, True, amount,
                        insurance_fund_fee_ratio_ppm=market.insurance_fund_fee_ratio_ppm, price_band=band)
    assert q.tick_after < 79500 and q.liquidity_after < pool.liquidity
    # Then the chain agrees to the wei
    assert_perp_trade_matches_chain(devnet, market, trader, q, "openPosition", open_params(market, True, True, amount, 0))


def test_perp_close_that_stops_on_an_initialized_band_edge_reverts_as_quoted(devnet: Devnet) -> None:
    # Given the tick band centred on tick 80500, so that its lower edge is the initialized tick
    # 79500 (the deep maker range's lower bound)
    trader, mover = devnet.manifest.accounts.traders[0], devnet.manifest.accounts.traders[2]
    market = perp_market(devnet, trader)
    ch = devnet.contract("ClearingHouse")
    start_tick = devnet.tx.read(market.pool, POOL, "slot0")[1]
    move_perp_price(devnet, market, 80500 - start_tick)
    pass_price_limit_interval(devnet)
    # And within the same 15 s: a long of ~200 ticks, then another trader pushing the price
    # down to tick 79550
    devnet.tx.call_fn(trader, ch, CH, "openPosition", open_params(market, False, True, 400_000 * USD, 0))
    devnet.tx.call_fn(mover, ch, CH, "openPosition", open_params(market, True, True, 2_000 * ETH, tick_price(79550)))
    pool = load_v3_pool(devnet.rpc, market.pool)
    band = PerpPriceBand(80500, market.max_tick_crossed_within_block)
    position = devnet.tx.read(devnet.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize",
                              trader, market.base_token)
    # When the long is closed, selling it runs into the band's edge at 79500: the swap stops
    # exactly on that initialized tick, the pool reports tick 79499, outside the band
    with pytest.raises(PerpSwapReverted) as quoted:
        quote_perp_close(pool, market.exchange_fee_ratio_ppm, position, band,
                         insurance_fund_fee_ratio_ppm=market.insurance_fund_fee_ratio_ppm)
    # Then the quote says EX_OPLAS, and so does the chain
    assert quoted.value.reason == "EX_OPLAS"
    close = (market.base_token, 0, 0, DEADLINE_NEVER, NO_REFERRAL)
    with pytest.raises(RpcError, match="EX_OPLAS"):
        devnet.rpc.eth_call(ch, CH.encode("closePosition", close), sender=trader)
    # And a limit one tick inside the edge makes it a partial close that quotes exactly
    inside = (market.base_token, tick_price(79501), 0, DEADLINE_NEVER, NO_REFERRAL)
    partial = quote_perp_close(pool, market.exchange_fee_ratio_ppm, position, band, tick_price(79501),
                               insurance_fund_fee_ratio_ppm=market.insurance_fund_fee_ratio_ppm)
    assert partial.is_partial_close and partial.tick_after == 79501
    assert_perp_trade_matches_chain(devnet, market, trader, partial, "closePosition", inside)
