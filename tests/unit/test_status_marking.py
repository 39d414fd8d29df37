"""keeper status's mark to market claims no total when a position's close cannot be quoted."""

from __future__ import annotations

from keeper.simulate.paper import close_values_x18
from keeper.status import StatusView
from keeper.types import ONE_X18, Direction, Position
from tests.unit.test_pnl_model import market_view, snapshot_of


def test_a_position_whose_close_cannot_be_quoted_is_named_and_no_marked_total_is_claimed() -> None:
    eth = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", -2 * ONE_X18, 2 * 10**18, 1, 1, 0.0, 0)
    btc = Position("BTC", Direction.SHORT_PERP, "uniswap_v3", -ONE_X18 // 10, 10**7, 1, 1, 0.0, 0)
    values = close_values_x18(snapshot_of(market_view("ETH", 18, 3000.0)), [eth, btc], 10**6)
    assert values["BTC"] is None and isinstance(values["ETH"], int) and values["ETH"] < 0  # at a zero basis: the close's fees and gas
    view = StatusView(journal=None, chain_checked="yes", mismatches=(), closes_x18=values)  # type: ignore[arg-type]
    assert view.close_value_x18 is None and view.unmarked() == ["BTC"]
    whole = StatusView(journal=None, chain_checked="yes", mismatches=(), closes_x18={"ETH": values["ETH"]})  # type: ignore[arg-type]
    assert whole.close_value_x18 == values["ETH"] and whole.unmarked() == []
