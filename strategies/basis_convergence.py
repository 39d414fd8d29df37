"""Basis convergence: trade the perp/spot basis back to its recent mean.

Every number here is the TRADABLE basis (vAMM mid vs spot mid; the exact quotes at size in the
sizing), never Perp's lagging margin mark; its centre, scale and half-life are robust statistics
of the recent tradable basis (keeper/basis_history.py: median, MAD, AR(1) half-life).

Entry (no position in the market, margin ratio at or above the guard): on a spot venue whose basis
robust z-score departs from its centre by at least `entry_z`, take SHORT_PERP when the perp is rich
(z > 0) or LONG_PERP when it is cheap (z < 0), sized to maximise the shared model's expected net
PnL (strategies/pnl.py): the basis expected where this strategy's own exit rule is expected to
fire (strategies/exit_forecast.py: the rule replayed on the window's past departures like this
one, with the fitted decay, or the median catching up with a lasting departure, as a prior;
`convergence_fraction` of the way) plus funding forecast over that expected hold (at most the
horizon), minus every cost (both transactions, capital for that time); only when that clears
`min_profit_usd`. The size is also capped so the
account survives the stress grid (keeper/stress.py). Of the venues that qualify, the best wins.

Exit (a position this strategy manages), the first that applies:
- margin guard: the account's margin ratio is below RiskLimits.min_margin_ratio;
- converged: |z| < `exit_z`, or the basis crossed its centre;
- thesis broken: the expected remaining edge (the rest of the convergence to the centre, funding
  over the remaining expected hold, minus capital for it) is <= 0. The cost of closing is not in
  the comparison: closing now or later pays the same close, so it cancels.
While it holds, it adds to the position (a resize, strategies/scale_in.py) when the basis has
widened past the entry by at least entry_z x scale, is still at least entry_z from the centre in
the position's favour, and the add's own expected net clears min_profit_usd.
Staged entry (`first_stage` < 1, strategies/staged_entry.py): an entry whose exit forecast has no
past departure to replay (the decay model alone) opens that share of its best size; the rest is
an add once the departure has narrowed since the entry, priced on the half-life its own path shows.
There is no basis stop-loss: a hedged position that widens is worth MORE if the thesis holds, and
solvency is kept by stress sizing and the margin ladder, not by realising the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.errors import SkipOpportunity
from keeper.signals import Signal
import dataclasses
import math

from keeper.stress import legs_from_snapshot
from keeper.types import ONE_X18, Direction, Intent, MarketView, PerpAccountState, Position, SpotVenue, Unavailable
from strategies.base import (
    SPOT_VENUES,
    BasisStats,
    RiskLimits,
    Skip,
    StrategyBase,
    StrategyContext,
    describe_estimate,
    parse_params,
    require_param,
)
from strategies.exit_forecast import ExitForecast, forecast_exit
from strategies.pnl import (
    OpenEvaluation,
    SizeCap,
    describe_size,
    direction_sign,
    estimate_close,
    mid_prices_usd,
    optimise_open,
    round_trip_fee_fraction,
)
from strategies.size_search import SizeSearch
from strategies.scale_in import optimise_add, widened_bps
from strategies.staged_entry import first_stage_limits, observed_half_life_s

NO_SIZE_FEE_SHARE = 0.9  # of the nominal round-trip fee rate that an edge below proves no size pays


@dataclass(frozen=True)
class BasisConvergenceParams:
    entry_z: float = 2.0
    exit_z: float = 0.5
    min_profit_usd: float = 5.0
    min_notional_usd: float = 100.0
    convergence_fraction: float = 1.0  # share of the distance to the mean expected within the horizon
    valid_for_blocks: int = 2
    max_evaluations_per_venue: int = 10  # sizes quoted per venue (2 exact quotes each)
    add_on_widening: bool = True  # grow a held position when its basis widens past the entry (scale_in.py)
    exit_from_window: bool = True  # expect the exit where the exit rule fires on the window's history (exit_forecast.py)
    # the decay model as the mean over the window's AR(1) slope and its uncertainty (noise-robust fit),
    # not the point half-life, and the median's catch-up in a window still growing: measured on the
    # suite and off (README, "Where the exit is expected")
    decay_uncertainty: bool = False
    # the share of the best size opened on a departure whose decay is unseen (no past departure in the
    # window to replay); the rest is added once it narrows, priced on its own path (staged_entry.py)
    first_stage: float = 1.0

    def __post_init__(self) -> None:
        require_param(self.entry_z > 0, "entry_z", self.entry_z, "> 0")
        require_param(0 <= self.exit_z < self.entry_z, "exit_z", self.exit_z, "in [0, entry_z)")
        require_param(self.min_notional_usd > 0, "min_notional_usd", self.min_notional_usd, "> 0")
        require_param(0 < self.convergence_fraction <= 1, "convergence_fraction", self.convergence_fraction, "in (0, 1]")
        require_param(self.valid_for_blocks >= 0, "valid_for_blocks", self.valid_for_blocks, ">= 0")
        require_param(self.max_evaluations_per_venue >= 1, "max_evaluations_per_venue",
                      self.max_evaluations_per_venue, ">= 1")
        require_param(0 < self.first_stage <= 1, "first_stage", self.first_stage, "in (0, 1]")
        require_param(self.exit_from_window or not self.decay_uncertainty, "decay_uncertainty", self.decay_uncertainty,
                      "false when exit_from_window is false (it changes only the window's forecast)")


class BasisConvergence(StrategyBase):
    name: ClassVar[str] = "basis_convergence"

    def __init__(self, params: BasisConvergenceParams | None = None) -> None:
        self.params = params or BasisConvergenceParams()
        self.valid_for_blocks = self.params.valid_for_blocks

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BasisConvergence:
        return cls(parse_params(cls.name, BasisConvergenceParams, params))

    # ------------------------------------------------------------------------------ exit
    def decide_exit(self, ctx: StrategyContext, view: MarketView, position: Position) -> Intent | Skip:
        market, direction = position.market, position.direction
        signal = ctx.signals.get((market, position.spot_venue))
        stats = ctx.basis_stats.get((market, position.spot_venue))
        reason = None
        guard = self.margin_guard(ctx)
        if guard is not None:
            reason = f"margin guard: {guard}"
        elif signal is not None and stats is not None:
            z = signal.basis_zscore
            remaining_bps = (signal.basis_bps - stats.center_bps) * -direction.perp_sign  # still to earn
            if remaining_bps <= 0:
                reason = (f"converged: basis {signal.basis_bps:.1f} bps crossed its centre {stats.center_bps:.1f} bps "
                          f"(z={_fmt(z)}, entry {_entry_bps(position)})")
            elif z is not None and abs(z) < self.params.exit_z:
                reason = (f"converged: |z|={abs(z):.2f} < exit {self.params.exit_z:.2f}, basis "
                          f"{signal.basis_bps:.1f} bps (entry {_entry_bps(position)})")
        try:
            _, estimate = estimate_close(view, position, ctx.costs_for(view.name))
        except SkipOpportunity as exc:
            return self.skip(market, f"wants to close ({reason or 'checking the thesis'}) but cannot quote it: {exc}")
        if reason is None and signal is not None and stats is not None:
            # Closing now or at the expected exit pays the same close (fees, impact, gas): it
            # cancels, and holding is worth it while the edge still expected is positive.
            edge = self.remaining_edge_usd(ctx, position, signal, stats)
            if edge <= 0:
                reason = (f"thesis broken: expected remaining edge ${edge:,.2f} (basis {signal.basis_bps:.1f} bps to centre "
                          f"{stats.center_bps:.1f} bps, funding, capital) <= 0")
        if reason is None:
            if signal is None or stats is None:
                return self.skip(market, f"holding {direction.value}: no signal or basis statistics on {position.spot_venue}")
            add = self._scale_in(ctx, view, position, signal, stats)
            if isinstance(add, Intent):
                return add
            return self.skip(market, f"holding {direction.value}: z={_fmt(signal.basis_zscore)} (exit below "
                                     f"{self.params.exit_z:.2f}), basis {signal.basis_bps:.1f} bps, centre "
                                     f"{stats.center_bps:.1f} bps, entry {_entry_bps(position)} bps; round trip if "
                                     f"closed now ${estimate.net_usd:,.2f}; {add}")
        return self.intent(ctx, "close", market, direction, position.spot_venue, abs(position.perp_base_x18),
                           f"close {direction.value}: {reason}; round trip if closed now ${estimate.net_usd:,.2f}",
                           estimate)

    def _scale_in(self, ctx: StrategyContext, view: MarketView, position: Position, signal: Signal,
                  stats: BasisStats) -> Intent | str:
        """Add to the position (a resize) when its basis has widened past the entry by at least
        entry_z x scale, is still at least entry_z from the centre in its favour, and the add's own
        expected net (strategies/scale_in.py) clears min_profit_usd; else why not."""
        z, p = signal.basis_zscore, self.params
        staged = p.first_stage < 1
        if not p.add_on_widening and not staged:
            return "no add: add_on_widening is off"
        wider = widened_bps(position, signal.basis_bps)
        favour = z is not None and -position.direction.perp_sign * z >= p.entry_z
        elapsed_s = ctx.snapshot.block_timestamp - position.entry_timestamp_s
        known_entry = position.entry_timestamp_s > 0  # an adopted position's entry time can be unknown (0)
        own = observed_half_life_s(position.entry_basis_bps - stats.center_bps, signal.basis_bps - stats.center_bps,
                                   elapsed_s) if staged and favour and known_entry else None
        if own is not None:  # a staged entry's rest: the departure has narrowed, at its own pace
            why = f"narrowed {-wider:.1f} bps in {elapsed_s} s (its own half-life {own:.0f} s)"
            stats = dataclasses.replace(stats, half_life_s=own)
        elif p.add_on_widening and favour and wider >= p.entry_z * stats.scale_bps:
            why = f"widened {wider:.1f} bps"
        else:
            return (f"no add: widened {wider:.1f} bps since entry (needs {p.entry_z * stats.scale_bps:.1f}), "
                    f"z={_fmt(z)}" + ("; not narrowed either" if staged else ""))
        mids = mid_prices_usd(view, position.spot_venue)
        if isinstance(mids, Unavailable):
            return f"no add: {mids.reason}"
        mid_basis_bps = (mids[0] / mids[1] - 1) * 1e4
        excess = mid_basis_bps - stats.center_bps
        expected_exit = self.exit_forecast(ctx, excess, stats, point=own is not None)
        hold_s = expected_exit.hold_s
        limits = ctx.limits if ctx.limits.stress is None else dataclasses.replace(
            ctx.limits, stress=dataclasses.replace(ctx.limits.stress, hold_s=hold_s))
        perp = view.perp
        assert not isinstance(perp, Unavailable)
        account = ctx.snapshot.account if isinstance(ctx.snapshot.account, PerpAccountState) else None
        result = optimise_add(
            view, position, ctx.costs_for(view.name), limits, account,
            funding_fraction=ctx.funding_forecast_s(view.name, position.spot_venue, perp.funding_rate_per_s, hold_s,
                                                    self.premium_half_life_s(ctx, excess, stats)),
            exit_basis_bps=self.exit_basis_bps(mid_basis_bps, excess, expected_exit), min_notional_usd=p.min_notional_usd,
            max_evaluations=p.max_evaluations_per_venue, hold_s=hold_s, legs=legs_from_snapshot(ctx.snapshot))
        if isinstance(result, Unavailable):
            return f"no add: {result.reason}"
        search, cap = result
        best = search.best
        if best is None or best.net_usd < p.min_profit_usd:
            return ("no add: no size quotable (cap: " + cap.binding + ")" if best is None else
                    f"no add: best add's expected net ${best.net_usd:,.2f} < min ${p.min_profit_usd:,.2f} at "
                    f"{describe_size(best)} ({describe_estimate(best.estimate)}; {expected_exit.describe()})")
        return self.intent(ctx, "resize", position.market, position.direction, position.spot_venue, best.perp_base_x18,
                           f"add to {position.direction.value}: basis {signal.basis_bps:.1f} bps {why} "
                           f"since entry {_entry_bps(position)} bps, z={_fmt(z)}, centre {stats.center_bps:.1f} bps; "
                           f"add {describe_size(best)}, expected net ${best.net_usd:,.2f} ({describe_estimate(best.estimate)}) "
                           f">= min ${p.min_profit_usd:,.2f}", best.estimate)

    def exit_forecast(self, ctx: StrategyContext, excess_bps: float, stats: BasisStats,
                      point: bool = False) -> ExitForecast:
        """Where (share of the excess left) and when the exit rule is expected to fire for a
        position entered now (strategies/exit_forecast.py); with exit_from_window off, the basis
        expected at the centre after expected_hold_s. point: stats.half_life_s as it is (a
        departure's own), never the window fit's uncertainty, and the median's catch-up in a window
        still growing (the exit rule's, exit_forecast.window_capacity)."""
        if not self.params.exit_from_window:
            return ExitForecast(0.0, self.expected_hold_s(ctx, excess_bps, stats), "at the centre")
        calibrated = self.params.decay_uncertainty and not point  # the AR(1) slope's uncertainty, a growing window's catch-up
        return forecast_exit(stats.window_bps, stats.center_bps, stats.scale_bps, stats.spacing_s, stats.half_life_s,
                             excess_bps, self.params.entry_z, self._exit_target_bps(stats), ctx.costs.horizon_s,
                             fit=stats.decay_fit() if calibrated else None,
                             window_s=stats.window_s if calibrated or point else None)

    def exit_basis_bps(self, mid_basis_bps: float, excess_bps: float, expected_exit: ExitForecast) -> float:
        """The basis expected at exit: convergence_fraction of the way the exit forecast expects."""
        return mid_basis_bps - self.params.convergence_fraction * excess_bps * (1 - expected_exit.remaining_ratio)

    def expected_hold_s(self, ctx: StrategyContext, excess_bps: float, stats: BasisStats) -> float:
        """Seconds for the fitted half-life to bring |excess| within exit_z x scale (the horizon
        when no decay is seen), at most the horizon."""
        horizon = ctx.costs.horizon_s
        target = self._exit_target_bps(stats)
        if stats.half_life_s is None or abs(excess_bps) <= target:
            return horizon if stats.half_life_s is None else min(horizon, stats.half_life_s)
        return min(horizon, stats.half_life_s * math.log2(abs(excess_bps) / target))

    def premium_half_life_s(self, ctx: StrategyContext, excess_bps: float, stats: BasisStats) -> float:
        """The half-life the premium is expected to decay with: the fitted one, or, when none is
        seen, the one that brings the departure within the exit band by the end of the hold. A
        trade that counts on the basis converging cannot also count on the premium (and its
        funding) persisting: the two are one quantity."""
        if stats.half_life_s is not None:
            return stats.half_life_s
        return ctx.costs.horizon_s / max(1.0, math.log2(max(abs(excess_bps), 1e-9) / self._exit_target_bps(stats)))

    def _exit_target_bps(self, stats: BasisStats) -> float:
        return max(self.params.exit_z * stats.scale_bps, 0.5)

    def remaining_edge_usd(self, ctx: StrategyContext, position: Position, signal: Signal, stats: BasisStats) -> float:
        """What holding on is still expected to earn: the rest of the convergence to the centre,
        funding over the remaining expected hold, minus the capital cost of that time."""
        base = abs(position.perp_base_x18) / ONE_X18
        excess = signal.basis_bps - stats.center_bps
        hold_s = self.expected_hold_s(ctx, excess, stats)
        sign = -position.direction.perp_sign
        convergence = sign * base * signal.spot_price_usd * excess * self.params.convergence_fraction / 1e4
        funding = sign * base * signal.index_price_usd * ctx.funding_forecast_s(
            position.market, position.spot_venue, signal.funding_rate_per_hour / 3600, hold_s,
            self.premium_half_life_s(ctx, excess, stats))
        capital = ctx.costs.capital_cost_usd(base * signal.spot_price_usd * (1 + 1 / ctx.limits.max_leverage), hold_s)
        return convergence + funding - capital

    def would_hold(self, ctx: StrategyContext, position: Position) -> str | None:
        """Why this strategy would keep `position` (hand-over from another strategy), or None:
        its basis departs from the centre in the position's favour by at least entry_z."""
        signal = ctx.signals.get((position.market, position.spot_venue))
        z = None if signal is None else signal.basis_zscore
        if z is None or -position.direction.perp_sign * z < self.params.entry_z:
            return None
        return f"z={z:.2f} still >= entry {self.params.entry_z:.2f} in the position's favour"

    # ------------------------------------------------------------------------------ entry
    def decide_entry(self, ctx: StrategyContext, view: MarketView) -> Intent | Skip:
        market = view.name
        guard = self.margin_guard(ctx)
        if guard is not None:
            return self.skip(market, f"no open: {guard}")
        if isinstance(view.perp, Unavailable):
            return self.skip(market, f"no open: perp unavailable: {view.perp.reason}")
        account = ctx.snapshot.account if isinstance(ctx.snapshot.account, PerpAccountState) else None
        notes: list[str] = []
        best: tuple[OpenEvaluation, Signal, BasisStats, int, ExitForecast] | None = None
        for venue in SPOT_VENUES:
            signal = ctx.signals.get((market, venue))
            stats = ctx.basis_stats.get((market, venue))
            if signal is None:
                notes.append(f"{venue}: no signal")
                continue
            z = signal.basis_zscore
            if z is None or stats is None:
                why = (f"basis flat over the window: MAD 0 over {stats.samples} samples, centre {stats.center_bps:.1f} bps"
                       if stats is not None and stats.scale_bps <= 0 else "not enough basis history")
                notes.append(f"{venue}: z undefined ({why}), basis {signal.basis_bps:.1f} bps")
                continue
            if abs(z) < self.params.entry_z:
                notes.append(f"{venue}: |z|={abs(z):.2f} < entry {self.params.entry_z:.2f} "
                             f"(basis {signal.basis_bps:.1f} bps, centre {stats.center_bps:.1f})")
                continue
            direction = Direction.SHORT_PERP if z > 0 else Direction.LONG_PERP
            searched = self._size(ctx, view, venue, direction, stats, account)
            if isinstance(searched, str):
                notes.append(f"{venue}: z={z:.2f} {direction.value}: {searched}")
                continue
            evaluation, evaluations, expected_exit = searched
            if evaluation.net_usd < self.params.min_profit_usd:
                notes.append(f"{venue}: z={z:.2f} {direction.value}: best expected net ${evaluation.net_usd:,.2f} "
                             f"< min ${self.params.min_profit_usd:,.2f} at {describe_size(evaluation)} "
                             f"({describe_estimate(evaluation.estimate)})")
                continue
            if best is None or evaluation.net_usd > best[0].net_usd:
                best = (evaluation, signal, stats, evaluations, expected_exit)
        if best is None:
            return self.skip(market, "no open: " + "; ".join(notes))
        evaluation, signal, stats, evaluations, expected_exit = best
        entry = evaluation.entry
        reason = (f"open {entry.direction.value} on {entry.spot_venue}: z={_fmt(signal.basis_zscore)} (entry "
                  f"{self.params.entry_z:.2f}), basis {signal.basis_bps:.1f} bps vs centre {stats.center_bps:.1f} bps, "
                  f"funding APR {signal.funding_apr:+.2%}, size {describe_size(evaluation)}, expected net "
                  f"${evaluation.net_usd:,.2f} ({describe_estimate(evaluation.estimate)}) >= min "
                  f"${self.params.min_profit_usd:,.2f}; expected hold {expected_exit.hold_s:.0f} s: {expected_exit.describe()} "
                  f"(half-life {_fmt_s(stats.half_life_s)}, scale {stats.scale_bps:.1f} bps); {evaluations} sizes quoted")
        if notes:
            reason += "; others: " + "; ".join(notes)
        return self.intent(ctx, "open", market, entry.direction, entry.spot_venue, evaluation.perp_base_x18, reason,
                           evaluation.estimate)

    def _size(self, ctx: StrategyContext, view: MarketView, venue: SpotVenue, direction: Direction,
              stats: BasisStats, account: PerpAccountState | None) -> tuple[OpenEvaluation, int, ExitForecast] | str:
        perp = view.perp
        assert not isinstance(perp, Unavailable)
        mids = mid_prices_usd(view, venue)
        if isinstance(mids, Unavailable):
            return mids.reason
        # The trade starts from the vAMM mid vs the spot mid and is expected to exit with the
        # tradable basis at its centre (convergence_fraction of the way), after hold_s.
        mid_basis_bps = (mids[0] / mids[1] - 1) * 1e4
        excess = mid_basis_bps - stats.center_bps
        expected_exit = self.exit_forecast(ctx, excess, stats)
        exit_basis_bps = self.exit_basis_bps(mid_basis_bps, excess, expected_exit)
        hold_s = expected_exit.hold_s
        limits = ctx.limits if ctx.limits.stress is None else dataclasses.replace(
            ctx.limits, stress=dataclasses.replace(ctx.limits.stress, hold_s=hold_s))
        funding_fraction = ctx.funding_forecast_s(view.name, venue, perp.funding_rate_per_s, hold_s,
                                                  self.premium_half_life_s(ctx, excess, stats))
        # Convergence and funding grow with the size as its fees do, impact, gas and capital only
        # cost: when the edge per dollar is below the fees per dollar (with room for the fee's base,
        # the perp's quote, differing from the spot notional), no size pays, so none is quoted.
        sign = direction_sign(direction)
        convergence_bps = sign * (mid_basis_bps - exit_basis_bps)
        funding_bps = sign * funding_fraction * (perp.index_twap_x18 / ONE_X18) / mids[1] * 1e4
        fee_bps = round_trip_fee_fraction(view, venue) * 1e4
        if convergence_bps + funding_bps < NO_SIZE_FEE_SHARE * fee_bps:
            return (f"expected convergence {convergence_bps:+.1f} bps + funding {funding_bps:+.1f} bps of notional < "
                    f"{NO_SIZE_FEE_SHARE:.0%} of the round-trip fees {fee_bps:.1f} bps: no size pays")

        def search_under(limits: RiskLimits) -> tuple[SizeSearch, SizeCap] | Unavailable:
            return optimise_open(
                view, direction, venue, ctx.costs_for(view.name), limits, account, funding_fraction=funding_fraction,
                exit_basis_bps=exit_basis_bps, min_notional_usd=self.params.min_notional_usd,
                max_evaluations=self.params.max_evaluations_per_venue, hold_s=hold_s,
                legs=legs_from_snapshot(ctx.snapshot), min_profit_usd=self.params.min_profit_usd)

        result = search_under(limits)
        if isinstance(result, Unavailable):
            return result.reason
        search, cap = result
        if search.best is None:
            return (f"no size quotable in [{search.low_x18 / 1e18:g}, {search.high_x18 / 1e18:g}] base "
                    f"(cap: {cap.binding}){': ' + search.first_failure if search.first_failure else ''}")
        first = self.params.first_stage
        if first < 1 and expected_exit.replayed == 0 and search.best.net_usd >= self.params.min_profit_usd:
            # its decay unseen: open the first stage; the rest is added once the departure narrows
            staged = search_under(first_stage_limits(limits, first, search.best.notional_usd))
            if (not isinstance(staged, Unavailable) and staged[0].best is not None
                    and staged[0].best.net_usd >= self.params.min_profit_usd):  # else the whole size or nothing
                expected_exit = dataclasses.replace(expected_exit, source=(
                    f"{expected_exit.source}; first stage: {first:.0%} of the best size "
                    f"${search.best.notional_usd:,.0f}, decay not yet seen"))
                return staged[0].best, search.evaluations + staged[0].evaluations, expected_exit
        return search.best, search.evaluations, expected_exit


def _fmt_s(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:.0f} s"


def _entry_bps(position: Position) -> str:
    """The entry basis for a reason: an adopted position's is unknown (NaN in the books)."""
    value = position.entry_basis_bps
    return "unknown (adopted)" if math.isnan(value) else f"{value:.1f}"


def _fmt(z: float | None) -> str:
    return "n/a" if z is None else f"{z:.2f}"
