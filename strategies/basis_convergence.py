"""Basis convergence: trade the perp/spot basis back to its recent mean.

Entry (no position in the market, margin ratio at or above the guard): on a spot venue whose basis
z-score departs from its recent norm by at least `entry_z`, take SHORT_PERP when the perp is rich
(z > 0) or LONG_PERP when it is cheap (z < 0), sized to maximise the shared model's expected net
PnL (strategies/pnl.py): the basis expected back at its recent mean (`convergence_fraction` of the
way) plus funding over the horizon, minus every cost; only when that clears `min_profit_usd`.
Of the venues that qualify, the best expected net wins.

Exit (a position this strategy manages), the first that applies:
- margin guard: the account's margin ratio is below RiskLimits.min_margin_ratio;
- stop-loss: the basis moved against the entry by more than RiskLimits.stop_loss_basis_bps;
- converged: |z| < `exit_z`, or the basis crossed its recent mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.errors import SkipOpportunity
from keeper.signals import Signal
from keeper.types import Direction, Intent, MarketView, PerpAccountState, Position, SpotVenue, Unavailable
from strategies.base import (
    SPOT_VENUES,
    BasisStats,
    Skip,
    StrategyBase,
    StrategyContext,
    describe_estimate,
    parse_params,
    require_param,
)
from strategies.pnl import OpenEvaluation, describe_size, estimate_close, mid_prices_usd, optimise_open


@dataclass(frozen=True)
class BasisConvergenceParams:
    entry_z: float = 2.0
    exit_z: float = 0.5
    min_profit_usd: float = 5.0
    min_notional_usd: float = 100.0
    convergence_fraction: float = 1.0  # share of the distance to the mean expected within the horizon
    funding_weight: float = 0.5  # share of the current funding rate expected over the horizon: the premium
    # fades with the basis; a linear fade to the mean over the horizon averages half
    valid_for_blocks: int = 2
    max_evaluations_per_venue: int = 10  # sizes quoted per venue (2 exact quotes each)

    def __post_init__(self) -> None:
        require_param(self.entry_z > 0, "entry_z", self.entry_z, "> 0")
        require_param(0 <= self.exit_z < self.entry_z, "exit_z", self.exit_z, "in [0, entry_z)")
        require_param(self.min_notional_usd > 0, "min_notional_usd", self.min_notional_usd, "> 0")
        require_param(0 < self.convergence_fraction <= 1, "convergence_fraction", self.convergence_fraction, "in (0, 1]")
        require_param(0 <= self.funding_weight <= 1, "funding_weight", self.funding_weight, "in [0, 1]")
        require_param(self.valid_for_blocks >= 0, "valid_for_blocks", self.valid_for_blocks, ">= 0")
        require_param(self.max_evaluations_per_venue >= 1, "max_evaluations_per_venue",
                      self.max_evaluations_per_venue, ">= 1")


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
        elif signal is not None:
            # how far the basis moved the wrong way since entry (up for a short perp, down for a long)
            against_bps = (signal.basis_bps - position.entry_basis_bps) * -direction.perp_sign
            z = signal.basis_zscore
            if against_bps > ctx.limits.stop_loss_basis_bps:
                reason = (f"stop-loss: basis {signal.basis_bps:.1f} bps moved {against_bps:.1f} bps against the "
                          f"entry {position.entry_basis_bps:.1f} bps > limit {ctx.limits.stop_loss_basis_bps:.1f}")
            elif z is not None and abs(z) < self.params.exit_z:
                reason = (f"converged: |z|={abs(z):.2f} < exit {self.params.exit_z:.2f}, basis "
                          f"{signal.basis_bps:.1f} bps (entry {position.entry_basis_bps:.1f})")
            elif stats is not None and (signal.basis_bps - stats.mean_bps) * direction.perp_sign >= 0:
                reason = (f"converged: basis {signal.basis_bps:.1f} bps crossed its mean {stats.mean_bps:.1f} bps "
                          f"(z={_fmt(z)}, entry {position.entry_basis_bps:.1f})")
        if reason is None:
            if signal is None:
                return self.skip(market, f"holding {direction.value}: no signal on {position.spot_venue}")
            return self.skip(market, f"holding {direction.value}: z={_fmt(signal.basis_zscore)} (exit below "
                                     f"{self.params.exit_z:.2f}), basis {signal.basis_bps:.1f} bps, entry "
                                     f"{position.entry_basis_bps:.1f} bps, stop-loss at "
                                     f"{ctx.limits.stop_loss_basis_bps:.1f} bps against")
        try:
            _, estimate = estimate_close(view, position, ctx.costs)
        except SkipOpportunity as exc:
            return self.skip(market, f"wants to close ({reason}) but cannot quote it: {exc}")
        return self.intent(ctx, "close", market, direction, position.spot_venue, abs(position.perp_base_x18),
                           f"close {direction.value}: {reason}; round trip if closed now ${estimate.net_usd:,.2f}",
                           estimate)

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
        best: tuple[OpenEvaluation, Signal, BasisStats, int] | None = None
        for venue in SPOT_VENUES:
            signal = ctx.signals.get((market, venue))
            stats = ctx.basis_stats.get((market, venue))
            if signal is None:
                notes.append(f"{venue}: no signal")
                continue
            z = signal.basis_zscore
            if z is None or stats is None:
                notes.append(f"{venue}: z undefined (not enough basis history), basis {signal.basis_bps:.1f} bps")
                continue
            if abs(z) < self.params.entry_z:
                notes.append(f"{venue}: |z|={abs(z):.2f} < entry {self.params.entry_z:.2f} "
                             f"(basis {signal.basis_bps:.1f} bps, mean {stats.mean_bps:.1f})")
                continue
            direction = Direction.SHORT_PERP if z > 0 else Direction.LONG_PERP
            searched = self._size(ctx, view, venue, direction, stats, account)
            if isinstance(searched, str):
                notes.append(f"{venue}: z={z:.2f} {direction.value}: {searched}")
                continue
            evaluation, evaluations = searched
            if evaluation.net_usd < self.params.min_profit_usd:
                notes.append(f"{venue}: z={z:.2f} {direction.value}: best expected net ${evaluation.net_usd:,.2f} "
                             f"< min ${self.params.min_profit_usd:,.2f} at {describe_size(evaluation)} "
                             f"({describe_estimate(evaluation.estimate)})")
                continue
            if best is None or evaluation.net_usd > best[0].net_usd:
                best = (evaluation, signal, stats, evaluations)
        if best is None:
            return self.skip(market, "no open: " + "; ".join(notes))
        evaluation, signal, stats, evaluations = best
        entry = evaluation.entry
        reason = (f"open {entry.direction.value} on {entry.spot_venue}: z={_fmt(signal.basis_zscore)} (entry "
                  f"{self.params.entry_z:.2f}), basis {signal.basis_bps:.1f} bps vs mean {stats.mean_bps:.1f} bps, "
                  f"funding APR {signal.funding_apr:+.2%}, size {describe_size(evaluation)}, expected net "
                  f"${evaluation.net_usd:,.2f} ({describe_estimate(evaluation.estimate)}) >= min "
                  f"${self.params.min_profit_usd:,.2f}; {evaluations} sizes quoted")
        if notes:
            reason += "; others: " + "; ".join(notes)
        return self.intent(ctx, "open", market, entry.direction, entry.spot_venue, evaluation.perp_base_x18, reason,
                           evaluation.estimate)

    def _size(self, ctx: StrategyContext, view: MarketView, venue: SpotVenue, direction: Direction,
              stats: BasisStats, account: PerpAccountState | None) -> tuple[OpenEvaluation, int] | str:
        perp = view.perp
        assert not isinstance(perp, Unavailable)
        mids = mid_prices_usd(view, venue)
        if isinstance(mids, Unavailable):
            return mids.reason
        # The trade starts from the vAMM mid vs the spot mid; at exit the vAMM trades near the mark
        # again, so it exits at the recent (mark-based) mean basis, or convergence_fraction of the
        # way there.
        mid_basis_bps = (mids[0] / mids[1] - 1) * 1e4
        exit_basis_bps = mid_basis_bps - self.params.convergence_fraction * (mid_basis_bps - stats.mean_bps)
        result = optimise_open(
            view, direction, venue, ctx.costs, ctx.limits, account,
            funding_rate_per_s=perp.funding_rate_per_s * self.params.funding_weight,
            exit_basis_bps=exit_basis_bps, min_notional_usd=self.params.min_notional_usd,
            max_evaluations=self.params.max_evaluations_per_venue,
        )
        if isinstance(result, Unavailable):
            return result.reason
        search, cap = result
        if search.best is None:
            return (f"no size quotable in [{search.low_x18 / 1e18:g}, {search.high_x18 / 1e18:g}] base "
                    f"(cap: {cap.binding}){': ' + search.first_failure if search.first_failure else ''}")
        return search.best, search.evaluations


def _fmt(z: float | None) -> str:
    return "n/a" if z is None else f"{z:.2f}"
