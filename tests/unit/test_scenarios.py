"""Scenario files: every shipped scenario loads; unknown keys and bad values are errors naming the
field; scenarios load by name or by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.simulate.scenario import (
    BaseFee,
    IndexMove,
    LiquidityRemoval,
    OraclePause,
    PremiumShock,
    available_scenarios,
    load_scenario,
    parse_scenario,
)

REQUIRED = {"calm", "funding_spike", "basis_blowout", "stale_oracle", "liquidity_drain", "gas_spike", "mispricing"}


def test_every_shipped_scenario_loads_and_is_named_after_its_file() -> None:
    # Given the scenarios directory, when each file is loaded, then it validates and its name matches
    names = set(available_scenarios())
    assert REQUIRED <= names
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.recommended_steps >= scenario.last_event_step()


def test_shipped_scenarios_move_what_their_names_say() -> None:
    kinds = {name: {type(e) for e in load_scenario(name).events} for name in REQUIRED}
    assert kinds["calm"] == set()
    assert kinds["funding_spike"] == {PremiumShock}
    assert kinds["mispricing"] == {PremiumShock}
    assert OraclePause in kinds["stale_oracle"] and IndexMove in kinds["stale_oracle"]
    assert LiquidityRemoval in kinds["liquidity_drain"]
    assert BaseFee in kinds["gas_spike"]
    blowout = [e.premium for e in load_scenario("basis_blowout").events if isinstance(e, PremiumShock)]
    assert blowout == sorted(blowout) and len(blowout) >= 3  # the spread widens before it converges


def test_names_accept_dashes_and_paths(tmp_path: Path) -> None:
    assert load_scenario("funding-spike").name == "funding_spike"
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nrecommended_steps = 5\n[[events]]\nkind = "premium_shock"\nat_step = 2\npremium = 0.01\n')
    scenario = load_scenario(str(path))
    assert scenario.name == "mine"
    assert [type(e) for e in scenario.events_at(2)] == [PremiumShock]
    assert scenario.events_at(1) == []


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no such scenario .*calm.*gas_spike"):
        load_scenario("nope")
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario("missing/file.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_scenario(str(path))


def test_a_scenario_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"name = \"x\"\n\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"bad\.toml: not UTF-8 text"):  # was a UnicodeDecodeError traceback
        load_scenario(str(path))


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "x", "foo": 1}, "unknown key 'foo'"),
    ({"name": "x", "activity": {"step_z": 1}}, "activity: unknown key 'step_z'"),
    ({"name": "x", "events": [{"kind": "premium_shock", "at_step": 1, "premiun": 0.01}]},
     r"events\[0\] \(premium_shock\): unknown key 'premiun'"),
    ({"name": "x", "events": [{"kind": "base_fee", "from_step": 1, "to_step": 2, "gwei": 5},
                              {"kind": "liquidity_removal", "at_step": 3, "fraction": 0.5, "venue": "uniswap_v3"}]},
     r"events\[1\] \(liquidity_removal\): unknown key 'venue'"),
    ({"name": "x", "events": [{"kind": "tsunami", "at_step": 1}]}, r"events\[0\]: unknown event kind 'tsunami'"),
    ({"name": "x", "events": [{"at_step": 1}]}, r"events\[0\]: missing 'kind'"),
    ({"name": "x", "events": [{"kind": "oracle_pause", "from_step": 5, "to_step": 2}]},
     r"events\[0\] \(oracle_pause\): to_step \(2\) is before from_step \(5\)"),
    ({"name": "x", "events": [{"kind": "premium_shock", "at_step": 1, "premium": 0.5}]},
     r"events\[0\] \(premium_shock\)\.premium: .*0\.06 \(got 0\.5\)"),
    ({"name": "x", "events": [{"kind": "liquidity_removal", "at_step": 1, "fraction": 0.5, "venues": ["curve"]}]},
     r"events\[0\] \(liquidity_removal\)\.venues\[0\]"),
    ({"name": "x", "activity": {"step_s": 0}}, r"activity\.step_s: .*greater than 0 \(got 0\)"),
    ({"events": []}, "name: Field required"),
])
def test_invalid_scenarios_name_the_field(data: dict, message: str) -> None:  # type: ignore[type-arg]
    # Given a scenario with one mistake, when it is parsed, then the error names the field
    with pytest.raises(ConfigError, match=message):
        parse_scenario(data, where="scenario t.toml")


@pytest.mark.parametrize(("strategies", "message"), [
    ({"enabled": ["basis_convergence", "nope"]},
     "strategies.enabled: unknown strategy 'nope' (known: basis_convergence, funding_carry, pairs_spread)"),
    ({"enabled": ["basis_convergence"], "params": {"basis_convergence": {"entry_z": -3}}},
     "strategies.params.basis_convergence: strategy 'basis_convergence': parameter entry_z must be > 0, got -3.0"),
    ({"enabeld": ["basis_convergence"]}, "strategies: unknown key 'enabeld'"),
])
def test_a_scenarios_strategies_section_names_the_field(strategies: dict, message: str) -> None:  # type: ignore[type-arg]
    """(before: `scenario t.toml: scenario: unknown strategy 'nope'`, `scenario t.toml: unknown key 'enabeld'`)"""
    with pytest.raises(ConfigError) as refused:
        parse_scenario({"name": "x", "strategies": strategies}, where="scenario t.toml")
    assert str(refused.value).startswith(f"scenario t.toml: {message}"), str(refused.value)


def test_events_apply_to_their_markets_only() -> None:
    scenario = parse_scenario({"name": "x", "events": [
        {"kind": "premium_shock", "at_step": 2, "premium": 0.01, "markets": ["ETH"]},
        {"kind": "oracle_pause", "from_step": 1, "to_step": 3}]})
    shock, pause = scenario.events
    assert shock.applies_to("ETH") and not shock.applies_to("BTC")
    assert pause.applies_to("BTC")
    assert [type(e) for e in scenario.events_at(2)] == [PremiumShock, OraclePause]
    assert [type(e) for e in scenario.events_at(3)] == [OraclePause]
    assert scenario.markets_named() == {"ETH"}
    assert scenario.last_event_step() == 3


def test_activity_settings_become_the_drivers_config() -> None:
    scenario = load_scenario("funding_spike")
    config = scenario.activity.activity_config(seed=11)
    assert config.seed == 11
    assert config.step_s == scenario.activity.step_s
    assert config.premium_half_life_s == scenario.activity.premium_half_life_s
