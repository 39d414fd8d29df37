"""A trade's legs with their fills (keeper/trade_legs.py), and the simulation report listing them."""

from __future__ import annotations

import copy

import pytest

from keeper.simulate.report import render_html, spot_usd
from keeper.trade_legs import basis_leg_fills, describe_legs, legs_json, logged_legs
from keeper.types import PredictedFills, TradeLeg, basis_legs

from .test_simulate_report import report, sample

# a short-perp open: perp sells 1.5 base for 4,495.5 quote; spot buys 1.5 WETH for 4,512.25 USDC
FILLS = PredictedFills(perp_base_x18=-15 * 10**17, perp_quote_x18=4_495_500 * 10**15, spot_raw=15 * 10**17,
                       usdc_raw=-4_512_250_000, residual_base_x18=0, net_quote_x18=-16_750 * 10**15)


def test_each_leg_carries_its_venue_side_size_and_quote_exactly() -> None:
    perp, spot = basis_leg_fills(basis_legs("ETH", "uniswap_v3"), FILLS, 18)
    assert (perp.leg, perp.side, perp.size_raw, perp.quote_raw) == (TradeLeg("perp", "perp_v2", "ETH"), "sell", -15 * 10**17,
                                                                   4_495_500 * 10**15)
    assert (spot.leg, spot.side, spot.size_raw, spot.quote_raw) == (TradeLeg("spot", "uniswap_v3", "ETH"), "buy", 15 * 10**17,
                                                                   -4_512_250_000)
    logged = legs_json(basis_legs("ETH", "uniswap_v3"), FILLS, 18)
    assert [(leg["venue"], leg["side"], leg["size"], leg["quote_usd"]) for leg in logged] == [
        ("perp_v2", "sell", -1.5, 4495.5), ("uniswap_v3", "buy", 1.5, -4512.25)]
    assert logged[1]["quote_raw"] == "-4512250000"  # exact, as a string
    wbtc = basis_leg_fills(basis_legs("BTC", "uniswap_v2"), FILLS, 8)[1]
    assert wbtc.as_json()["size"] == 15 * 10**17 / 10**8
    # without fills (a revert, a drop): the legs still name their venues
    assert legs_json(basis_legs("ETH", "uniswap_v2"), None, 18) == [
        {"venue_kind": "perp", "venue": "perp_v2", "market": "ETH"}, {"venue_kind": "spot", "venue": "uniswap_v2", "market": "ETH"}]
    with pytest.raises(ValueError, match="one perp leg and one spot leg"):
        basis_leg_fills((TradeLeg("perp", "perp_v2", "ETH"), TradeLeg("perp", "perp_v2", "BTC")), FILLS, 18)


def test_the_report_lists_each_trades_and_trips_legs_and_a_price_line_per_spot_venue() -> None:
    r = copy.deepcopy(report())
    legs = legs_json(basis_legs("ETH", "uniswap_v3"), FILLS, 18)
    r["keeper"]["trades"][0]["legs"] = legs
    r["keeper"]["round_trips"][0]["entry_legs"] = legs
    page = render_html(r)
    line = describe_legs(legs)
    assert line == "perp_v2 ETH sell 1.5 (+4,495.50 USD); uniswap_v3 ETH buy 1.5 (-4,512.25 USD)"
    assert page.count(line) == 2  # the transaction and the round trip's entry
    assert "spot uniswap_v3" in page and "spot uniswap_v2" in page


def test_a_samples_spot_price_by_venue_reads_both_shapes() -> None:
    legacy = sample(1, "scenario", 0, 0, spot=3000.0)["markets"]["ETH"]
    assert spot_usd(legacy, "uniswap_v3") == spot_usd(legacy, "uniswap_v2") == 3000.0
    by_venue = {"spot_usd": {"uniswap_v3": 2999.0, "uniswap_v2": None}}
    assert spot_usd(by_venue, "uniswap_v3") == 2999.0 and spot_usd(by_venue, "uniswap_v2") is None


def test_a_logged_intent_scales_its_spot_leg_by_the_markets_decimals() -> None:
    from keeper.types import Direction, Intent, PnlEstimate

    from .test_pnl_model import market_view, snapshot_of

    intent = Intent(strategy="carry", kind="open", market="BTC", direction=Direction.SHORT_PERP, spot_venue="uniswap_v2",
                    perp_base_x18=15 * 10**17, reason="test", expected=PnlEstimate(1, 0, 0, 0, 0, 0), created_block=1,
                    valid_until_block=2)
    logged = logged_legs(intent, FILLS, snapshot_of(market_view("BTC", decimals=8)))
    assert [leg["venue"] for leg in logged] == ["perp_v2", "uniswap_v2"] and logged[1]["size"] == 15 * 10**17 / 10**8
    assert logged_legs(intent, FILLS, snapshot_of(market_view("ETH"))) == legs_json(intent.legs, None, 0)
