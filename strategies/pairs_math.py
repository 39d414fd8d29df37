"""The pairs strategy's numbers (pure): the rolling regression of the spread, the pair's stress cap
and the beta-neutral sizes in exact ints.

Spread: log A - beta x log B on the vAMMs' tradable prices. beta, mean and scale come from the
ordinary least-squares regression of log A on log B over the samples of the last `window_s`
seconds (numpy): beta = cov(a, b) / var(b), mean = the intercept alpha (the residuals' mean),
scale = the residuals' standard deviation (n - 1), z = (spread now - mean) / scale.

Stress: a pair is long one perp and short another, so a common index move nets out and the risk
is the legs moving APART. Each leg is shocked on its own, over the grid of keeper/stress.py (index
+- move, the vAMM at Perp's band edges or at the index) for each leg independently, both with and
without adverse funding on both legs: 9 x 9 x 2 shocks. The margin condition is linear in the
pair's scale k (leg A's notional in USD), so the largest k is min over shocks of
(AV_s - guard x PV_s) / (guard x p_s - a_s), as in keeper/stress.max_stressed_size_base.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keeper.pairs_types import SpreadFit
from keeper.stress import SECONDS_PER_YEAR, PerpLeg, Shock, StressParams, stressed_mark
from keeper.types import ONE_X18


def fit_spread(times_s: Sequence[float], log_a: Sequence[float], log_b: Sequence[float], now_s: float,
               window_s: float, min_samples: int) -> SpreadFit | None:
    """The regression over the samples with time in [now_s - window_s, now_s]; the last sample is
    the current spread. None when there are fewer than min_samples, or log B or the residuals do
    not move (no beta, no scale)."""
    t = np.asarray(times_s, dtype=float)
    keep = (t >= now_s - window_s) & (t <= now_s)
    a = np.asarray(log_a, dtype=float)[keep]
    b = np.asarray(log_b, dtype=float)[keep]
    n = int(a.size)
    if n < max(3, min_samples):
        return None
    var_b = float(np.var(b))
    var_a = float(np.var(a))
    if var_b <= 0 or var_a <= 0:
        return None
    beta = float(np.cov(a, b, bias=True)[0, 1] / var_b)
    residual = a - beta * b
    mean = float(residual.mean())
    scale = float(residual.std(ddof=1))
    if not scale > 0:
        return None
    correlation = float(np.corrcoef(a, b)[0, 1])
    spread = float(a[-1] - beta * b[-1])
    return SpreadFit(beta, mean, scale, correlation, n, spread, (spread - mean) / scale)


def excursion_fit(times_s: Sequence[float], log_a: Sequence[float], log_b: Sequence[float], window_s: float,
                  min_samples: int, entry_z: float) -> tuple[SpreadFit, int] | None:
    """The relation BEFORE the current excursion: walking back from the latest sample while each
    sample's own rolling z (the regression over the window ending at it) is at least entry_z on the
    same side, the fit at the last sample before that run, and the run's first sample's index.
    None when the latest rolling |z| is below entry_z or no fit precedes the run. The returned fit's
    spread and z are the LATEST sample's on that relation (a rolling window absorbs a run as it goes:
    its beta, mean and scale follow the spread, and its z shrinks while the spread still widens)."""
    n = len(times_s)
    latest = fit_spread(times_s, log_a, log_b, times_s[-1], window_s, min_samples) if n else None
    if latest is None or abs(latest.z) < entry_z:
        return None
    side = 1 if latest.z > 0 else -1
    k = n - 1
    while k > 0:
        before = fit_spread(times_s[:k], log_a[:k], log_b[:k], times_s[k - 1], window_s, min_samples)
        if before is None:
            return None
        if side * before.z < entry_z:  # sample k-1 is not in the run: the relation is the fit through it
            spread = float(log_a[-1] - before.beta * log_b[-1])
            return SpreadFit(before.beta, before.mean, before.scale, before.correlation, before.samples, spread,
                             (spread - before.mean) / before.scale), k
        k -= 1
    return None


def still_widening(fit: SpreadFit, log_a: Sequence[float], log_b: Sequence[float]) -> float | None:
    """How far the latest sample moved the spread further from the fit's mean than the one before,
    in units of the fit's scale, when that is more than one scale (more than the relation's noise);
    else None: the spread has stopped widening."""
    if len(log_a) < 2:
        return None
    side = 1 if fit.z > 0 else -1
    step = side * ((log_a[-1] - fit.beta * log_b[-1]) - (log_a[-2] - fit.beta * log_b[-2])) / fit.scale
    return float(step) if step > 1.0 else None


def pair_shock_grid(params: StressParams) -> list[tuple[Shock, Shock]]:
    """(shock of leg A, shock of leg B): each leg's index move and band edge independently, the
    adverse funding on both legs or on neither."""
    moves = sorted({-params.index_move, 0.0, params.index_move})
    fundings = (False, True) if params.funding_apr > 0 and params.hold_s > 0 else (False,)
    return [(Shock(ma, ea, f), Shock(mb, eb, f)) for f in fundings for ma in moves for ea in (-1, 0, 1)
            for mb in moves for eb in (-1, 0, 1)]


def _terms(leg: PerpLeg, shock: Shock, params: StressParams) -> tuple[float, float]:
    """(change of account value, position value) of one leg under one shock."""
    mark = stressed_mark(leg, shock)
    funding = abs(leg.size_base) * mark * params.funding_apr * params.hold_s / SECONDS_PER_YEAR if shock.adverse_funding else 0.0
    return leg.size_base * (mark - leg.mark_usd) - funding, abs(leg.size_base) * mark


def max_pair_scale_usd(account_value_usd: float, legs: Sequence[PerpLeg], unit_a: PerpLeg, unit_b: PerpLeg,
                       fee_ratio: float, params: StressParams, guard: float) -> tuple[float, str | None]:
    """The largest scale k (leg A's notional, USD) of a new pair whose legs at k = 1 are unit_a /
    unit_b (signed sizes per USD of A), such that the account's margin ratio stays >= guard under
    every shock of pair_shock_grid, with both entry fees paid; and the binding shock's label.
    Existing legs in market A take leg A's shock, all others leg B's."""
    best, binding = float("inf"), None
    for shock_a, shock_b in pair_shock_grid(params):
        av, pv = account_value_usd, 0.0
        for leg in legs:
            dv, v = _terms(leg, shock_a if leg.market == unit_a.market else shock_b, params)
            av, pv = av + dv, pv + v
        a = p = 0.0
        for unit, shock in ((unit_a, shock_a), (unit_b, shock_b)):
            dv, v = _terms(unit, shock, params)
            a += dv - abs(unit.size_base) * unit.mark_usd * fee_ratio
            p += v
        room = av - guard * pv
        label = f"A: {shock_a.label}; B: {shock_b.label}"
        if room <= 0:
            return 0.0, label
        denominator = guard * p - a
        if denominator > 0 and room / denominator < best:
            best, binding = room / denominator, label
    return best, binding


def beta_neutral_sizes_x18(notional_a_usd: float, price_a_x18: int, price_b_x18: int, hedge_ratio_x18: int,
                           long_a: bool) -> tuple[int, int]:
    """Signed base changes (A, B) in 18 decimals: |A| = notional / price A; |B| = |A| x price A x
    beta / price B, so that B's notional = beta x A's notional at these prices, in exact ints
    (rounded down). long_a: long A and short B (long spread), else short A and long B."""
    if notional_a_usd <= 0 or price_a_x18 <= 0 or price_b_x18 <= 0 or hedge_ratio_x18 <= 0:
        return 0, 0
    notional_x18 = int(notional_a_usd * 10**6) * 10**12  # micro-USD resolution
    base_a = notional_x18 * ONE_X18 // price_a_x18
    base_b = base_a * price_a_x18 * hedge_ratio_x18 // (price_b_x18 * ONE_X18)
    return (base_a, -base_b) if long_a else (-base_a, base_b)
