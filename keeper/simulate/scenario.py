"""Scenarios as data: what moves in the market, how, and at which step.

A scenario is a TOML file (scenarios/<name>.toml, or any path) validated here. Unknown keys are
errors that name the field (`events[2] (premium_shock): unknown key 'premiun'`), as in the keeper's
own config. Steps are counted from 1; step n is the n-th call of the driver, each advancing the
chain by `activity.step_s` seconds.

    name = "basis_blowout"
    description = "..."
    recommended_steps = 40
    warmup_steps = 25          # plain activity before step 1: the keeper builds its basis history

    [activity]                 # keeper.devnet.activity.ActivityConfig, without the seed
    step_s = 60
    premium_half_life_s = 900

    [[events]]
    kind = "premium_shock"     # set the perp premium target (perp / index - 1); it then decays
    at_step = 4
    premium = 0.012
    markets = ["ETH"]          # optional: every market when absent

Event kinds:
- premium_shock     at_step, premium                  the premium target jumps to `premium`
- index_move        from_step, to_step, pct_per_step  the true price drifts (a jump: from == to)
- oracle_pause      from_step, to_step                the aggregator gets no updates; the pools
                                                      keep following the true price
- liquidity_removal at_step, fraction, venues         the spot-liquidity account withdraws this
                                                      share of its Uniswap V3 positions / V2 LP
- base_fee          from_step, to_step, gwei          every block's base fee pinned at `gwei`

An optional [strategies] section is the keeper's [strategies] for this scenario, applied over the
run's config (e.g. `enabled = [..., "pairs_spread"]` and `[strategies.params.pairs_spread]`); it
is validated like the config when the run starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from keeper.artifacts import PROJECT_ROOT
from keeper.config import StrategiesConfig
from strategies import STRATEGIES, load_strategy
from keeper.devnet.activity import ActivityConfig
from keeper.errors import ConfigError
from keeper.types import SPOT_VENUES, SpotVenue

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
MAX_PREMIUM = 0.06  # keeper.devnet.activity clamps the premium here (Perp's price band is 10%)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ActivitySettings(_Strict):
    """The market-activity driver's parameters (keeper.devnet.activity.ActivityConfig)."""

    step_s: int = Field(60, gt=0, le=86_400, description="simulated chain seconds per step")
    index_vol_daily: float = Field(0.04, ge=0, le=2)
    jump_probability: float = Field(0.0, ge=0, le=1)
    jump_size: float = Field(0.05, ge=0, le=0.5)
    premium_vol_daily: float = Field(0.03, ge=0, le=1)
    premium_half_life_s: float = Field(3_600.0, gt=0)
    spot_noise: float = Field(0.0005, ge=0, le=0.05)

    def activity_config(self, seed: int) -> ActivityConfig:
        return ActivityConfig(seed=seed, **self.model_dump())


class _Event(_Strict):
    markets: list[str] | None = Field(None, min_length=1, description="market names; absent: every market")

    def applies_to(self, market: str) -> bool:
        return self.markets is None or market in self.markets


class _AtStep(_Event):
    at_step: int = Field(ge=1)

    def active_at(self, step: int) -> bool:
        return step == self.at_step

    @property
    def last_step(self) -> int:
        return self.at_step


class _StepRange(_Event):
    from_step: int = Field(ge=1)
    to_step: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> _StepRange:
        if self.to_step < self.from_step:
            raise ValueError(f"to_step ({self.to_step}) is before from_step ({self.from_step})")
        return self

    def active_at(self, step: int) -> bool:
        return self.from_step <= step <= self.to_step

    @property
    def last_step(self) -> int:
        return self.to_step


class PremiumShock(_AtStep):
    kind: Literal["premium_shock"]
    premium: float = Field(ge=-MAX_PREMIUM, le=MAX_PREMIUM, description="perp / index - 1, e.g. 0.02")


class IndexMove(_StepRange):
    kind: Literal["index_move"]
    pct_per_step: float = Field(gt=-0.5, lt=0.5, description="true-price change per step, e.g. -0.002")


class OraclePause(_StepRange):
    kind: Literal["oracle_pause"]


class LiquidityRemoval(_AtStep):
    kind: Literal["liquidity_removal"]
    fraction: float = Field(gt=0, le=1, description="share of the spot-liquidity account's positions withdrawn")
    venues: list[SpotVenue] = Field(default_factory=lambda: list(SPOT_VENUES), min_length=1)


class BaseFee(_StepRange):
    kind: Literal["base_fee"]
    gwei: float = Field(gt=0, le=100_000)


