"""Configuration: one TOML file plus KEEPER_* environment variables, validated by pydantic.

The only module that reads the config file and the environment for settings. Every section
forbids unknown keys (a typo must never fall back silently to a default), and every error names
the field: `config keeper.toml: risk.max_leverage: Input should be greater than 0 (got -1)`.

Environment variables override the file: KEEPER_<SECTION>__<FIELD> (deeper keys: one more __ per level), e.g.
KEEPER_RISK__MAX_LEVERAGE=2 or KEEPER_CHAIN__RPC_URL=http://127.0.0.1:8545. Secrets are not
settings: the signing key is read by keeper/chain/keys.py from the variable named in
account.key_env, and never appears in a config object.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator

from keeper.errors import ConfigError
from keeper.logs import redacted_url
from keeper.types import SPOT_VENUES, SpotVenue

ENV_PREFIX = "KEEPER_"
ENV_NESTED = "__"
# Variables with the prefix that are not settings (secrets and tool paths read elsewhere): the keeper's
# and the admin's key and keystore password variables by their default names; a variable named by
# account.key_env / account.keystore_password_env (or a command's --*-key-env) is skipped too.
NON_SETTING_ENV = {"KEEPER_PRIVATE_KEY", "KEEPER_KEYSTORE_PASSWORD", "KEEPER_ADMIN_PRIVATE_KEY",
                   "KEEPER_ADMIN_KEYSTORE_PASSWORD", "KEEPER_ANVIL", "KEEPER_FORGE", "KEEPER_CAST"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
LIST_ENV_FIELDS = ("enabled", "spot_venues", "backup_rpc_urls")  # KEEPER_MARKETS__ENABLED=ETH,BTC
URL_SCHEMES = {"http", "https"}
WS_SCHEMES = {"ws", "wss"}


def parse_address(value: str, where: str) -> str:
    """A 20-byte hex address (mixed case must be a valid EIP-55 checksum), checksummed; else a
    ConfigError naming `where` (a config field or a command-line option)."""
    if not is_address_text(value):
        raise ConfigError(f"{where}: not an address (0x and 40 hex digits; mixed case must be its checksum): {value!r}")
    return to_checksum_address(value)


def is_address_text(value: object) -> bool:
    """0x and 40 hex digits, all one case or a valid EIP-55 checksum (a typo in a checksummed
    address is caught, as wallets do)."""
    if not isinstance(value, str) or not value.startswith("0x") or not is_hex_address(value):
        return False
    digits = value[2:]
    return digits == digits.lower() or digits == digits.upper() or is_checksum_address(value)


def check_url(value: str, where: str, schemes: set[str] = URL_SCHEMES, *, quote: bool = True) -> str:
    """A node URL with one of `schemes`, a host and, if given, a port in 1..65535; else a
    ConfigError naming `where`."""
    port_ok = True
    try:
        parts = urlsplit(value)
        host, scheme = parts.hostname, parts.scheme
        port_ok = parts.port != 0  # reading it checks it: a port that is not 0..65535 raises
    except ValueError:  # a malformed port or IPv6 literal
        host, scheme = None, ""
    if scheme.lower() not in schemes or not host or not port_ok:
        expected = " or ".join(sorted(schemes))  # said without "://": the message's own pattern is not a URL to redact
        raise ConfigError(f"{where}: not a node URL (expected scheme {expected}, a host and an optional port 1-65535, "
                          f"e.g. {sorted(schemes)[0]}://127.0.0.1:8545)"
                          + (f": {redacted_url(value)!r}" if quote else ""))
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)  # inf, nan: refused

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """TOML's `true` is not the number 1 (pydantic would take it as one): refused, as the
        strategies refuse it for their parameters."""
        field_type = cls.model_fields[info.field_name or ""].annotation
        if isinstance(value, bool) and {int, float} & {field_type, *get_args(field_type)}:
            raise ValueError("expected a number, not true/false")
        return value


class ChainConfig(_Section):
    rpc_url: str | None = Field(None, description="JSON-RPC URL; unset: start the embedded devnet")
    chain_id: int | None = Field(None, gt=0, description="expected chain id (checked at start)")
    preset: Literal["devnet", "optimism"] = "devnet"
    manifest: Path | None = Field(None, description="devnet manifest with every address (devnet preset)")
    backup_rpc_urls: list[str] = Field(default_factory=list, description="failover nodes, in order")
    ws_url: str | None = Field(None, description="WebSocket URL for pushed heads; unset: anvil's own port, else polling")
    heads: Literal["auto", "poll"] = Field("auto", description="auto: pushed over ws when there is one; poll: HTTP only")
    poll_interval_s: float = Field(0.25, gt=0, le=60)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    startup_retry_s: float = Field(30.0, ge=0, le=3_600, description="retry transient RPC errors at start this long")
    startup_backoff_max_s: float = Field(4.0, gt=0, le=300, description="longest wait between start attempts")
    max_head_lag_blocks: int = Field(3, ge=1, description="demote a node this many blocks behind the best head")
    max_head_lag_s: float = Field(30.0, gt=0, description="demote a node whose head has not moved this long")
    head_check_interval_s: float = Field(5.0, gt=0, description="how often every node's head is compared")

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, URL_SCHEMES)

    @field_validator("manifest")
    @classmethod
    def _manifest(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        preset = info.data.get("preset", "devnet")  # declared before it
        if value is not None and preset != "devnet":
            raise ValueError(f"a devnet manifest: only with preset 'devnet' (the preset is {preset!r}, whose "
                             "addresses are resolved on chain)")
        return value

    @field_validator("backup_rpc_urls")
    @classmethod
    def _backup_rpc_urls(cls, value: list[str]) -> list[str]:
        return [_url(url, URL_SCHEMES) for url in value]

    @field_validator("ws_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, WS_SCHEMES)


def _url(value: str, schemes: set[str]) -> str:
    """check_url for a validator: a ValueError, which pydantic reports under the field's name."""
    try:
        return check_url(value, "url", schemes, quote=False)  # pydantic's message adds the value
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("url: ")) from None


