"""Where and when basis_convergence's own exit is expected to fire, from the history window (pure).

The entry's expected PnL is the expectation under the keeper's exit rule: the position closes at
the first observation whose basis has crossed the robust centre, or come within exit_z x scale of
it. Two things decide where that first observation lands, and the fitted AR(1) half-life alone
sees neither:

- overshoot: a basis that reverts by a jump (the next shock) lands PAST the centre, and the
  position earns the whole swing; a basis that decays smoothly lands inside the exit band;
- the centre moving: the centre is the window's median, so a departure that lasts more than half
  the window becomes the centre itself, and the exit fires where the basis then is, not at the
  old centre.

`forecast_exit` combines two answers:

1. empirical (when the window holds departures like this one): replay the exit rule on the
   window's own history and the observation entered on. Every departure from the centre of at least entry_z x scale and
   at least half the excess entered on (a 2-sigma wiggle says little about how a 150 bps shock
   ends) is followed from its first observation (where the keeper would have entered) to the
   first later observation where the rule fires; the ratio of the excess there to the excess at
   entry (negative: overshoot) and the time it took are averaged over the departures that
   resolved, weighted by their excess at entry, together with the parametric answer below counted
   as one more departure the size of the one entered on (a prior of one pseudo-observation: one
   replayed departure moves the forecast half way from the model, many move it nearly all the
   way; a single flip is weak evidence that the next departure will end in a flip too).
   Departures still open at the end are not counted (censored).
2. parametric (alone when no such departure resolved in the window): the excess decays with the
   fitted half-life; the exit fires at the first observation after the decay brings it within the exit band, or,
   sooner, when the median has moved onto the departure: after (half the window + 1 - the
   observations already departed on this side) more observations.

Both are capped at the cost model's horizon (what the rest of the model assumes about holding).

With the window's AR(1) fit and its standard error (`fit`: keeper/basis_history.py fit_ar1, a
noise-robust instrument; basis_convergence's `decay_uncertainty`, off: measured in README) the
parametric answer is its mean over the slope's uncertainty (posterior_decay_forecast), and with
the history's `window_s` the median's catch-up counts a window that is still growing.
Floats: decisions only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from keeper.basis_history import Ar1Fit, half_life_of_phi

SIMILAR_SHARE = 0.5  # a past departure informs the forecast when at least this share of the one entered on
# the AR(1) slope's sampling distribution, normal with the fit's standard error, by five points of
# equal probability (the quintiles' middles): the parametric forecast is their mean
POSTERIOR_Z = tuple(NormalDist().inv_cdf(q) for q in (0.1, 0.3, 0.5, 0.7, 0.9))


@dataclass(frozen=True)
class ExitForecast:
    """The expected exit: the share of the entry's excess over the centre still there at exit
    (1 - the share earned; negative when the basis is expected past the centre), the expected hold,
    and how it was found (for the reason)."""

    remaining_ratio: float
    hold_s: float
    source: str
    remaining_sd: float = 0.0  # the spread of remaining_ratio over the decay's uncertainty (0: a point forecast)
    replayed: int = 0  # past departures of the window the answer replayed (0: the decay model alone)

    def describe(self) -> str:
        spread = f" (sd {self.remaining_sd:.2f})" if self.remaining_sd else ""
        return (f"exit expected after {self.hold_s:.0f} s at {self.remaining_ratio:+.2f}{spread} of the excess "
                f"({self.source})")


def replay_episodes(excess_bps: Sequence[float], entry_bps: float, exit_bps: float) -> list[tuple[float, int, float]]:
    """The window's departures and where the exit rule resolved them: (excess at exit / excess at
    entry, observations held, |excess at entry|) for each departure of |excess| >= entry_bps whose first observation
    starts it (the previous one was not departed on the same side) and that resolved within the
    window; the rule fires at the first later observation with sign x excess <= 0 (crossed the
    centre) or |excess| < exit_bps. (Array comparisons: the same float tests as a loop over the
    observations, side x excess being excess or -excess to the bit; |excess| >= entry_bps as
    excess >= entry_bps or -excess >= entry_bps, which it is for every float. The exits are looked
    for only when a departure starts, by a search in the observations where each side's rule fires.)"""
    x = np.asarray(excess_bps, dtype=float)
    n = x.size
    if n < 2:
        return []
    negated = -x
    above, below = x >= entry_bps, negated >= entry_bps
    up = x > 0  # the departure's side: +1 above the centre, -1 otherwise
    starts = above[:-1] | below[:-1]  # (the last observation starts nothing that resolves)
    starts[1:] &= ~np.where(up[1:-1], above[:-2], below[:-2])  # not a departure's first observation
    first = starts.nonzero()[0]
    if not first.size:
        return []
    inside = np.abs(x) < exit_bps
    after = first + 1
    exits = np.where(up[first], _first_at_or_after((x <= 0) | inside, after),
                     _first_at_or_after((negated <= 0) | inside, after))
    out: list[tuple[float, int, float]] = []
    for i, j in zip(first.tolist(), exits.tolist()):
        if j < n:
            entry, exit_ = float(x[i]), float(x[j])
            out.append((exit_ / entry, j - i, abs(entry)))
    return out


def _first_at_or_after(mask: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each index in `at`, the first index at or after it where `mask` holds (len(mask) when none)."""
    where = mask.nonzero()[0]
    return np.concatenate((where, (mask.size,)))[where.searchsorted(at)]


def forecast_exit(window_bps: Sequence[float], center_bps: float, scale_bps: float, spacing_s: float | None,
                  half_life_s: float | None, excess_bps: float, entry_z: float, exit_bps: float,
                  horizon_s: float, fit: Ar1Fit | None = None, window_s: float | None = None) -> ExitForecast:
    """The expected exit of a position entered now at `excess_bps` over the centre (module notes).
    window_bps: the history window's basis, oldest first; spacing_s: its median spacing; with `fit`
    (the window's AR(1) slope and its standard error) the parametric answer is the mean over the
    slope's uncertainty (posterior_decay_forecast), else the point half-life's; window_s: the
    history's window in seconds (None: the window slides, its length fixed)."""
    dt = spacing_s if spacing_s is not None and spacing_s > 0 else None
    entry_bps = entry_z * scale_bps
    observations = len(window_bps)
    entered = np.empty(observations + 1)  # the window's excess, then the observation entered on
    excess = np.subtract(window_bps, center_bps, out=entered[:observations])
    entered[observations] = excess_bps
    capacity = window_capacity(len(excess), dt, window_s)
    if fit is not None and dt is not None:
        model = posterior_decay_forecast(excess, dt, fit, excess_bps, entry_bps, exit_bps, horizon_s, capacity)
    else:
        model = decay_forecast(excess, dt, half_life_s, excess_bps, entry_bps, exit_bps, horizon_s, capacity)
    if dt is None or entry_bps <= 0:
        return model
    # the observation entered on ends the departures before it too (the next shock)
    episodes = replay_episodes(entered, max(entry_bps, SIMILAR_SHARE * abs(excess_bps)), exit_bps)
    if not episodes:
        return model
    # the model's answer counts as one more departure the size of this one (a prior of one
    # pseudo-observation): one replayed departure moves the forecast half way, many move it all
    prior = abs(excess_bps)
    weight = sum(w for _, _, w in episodes) + prior
    ratio = (sum(r * w for r, _, w in episodes) + model.remaining_ratio * prior) / weight
    hold = (dt * sum(k * w for _, k, w in episodes) + model.hold_s * prior) / weight
    # the spread: the model's, as the prior's share of the weight (the replayed departures are data)
    return ExitForecast(ratio, min(horizon_s, hold),
                        f"{len(episodes)} departure(s) in the window replayed, with the decay model as one more: {model.source}",
                        model.remaining_sd * prior / weight, len(episodes))


def window_capacity(observations: int, dt: float | None, window_s: float | None) -> int:
    """How many observations the window holds once full: window_s / dt, at least what it holds now
    (a window at its minimum count, or already full). The window grows until then: the median
    moves onto a departure later than in a window that slides."""
    if dt is None or window_s is None or not math.isfinite(window_s):
        return observations
    return max(observations, int(window_s // dt))


def catch_up_observations(observations: int, departed: int, capacity: int) -> int:
    """Observations until the median is on the departure: the first m >= 1 after which more than
    half the window is departed (departed + m of min(observations + m, capacity)), every new
    observation departed and each dropped one (a full window) not. Closed form: while the window
    grows, the condition first holds at m = observations - 2 x departed + 1 or + 2 (the floor of the
    half); once it is full, at capacity // 2 + 1 - departed (a full window now: the old formula)."""
    n, d = observations, departed
    for m in (max(1, n - 2 * d + 1), max(1, n - 2 * d + 2)):
        if n + m <= capacity and d + m >= (n + m) // 2 + 1:
            return m
    return max(1, capacity - n, capacity // 2 + 1 - d)


def posterior_decay_forecast(excess: Sequence[float], dt: float, fit: Ar1Fit, excess_bps: float, entry_bps: float,
                             exit_bps: float, horizon_s: float, capacity: int | None = None) -> ExitForecast:
    """decay_forecast's mean over the AR(1) slope's uncertainty: the slope at five points of equal
    probability of a normal around the fit with its standard error (POSTERIOR_Z), each clipped to
    [MIN_PHI, 1] (1: no decay) and read as a half-life; the share remaining and the hold are the
    means, remaining_sd the spread. The share remaining is convex in the slope, so an uncertain fit
    expects less convergence than its point estimate would: a window that cannot tell a
    half-life of minutes from one of hours expects a part of the slow answer."""
    points = [decay_forecast(excess, dt, half_life_of_phi(min(1.0, fit.phi + z * fit.se), dt), excess_bps,
                             entry_bps, exit_bps, horizon_s, capacity) for z in POSTERIOR_Z]
    ratios = np.array([p.remaining_ratio for p in points])
    hold = float(np.mean([p.hold_s for p in points]))
    middle = half_life_of_phi(fit.phi, dt)
    return ExitForecast(float(np.mean(ratios)), hold,
                        f"AR(1) {fit.phi:.3f} +- {fit.se:.3f} per {dt:.0f} s ({fit.method}), half-life "
                        f"{_fmt_half_life(middle)} at the fit; {points[2].source} at the middle point",
                        float(np.std(ratios)))


def _fmt_half_life(half_life_s: float) -> str:
    return "none" if not math.isfinite(half_life_s) else f"{half_life_s:.0f} s"


def decay_forecast(excess: Sequence[float], dt: float | None, half_life_s: float | None, excess_bps: float,
                   entry_bps: float, exit_bps: float, horizon_s: float, capacity: int | None = None) -> ExitForecast:
    """The parametric answer (module notes, 2): the fitted decay until the first observation inside
    the exit band, or until the median has moved onto the departure, whichever is sooner (an
    infinite half-life: no decay, the median's move alone). capacity: the observations the window
    holds once full (window_capacity; None: as many as now, a sliding window)."""
    if not (exit_bps > 0 and math.isfinite(excess_bps)):  # no band to decay into (or no departure): no decay
        return ExitForecast(0.0, horizon_s, f"no exit band to decay into ({exit_bps} bps, departure {excess_bps} bps)")
    if half_life_s is None or half_life_s <= 0 or abs(excess_bps) <= exit_bps:
        hold = horizon_s if half_life_s is None else min(horizon_s, half_life_s)
        return ExitForecast(0.0, hold, "no decay fitted" if half_life_s is None else "inside the exit band")
    decay_s = half_life_s * math.log2(abs(excess_bps) / exit_bps)
    source = f"half-life {_fmt_half_life(half_life_s)}"
    if dt is not None:
        if math.isfinite(decay_s):
            decay_s = math.ceil(decay_s / dt - 1e-9) * dt  # the first observation inside the band
        side = 1.0 if excess_bps > 0 else -1.0
        departed = int(np.count_nonzero(side * np.asarray(excess, dtype=float) >= entry_bps))
        n = len(excess)
        catch_up_s = catch_up_observations(n, departed, n if capacity is None else max(n, capacity)) * dt
        if catch_up_s < decay_s:
            decay_s, source = catch_up_s, f"half-life {_fmt_half_life(half_life_s)}, centre moves onto the departure"
    hold = min(horizon_s, decay_s)
    return ExitForecast(2 ** (-hold / half_life_s), hold, source)
