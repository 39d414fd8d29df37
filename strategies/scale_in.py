"""Adding to a held convergence position when its basis widens past the entry (pure).

A hedged convergence position whose basis moves further from the centre is worth more if the
thesis holds; the keeper survives that move by sizing (keeper/stress.py), and may add to it. An
add is a resize of the position (one transaction), valued on its own like an open by the shared
model (strategies/pnl.py), with two differences:

- the exit is the close of the WHOLE position, so the add is charged the close's marginal fees and
  impact (closing the combined position minus closing the current one, both quoted exactly on the
  current state): closing a larger position costs more than the sum of its parts;
- gas is the resize's (the position's close is paid once, whether or not it grew);
- the exit-stress rule (strategies/exit_stress.py) charges it p x the stressed close's extra cost of
  the grown position minus that of the current one (add_exit_stress_rule): the stressed exit closes
  the whole position, so a position grown by adds carries the charge one open of its size would.

The size is capped like an open's (compute_size_cap: the account-level caps read the account,
which already holds the position; the per-market cap is what the position leaves of it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keeper.errors import SkipOpportunity
from keeper.quotes import quote_basis_trade, spot_scale_to_x18
from keeper.stress import PerpLeg
from keeper.types import ONE_X18, MarketView, PerpAccountState, Position, Unavailable
from strategies.base import CostModel, RiskLimits
from strategies.exit_stress import add_exit_stress_rule, grown_position
from strategies.pnl import OpenEvaluation, SizeCap, combine_pnl, compute_size_cap, mid_prices_usd
from strategies.size_search import SizeSearch, search_size


def widened_bps(position: Position, basis_bps: float) -> float:
    """How far the basis has moved AWAY from convergence since the entry, in bps (> 0: wider)."""
    return (basis_bps - position.entry_basis_bps) * -position.direction.perp_sign


def estimate_add(view: MarketView, position: Position, perp_base_x18: int, costs: CostModel, *,
                 funding_fraction: float, exit_basis_bps: float, leverage: float, hold_s: float | None,
                 close_now: tuple[float, float]) -> OpenEvaluation:
    """Quote adding perp_base_x18 (> 0) to `position` and the marginal cost of closing it with the
    position; close_now = (fees, impact) of closing the position as it is."""
    perp = view.perp
    if isinstance(perp, Unavailable):
        raise SkipOpportunity(f"{view.name}: perp unavailable: {perp.reason}")
    entry = quote_basis_trade(view, "resize", position.direction, position.spot_venue, perp_base_x18, position)
    grown = grown_position(position, entry)
    exit_quote = quote_basis_trade(view, "close", position.direction, position.spot_venue, 0, grown)
    if exit_quote.perp.is_partial_close:
        raise SkipOpportunity(f"{view.name}: the grown position could not be closed in one block (Perp's tick band)")
    base = entry.base_abs_x18 / ONE_X18
    estimate = combine_pnl(
        direction=position.direction, base=base, spot_mid_usd=entry.spot_mid_price_usd,
        perp_mid_usd=entry.perp_mid_price_usd, index_price_usd=perp.index_twap_x18 / ONE_X18,
        entry_basis_bps=entry.mid_basis_bps, exit_basis_bps=exit_basis_bps, funding_fraction=funding_fraction,
        fees_usd=entry.fees_usd + exit_quote.fees_usd - close_now[0],
        impact_usd=entry.impact_usd + exit_quote.impact_usd - close_now[1],
        costs=dataclasses.replace(costs, gas_units_open=costs.gas_units_resize, gas_units_close=0),
        leverage=leverage, hold_s=hold_s,
    )
    return OpenEvaluation(entry.base_abs_x18, entry, exit_quote, estimate, base * entry.spot_mid_price_usd)


def optimise_add(view: MarketView, position: Position, costs: CostModel, limits: RiskLimits,
                 account: PerpAccountState | None, *, funding_fraction: float, exit_basis_bps: float,
                 min_notional_usd: float, max_evaluations: int, hold_s: float | None,
                 legs: Sequence[PerpLeg] = ()) -> tuple[SizeSearch, SizeCap] | Unavailable:
    """The add with the best expected net PnL under what the risk limits leave the position."""
    mids = mid_prices_usd(view, position.spot_venue)
    if isinstance(mids, Unavailable):
        return mids
    held_usd = abs(position.perp_base_x18) / ONE_X18 * max(mids)
    room = dataclasses.replace(limits, max_notional_usd_per_market=max(0.0, limits.max_notional_usd_per_market - held_usd))
    cap = compute_size_cap(view, position.direction, position.spot_venue, room, account, legs)
    if isinstance(cap, Unavailable):
        return cap
    try:
        now = quote_basis_trade(view, "close", position.direction, position.spot_venue, 0, position)
    except SkipOpportunity as exc:
        return Unavailable(f"cannot quote closing the position: {exc}")
    close_now = (now.fees_usd, now.impact_usd)
    exit_rule = add_exit_stress_rule(view, position, limits.stress, now)  # strategies/exit_stress.py

    def evaluate(size_x18: int) -> OpenEvaluation:
        return exit_rule(estimate_add(view, position, size_x18, costs, funding_fraction=funding_fraction,
                                      exit_basis_bps=exit_basis_bps, leverage=limits.max_leverage, hold_s=hold_s,
                                      close_now=close_now))

    low_x18 = int(min_notional_usd / min(mids) * ONE_X18)
    return search_size(evaluate, low_x18, cap.max_perp_base_x18, spot_scale_to_x18(view.spot_token_decimals),
                       max_evaluations), cap