class AccountConfig(_Section):
    key_env: str = Field("KEEPER_PRIVATE_KEY", description="NAME of the env var holding the hex private key (never the key)")
    keystore: Path | None = Field(None, description="encrypted keystore JSON (instead of key_env)")
    keystore_password_env: str = "KEEPER_KEYSTORE_PASSWORD"
    executor: str | None = Field(None, description="BasisExecutor address; unset on a devnet: deployed at start")
    collateral_usdc: float = Field(50_000, ge=0, description="USDC kept in the Perp vault through the executor")

    @field_validator("key_env", "keystore_password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        # a variable's name; a key pasted where its name belongs is refused (and never echoed:
        # describe_validation_error shows no value of an *_env field)
        if not _ENV_NAME.fullmatch(value) or _HEX_RUN.search(value):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not its value")
        return value

    @field_validator("executor")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_address_text(value):
            raise ValueError("not an address (0x and 40 hex digits; mixed case must be its checksum)")
        return value


class MarketsConfig(_Section):
    enabled: list[str] = Field(default_factory=lambda: ["ETH", "BTC"], min_length=1)
    spot_venues: list[SpotVenue] = Field(default_factory=lambda: list(SPOT_VENUES), min_length=1)

    @field_validator("enabled", "spot_venues")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return _unique(value)


def _unique(value: list[str]) -> list[str]:
    """A list of names, each at most once (a market twice would be traded, and registered, twice)."""
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} given more than once")
    return value


class StrategiesConfig(_Section):
    enabled: list[str] = Field(default_factory=lambda: ["basis_convergence", "funding_carry"])
    # Per-strategy parameters, validated by each strategy when it is loaded.
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    max_failures: int = Field(3, ge=1, description="consecutive raises before a strategy is disabled")
    basis_window_s: float = Field(7200, gt=0, description="seconds of tradable-basis history behind the robust statistics")
    basis_min_samples: int = Field(20, ge=2, description="observations needed before a z-score is defined")
    warm_start_blocks: int = Field(300, ge=0, description=(
        "past blocks read at start into the basis and index histories (keeper/warm_start.py); 0: off"))
    warm_start_max_s: float = Field(30.0, gt=0, le=3_600, description=(
        "seconds the warm start may read for at most (open positions are not watched meanwhile)"))

    @field_validator("enabled")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return _unique(value)


class CostsConfig(_Section):
    cost_of_capital_apr: float = Field(0.05, ge=0, le=1)
    holding_horizon_hours: float = Field(24.0, gt=0, le=24 * 365)
    min_profit_usd: float = Field(1.0, ge=0)
    gas_cost_multiple: float = Field(2.0, ge=1, description="expected net PnL must exceed this x gas cost")


