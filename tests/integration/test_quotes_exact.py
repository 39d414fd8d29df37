"""The pure quotes equal the real contracts to the wei: Uniswap V2 (router quotes and swaps),
Uniswap V3 (QuoterV2 and SwapRouter swaps, across initialized ticks, from moved prices) and
Perp v2 (ClearingHouse.openPosition / closePosition, static calls and real trades).

Each hypothesis example runs inside its own evm_snapshot / evm_revert, so examples start from
the same devnet and never see each other's trades."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from eth_abi import decode
from eth_utils import keccak
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from keeper.devnet.deploy import DEADLINE_NEVER, MAX_UINT256
from keeper.devnet.txs import codec
from keeper.errors import RpcError, TxRevertedError
from keeper.venues.perp_v2_math import PerpPriceBand, PerpQuote, PerpSwapReverted, quote_perp_close, quote_perp_open
from keeper.venues.uniswap_v2_math import quote_v2_exact_in, quote_v2_exact_out
from keeper.venues.uniswap_v3_libraries import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick
from keeper.venues.uniswap_v3_math import V3PoolState, V3SwapQuote, compute_v3_swap

from .conftest import Devnet
from .helpers_v3 import load_v3_pool

ERC20 = codec("MintableERC20")
POOL = codec("UniswapV3Pool")
QUOTER = codec("QuoterV2")
ROUTER_V3 = codec("SwapRouter")
ROUTER_V2 = codec("UniswapV2Router02")
PAIR = codec("UniswapV2Pair")
CH = codec("ClearingHouse")
NO_REFERRAL = b"\0" * 32
ETH = 10**18
USD = 10**18
POSITION_DUST_RAW = 10  # AccountBalance._DUST
POSITION_CHANGED = keccak(text="PositionChanged(address,address,int256,int256,uint256,int256,int256,uint256)")
examples = settings(
    max_examples=50, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def isolated(d: Devnet) -> Iterator[None]:
    snapshot = d.rpc.call("evm_snapshot")
    try:
        yield
    finally:
        assert d.rpc.call("evm_revert", [snapshot]) is True


def balance(d: Devnet, token: str, account: str) -> int:
    return d.tx.read(token, ERC20, "balanceOf", account)


def reverted_reason(exc: Exception) -> str:
    return exc.rpc_message if isinstance(exc, RpcError) else str(exc)


# ------------------------------------------------------------------------------ Uniswap V2
@examples
@given(market=st.sampled_from(["ETH", "BTC"]), spot_in=st.booleans(), exact_input=st.booleans(),
       share_ppm=st.integers(min_value=1, max_value=300_000))
def test_v2_quotes_equal_the_router_and_the_pair_to_the_wei(
    devnet: Devnet, market: str, spot_in: bool, exact_input: bool, share_ppm: int
) -> None:
    trader = devnet.manifest.accounts.traders[0]
    m = devnet.manifest.market(market)
    usdc = devnet.contract("USDC")
    token_in, token_out = (m.spot_token, usdc) if spot_in else (usdc, m.spot_token)
    with isolated(devnet):
        # Given the pair's reserves, oriented for this swap
        r0, r1, _ = devnet.tx.read(m.uniswap_v2_pair, PAIR, "getReserves")
        token0 = devnet.tx.read(m.uniswap_v2_pair, PAIR, "token0")
        reserve_in, reserve_out = (r0, r1) if token0.lower() == token_in.lower() else (r1, r0)
        router = devnet.contract("UniswapV2Router02")
        before_in, before_out = balance(devnet, token_in, trader), balance(devnet, token_out, trader)
        if exact_input:
            amount_in = max(1, reserve_in * share_ppm // 10**6)
            amount_out = quote_v2_exact_in(amount_in, reserve_in, reserve_out)
            # Then the router's quote and the real swap agree with it
            assert devnet.tx.read(router, ROUTER_V2, "getAmountsOut", amount_in, [token_in, token_out])[-1] == amount_out
            devnet.tx.call_fn(trader, router, ROUTER_V2, "swapExactTokensForTokens", amount_in, amount_out,
                              [token_in, token_out], trader, DEADLINE_NEVER)
        else:
            amount_out = max(1, reserve_out * share_ppm // 10**6)
            amount_in = quote_v2_exact_out(amount_out, reserve_in, reserve_out)
            assert devnet.tx.read(router, ROUTER_V2, "getAmountsIn", amount_out, [token_in, token_out])[0] == amount_in
            devnet.tx.call_fn(trader, router, ROUTER_V2, "swapTokensForExactTokens", amount_out, amount_in,
                              [token_in, token_out], trader, DEADLINE_NEVER)
        assert before_in - balance(devnet, token_in, trader) == amount_in
        assert balance(devnet, token_out, trader) - before_out == amount_out


# ------------------------------------------------------------------------------ Uniswap V3
@dataclass(frozen=True)
class SpotV3:
    pool: str
    token0: str
    token1: str
    fee_pips: int


def spot_v3(d: Devnet, market: str) -> SpotV3:
    m = d.manifest.market(market)
    return SpotV3(m.uniswap_v3_pool, d.tx.read(m.uniswap_v3_pool, POOL, "token0"),
                  d.tx.read(m.uniswap_v3_pool, POOL, "token1"), m.uniswap_v3_fee_pips)


def sizes(max_move_ticks: int, max_raw: int = 10**6) -> st.SearchStrategy[tuple[str, int, int]]:
    """("raw", amount, 0): dust; or ("ticks", n, nudge): the size that moves the price n ticks,
    give or take `nudge` raw units (the rounding edges around a tick)."""
    # sampled_from draws the move uniformly (integers() favours small values)
    moves = st.tuples(st.just("ticks"), st.sampled_from(range(1, max_move_ticks + 1)),
                      st.integers(min_value=-1000, max_value=1000))
    return st.one_of(st.tuples(st.just("raw"), st.integers(min_value=1, max_value=max_raw), st.just(0)), moves, moves)


def tick_price(tick: int) -> int:
    return get_sqrt_ratio_at_tick(max(MIN_TICK + 1, min(MAX_TICK - 1, tick)))


def move_v3_price(d: Devnet, spot: SpotV3, ticks: int) -> None:
    """Push the pool about `ticks` ticks away with a price-limited swap from another trader."""
    if ticks == 0:
        return
    mover = d.manifest.accounts.traders[1]
    tick = d.tx.read(spot.pool, POOL, "slot0")[1]
    token_in, token_out = (spot.token0, spot.token1) if ticks < 0 else (spot.token1, spot.token0)
    d.tx.call_fn(mover, d.contract("SwapRouter"), ROUTER_V3, "exactInputSingle",
                 (token_in, token_out, spot.fee_pips, mover, DEADLINE_NEVER, balance(d, token_in, mover) // 2, 0,
                  tick_price(tick + ticks)))


def quoter_v3(d: Devnet, token_in: str, token_out: str, fee: int, exact_input: bool, amount: int, limit: int) -> tuple[int, ...]:
    fn = "quoteExactInputSingle" if exact_input else "quoteExactOutputSingle"
    # (tokenIn, tokenOut, amount, fee, sqrtPriceLimitX96) for both single-pool quotes
    return QUOTER.decode(fn, d.rpc.eth_call(d.contract("QuoterV2"), QUOTER.encode(fn, (token_in, token_out, amount, fee, limit))))


def swap_v3(d: Devnet, trader: str, token_in: str, token_out: str, fee: int, exact_input: bool, amount: int,
            limit: int) -> tuple[int, int]:
    """A real SwapRouter swap; returns (paid in, received) from the trader's balances."""
    before_in, before_out = balance(d, token_in, trader), balance(d, token_out, trader)
    if exact_input:
        params = (token_in, token_out, fee, trader, DEADLINE_NEVER, amount, 0, limit)
        d.tx.call_fn(trader, d.contract("SwapRouter"), ROUTER_V3, "exactInputSingle", params)
    else:
        params = (token_in, token_out, fee, trader, DEADLINE_NEVER, amount, MAX_UINT256, limit)
        d.tx.call_fn(trader, d.contract("SwapRouter"), ROUTER_V3, "exactOutputSingle", params)
    return before_in - balance(d, token_in, trader), balance(d, token_out, trader) - before_out


