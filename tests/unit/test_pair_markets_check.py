"""pairs_spread's markets checked at start (the audit: market_a = "DOGE", or a market not in
markets.enabled, ran with exit 0 and no event): refused naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.pairs_desk import check_pair_markets

CHAIN = ["ETH", "BTC"]


def _config(enabled: list[str], markets: list[str] | None = None, **params: Any) -> Any:
    strategies: dict[str, Any] = {"enabled": enabled}
    if params:
        strategies["params"] = {"pairs_spread": params}
    return load_config(None, environ={}, overrides={"strategies": strategies, "markets": {"enabled": markets or CHAIN}})


def test_a_market_the_chain_does_not_have_is_refused_naming_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"^strategies\.params\.pairs_spread\.market_a: 'DOGE' is not a market of this chain"):
        check_pair_markets(_config(["pairs_spread"], market_a="DOGE"), CHAIN)
    # enabled or not: a typo in a strategy's params waits for no one to enable it
    with pytest.raises(ConfigError, match=r"pairs_spread\.market_b: 'SOL'"):
        check_pair_markets(_config(["basis_convergence"], market_b="SOL"), CHAIN)


def test_an_enabled_pair_on_a_market_not_in_markets_enabled_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"pairs_spread\.market_b: 'BTC' is not in markets\.enabled \['ETH'\]"):
        check_pair_markets(_config(["pairs_spread"], ["ETH"]), CHAIN)
    check_pair_markets(_config(["basis_convergence"], ["ETH"]), CHAIN)  # not enabled: BTC unread is fine


def test_a_pair_on_enabled_markets_of_the_chain_passes() -> None:
    check_pair_markets(_config(["pairs_spread"]), CHAIN)
    check_pair_markets(_config(["pairs_spread"], market_a="BTC", market_b="ETH"), CHAIN)


def test_a_market_a_variable_set_is_refused_naming_the_variable() -> None:
    variable = "KEEPER_STRATEGIES__PARAMS__PAIRS_SPREAD__MARKET_A"
    config = load_config(None, environ={variable: "DOGE", "KEEPER_STRATEGIES__PARAMS__PAIRS_SPREAD__MARKET_B": "BTC"})
    with pytest.raises(ConfigError, match=rf"^environment {variable}: strategies\.params\.pairs_spread\.market_a: 'DOGE'"):
        check_pair_markets(config, CHAIN)
