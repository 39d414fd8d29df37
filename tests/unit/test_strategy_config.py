"""strategies.enabled and strategies.params are checked whole at start: an unknown strategy name
in either, or a bad parameter of any strategy named there (enabled or not), is a ConfigError
naming the key, raised before the runtime contacts the node (so before anything is sent)."""

from __future__ import annotations

import pytest

from keeper.config import load_config
from keeper.engine import load_strategy_slots
from keeper.errors import ConfigError
from keeper.runtime import ChainSetup, assemble_runtime


@pytest.mark.parametrize(("environ_or_params", "message"), [
    ({"enabled": ["basis_convergence", "nosuch"]}, "strategies.enabled: unknown strategy 'nosuch'"),
    ({"params": {"basis_convergnce": {"entry_z": 1.0}}}, "strategies.params.basis_convergnce: unknown strategy"),
    ({"params": {"pairs_spread": {"entry_zz": 1.0}}}, "strategies.params.pairs_spread.entry_zz: "),  # not enabled, still checked
    ({"params": {"basis_convergence": {"entry_z": "x"}}}, "strategies.params.basis_convergence.entry_z: "),
])
def test_a_bad_strategy_name_or_parameter_names_the_key(environ_or_params: dict[str, object], message: str) -> None:
    config = load_config(None, environ={}, overrides={"strategies": environ_or_params})
    with pytest.raises(ConfigError) as caught:
        load_strategy_slots(config)
    assert message in str(caught.value)


def test_a_bad_parameter_set_by_a_variable_names_it_and_one_set_elsewhere_does_not() -> None:
    bad = "KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__ENTRY_Z"
    fine = "KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__MIN_NOTIONAL_USD"
    config = load_config(None, environ={fine: "500", bad: "-3"})
    with pytest.raises(ConfigError) as caught:
        load_strategy_slots(config)
    assert str(caught.value).startswith(f"environment {bad}: strategies.params.basis_convergence.entry_z: ")
    # the bad value from elsewhere (here: as a CLI override) is not blamed on the variable that set another parameter
    config = load_config(None, environ={fine: "500"},
                         overrides={"strategies": {"params": {"basis_convergence": {"entry_z": -3.0}}}})
    with pytest.raises(ConfigError) as caught:
        load_strategy_slots(config)
    assert str(caught.value).startswith("strategies.params.basis_convergence.entry_z: strategy 'basis_convergence': "
                                        "parameter entry_z must be > 0")
    config = load_config(None, environ={"KEEPER_STRATEGIES__ENABLED": "basis_convergence,nosuch"})
    with pytest.raises(ConfigError, match="^environment KEEPER_STRATEGIES__ENABLED: strategies.enabled: unknown"):
        load_strategy_slots(config)


def test_the_enabled_strategies_are_loaded_in_order_with_params_of_others_allowed() -> None:
    config = load_config(None, environ={}, overrides={"strategies": {
        "enabled": ["funding_carry", "basis_convergence"], "params": {"pairs_spread": {"entry_z": 2.5}}}})
    assert [s.strategy.name for s in load_strategy_slots(config)] == ["funding_carry", "basis_convergence"]


def test_a_bad_strategy_is_refused_before_the_node_is_contacted() -> None:
    config = load_config(None, environ={}, overrides={"strategies": {"enabled": ["nosuch"]},
                                                      "chain": {"startup_retry_s": 0}})
    with pytest.raises(ConfigError, match="strategies.enabled"):  # not a connection error to the dead port
        assemble_runtime(config, ChainSetup(rpc_url="http://127.0.0.1:9"), dry_run=True)
