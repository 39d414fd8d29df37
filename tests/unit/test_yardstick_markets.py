"""The yardsticks (threshold bot, carry-only bot, hindsight optimum) trade the markets the keeper
trades (`markets.enabled`), not every market of the history or the chain: with a BTC-only keeper,
an ETH round trip in the optimum made its capture look worse than it was."""

from __future__ import annotations

import pytest

from keeper.config import load_config
from keeper.pnl_split import ZERO_PNL
from keeper.simulate.compare import compare
from keeper.simulate.paper import UNLIMITED

from .test_simulate_optimum import priced_points
from .test_simulate_paper import FakeQuoter


@pytest.mark.parametrize("enabled", [["BTC"], ["ETH", "BTC"]])
def test_the_yardsticks_trade_only_the_keepers_markets(enabled: list[str]) -> None:
    spreads = [0, 150, 0, 150, 0]  # a swing both bots and the optimum trade
    settings = load_config(None, environ={}, overrides={"markets": {"enabled": enabled}})
    baseline, carry, optimum, comparison = compare(settings, {"ETH": priced_points(spreads), "BTC": priced_points(spreads)},
                                                   FakeQuoter(spreads), UNLIMITED, ZERO_PNL, [], [])
    assert {t.market for t in optimum.trips} == set(enabled)
    assert {t.market for t in baseline.trades} <= set(enabled)
    assert {t.market for t in carry.trades} <= set(enabled)
    assert comparison["optimum_usd"] > 0