def capacity(pool: V3PoolState, zero_for_one: bool, exact_input: bool, ticks: int = 4000) -> int:
    """The specified-side amount that moves the price `ticks` ticks: sizes are fractions of it."""
    far = tick_price(pool.tick - ticks if zero_for_one else pool.tick + ticks)
    q = compute_v3_swap(pool, zero_for_one, (1 << 200) if exact_input else -(1 << 200), far)
    return q.amount_in_raw if exact_input else q.amount_out_raw


def assert_v3_matches_chain(d: Devnet, spot: SpotV3, pool: V3PoolState, q: V3SwapQuote, exact_input: bool,
                            amount: int, limit: int) -> int:
    """Compares with QuoterV2 and a real swap; returns QuoterV2's initializedTicksCrossed."""
    token_in, token_out = (spot.token0, spot.token1) if q.zero_for_one else (spot.token1, spot.token0)
    # QuoterV2 (eth_call): the unspecified amount and the price after
    quoted_amount, quoted_price, quoted_crossed, _ = quoter_v3(d, token_in, token_out, spot.fee_pips, exact_input, amount, limit)
    assert quoted_amount == (q.amount_out_raw if exact_input else q.amount_in_raw)
    assert quoted_price == q.sqrt_price_after_x96
    # the real swap: both balances, the price, the tick and the active liquidity after
    trader = d.manifest.accounts.traders[0]
    paid, received = swap_v3(d, trader, token_in, token_out, spot.fee_pips, exact_input, amount, limit)
    assert (paid, received) == (q.amount_in_raw, q.amount_out_raw)
    sqrt_price, tick = d.tx.read(spot.pool, POOL, "slot0")[:2]
    assert (sqrt_price, tick) == (q.sqrt_price_after_x96, q.tick_after)
    assert d.tx.read(spot.pool, POOL, "liquidity") == q.liquidity_after
    # the ticks crossed are the initialized ticks between the chain's ticks before and after
    low, high = (tick, pool.tick) if q.zero_for_one else (pool.tick, tick)
    assert q.initialized_ticks_crossed == sum(low < t <= high for t in pool.liquidity_net_by_tick)
    return quoted_crossed


