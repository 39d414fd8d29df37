"""A setting an environment variable gave keeps the variable's name in later errors, through
`with_overrides` too; a key an explicit override replaced is no longer blamed on the variable
(the thirteenth session's operations audit)."""

from __future__ import annotations

import pytest

from keeper.config import load_config, with_overrides
from keeper.engine import load_strategy_slots
from keeper.errors import ConfigError

BAD = "KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__ENTRY_Z"


def test_with_overrides_keeps_the_variable_that_set_a_bad_parameter() -> None:
    # Given a bad parameter from the environment, and the config re-derived with other keys replaced
    config = with_overrides(load_config(None, environ={BAD: "-3"}), {"risk": {"max_leverage": 2.0}}, where="scenario")
    # When the strategies are built, then the error names the variable
    with pytest.raises(ConfigError, match=rf"^environment {BAD}: strategies\.params\.basis_convergence\.entry_z: "):
        load_strategy_slots(config)


def test_with_overrides_does_not_blame_a_variable_for_a_key_it_replaced() -> None:
    config = load_config(None, environ={BAD: "3", "KEEPER_CHAIN__RPC_URL": "http://127.0.0.1:8545"})
    replaced = with_overrides(config, {"strategies": {"params": {"basis_convergence": {"entry_z": -3.0}}}})
    with pytest.raises(ConfigError, match=r"^strategies\.params\.basis_convergence\.entry_z: "):
        load_strategy_slots(replaced)
    assert replaced.where("chain", "rpc_url") == "environment KEEPER_CHAIN__RPC_URL: chain.rpc_url"


def test_an_option_that_replaces_an_environment_url_is_not_blamed_on_the_variable() -> None:
    config = load_config(None, environ={"KEEPER_CHAIN__RPC_URL": "http://127.0.0.1:8545"},
                         overrides={"chain": {"rpc_url": "http://127.0.0.1:9"}})
    assert config.where("chain", "rpc_url") == "chain.rpc_url"
