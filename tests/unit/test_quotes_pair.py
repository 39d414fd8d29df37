"""The pair trade's exact quote, bounds and executor calldata on hand-built Perp pools (no chain);
the devnet test (tests/integration/test_quotes_pair.py) checks the same quotes against the chain."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import encode
from eth_utils import keccak

from keeper.bounds_guard import UnprotectiveBounds, check_protective_pair_bounds
from keeper.quote_bounds import perp_leg_bound
from keeper.quotes_pair import (
    build_pair_call,
    compute_pair_bounds,
    div_toward_zero,
    quote_pair_trade,
)
from keeper.types import ONE_X18, PerpMarketState
from keeper.venues.executor import EXECUTOR, PairFills, decode_pair_fills_return, pair_fills_from_receipt
from keeper.venues.perp_v2_math import quote_perp_open

from .test_pnl_model import market_view, perp_state

ETH = market_view("ETH", 18, 3000.0)
BTC = market_view("BTC", 8, 60_000.0, perp=perp_state(60_000.0, 60_000.0, depth_liquidity=10**23))
EXECUTOR_ADDRESS = "0x" + "ee" * 20


def test_division_truncates_toward_zero_like_solidity() -> None:
    assert div_toward_zero(7, 2) == 3 and div_toward_zero(-7, 2) == -3
    assert div_toward_zero(7, -2) == -3 and div_toward_zero(-7, -2) == 3
    assert -7 // 2 == -4  # Python's floor, which the executor does not do


def test_open_quotes_each_leg_with_the_exact_perp_math_and_the_net_exposure_formula() -> None:
    # Given long 2 vETH and short 0.1 vBTC, beta 1.02
    beta_x18 = 1_020_000_000_000_000_000
    quote = quote_pair_trade(ETH, BTC, "open", 2 * ONE_X18, -ONE_X18 // 10, hedge_ratio_x18=beta_x18)
    # Then each leg is exactly the Perp quote of its own market (buy exact base out; sell exact base in)
    perp_a, perp_b = ETH.perp, BTC.perp
    assert isinstance(perp_a, PerpMarketState) and isinstance(perp_b, PerpMarketState)
    a = quote_perp_open(perp_a.pool, 1000, False, False, 2 * ONE_X18, insurance_fund_fee_ratio_ppm=100_000)
    b = quote_perp_open(perp_b.pool, 1000, True, True, ONE_X18 // 10, insurance_fund_fee_ratio_ppm=100_000)
    p = quote.predicted
    assert (p.perp_base_x18_a, p.perp_quote_x18_a) == (a.base_delta_raw, a.quote_delta_raw)
    assert (p.perp_base_x18_b, p.perp_quote_x18_b) == (b.base_delta_raw, b.quote_delta_raw)
    assert (p.position_base_x18_after_a, p.position_base_x18_after_b) == (2 * ONE_X18, -ONE_X18 // 10)
    # And the net exposure is the position valued at each leg's fill price, B weighted by beta
    exposure_a = 2 * ONE_X18 * -a.quote_delta_raw // (2 * ONE_X18)
    exposure_b = -(ONE_X18 // 10 * b.quote_delta_raw // (ONE_X18 // 10))
    assert p.net_exposure_quote_x18 == exposure_a + div_toward_zero(exposure_b * beta_x18, ONE_X18)
    assert 5_900 < exposure_a / 1e18 < 6_100 and -6_100 < exposure_b / 1e18 < -5_900


def test_bounds_equal_the_prediction_at_zero_bps_and_loosen_against_us() -> None:
    quote = quote_pair_trade(ETH, BTC, "open", 2 * ONE_X18, -ONE_X18 // 10)
    exact = compute_pair_bounds(quote, 0)
    # leg A buys: max quote in = what it pays; leg B sells: min quote out = what it gets
    assert exact.opposite_amount_bound_x18_a == -quote.predicted.perp_quote_x18_a
    assert exact.opposite_amount_bound_x18_b == quote.predicted.perp_quote_x18_b
    assert exact.max_net_exposure_quote_x18 == abs(quote.predicted.net_exposure_quote_x18)
    loose = compute_pair_bounds(quote, 50)
    assert loose.opposite_amount_bound_x18_a > exact.opposite_amount_bound_x18_a
    assert loose.opposite_amount_bound_x18_b < exact.opposite_amount_bound_x18_b
    assert (loose.opposite_amount_bound_x18_a, loose.opposite_amount_bound_x18_b) == (
        perp_leg_bound(quote.leg_a, 50)[0], perp_leg_bound(quote.leg_b, 50)[0])
    # 0.5% of the gross exposure (~12,000 USD) on top of the predicted net
    slack = loose.max_net_exposure_quote_x18 - exact.max_net_exposure_quote_x18
    assert 59 * ONE_X18 < slack < 61 * ONE_X18


def test_calls_encode_against_the_exported_abi() -> None:
    opened = quote_pair_trade(ETH, BTC, "open", 2 * ONE_X18, -ONE_X18 // 10)
    fn, args = build_pair_call(opened, compute_pair_bounds(opened, 10), 1_700_000_060, 5_000 * 10**6)
    assert fn == "openPair" and args[0] == 5_000 * 10**6
    assert args[1][1:4] == (False, False, 2 * ONE_X18) and args[2][1:4] == (True, True, ONE_X18 // 10)
    assert args[3] == (1_700_000_060, ONE_X18, compute_pair_bounds(opened, 10).max_net_exposure_quote_x18)
    assert EXECUTOR.encode(fn, *args)[:4] == EXECUTOR.fn("openPair").selector
    resized = quote_pair_trade(ETH, BTC, "resize", ONE_X18, -ONE_X18 // 20,
                               position_x18_a=2 * ONE_X18, position_x18_b=-ONE_X18 // 10)
    assert build_pair_call(resized, compute_pair_bounds(resized, 10), 1)[0] == "resizePair"
    assert resized.predicted.position_base_x18_after_a == 3 * ONE_X18
    closing = quote_pair_trade(ETH, BTC, "close", position_x18_a=2 * ONE_X18, position_x18_b=-ONE_X18 // 10)
    fn, args = build_pair_call(closing, compute_pair_bounds(closing, 10), 1)
    assert fn == "closePair" and len(EXECUTOR.encode(fn, *args)) == 4 + 32 * 9
    assert closing.predicted.net_exposure_quote_x18 == 0
    assert closing.predicted.position_base_x18_after_a == 0 == closing.predicted.position_base_x18_after_b


@pytest.mark.parametrize("kwargs, message", [
    ({"base_change_x18_a": ONE_X18, "base_change_x18_b": -ONE_X18, "same": True}, "two markets"),
    ({"base_change_x18_a": 0, "base_change_x18_b": -ONE_X18}, "non-zero base change"),
    ({"base_change_x18_a": ONE_X18, "base_change_x18_b": -ONE_X18, "position_x18_a": ONE_X18}, "flat market"),
    ({"base_change_x18_a": ONE_X18, "base_change_x18_b": -ONE_X18, "hedge_ratio_x18": -1}, "hedge_ratio_x18"),
])
def test_a_pair_that_the_executor_would_refuse_is_not_quoted(kwargs: dict[str, int], message: str) -> None:
    same = kwargs.pop("same", False)
    with pytest.raises(ValueError, match=message):
        quote_pair_trade(ETH, ETH if same else BTC, "open", **kwargs)


def test_fills_decode_from_the_return_value_and_from_the_event() -> None:
    fills = PairFills(2 * ONE_X18, -6_006 * ONE_X18, 2 * ONE_X18, -ONE_X18 // 10, 5_994 * ONE_X18, -ONE_X18 // 10,
                      12 * ONE_X18)
    returned = encode(["(int256,int256,int256,int256,int256,int256,int256)"], [tuple(fills.__dict__.values())])
    assert decode_pair_fills_return("openPair", returned) == fills
    with pytest.raises(ValueError):
        decode_pair_fills_return("openBasis", returned)
    # PairOpened(baseTokenA, baseTokenB, perpBase18A, perpQuote18A, perpBase18B, perpQuote18B, net, afterA, afterB)
    topic = keccak(text="PairOpened(address,address,int256,int256,int256,int256,int256,int256,int256)")
    data = encode(["int256"] * 7, [fills.perp_base_x18_a, fills.perp_quote_x18_a, fills.perp_base_x18_b,
                                   fills.perp_quote_x18_b, fills.net_exposure_quote_x18,
                                   fills.position_base_x18_after_a, fills.position_base_x18_after_b])
    log = {"address": EXECUTOR_ADDRESS, "topics": ["0x" + topic.hex()], "data": "0x" + data.hex()}
    assert pair_fills_from_receipt({"logs": [log]}, EXECUTOR_ADDRESS) == ("PairOpened", fills)
    assert pair_fills_from_receipt({"logs": [log]}, "0x" + "ab" * 20) is None


def test_the_guard_refuses_pair_bounds_that_protect_nothing() -> None:
    quote = quote_pair_trade(ETH, BTC, "open", 2 * ONE_X18, -ONE_X18 // 10)
    check_protective_pair_bounds(quote, compute_pair_bounds(quote, 100))  # 1%: passes
    good = compute_pair_bounds(quote, 100)
    with pytest.raises(UnprotectiveBounds, match="ETH perp oppositeAmountBound"):
        check_protective_pair_bounds(quote, replace(good, opposite_amount_bound_x18_a=2**256 - 1))
    with pytest.raises(UnprotectiveBounds, match="BTC perp oppositeAmountBound"):
        check_protective_pair_bounds(quote, replace(good, opposite_amount_bound_x18_b=1))
    with pytest.raises(UnprotectiveBounds, match="net exposure"):
        check_protective_pair_bounds(quote, replace(good, max_net_exposure_quote_x18=13_000 * ONE_X18))


def test_both_legs_are_quoted_through_the_perp_v2_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """One path for a Perp leg: the pair's legs are the venue adapter's quote_open / quote_close."""
    import keeper.quotes_pair as qp
    from keeper.venues.registry import perp_adapter

    assert qp.PAIR_LEG_VENUE is perp_adapter("perp_v2")
    calls: list[tuple[str, str, int]] = []
    adapter = qp.PAIR_LEG_VENUE

    class Recording:
        def state(self, view):  # type: ignore[no-untyped-def]
            return adapter.state(view)

        def quote_open(self, state, is_short, amount_x18, band):  # type: ignore[no-untyped-def]
            calls.append(("open", state.base_token, amount_x18 if not is_short else -amount_x18))
            return adapter.quote_open(state, is_short, amount_x18, band)

        def quote_close(self, state, position_base_x18, band):  # type: ignore[no-untyped-def]
            calls.append(("close", state.base_token, position_base_x18))
            return adapter.quote_close(state, position_base_x18, band)

    monkeypatch.setattr(qp, "PAIR_LEG_VENUE", Recording())
    opened = quote_pair_trade(ETH, BTC, "open", 2 * ONE_X18, -ONE_X18 // 10)
    closed = quote_pair_trade(ETH, BTC, "close", position_x18_a=2 * ONE_X18, position_x18_b=-ONE_X18 // 10)
    eth, btc = ETH.perp.base_token, BTC.perp.base_token  # type: ignore[union-attr]
    assert calls == [("open", eth, 2 * ONE_X18), ("open", btc, -ONE_X18 // 10),
                     ("close", eth, 2 * ONE_X18), ("close", btc, -ONE_X18 // 10)]
    # and the legs are the adapter's fills, to the wei
    band = opened.price_band_a
    direct = adapter.quote_open(ETH.perp, False, 2 * ONE_X18, band)  # type: ignore[arg-type]
    assert (opened.leg_a.base_delta_x18, opened.leg_a.quote_delta_x18) == (direct.base_delta_raw, direct.quote_delta_raw)
    direct = adapter.quote_close(BTC.perp, -ONE_X18 // 10, closed.price_band_b)  # type: ignore[arg-type]
    assert (closed.leg_b.base_delta_x18, closed.leg_b.quote_delta_x18) == (direct.base_delta_raw, direct.quote_delta_raw)