@examples
@given(
    market=st.sampled_from(["ETH", "BTC"]),
    pre_move_ticks=st.integers(min_value=-1500, max_value=1500),
    zero_for_one=st.booleans(),
    exact_input=st.booleans(),
    size=sizes(max_move_ticks=4000),
    limit_ticks=st.none() | st.sampled_from(range(1, 4001)),
)
def test_v3_quotes_equal_quoterv2_and_swaprouter_swaps_to_the_wei(
    devnet: Devnet, market: str, pre_move_ticks: int, zero_for_one: bool, exact_input: bool,
    size: tuple[str, int, int], limit_ticks: int | None,
) -> None:
    spot = spot_v3(devnet, market)
    with isolated(devnet):
        # Given a pool moved to a varied price by someone else's swap
        move_v3_price(devnet, spot, pre_move_ticks)
        pool = load_v3_pool(devnet.rpc, spot.pool)
        # When we quote a swap of a few raw units, or of about the size that moves the price a
        # given number of ticks (give or take up to 1000 raw units: the rounding edges)
        kind, value, nudge = size
        event(f"size: {kind}")
        amount = value if kind == "raw" else max(1, capacity(pool, zero_for_one, exact_input, value) + nudge)
        limit = 0 if limit_ticks is None else tick_price(pool.tick - limit_ticks if zero_for_one else pool.tick + limit_ticks)
        q = compute_v3_swap(pool, zero_for_one, amount if exact_input else -amount, limit)
        # Then QuoterV2 and the real swap agree with it, to the wei
        quoter_crossed = assert_v3_matches_chain(devnet, spot, pool, q, exact_input, amount, limit)
        event(f"initialized ticks crossed: {q.initialized_ticks_crossed}")
        target(float(q.initialized_ticks_crossed), label="initialized ticks crossed")  # steer toward crossings
        # QuoterV2 counts set bitmap bits between the ticks before and after (PoolTicksCounter),
        # which is not the swap loop's count in every case: reported, not asserted
        same = quoter_crossed == q.initialized_ticks_crossed
        event(f"QuoterV2's initializedTicksCrossed {'equals' if same else 'differs from'} ours")


@pytest.mark.parametrize("zero_for_one", [True, False], ids=["weth-in", "usdc-in"])
def test_v3_quote_crossing_every_range_edge_equals_the_chain(devnet: Devnet, zero_for_one: bool) -> None:
    # Given the ETH spot pool, when a swap runs up to 6000 ticks away (through both narrower
    # ranges' edges), then the quote crosses two or more initialized ticks and still matches
    spot = spot_v3(devnet, "ETH")
    pool = load_v3_pool(devnet.rpc, spot.pool)
    amount = capacity(pool, zero_for_one, True, ticks=6000)
    q = compute_v3_swap(pool, zero_for_one, amount)
    assert q.initialized_ticks_crossed >= 2
    assert_v3_matches_chain(devnet, spot, pool, q, True, amount, 0)


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
