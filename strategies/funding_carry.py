"""Funding carry: hold the side of the perp that receives funding, hedged with spot.

Perp v2 funding (Signal.funding_apr, from the snapshot's premium) > 0 means longs pay shorts, so
SHORT_PERP + long spot earns it; < 0, LONG_PERP + sold spot earns it.

Carry is judged on the FORECAST funding (forecast_carry_apr: Perp's TWAP rate ramping within one
TWAP interval to the rate the vAMM's premium over spot implies, then decaying toward the basis
centre's rate with the fitted half-life), never on the current TWAP rate alone, which lags a flip.

Entry (no position in the market, margin ratio at or above the guard): the forecast carry APR of
the earning side is at least `min_carry_apr` and beats the cost of capital by
`min_carry_margin_apr`, and the shared model's expected net PnL over the horizon (that funding x
`funding_persistence`, plus the tradable basis expected back toward its centre as the half-life
says: a carry entered far from the centre pays that convergence) minus every cost clears
`min_profit_usd` at the best size, capped by the stress grid (keeper/stress.py). Of the two spot
venues, the best wins.

Exit (a position this strategy manages), first that applies: the margin guard; the forecast
funding flipped against the position; its forecast carry APR fell below the cost of capital; the
thesis is broken (holding over the horizon, funding plus the basis's expected move toward its
centre minus capital, is expected to lose). It takes over another strategy's position (hand-over)
only when its entry rule would hold it: forecast carry above the hurdle and holding expected to pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.errors import SkipOpportunity
from keeper.signals import Signal
from keeper.types import ONE_X18, SECONDS_PER_YEAR, Direction, Intent, MarketView, PerpAccountState, Position, Unavailable
from strategies.base import (
    SPOT_VENUES,
    Skip,
    StrategyBase,
    StrategyContext,
    describe_estimate,
    parse_params,
    require_param,
)
from keeper.stress import legs_from_snapshot
from strategies.pnl import (
    OpenEvaluation,
    describe_size,
    estimate_close,
    mid_prices_usd,
    optimise_open,
    round_trip_fee_fraction,
)


@dataclass(frozen=True)
class FundingCarryParams:
    min_carry_apr: float = 0.05  # the earning side's funding APR must be at least this
    min_carry_margin_apr: float = 0.0  # ... and beat the cost of capital by this much
    min_profit_usd: float = 5.0
    min_notional_usd: float = 100.0
    funding_persistence: float = 1.0  # share of the current rate expected over the horizon
    valid_for_blocks: int = 2
    max_evaluations_per_venue: int = 10  # sizes quoted per venue (2 exact quotes each)

    def __post_init__(self) -> None:
        require_param(self.min_carry_apr >= 0, "min_carry_apr", self.min_carry_apr, ">= 0")
        require_param(self.min_carry_margin_apr >= 0, "min_carry_margin_apr", self.min_carry_margin_apr, ">= 0")
        require_param(self.min_notional_usd > 0, "min_notional_usd", self.min_notional_usd, "> 0")
        require_param(0 < self.funding_persistence <= 1, "funding_persistence", self.funding_persistence, "in (0, 1]")
        require_param(self.valid_for_blocks >= 0, "valid_for_blocks", self.valid_for_blocks, ">= 0")
        require_param(self.max_evaluations_per_venue >= 1, "max_evaluations_per_venue",
                      self.max_evaluations_per_venue, ">= 1")


def expected_exit_basis_bps(ctx: StrategyContext, view: MarketView, venue: str) -> float | None:
    """Where the tradable basis is expected at the end of the horizon: back toward its centre by
    the share its fitted half-life decays over the horizon (None, no convergence assumed, when no
    statistics or no decay are seen). A carry position entered on a basis far from its centre
    pays (or earns) that convergence too; funding is forecast separately, so nothing counts twice."""
    stats = ctx.basis_stats.get((view.name, venue))
    mids = mid_prices_usd(view, venue)  # type: ignore[arg-type]
    if stats is None or stats.half_life_s is None or isinstance(mids, Unavailable):
        return None
    mid_basis_bps = (mids[0] / mids[1] - 1) * 1e4
    return stats.center_bps + (mid_basis_bps - stats.center_bps) * 2 ** (-ctx.costs.horizon_s / stats.half_life_s)


def carry_apr(signal: Signal, direction: Direction) -> float:
    return signal.carry_apr_short_perp if direction is Direction.SHORT_PERP else signal.carry_apr_long_perp


def forecast_carry_apr(ctx: StrategyContext, signal: Signal, direction: Direction) -> float:
    """The carry APR `direction` is expected to earn over the horizon: the funding forecast
    (StrategyContext.funding_forecast_s: Perp's TWAP rate ramping to the vAMM's premium, then
    decaying to the basis centre's) as an APR, signed for the side. Perp's current rate is a
    TWAP that lags a flip of the premium by up to an interval; the forecast does not."""
    horizon_s = ctx.costs.horizon_s
    fraction = ctx.funding_forecast_s(signal.market, signal.spot_venue, signal.funding_rate_per_hour / 3600, horizon_s)
    return -direction.perp_sign * fraction / horizon_s * SECONDS_PER_YEAR


class FundingCarry(StrategyBase):
    name: ClassVar[str] = "funding_carry"

    def __init__(self, params: FundingCarryParams | None = None) -> None:
        self.params = params or FundingCarryParams()
        self.valid_for_blocks = self.params.valid_for_blocks

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FundingCarry:
        return cls(parse_params(cls.name, FundingCarryParams, params))

    # ------------------------------------------------------------------------------ exit
    def decide_exit(self, ctx: StrategyContext, view: MarketView, position: Position) -> Intent | Skip:
        market = position.market
        capital_apr = ctx.costs.cost_of_capital_apr
        signal = ctx.signals.get((market, position.spot_venue))
        reason = None
        guard = self.margin_guard(ctx)
        if guard is not None:
            reason = f"margin guard: {guard}"
        elif signal is not None:
            carry = forecast_carry_apr(ctx, signal, position.direction)
            if carry < 0:
                reason = (f"funding flipped: forecast carry {carry:+.2%} APR over the horizon for {position.direction.value} "
                          f"(Perp's current TWAP rate {signal.funding_apr:+.2%}, basis {signal.basis_bps:.1f} bps)")
            elif carry < capital_apr:
                reason = f"forecast carry {carry:+.2%} APR below the cost of capital {capital_apr:.2%}"
            elif (edge := self.hold_edge_usd(ctx, view, position, signal)) < 0:
                reason = (f"thesis broken: holding is expected to lose ${-edge:,.2f} over the horizon (basis "
                          f"{signal.basis_bps:.1f} bps expected back toward its centre against the side, "
                          f"forecast carry {carry:+.2%} APR)")
        if reason is None:
            if signal is None:
                return self.skip(market, f"holding {position.direction.value}: no signal on {position.spot_venue}")
            return self.skip(market, f"holding {position.direction.value}: forecast carry "
                                     f"{forecast_carry_apr(ctx, signal, position.direction):+.2%} APR >= cost of capital "
                                     f"{capital_apr:.2%}, basis {signal.basis_bps:.1f} bps")
        try:
            _, estimate = estimate_close(view, position, ctx.costs_for(view.name))
        except SkipOpportunity as exc:
            return self.skip(market, f"wants to close ({reason}) but cannot quote it: {exc}")
        return self.intent(ctx, "close", market, position.direction, position.spot_venue,
                           abs(position.perp_base_x18),
                           f"close {position.direction.value}: {reason}; round trip if closed now "
                           f"${estimate.net_usd:,.2f}", estimate)

    def would_hold(self, ctx: StrategyContext, position: Position) -> str | None:
        """Why this strategy would keep `position` (hand-over from another strategy), or None: as
        its entry rule, the position's side is forecast to receive funding at a carry APR above the
        hurdle, and holding it over the horizon is expected to pay (hold_edge_usd > 0)."""
        signal = ctx.signals.get((position.market, position.spot_venue))
        view = ctx.snapshot.markets.get(position.market)
        if signal is None or view is None:
            return None
        carry = forecast_carry_apr(ctx, signal, position.direction)
        hurdle = max(self.params.min_carry_apr, ctx.costs.cost_of_capital_apr + self.params.min_carry_margin_apr)
        if carry < hurdle:
            return None
        edge = self.hold_edge_usd(ctx, view, position, signal)
        if edge <= 0:
            return None
        return f"forecast carry {carry:+.2%} APR >= hurdle {hurdle:.2%}, holding expected to earn ${edge:,.2f}"

    def hold_edge_usd(self, ctx: StrategyContext, view: MarketView, position: Position, signal: Signal) -> float:
        """What holding `position` over the horizon is expected to earn: the funding forecast, plus
        the tradable basis's expected move toward its centre (for or against the side), minus the
        capital cost."""
        base = abs(position.perp_base_x18) / ONE_X18
        sign = -position.direction.perp_sign
        horizon_s = ctx.costs.horizon_s
        funding = sign * base * signal.index_price_usd * ctx.funding_forecast_s(
            position.market, position.spot_venue, signal.funding_rate_per_hour / 3600, horizon_s)
        exit_bps = expected_exit_basis_bps(ctx, view, position.spot_venue)
        convergence = 0.0 if exit_bps is None else sign * base * signal.spot_price_usd * (signal.basis_bps - exit_bps) / 1e4
        capital = ctx.costs.capital_cost_usd(base * signal.spot_price_usd * (1 + 1 / ctx.limits.max_leverage), horizon_s)
        return funding + convergence - capital

    # ------------------------------------------------------------------------------ entry
    def decide_entry(self, ctx: StrategyContext, view: MarketView) -> Intent | Skip:
        market = view.name
        p = self.params
        guard = self.margin_guard(ctx)
        if guard is not None:
            return self.skip(market, f"no open: {guard}")
        perp = view.perp
        if isinstance(perp, Unavailable):
            return self.skip(market, f"no open: perp unavailable: {perp.reason}")
        account = ctx.snapshot.account if isinstance(ctx.snapshot.account, PerpAccountState) else None
        capital_apr = ctx.costs.cost_of_capital_apr
        notes: list[str] = []
        best: tuple[OpenEvaluation, Signal, int] | None = None
        for venue in SPOT_VENUES:
            signal = ctx.signals.get((market, venue))
            if signal is None:
                notes.append(f"{venue}: no signal")
                continue
            if (market, venue) not in ctx.basis_stats:
                notes.append(f"{venue}: no basis statistics yet: nothing to forecast the premium's decay from")
                continue
            short_carry = forecast_carry_apr(ctx, signal, Direction.SHORT_PERP)
            if short_carry == 0:
                notes.append(f"{venue}: forecast funding is 0")
                continue
            direction = Direction.SHORT_PERP if short_carry > 0 else Direction.LONG_PERP
            carry = abs(short_carry)
            hurdle = max(p.min_carry_apr, capital_apr + p.min_carry_margin_apr)
            if carry < hurdle:
                notes.append(f"{venue}: {direction.value} forecast carry {carry:+.2%} APR < hurdle {hurdle:.2%} "
                             f"(min {p.min_carry_apr:.2%}, capital {capital_apr:.2%} + margin {p.min_carry_margin_apr:.2%})")
                continue
            # Funding and fees both scale with size (impact and gas only add): when the funding
            # expected per dollar over the horizon is below the round-trip fee rate, no size can
            # pay, so skip the size search.
            funding_fraction = ctx.funding_forecast_s(market, venue, perp.funding_rate_per_s, ctx.costs.horizon_s)
            funding_per_usd = -direction.perp_sign * funding_fraction * p.funding_persistence
            fee_per_usd = round_trip_fee_fraction(view, venue)
            if funding_per_usd < fee_per_usd:
                notes.append(f"{venue}: {direction.value} carry {carry:+.2%}: funding over "
                             f"{ctx.costs.holding_horizon_hours:g} h {funding_per_usd:.4%} of notional < round-trip fees "
                             f"{fee_per_usd:.4%}")
                continue
            result = optimise_open(
                view, direction, venue, ctx.costs_for(view.name), ctx.limits, account,
                funding_fraction=funding_fraction * p.funding_persistence,
                exit_basis_bps=expected_exit_basis_bps(ctx, view, venue),
                min_notional_usd=p.min_notional_usd, max_evaluations=p.max_evaluations_per_venue,
                legs=legs_from_snapshot(ctx.snapshot), min_profit_usd=p.min_profit_usd,
            )
            if isinstance(result, Unavailable):
                notes.append(f"{venue}: {result.reason}")
                continue
            search, cap = result
            if search.best is None:
                notes.append(f"{venue}: carry {carry:+.2%}: no size quotable in [{search.low_x18 / 1e18:g}, "
                             f"{search.high_x18 / 1e18:g}] base (cap: {cap.binding})"
                             f"{': ' + search.first_failure if search.first_failure else ''}")
                continue
            evaluation = search.best
            if evaluation.net_usd < p.min_profit_usd:
                notes.append(f"{venue}: carry {carry:+.2%}: best expected net ${evaluation.net_usd:,.2f} < min "
                             f"${p.min_profit_usd:,.2f} at {describe_size(evaluation)} ({describe_estimate(evaluation.estimate)})")
                continue
            if best is None or evaluation.net_usd > best[0].net_usd:
                best = (evaluation, signal, search.evaluations)
        if best is None:
            return self.skip(market, "no open: " + "; ".join(notes))
        evaluation, signal, evaluations = best
        entry = evaluation.entry
        reason = (f"open {entry.direction.value} on {entry.spot_venue}: funding APR {signal.funding_apr:+.2%} "
                  f"(carry now {carry_apr(signal, entry.direction):+.2%}, forecast "
                  f"{forecast_carry_apr(ctx, signal, entry.direction):+.2%} APR vs capital {capital_apr:.2%}), basis "
                  f"{signal.basis_bps:.1f} bps, size {describe_size(evaluation)}, expected net ${evaluation.net_usd:,.2f} over "
                  f"{ctx.costs.holding_horizon_hours:g} h ({describe_estimate(evaluation.estimate)}) >= min ${p.min_profit_usd:,.2f}; "
                  f"{evaluations} sizes quoted")
        if notes:
            reason += "; others: " + "; ".join(notes)
        return self.intent(ctx, "open", market, entry.direction, entry.spot_venue, evaluation.perp_base_x18, reason,
                           evaluation.estimate)

