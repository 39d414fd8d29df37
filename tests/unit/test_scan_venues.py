"""`keeper scan` has a column set per spot venue, from the venue list and each venue's adapter."""

from __future__ import annotations

import dataclasses

from keeper.scan import rows_for
from keeper.signals import BasisHistory, compute_signals
from keeper.types import SPOT_VENUES, Unavailable
from keeper.venues.depth import v2_usdc_to_raise_spot, v3_usdc_to_raise_spot

from .test_pnl_model import market_view, snapshot_of


def test_every_spot_venue_has_its_columns_read_through_its_adapter() -> None:
    view = market_view()
    snapshot = snapshot_of(view)
    (row,) = rows_for(snapshot, compute_signals(snapshot, BasisHistory(window_s=10**9, min_samples=2)), 0)
    assert [s.venue for s in row.spot] == list(SPOT_VENUES) == list(row.as_json()["spot"])  # type: ignore[call-overload]
    by_venue = {s.venue: s for s in row.spot}
    assert by_venue["uniswap_v3"].depth_1pct_usd == v3_usdc_to_raise_spot(view.spot_v3, True, 0.01)  # type: ignore[arg-type]
    assert by_venue["uniswap_v2"].depth_2pct_usd == v2_usdc_to_raise_spot(view.spot_v2, 0.02)  # type: ignore[arg-type]
    for s in row.spot:
        assert s.spot_usd is not None and s.basis_bps == (row.perp_vamm_usd / s.spot_usd - 1) * 1e4  # type: ignore[operator]
    cells = row.cells()
    assert all(f"spot {v}" in cells and f"{v} $ +1%/+2%" in cells for v in SPOT_VENUES)
    assert cells["basis bps uniswap_v3/uniswap_v2"].count(" / ") == 1


def test_an_unreadable_venue_shows_dashes_and_says_why() -> None:
    view = dataclasses.replace(market_view(), spot_v2=Unavailable("getReserves reverted"))
    snapshot = snapshot_of(view)
    (row,) = rows_for(snapshot, compute_signals(snapshot, BasisHistory(window_s=10**9, min_samples=2)), 0)
    v2 = next(s for s in row.spot if s.venue == "uniswap_v2")
    assert v2.spot_usd is None and v2.depth_1pct_usd is None and row.cells()["spot uniswap_v2"] == "-"
    assert row.perp_mark_usd is not None  # the other venue still gives the perp's columns
    assert "uniswap_v2: getReserves reverted" in row.unavailable
