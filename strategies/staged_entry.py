"""Staged entry: part of the size while a departure's decay is unseen, the rest once its own path
shows it decaying (pure; basis_convergence's `first_stage`).

A shock's decay cannot be read from the window before it: 20-28 observations of spot noise fit a
half-life of about one observation whatever the premium does afterwards (README, "A calibrated
decay"), so a departure that takes hours and one that takes minutes get the same forecast and the
same size. After the entry the departure's own path is observable: its excess over the centre
went from e0 at the entry to e now, after t seconds, which is a half-life of t x ln 2 / ln(e0 / e)
if it narrowed on the same side. With `first_stage` < 1 an entry whose forecast replays no past
departure of the window (the decay model alone) opens only that share of its best size; the rest
is an add (strategies/scale_in.py), priced like any add but with the exit forecast built on the
half-life the departure has shown since the entry. A departure that has not narrowed is not added
to on this ground (the widening add is separate).
"""

from __future__ import annotations

import dataclasses
import math

from strategies.base import RiskLimits


def observed_half_life_s(entry_excess_bps: float, excess_bps: float, elapsed_s: float) -> float | None:
    """The half-life the departure's own path implies: its excess over the centre went from
    entry_excess_bps to excess_bps in elapsed_s seconds. None when it has not narrowed on the same
    side (widened, unchanged, crossed the centre) or no time has passed."""
    if elapsed_s <= 0 or entry_excess_bps == 0:
        return None
    ratio = excess_bps / entry_excess_bps
    if not 0 < ratio < 1:
        return None
    return elapsed_s * math.log(2) / -math.log(ratio)


def first_stage_limits(limits: RiskLimits, share: float, best_notional_usd: float) -> RiskLimits:
    """The risk limits with the per-market notional capped at `share` of the best size found."""
    return dataclasses.replace(limits, max_notional_usd_per_market=min(limits.max_notional_usd_per_market,
                                                                       share * best_notional_usd))