class RiskConfig(_Section):
    max_notional_usd_per_market: float = Field(100_000, gt=0)
    max_notional_usd_total: float = Field(250_000, gt=0)
    max_leverage: float = Field(3.0, gt=0, le=10)
    min_margin_ratio: float = Field(0.15, gt=0.0625, le=1, description="above Perp's 6.25% maintenance")
    max_gas_price_gwei: float = Field(50.0, gt=0)
    daily_loss_limit_usd: float = Field(2_000, gt=0)
    max_oracle_age_s: int = Field(1_800, gt=0, description="below the Perp feed's own timeout (2,400 s)")
    max_snapshot_age_blocks: int = Field(3, ge=0)
    max_block_age_s: int = Field(0, ge=0, description="newest block vs wall clock; 0: off (pinned-clock devnets)")
    max_index_spot_divergence_bps: float = Field(200, gt=0)
    stress_index_move: float = Field(0.05, ge=0, lt=1, description="index shock (both ways) a new position must survive")
    stress_funding_apr: float = Field(1.0, ge=0, description="adverse funding APR paid over the expected hold, under stress")
    stress_exit_weight: float = Field(1.0, ge=0, description=(
        "weight on the estimated chance of a stress-sized index move within the hold; a new position's expected "
        "net carries that chance x the extra cost of closing after the stressed move; 0: off"))
    margin_topup_ratio: float = Field(0.25, gt=0.0625, le=1,
                                      description="below it: top up collateral from the executor's USDC and reduce")
    margin_reduce_fraction: float = Field(0.5, gt=0, le=1, description="share of the largest position a reduce sheds")
    exit_cooldown_s: int = Field(300, ge=0, description=(
        "no new position on the same side of a market this long after an exit there, unless the basis has since "
        "moved away by at least the new trade's round-trip cost"))
    max_residual_delta_bps: float = Field(50, ge=0, description="re-hedge when |residual| / size exceeds this")
    kill_switch_file: Path = Path(".keeper/KILL")
    kill_switch_action: Literal["unwind", "freeze"] = "unwind"


class ExecutionConfig(_Section):
    slippage_bps: int = Field(30, ge=0, le=1_000)
    deadline_s: int = Field(120, gt=0)
    confirmations: int = Field(1, ge=1, le=64)
    replace_after_blocks: int = Field(3, ge=1)
    dropped_after_blocks: int = Field(3, ge=1, description="a transaction the node has not held for this many blocks "
                                      "(re-broadcasts and replacements refused) is dropped; its nonce is freed")
    max_fee_per_gas_gwei: float = Field(100.0, gt=0)
    gas_margin_pct: int = Field(20, ge=0, le=200)
    intent_ttl_blocks: int = Field(2, ge=0)


class MonitoringConfig(_Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    metrics_port: int = Field(0, ge=0, le=65_535, description="Prometheus /metrics on 127.0.0.1; 0: off")
    journal: Path = Path(".keeper/journal.sqlite")
    journal_retention_days: float = Field(30.0, ge=0, description="skip rows and funding readings kept; 0: all")
    live_panel: Literal["auto", "off"] = Field("auto", description="auto: a live panel on a terminal, logs to log_file")
    log_file: Path = Field(Path(".keeper/keeper.log"), description="where the logs go while the live panel shows")


class KeeperConfig(_Section):
    chain: ChainConfig = ChainConfig()
    account: AccountConfig = AccountConfig()
    markets: MarketsConfig = MarketsConfig()
    strategies: StrategiesConfig = StrategiesConfig()
    costs: CostsConfig = CostsConfig()
    risk: RiskConfig = RiskConfig()
    execution: ExecutionConfig = ExecutionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    _env_names: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)  # load_config: key path -> variable

    def where(self, *key: str, source: tuple[str, ...] | None = None) -> str:
        """How a check after loading (the strategies' parameters) names `key` in its error: after the
        environment variable that set `source` (default: the key), or the key holding it, if one did,
        as load_config does (`environment KEEPER_...: a.b`); else `a.b`."""
        variable = _env_source(key if source is None else source, self._env_names)
        return f"environment {variable}: {'.'.join(key)}" if variable else ".".join(key)