Event = Annotated[Union[PremiumShock, IndexMove, OraclePause, LiquidityRemoval, BaseFee], Field(discriminator="kind")]


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    recommended_steps: int = Field(30, ge=1)
    warmup_steps: int = Field(25, ge=0, le=500, description="plain steps before step 1 (the keeper's basis history)")
    activity: ActivitySettings = ActivitySettings()
    events: list[Event] = Field(default_factory=list)
    # The keeper's [strategies] section for this scenario, over the run's config (e.g. enabling
    # pairs_spread with its params); absent: the config's own.
    strategies: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _strategies_valid(self) -> Scenario:
        if self.strategies is None:
            return self
        try:
            parsed = StrategiesConfig.model_validate(self.strategies)  # unknown keys and bad values, by name
        except ValidationError as exc:
            text = describe_scenario_error(exc)
            raise ValueError(f"strategies{': ' if text.startswith('unknown key') else '.'}{text}") from None
        for name in parsed.enabled:
            try:
                load_strategy(name, parsed.params.get(name, {}))  # ValueError naming the parameter
            except ValueError as exc:
                field = f"params.{name}" if name in STRATEGIES else "enabled"
                raise ValueError(f"strategies.{field}: {exc}") from None
        return self

    def events_at(self, step: int) -> list[Any]:
        return [e for e in self.events if e.active_at(step)]

    def markets_named(self) -> set[str]:
        return {m for e in self.events for m in (e.markets or ())}

    def last_event_step(self) -> int:
        return max((e.last_step for e in self.events), default=0)


# ------------------------------------------------------------------------------ loading
def available_scenarios(directory: Path = SCENARIO_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def scenario_path(name_or_path: str, directory: Path = SCENARIO_DIR) -> Path:
    """A path as given when it names a file (or ends in .toml); else scenarios/<name>.toml
    (`funding-spike` and `funding_spike` are the same name)."""
    given = Path(name_or_path)  # a bare name is a scenario's even beside a directory of that name
    if given.suffix == ".toml" or given.is_file() or "/" in name_or_path:
        if given.is_dir():
            raise ConfigError(f"scenario {name_or_path}: a directory, not a scenario file (a directory of them is "
                              "for --suite --scenarios)")
        if not given.is_file():
            raise ConfigError(f"scenario {name_or_path}: file not found")
        return given
    path = directory / f"{name_or_path.replace('-', '_')}.toml"
    if not path.is_file():
        raise ConfigError(f"scenario {name_or_path!r}: no such scenario (have {', '.join(available_scenarios(directory))}, "
                          f"or give a path to a .toml file)")
    return path


def load_scenario(name_or_path: str, directory: Path = SCENARIO_DIR) -> Scenario:
    path = scenario_path(name_or_path, directory)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"scenario {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"scenario {path}: cannot read it ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"scenario {path}: not valid TOML: {exc}") from exc
    return parse_scenario(data, where=f"scenario {path}")


def parse_scenario(data: dict[str, Any], where: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_scenario_error(exc)}") from exc


def describe_scenario_error(exc: ValidationError) -> str:
    """The first problem with the field it is in: `events[2] (premium_shock): unknown key 'premiun'`,
    `activity.step_s: Input should be greater than 0 (got 0)`; '(+N more)' when there are more."""
    # an unknown key first: a misspelt key also makes its field look missing
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = list(first["loc"])
    parts: list[str] = []
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
            # a discriminated union puts the event kind after the index: show it in parentheses
            if parts[0].startswith("events") and i + 1 < len(loc) and loc[i + 1] in _EVENT_KINDS:
                parts[-1] += f" ({loc[i + 1]})"
                i += 1
        else:
            parts.append(str(part))
        i += 1
    kind = first["type"]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        key = parts.pop() if parts else "?"
        where = f"{'.'.join(parts)}: " if parts else ""
        return f"{where}unknown key {key!r} (check the spelling; see scenarios/*.toml){more}"
    if not parts and kind == "value_error":  # the scenario's own check, its message names the field
        return f"{first['msg'].removeprefix('Value error, ')}{more}"
    field = ".".join(parts) or "scenario"
    if kind == "union_tag_invalid":
        return f"{field}: unknown event kind {first.get('input', {}).get('kind')!r} (one of {', '.join(sorted(_EVENT_KINDS))}){more}"
    if kind == "union_tag_not_found":
        return f"{field}: missing 'kind' (one of {', '.join(sorted(_EVENT_KINDS))}){more}"
    got = "" if kind == "missing" or isinstance(first.get("input"), dict) else f" (got {first.get('input')!r})"
    message = first["msg"].removeprefix("Value error, ")
    return f"{field}: {message}{got}{more}"


_EVENT_KINDS = {"premium_shock", "index_move", "oracle_pause", "liquidity_removal", "base_fee"}
