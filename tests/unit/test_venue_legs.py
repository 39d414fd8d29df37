"""Trades as legs on venue adapters: every venue name has its adapter, a trade's legs name them,
and the planner asks each leg's adapter (never the venue's name) whether it settles atomically."""

from __future__ import annotations

import dataclasses

import pytest

from keeper import plan
from keeper.types import PERP_VENUES, SPOT_VENUES, Direction, Intent, PnlEstimate, Position, TradeLeg, basis_legs
from keeper.venues.executor import SPOT_VENUE_CODE
from keeper.venues.registry import PERP_ADAPTERS, SPOT_ADAPTERS, leg_adapter, perp_adapter, spot_adapter


def intent(venue: str = "uniswap_v2") -> Intent:
    return Intent(strategy="carry", kind="open", market="BTC", direction=Direction.SHORT_PERP, spot_venue=venue,  # type: ignore[arg-type]
                  perp_base_x18=10**18, reason="test", expected=PnlEstimate(1, 0, 0, 0, 0, 0), created_block=1,
                  valid_until_block=2)


def test_every_venue_name_has_its_adapter_and_no_adapter_is_unnamed() -> None:
    assert tuple(SPOT_ADAPTERS) == SPOT_VENUES and tuple(PERP_ADAPTERS) == PERP_VENUES
    assert all(a.capabilities.kind == "spot" for a in SPOT_ADAPTERS.values())
    assert all(a.capabilities.kind == "perp" for a in PERP_ADAPTERS.values())
    assert SPOT_VENUE_CODE == {"uniswap_v2": 0, "uniswap_v3": 1}  # IBasisExecutor.SpotVenue
    with pytest.raises(ValueError, match="unknown spot venue 'sushi'"):
        spot_adapter("sushi")
    with pytest.raises(ValueError, match="unknown perp venue"):
        perp_adapter("uniswap_v3")


def test_a_basis_trade_is_a_perp_leg_and_a_spot_leg() -> None:
    legs = intent().legs
    assert legs == (TradeLeg("perp", "perp_v2", "BTC"), TradeLeg("spot", "uniswap_v2", "BTC")) == basis_legs("BTC", "uniswap_v2")
    assert [leg_adapter(leg).name for leg in legs] == ["perp_v2", "uniswap_v2"]
    position = Position("ETH", Direction.LONG_PERP, "uniswap_v3", 10**18, -10**18, 1, 1, 0.0, 0)
    assert [leg.venue for leg in position.legs] == ["perp_v2", "uniswap_v3"]


def test_the_planner_refuses_a_leg_whose_venue_does_not_settle_in_the_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    plan.check_legs_atomic(intent())  # the venues we have all settle inside the executor's transaction
    real = spot_adapter("uniswap_v2")

    class Deferred(type(real)):  # type: ignore[misc]
        capabilities = dataclasses.replace(real.capabilities, same_transaction=False)

    monkeypatch.setattr(plan, "leg_adapter", lambda leg: Deferred() if leg.venue_kind == "spot" else leg_adapter(leg))
    with pytest.raises(plan.LegsNotAtomic, match="the spot leg on uniswap_v2 does not settle"):
        plan.check_legs_atomic(intent())