def _env_overrides(environ: dict[str, str], secrets: Collection[str] = (),
                   names: dict[tuple[str, ...], str] | None = None) -> dict[str, Any]:
    """KEEPER_SECTION__FIELD=value -> {"section": {"field": value}}; deeper keys nest further
    (KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__ENTRY_Z=3, the value read as a TOML value: 3,
    2.5, true, "text"; else the text itself). The list fields (LIST_ENV_FIELDS) are comma-separated.
    Any other KEEPER_ name is an error, except the variables that hold secrets (NON_SETTING_ENV and
    `secrets`). `names`, when given, maps each key path set to its variable's name."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_ENV or name in secrets:
            continue
        parts = name[len(ENV_PREFIX):].lower().split(ENV_NESTED)
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"environment {name}: expected KEEPER_<SECTION>__<FIELD> (e.g. KEEPER_RISK__MAX_LEVERAGE)")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment {name}: {'.'.join(parts[:-1])} is set by another variable as a value")
            node = child
        if len(parts) == 2 and parts[1] in LIST_ENV_FIELDS:
            node[parts[-1]] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            node[parts[-1]] = value if len(parts) == 2 else _toml_value(value)
        if names is not None:
            names[tuple(parts)] = name
    return tree


def _toml_value(text: str) -> Any:
    """A nested variable's value as TOML reads it (3 -> int, 2.5 -> float, true -> bool); else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_source(loc: tuple[Any, ...], names: Mapping[tuple[str, ...], str]) -> str | None:
    """The variable that set the key at `loc` (or a key under it, or the key holding it), if any."""
    path = tuple(str(p) for p in loc)
    for keys, name in names.items():
        n = min(len(keys), len(path))
        if keys[:n] == path[:n]:
            return name
    return None


def _named_secrets(data: Mapping[str, Any], environ: Mapping[str, str]) -> set[str]:
    """The variables the file or the environment names as holding the key or the keystore's password."""
    account = data.get("account") if isinstance(data.get("account"), Mapping) else {}
    names = {account.get("key_env"), account.get("keystore_password_env"),  # type: ignore[union-attr]
             environ.get(f"{ENV_PREFIX}ACCOUNT{ENV_NESTED}KEY_ENV"),
             environ.get(f"{ENV_PREFIX}ACCOUNT{ENV_NESTED}KEYSTORE_PASSWORD_ENV")}
    return {n for n in names if isinstance(n, str)}


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, environ: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None, secret_env: tuple[str, ...] = ()) -> KeeperConfig:
    """File (optional) < environment < explicit overrides (CLI options). Raises ConfigError.
    `secret_env`: more variable names that hold secrets, not settings (a command's --*-key-env)."""
    where = f"config {path}" if path else "config"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM (Windows editors): skipped
        except FileNotFoundError as exc:
            raise ConfigError(f"{where}: file not found") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"{where}: is a directory, not a TOML file") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    env = dict(os.environ if environ is None else environ)
    env_names: dict[tuple[str, ...], str] = {}
    data = _merge(data, _env_overrides(env, _named_secrets(data, env) | set(secret_env), env_names))
    data = _merge(data, overrides or {})
    env_names = _not_overridden(env_names, overrides or {})  # a CLI option's value is not the variable's
    try:
        config = KeeperConfig.model_validate(data)
    except ValidationError as exc:
        variable = _env_source(exc.errors()[0]["loc"], env_names)  # the environment set it, not the file
        raise ConfigError(f"{f'environment {variable}' if variable else where}: {describe_validation_error(exc)}") from exc
    config._env_names = env_names  # KeeperConfig.where
    return config


def with_overrides(config: KeeperConfig, overrides: Mapping[str, Any], where: str = "config") -> KeeperConfig:
    """`config` with some keys replaced (nested by section), validated again. The environment
    variables that set the keys it keeps are still named in errors (KeeperConfig.where, and its
    own validation error); a replaced key is `where`'s."""
    names = _not_overridden(config._env_names, overrides)
    try:
        merged = KeeperConfig.model_validate(_merge(config.model_dump(), overrides))
    except ValidationError as exc:
        variable = _env_source(exc.errors()[0]["loc"], names)
        raise ConfigError(f"{f'environment {variable}' if variable else where}: {describe_validation_error(exc)}") from exc
    merged._env_names = names
    return merged


def _not_overridden(names: Mapping[tuple[str, ...], str], overrides: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """The variables' key paths that `overrides` (merged as _merge does) leaves as they were."""
    def replaced(keys: tuple[str, ...]) -> bool:
        node: Any = overrides
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                return not isinstance(node, Mapping)  # a value above the key replaced its whole section
            node = node[key]
        return True
    return {keys: name for keys, name in names.items() if not replaced(keys)}


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, naming the field and the bad value; '(+N more)' when there are more."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")  # our validators' own words
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see keeper.example.toml)"
    shown = first.get("input")
    if isinstance(shown, PurePath):  # a path as the user wrote it, not its repr
        shown = str(shown)
    if isinstance(shown, str) and "url" in field:  # a node URL may carry a provider's key
        shown = redacted_url(shown)
    elif isinstance(shown, list) and "url" in field:
        shown = [redacted_url(u) if isinstance(u, str) else u for u in shown]
    secret = field.endswith("_env")  # the name of a secret's variable: a secret pasted there is not echoed
    got = "" if first["type"] in ("extra_forbidden", "missing") or secret else f" (got {shown!r})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field}: {message}{got}{more}"
