"""--sweep: only strategy and risk parameters, every value validated, windows, the TOML fragment."""

from __future__ import annotations

import tomllib

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.history.sweep import apply_params, format_sweep, parse_sweep, toml_fragment, windows


def test_given_strategy_and_risk_names_when_parsed_then_canonical_with_typed_values() -> None:
    axes = parse_sweep(["basis_convergence.entry_z=1.5,2,2.5", "risk.exit_cooldown_s=100,200",
                        "strategies.params.funding_carry.min_carry_apr=0.1"], load_config(None, environ={}))
    assert axes == [("strategies.params.basis_convergence.entry_z", [1.5, 2, 2.5]),
                    ("risk.exit_cooldown_s", [100, 200]),
                    ("strategies.params.funding_carry.min_carry_apr", [0.1])]


@pytest.mark.parametrize("spec, named", [
    ("costs.min_profit_usd=1,2", "costs.min_profit_usd"),
    ("execution.slippage_bps=10", "execution.slippage_bps"),
    ("risk.not_a_key=1", "risk.not_a_key"),
    ("no_such_strategy.entry_z=1", "no_such_strategy.entry_z"),
])
def test_given_a_parameter_that_is_not_strategy_or_risk_when_parsed_then_refused_by_name(spec: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"--sweep {named}: not a strategy or risk setting"):
        parse_sweep([spec], load_config(None, environ={}))


def test_given_a_parameter_of_a_strategy_that_does_not_run_when_parsed_then_refused_naming_it() -> None:
    # The audit: --sweep pairs_spread.entry_z=1,2 (pairs_spread not in strategies.enabled) printed two
    # identical rows and a TOML fragment "chosen" among them: that parameter changes nothing
    settings = load_config(None, environ={})
    assert "pairs_spread" not in settings.strategies.enabled
    with pytest.raises(ConfigError, match=r"^--sweep strategies.params.pairs_spread.entry_z: pairs_spread does not run "
                                          r"\(strategies.enabled: basis_convergence, funding_carry; or --strategy\): the parameter would change nothing"):
        parse_sweep(["pairs_spread.entry_z=1,2"], settings)
    only_carry = settings.model_copy(update={"strategies": settings.strategies.model_copy(update={"enabled": ["funding_carry"]})})
    with pytest.raises(ConfigError, match=r"basis_convergence does not run \(strategies.enabled: funding_carry"):
        parse_sweep(["basis_convergence.entry_z=1,2"], only_carry)  # as with --strategy funding_carry


def test_given_a_value_the_strategy_rejects_when_parsed_then_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="min_notional_usd"):
        parse_sweep(["basis_convergence.min_notional_usd=-5"], load_config(None, environ={}))
    with pytest.raises(ConfigError, match="max_leverage"):
        parse_sweep(["risk.max_leverage=0,2"], load_config(None, environ={}))


def test_given_a_parameter_set_when_applied_then_the_config_carries_it() -> None:
    settings = apply_params(load_config(None, environ={}), (("strategies.params.basis_convergence.entry_z", 3.0),
                                                             ("risk.exit_cooldown_s", 90)))
    assert settings.strategies.params["basis_convergence"]["entry_z"] == 3.0
    assert settings.risk.exit_cooldown_s == 90


def test_given_the_chosen_set_when_written_as_toml_then_it_loads_as_config() -> None:
    text = toml_fragment((("strategies.params.basis_convergence.entry_z", 2.5), ("risk.exit_cooldown_s", 120)))
    assert tomllib.loads(text) == {"strategies": {"params": {"basis_convergence": {"entry_z": 2.5}}},
                                   "risk": {"exit_cooldown_s": 120}}


def test_given_blocks_and_folds_when_windowed_then_k_plus_one_consecutive_windows() -> None:
    assert windows(100, 189, 2) == [(100, 129), (130, 159), (160, 189)]
    spans = windows(0, 100, 3)
    assert spans[0][0] == 0 and spans[-1][1] == 100
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:]))
    with pytest.raises(ConfigError, match="--folds 9"):
        windows(0, 10, 9)


def test_given_one_parameter_under_two_spellings_when_parsed_then_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"--sweep strategies.params.basis_convergence.entry_z: the same parameter as "
                                          r"--sweep basis_convergence.entry_z"):  # was: one silently dropped
        parse_sweep(["basis_convergence.entry_z=2", "strategies.params.basis_convergence.entry_z=3"],
                    load_config(None, environ={}))


def test_given_a_value_twice_when_parsed_then_refused() -> None:
    with pytest.raises(ConfigError, match=r"--sweep risk.exit_cooldown_s: value\(s\) 100 given more than once"):
        parse_sweep(["risk.exit_cooldown_s=100,200,100"], load_config(None, environ={}))  # was: the same set run twice


def test_the_printed_table_lines_up_with_long_parameter_names() -> None:
    # Given parameter sets whose names are longer than the old fixed 60-character column (the audit)
    names = {"strategies.params.basis_convergence.entry_z": 1.5, "risk.exit_cooldown_s": 100}
    sets = [{"params": names, "in_sample_usd": -480.3, "out_of_sample_usd": -417.89},
            {"params": {"risk.exit_cooldown_s": 150}, "in_sample_usd": 12.0, "out_of_sample_usd": 3.5}]
    text = format_sweep({"blocks": [1, 100], "folds": 2, "parameter_sets": sets, "jobs": 6, "executor": "1 process",
                         "walk_forward": [], "walk_forward_out_of_sample_usd": 0.0, "toml": ""})
    header, *rows = text.splitlines()[2:5]
    # Then every row ends where the header ends, and each number sits under its column's end
    assert header.startswith("parameter set") and len({len(header), *map(len, rows)}) == 1
    assert rows[0].endswith("-417.89") and rows[1].endswith("3.50")
