"""funding_carry's fee per notional comes from the spot leg's adapter, not from the venue's name."""

from __future__ import annotations

import dataclasses

import pytest

from keeper.types import Unavailable
from strategies.pnl import spot_fee_fraction

from .test_pnl_model import market_view


def test_the_fee_is_each_spot_adapters_pool_fee() -> None:
    view = market_view()  # a 0.05% V3 pool and a 0.3% V2 pair
    assert spot_fee_fraction(view, "uniswap_v3") == 500 / 1e6
    assert spot_fee_fraction(view, "uniswap_v2") == 3000 / 1e6
    tier_1pct = dataclasses.replace(view, spot_v3=dataclasses.replace(view.spot_v3, fee_pips=10_000))  # type: ignore[type-var]
    assert spot_fee_fraction(tier_1pct, "uniswap_v3") == 0.01


def test_an_unreadable_venue_costs_the_default_and_an_unknown_one_is_refused() -> None:
    view = dataclasses.replace(market_view(), spot_v3=Unavailable("read failed"), spot_v2=Unavailable("read failed"))
    assert spot_fee_fraction(view, "uniswap_v3") == spot_fee_fraction(view, "uniswap_v2") == 0.003
    with pytest.raises(ValueError, match="unknown spot venue"):
        spot_fee_fraction(view, "sushi")
