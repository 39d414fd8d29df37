"""keeper.example.toml has "every key, with its default" (its header, and README's "Configuration"):
its keys are the config model's fields and the strategies' parameters, no more, no fewer, each with
the model's default. A key whose default is unset (None, an empty list) is shown commented out,
`# key = example`, and is read here as present."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from keeper.config import KeeperConfig
from strategies.basis_convergence import BasisConvergenceParams
from strategies.funding_carry import FundingCarryParams
from strategies.pairs_spread import PairsSpreadParams

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"basis_convergence": BasisConvergenceParams, "funding_carry": FundingCarryParams,
          "pairs_spread": PairsSpreadParams}
UNSET = object()  # shown commented out in the example


def example_keys() -> dict[tuple[str, ...], Any]:
    doc: dict[str, Any] = {}
    section: list[str] = []
    for line in (ROOT / "keeper.example.toml").read_text(encoding="utf-8").splitlines():
        if header := re.match(r"\[([a-z_.]+)\]", line):
            section = header[1].split(".")
        elif commented := re.match(r"# ([a-z_]+) = ", line):
            doc[(*section, commented[1])] = UNSET
    parsed = tomllib.loads((ROOT / "keeper.example.toml").read_text(encoding="utf-8"))

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, path + (key,))
            else:
                doc[path + (key,)] = value
    walk(parsed, ())
    return doc


def model_defaults() -> dict[tuple[str, ...], Any]:
    defaults: dict[tuple[str, ...], Any] = {}
    for section, field in KeeperConfig.model_fields.items():
        for key, inner in field.annotation.model_fields.items():  # type: ignore[union-attr]
            if (section, key) != ("strategies", "params"):
                value = inner.get_default(call_default_factory=True)
                defaults[(section, key)] = UNSET if value in (None, []) else value
    for strategy, params in PARAMS.items():
        for f in dataclasses.fields(params):
            defaults[("strategies", "params", strategy, f.name)] = f.default
    return defaults


def plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def test_the_example_has_every_key_and_no_other() -> None:
    example, model = example_keys(), model_defaults()
    assert len(model) > 90  # the model's sections and the three strategies' parameters were read
    assert sorted(set(model) - set(example)) == [], "keys missing from keeper.example.toml"
    assert sorted(set(example) - set(model)) == [], "keys in keeper.example.toml that the config does not have"


def test_every_key_in_the_example_shows_its_default() -> None:
    example, model = example_keys(), model_defaults()
    wrong = {".".join(key): (example[key], plain(model[key])) for key in model
             if key in example and example[key] is not UNSET and example[key] != plain(model[key])}
    assert not wrong, f"example value != default: {wrong}"
    unset = sorted(".".join(key) for key in model if key in example and (example[key] is UNSET) != (model[key] is UNSET))
    assert not unset, f"commented out in the example but with a default, or the reverse: {unset}"


SECTIONS = "chain|account|markets|strategies|costs|risk|execution|monitoring"
# the README's two examples of a misspelt key, in the error they draw
README_TYPOS = {"risk.max_levrage", "strategies.params.basis_convergence.entry_zz"}


def test_every_config_key_the_readme_names_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    keys = {".".join(key) for key in model_defaults()}
    found = re.findall(rf"(?<![\w./-])((?:{SECTIONS})\.[a-z_][a-z_0-9.]*[a-z0-9_])", text)
    named = {n for n in found if not n.endswith(".py")}  # file names such as risk.py in "Layout"
    assert len(named) > 30
    unknown = sorted(n for n in named - README_TYPOS if n not in keys and not any(k.startswith(n + ".") for k in keys))
    assert not unknown, f"README names config keys the config does not have: {unknown}"


def test_every_keeper_variable_that_is_not_a_setting_is_in_the_readme() -> None:
    from keeper.config import NON_SETTING_ENV
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration")[1].split("\n## ")[0]
    missing = sorted(name for name in NON_SETTING_ENV if f"`{name}`" not in section)
    assert not missing, f"KEEPER_* variables skipped by the config, not named in README's Configuration: {missing}"
