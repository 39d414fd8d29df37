"""The suite's expected figure per keeper round trip: the opening's expected net plus the
strategies' adds to the position before its close (keeper/simulate/compare.py)."""

from __future__ import annotations

from typing import Any

from keeper.simulate.compare import _expected_usd


def outcome(block: int, kind: str, expected: float | None, strategy: str = "basis_convergence", market: str = "ETH",
            status: str = "included") -> dict[str, Any]:
    return {"block": block, "kind": kind, "expected_net_usd": expected, "strategy": strategy, "market": market,
            "status": status}


def test_the_expected_figure_of_a_trip_adds_its_strategy_adds_and_nothing_else() -> None:
    opening = outcome(10, "open", 100.0)
    outcomes = [
        opening,
        outcome(12, "resize", 40.0),  # an add: counted
        outcome(13, "resize", 0.0, strategy="risk"),  # the margin ladder's reduce: not an expectation
        outcome(14, "resize", 7.0, market="BTC"),  # another market
        outcome(15, "resize", 9.0, status="reverted"),  # not included
        outcome(20, "close", 0.0, strategy="risk"),
        outcome(25, "resize", 30.0),  # after the close: another position's
    ]
    assert _expected_usd(outcomes, opening, closed_block=20) == 140.0
    assert _expected_usd(outcomes, opening, closed_block=None) == 170.0
    assert _expected_usd(outcomes, None, closed_block=20) is None
