"""The live executor reads a receipt in legs: each leg's adapter decodes its venue's own events
(keeper/venues/adapter.py: receipt_facts), once per venue, for the executor only."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from keeper.execute import legs_receipt_facts
from keeper.types import TradeLeg, basis_legs
from keeper.venues.perp_v2 import perp_facts_from_receipt
from keeper.venues.registry import perp_adapter, spot_adapter

CH = "0x" + "c1" * 20
EXECUTOR = "0x" + "e0" * 20
STRANGER = "0x" + "5a" * 20
POSITION_CHANGED = "0x" + keccak(text="PositionChanged(address,address,int256,int256,uint256,int256,int256,uint256)").hex()
FUNDING_SETTLED = "0x" + keccak(text="FundingPaymentSettled(address,address,int256)").hex()


def topic(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def position_changed(emitter: str, trader: str, fee_x18: int) -> dict[str, object]:
    data = encode(["int256", "int256", "uint256", "int256", "int256", "uint256"], [-10**18, 3000 * 10**18, fee_x18, 0, 0, 2**96])
    return {"address": emitter, "topics": [POSITION_CHANGED, topic(trader), topic("0x" + "ba" * 20)], "data": "0x" + data.hex()}


def funding_settled(trader: str, funding_x18: int) -> dict[str, object]:
    data = encode(["int256"], [funding_x18])
    return {"address": CH, "topics": [FUNDING_SETTLED, topic(trader), topic("0x" + "ba" * 20)], "data": "0x" + data.hex()}


RECEIPT = {"logs": [
    position_changed(CH, EXECUTOR, 3_000_000_000_000_000_123),
    funding_settled(EXECUTOR, -42 * 10**15),
    position_changed(CH, EXECUTOR, 7),  # a second market in the same transaction
    position_changed(CH, STRANGER, 10**18),  # someone else's trade in the receipt: not ours
    position_changed("0x" + "dd" * 20, EXECUTOR, 10**18),  # the same event from another contract: not Perp's
]}


def test_a_basis_trade_books_the_perp_adapters_facts_equal_to_the_old_parse() -> None:
    old = perp_facts_from_receipt(RECEIPT, CH, EXECUTOR)
    assert old == (3_000_000_000_000_000_130, -42 * 10**15)
    for spot in ("uniswap_v3", "uniswap_v2"):
        assert legs_receipt_facts(basis_legs("ETH", spot), RECEIPT, {"perp_v2": CH}, EXECUTOR) == old


def test_two_legs_on_one_venue_read_its_events_once() -> None:
    legs = (TradeLeg("perp", "perp_v2", "ETH"), TradeLeg("perp", "perp_v2", "BTC"))
    assert legs_receipt_facts(legs, RECEIPT, {"perp_v2": CH}, EXECUTOR) == perp_facts_from_receipt(RECEIPT, CH, EXECUTOR)


def test_the_spot_adapters_decode_nothing_and_a_perp_leg_needs_its_emitter() -> None:
    assert spot_adapter("uniswap_v3").receipt_facts(RECEIPT, CH, EXECUTOR).fee_x18 == 0
    assert legs_receipt_facts((TradeLeg("spot", "uniswap_v2", "ETH"),), RECEIPT, {}, EXECUTOR) == (0, 0)
    with pytest.raises(ValueError, match="ClearingHouse"):
        perp_adapter("perp_v2").receipt_facts(RECEIPT, "", EXECUTOR)
