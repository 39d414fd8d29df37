"""The strategy interface: a pure function of one tick's context to intents and skips.

    decide(ctx: StrategyContext) -> list[Intent | Skip]

A strategy reads the snapshot, the signals, the keeper's open positions, the cost model and the
risk limits, and returns one Intent per market it wants to trade and one Skip (with the deciding
numbers) for every market it looked at and left alone, so that every non-decision is loggable. No
web3, no I/O, no clock: the same context always gives the same answer. Sizes in Intents are raw
ints; USD figures are floats (ranking and sizing only).

Rules shared by every strategy: one position per market (no open where one exists, whoever owns
it); a close for a market takes precedence over anything else for it; Intent.valid_until_block =
snapshot block + the strategy's `valid_for_blocks`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar, get_type_hints

from keeper.basis_history import BasisStats, decayed_seconds
from keeper.frozen import quick_init
from keeper.signals import Signal, instant_funding_rate_per_s, spot_price
from keeper.stress import StressParams
from keeper.venues.gas import upper_gas_units
from keeper.types import (
    ONE_X18,
    Direction,
    Intent,
    IntentKind,
    MarketSnapshot,
    MarketView,
    PerpAccountState,
    PerpMarketState,
    PnlEstimate,
    Position,
    SPOT_VENUES,
    SpotVenue,
    Unavailable,
)

HOURS_PER_YEAR = 365 * 24

# Executor gas before the chain has shown any (the engine replaces these with what this market's
# recent opens and closes used on chain): the gas table's upper column.
GAS_UNITS_OPEN = upper_gas_units("open")
GAS_UNITS_CLOSE = upper_gas_units("close")
GAS_UNITS_RESIZE = upper_gas_units("resize")

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


# ------------------------------------------------------------------------------ inputs
@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class CostModel:
    """What a trade costs beyond its quotes: gas (priced in USD through ETH), the L1 data fee of
    an L2, and the cost of the capital it locks for the expected holding horizon."""

    gas_price_wei: int
    eth_price_usd: float
    gas_units_open: int = GAS_UNITS_OPEN
    gas_units_close: int = GAS_UNITS_CLOSE
    gas_units_resize: int = GAS_UNITS_RESIZE
    l1_data_fee_wei: int = 0  # per transaction (0 on L1 or when unknown)
    cost_of_capital_apr: float = 0.05
    holding_horizon_hours: float = 24.0

    def __post_init__(self) -> None:
        if (self.gas_price_wei >= 0 and self.eth_price_usd > 0 and self.gas_units_open >= 0 and self.gas_units_close >= 0
                and self.gas_units_resize >= 0 and self.l1_data_fee_wei >= 0 and self.cost_of_capital_apr >= 0
                and self.holding_horizon_hours > 0):
            return  # valid (one test, as one is built per block); else the checks below name the first that fails
        _require(self.gas_price_wei >= 0, "gas_price_wei", self.gas_price_wei, ">= 0")
        _require(self.eth_price_usd > 0, "eth_price_usd", self.eth_price_usd, "> 0")
        for name in ("gas_units_open", "gas_units_close", "gas_units_resize", "l1_data_fee_wei"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        _require(self.cost_of_capital_apr >= 0, "cost_of_capital_apr", self.cost_of_capital_apr, ">= 0")
        _require(self.holding_horizon_hours > 0, "holding_horizon_hours", self.holding_horizon_hours, "> 0")

    def tx_cost_usd(self, gas_units: int) -> float:
        """One transaction of gas_units: execution gas plus the L1 data fee, in USD."""
        return (gas_units * self.gas_price_wei + self.l1_data_fee_wei) / ONE_X18 * self.eth_price_usd

    @property
    def open_gas_usd(self) -> float:
        return self.tx_cost_usd(self.gas_units_open)

    @property
    def close_gas_usd(self) -> float:
        return self.tx_cost_usd(self.gas_units_close)

    @property
    def horizon_s(self) -> float:
        return self.holding_horizon_hours * 3600

    def capital_cost_usd(self, capital_usd: float, hold_s: float | None = None) -> float:
        """Cost of `capital_usd` tied up for hold_s seconds (default: the horizon)."""
        hours = self.holding_horizon_hours if hold_s is None else hold_s / 3600
        return capital_usd * self.cost_of_capital_apr * hours / HOURS_PER_YEAR


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class RiskLimits:
    """The risk stage's limits for this tick, in USD where not named otherwise.

    remaining_total_notional_usd is what is left of the keeper's total notional budget after the
    positions already open; free_collateral_usd is the Perp account's free collateral (margin a
    new position may use). max_leverage is ACCOUNT-level: sum over markets of |notional| / account
    value (Perp's free collateral nets only the initial margin of open positions, so a per-open cap
    of free collateral x leverage compounds across markets). spot_inventory_raw caps what a
    LONG_PERP open may sell per market (None: not checked here). stress: the shocks a new position
    must survive with the account's margin ratio above min_margin_ratio (keeper/stress.py)."""

    max_notional_usd_per_market: float
    remaining_total_notional_usd: float
    max_leverage: float  # perp notional / margin posted for it
    free_collateral_usd: float
    min_margin_ratio: float  # account value / total abs position value: below it, no opens and close
    max_residual_base_x18: int = 0  # residual delta tolerated in a trade
    spot_inventory_raw: Mapping[str, int] | None = None
    usdc_wallet_usd: float | None = None  # USDC the executor holds for spot buys (None: not checked)
    stress: StressParams | None = None  # None: no stress cap (unit tests of other rules)

    def __post_init__(self) -> None:
        if (self.max_notional_usd_per_market >= 0 and self.remaining_total_notional_usd >= 0
                and self.free_collateral_usd >= 0 and self.min_margin_ratio >= 0 and self.max_leverage > 0
                and self.max_residual_base_x18 >= 0):
            return  # valid (one test, as one is built per block); else the checks below name the first that fails
        for name in ("max_notional_usd_per_market", "remaining_total_notional_usd", "free_collateral_usd",
                     "min_margin_ratio"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        _require(self.max_leverage > 0, "max_leverage", self.max_leverage, "> 0")
        _require(self.max_residual_base_x18 >= 0, "max_residual_base_x18", self.max_residual_base_x18, ">= 0")


@dataclass(frozen=True)
class StrategyContext:
    """Everything a strategy may look at in one tick.

    signals: by (market, spot venue). positions: the keeper's open positions by market (all
    strategies'). position_owner: market -> name of the strategy that opened it; a strategy
    manages (exits) the positions it owns and those whose owner is unknown, and never opens in a
    market with a position. basis_stats: the recent basis per (market, venue), for the
    convergence target."""

    snapshot: MarketSnapshot
    signals: Mapping[tuple[str, str], Signal]
    positions: Mapping[str, Position]
    costs: CostModel
    limits: RiskLimits
    basis_stats: Mapping[tuple[str, str], BasisStats] = field(default_factory=lambda: _EMPTY)
    position_owner: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    market_costs: Mapping[str, CostModel] = field(default_factory=lambda: _EMPTY)  # costs_for's exceptions
    # funding_forecast_s's answers by its arguments: the strategies ask the same forecast several
    # times a tick (entry, sizing, both strategies), and it is a function of this context alone
    _forecasts: dict[tuple[str, str, float, float, float | None], float] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    @property
    def block_number(self) -> int:
        return self.snapshot.block_number

    def costs_for(self, market: str) -> CostModel:
        """The costs of a trade in `market`: its gas from what the chain used for this market's own
        trades of each kind, where it has any (keeper/one_book.py chain_gas_units); else `costs`."""
        return self.market_costs.get(market, self.costs)

    @property
    def account_margin_ratio(self) -> float | None:
        """The Perp account's margin ratio, None when unknown or without positions."""
        account = self.snapshot.account
        return account.margin_ratio if isinstance(account, PerpAccountState) else None

    def funding_forecast_s(self, market: str, venue: str, funding_rate_per_s: float, hold_s: float,
                           half_life_s: float | None = None) -> float:
        """Expected funding over hold_s (fraction of notional, > 0: longs pay). Perp's rate is a
        TWAP premium: within one TWAP interval it moves linearly from the current rate to the rate
        the vAMM's price implies now (instant_funding_rate_per_s); after that the premium decays
        toward the rate of the tradable basis's centre with the basis's fitted half-life (no
        decay when none is seen; `half_life_s` overrides the fitted one). Without a readable perp or
        statistics: the current rate."""
        key = (market, venue, funding_rate_per_s, hold_s, half_life_s)
        if not (funding_rate_per_s and hold_s and half_life_s != 0):
            return self._funding_forecast_s(*key)  # 0.0 and -0.0 are one key; their answers' zeros need not be
        found = self._forecasts.get(key)
        if found is None:
            found = self._forecasts[key] = self._funding_forecast_s(*key)
        return found

    def _funding_forecast_s(self, market: str, venue: str, funding_rate_per_s: float, hold_s: float,
                            half_life_s: float | None) -> float:
        view = self.snapshot.markets.get(market)
        if view is None or not isinstance(view.perp, PerpMarketState):
            return funding_rate_per_s * hold_s
        perp = view.perp
        signal = self.signals.get((market, venue))
        if signal is not None:  # its spot and vAMM mids: compute_signals read them from this snapshot (no second read)
            instant = instant_funding_rate_per_s(perp, signal.spot_price_usd, signal.vamm_price_usd)
        else:
            spot = spot_price(view, venue)
            instant = instant_funding_rate_per_s(perp, None if isinstance(spot, Unavailable) else spot)
        twap_s = max(1.0, float(perp.twap_interval_s))
        ramp = min(hold_s, twap_s)
        total = funding_rate_per_s * ramp + (instant - funding_rate_per_s) * ramp * ramp / (2 * twap_s)
        rest = hold_s - ramp
        if rest <= 0:
            return total
        stats = self.basis_stats.get((market, venue))
        if stats is None:
            return total + instant * rest
        centre = stats.center_bps / 1e4 / 86_400
        decay = half_life_s if half_life_s is not None else stats.half_life_s
        return total + centre * rest + (instant - centre) * decayed_seconds(decay, rest)

    def manages(self, strategy: str, market: str) -> bool:
        owner = self.position_owner.get(market)
        return market in self.positions and (owner is None or owner == strategy)


# ------------------------------------------------------------------------------ outputs
@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class Skip:
    """A market a strategy looked at and left alone, and why (with the deciding numbers)."""

    strategy: str
    market: str
    reason: str


class Strategy(Protocol):
    name: str

    def decide(self, ctx: StrategyContext) -> list[Intent | Skip]: ...


# ------------------------------------------------------------------------------ parameters
P = TypeVar("P")


class ParamError(ValueError):
    """A bad strategy parameter; `param`: its name (the config names where it was set)."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


def parse_params(strategy: str, params_type: type[P], params: Mapping[str, Any]) -> P:
    """Build a frozen params dataclass from a mapping: unknown names, wrong types and values that
    the dataclass rejects raise ParamError (a ValueError) naming the strategy and the parameter."""
    fields = {f.name: f for f in dataclasses.fields(params_type)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ParamError(f"strategy {strategy!r}: unknown parameter(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(fields))})", unknown[0])
    hints = get_type_hints(params_type)
    values = {name: _coerce(strategy, name, value, hints[name]) for name, value in params.items()}
    try:
        return params_type(**values)
    except ValueError as exc:
        raise ParamError(f"strategy {strategy!r}: {exc}", getattr(exc, "param", None)) from exc


def _coerce(strategy: str, name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ParamError(f"strategy {strategy!r}: parameter {name} must be a bool, got {value!r}", name)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"strategy {strategy!r}: parameter {name} must be an int, got {value!r}", name)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParamError(f"strategy {strategy!r}: parameter {name} must be a finite number, got {value!r}", name)
        return float(value)
    return value


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def require_param(ok: bool, name: str, value: object, rule: str) -> None:
    """For params dataclasses' __post_init__: ParamError (a ValueError) naming the parameter."""
    if not ok:
        raise ParamError(f"parameter {name} must be {rule}, got {value!r}", name)


class StrategyBase:
    """The shared skeleton: decide() walks the markets in name order and applies the rules shared
    by every strategy (one position per market, a managed position's exit decided before anything
    else); subclasses set `name` and `valid_for_blocks` and implement decide_exit / decide_entry."""

    name: ClassVar[str] = "strategy"
    valid_for_blocks: int = 2

    def decide(self, ctx: StrategyContext) -> list[Intent | Skip]:
        out: list[Intent | Skip] = []
        for market in sorted(ctx.snapshot.markets):
            view = ctx.snapshot.markets[market]
            position = ctx.positions.get(market)
            if position is None:
                out.append(self.decide_entry(ctx, view))
            elif ctx.manages(self.name, market):
                out.append(self.decide_exit(ctx, view, position))
            else:
                out.append(self.skip(market, f"position held by {ctx.position_owner.get(market)}: "
                                             "one position per market"))
        return out

    def decide_entry(self, ctx: StrategyContext, view: MarketView) -> Intent | Skip:
        raise NotImplementedError

    def decide_exit(self, ctx: StrategyContext, view: MarketView, position: Position) -> Intent | Skip:
        raise NotImplementedError

    def skip(self, market: str, reason: str) -> Skip:
        return Skip(self.name, market, reason)

    def margin_guard(self, ctx: StrategyContext) -> str | None:
        """Why the margin guard trips (account margin ratio below the limit), or None."""
        ratio = ctx.account_margin_ratio
        if ratio is not None and ratio < ctx.limits.min_margin_ratio:
            return f"margin ratio {ratio:.4f} < guard {ctx.limits.min_margin_ratio:.4f}"
        return None

    def intent(self, ctx: StrategyContext, kind: IntentKind, market: str, direction: Direction, spot_venue: SpotVenue,
               perp_base_x18: int, reason: str, expected: PnlEstimate) -> Intent:
        return Intent(strategy=self.name, kind=kind, market=market, direction=direction, spot_venue=spot_venue,
                      perp_base_x18=perp_base_x18, reason=reason, expected=expected, created_block=ctx.block_number,
                      valid_until_block=ctx.block_number + self.valid_for_blocks)


def describe_estimate(estimate: PnlEstimate) -> str:
    """The model's terms, for reasons."""
    return (f"convergence {estimate.convergence_usd:+,.2f} + funding {estimate.funding_usd:+,.2f} - fees "
            f"{estimate.fees_usd:,.2f} - impact {estimate.price_impact_usd:,.2f} - gas {estimate.gas_usd:,.2f} "
            f"- capital {estimate.capital_cost_usd:,.2f}")
