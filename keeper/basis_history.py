"""Basis history per (market, spot venue) over a window in seconds, and robust statistics of it.

The statistics exist to detect shocks, so they must not be moved by them: the centre is the
median, the scale the median absolute deviation (x 1.4826, the normal-consistent factor), and the
z-score of a new observation is taken against observations strictly before its block. A shock that
lasts a few samples moves neither the median nor the MAD; a new regime that lasts half the window
does (that is the point: the centre follows the market).

The premium's decay is estimated from the same history: an AR(1) fit of (basis - median) on its
previous value, observation spacing from the timestamps, gives the half-life the funding forecast
and the expected holding time use; when the series shows no mean reversion the half-life is taken
as the history's span (the data bound it from below by that, and say nothing beyond it).
Floats: statistics and ranking only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from keeper.frozen import quick_init
from keeper.basis_window import BasisSeries, mad_sorted_from, median_sorted

MAD_TO_SIGMA = 1.4826
MIN_PHI = 0.001  # an AR(1) slope at or below 0 is read as this: half-life = dt x ln 2 / ln 1000, about dt / 10


@quick_init  # one per window, per (market, venue) and block (keeper/frozen.py)
@dataclass(frozen=True)
class BasisStats:
    """Robust statistics of one (market, venue)'s recent basis (bps): centre = median, scale =
    1.4826 x MAD, half_life_s = the fitted decay of departures from the centre (None: no decay seen).
    window_bps and spacing_s (the window itself, oldest first, as a read-only array, and its median
    spacing; not compared) let a strategy replay its exit rule on the window
    (strategies/exit_forecast.py); window_s (not compared) is the history's configured window, which
    a window still filling has not reached yet (the optional catch-up of a growing window)."""

    center_bps: float
    scale_bps: float
    samples: int
    half_life_s: float | None = None
    window_bps: Sequence[float] = field(default=(), compare=False, repr=False)
    spacing_s: float | None = field(default=None, compare=False)
    window_s: float | None = field(default=None, compare=False)  # the history's window (None: unknown)

    @classmethod
    def from_observations(cls, basis_bps: Sequence[float], timestamps_s: Sequence[int] | None = None,
                          window_s: float | None = None) -> BasisStats:
        values = np.asarray(basis_bps, dtype=float)
        if values.size < 2:
            raise ValueError(f"basis stats need >= 2 observations, got {values.size}")
        center = float(np.median(values))
        scale = MAD_TO_SIGMA * float(np.median(np.abs(values - center)))
        half_life = spacing = None
        if timestamps_s is not None:
            times = np.asarray(timestamps_s, dtype=float)
            half_life = estimate_half_life_s(values, times, center)
            if half_life is None and times.size >= 2 and times[-1] > times[0]:
                # no reversion seen within the history: the data bound the half-life from below by
                # its span, and say nothing beyond it; extrapolating persistence further is a bet
                half_life = float(times[-1] - times[0])
            if times.size >= 2:
                spacing = float(np.median(np.diff(times)))
        return cls(center, scale, int(values.size), half_life, _frozen(values.copy()), spacing, window_s)

    def decay_fit(self) -> Ar1Fit | None:
        """The noise-robust AR(1) fit of the window's departures from its centre (fit_ar1)."""
        return fit_ar1(np.asarray(self.window_bps, dtype=float) - self.center_bps)

    def zscore(self, basis_bps: float) -> float | None:
        return None if self.scale_bps <= 0 else (basis_bps - self.center_bps) / self.scale_bps


def estimate_half_life_s(values: np.ndarray, timestamps_s: np.ndarray, center: float) -> float | None:
    """Half-life of departures from `center`: AR(1) slope phi of x[t+1] on x[t] (x = value - centre,
    least squares through the origin) per median observation spacing dt: half-life = dt x ln 2 / -ln phi.
    phi <= 0 (no persistence from one observation to the next: departures vanish within dt) counts
    as phi = MIN_PHI, a half-life of a tenth of dt. None (no reversion seen) when phi >= 1, or with
    fewer than 3 points or no spacing."""
    if values.size < 3 or timestamps_s.size != values.size:
        return None
    x = values - center
    prev, nxt = x[:-1], x[1:]
    denom = float(np.dot(prev, prev))
    dt = float(np.median(np.diff(timestamps_s)))
    if denom <= 0 or dt <= 0:
        return None
    phi = float(np.dot(prev, nxt)) / denom
    if phi >= 1:
        return None
    return half_life_of_phi(phi, dt)


@dataclass(frozen=True)
class Ar1Fit:
    """An AR(1) slope of departures per observation, its standard error and how it was found."""

    phi: float
    se: float
    method: str  # "iv" or "ols"


def fit_ar1(x: np.ndarray) -> Ar1Fit | None:
    """AR(1) slope phi of the departures x (value - centre, oldest first, one per observation) and
    its standard error, robust to white measurement noise. The tradable basis is the premium plus
    the spot venues' noise; that noise is in x[t] and x[t-1] alike, so least squares of x[t] on
    x[t-1] is biased toward 0 (errors in variables). x[t-2] is an instrument: its noise is
    independent of both, and sum x[t] x[t-2] / sum x[t-1] x[t-2] estimates gamma(2) / gamma(1) = phi
    of the premium itself. Its standard error: sqrt(s2 x sum x[t-2]^2) / sum x[t-1] x[t-2], s2 the
    residual variance of x[t] - phi x[t-1]. When the instrument says nothing (fewer than 4 points,
    or sum x[t-1] x[t-2] <= 0: no persistence seen at lag 1 through the noise) the least-squares
    slope through the origin and its standard error, sqrt(s2 / sum x[t-1]^2). None with fewer than
    3 points or no variation. phi is not clipped (it may be <= 0 or >= 1: the caller reads it)."""
    n = int(x.size)
    if n < 3:
        return None
    if n >= 4:
        y, lag1, lag2 = x[2:], x[1:-1], x[:-2]
        denom = float(np.dot(lag1, lag2))
        if denom > 0:
            phi = float(np.dot(y, lag2)) / denom
            resid = y - phi * lag1
            s2 = float(np.dot(resid, resid)) / max(1, resid.size - 1)
            return Ar1Fit(phi, math.sqrt(s2 * float(np.dot(lag2, lag2))) / denom, "iv")
    prev, nxt = x[:-1], x[1:]
    denom = float(np.dot(prev, prev))
    if denom <= 0:
        return None
    phi = float(np.dot(prev, nxt)) / denom
    resid = nxt - phi * prev
    return Ar1Fit(phi, math.sqrt(float(np.dot(resid, resid)) / max(1, resid.size - 1) / denom), "ols")


def half_life_of_phi(phi: float, dt: float) -> float:
    """Half-life (s) of an AR(1) slope per observation spacing dt: inf at phi >= 1 (no decay), a
    tenth of dt or so at phi <= MIN_PHI (as estimate_half_life_s reads it)."""
    if phi >= 1:
        return math.inf
    return dt * math.log(2) / -math.log(max(phi, MIN_PHI))


def decayed_seconds(half_life_s: float | None, horizon_s: float) -> float:
    """integral over [0, horizon] of 2^(-t / half-life) dt: the seconds of 'full-rate' a quantity
    decaying with that half-life is worth (the horizon itself when it does not decay)."""
    if half_life_s is None or half_life_s <= 0:
        return horizon_s
    k = math.log(2) / half_life_s
    return (1 - math.exp(-k * horizon_s)) / k


class BasisHistory:
    """Rolling basis observations per (market, venue) over the last `window_s` seconds, or the
    last `min_samples` observations when fewer than that fall in the window (a slow chain, or
    sparse blocks: statistics need a sample, whatever its span); at most one per block, at most
    `max_samples` kept.

    The statistics of a window are kept up to date as it slides (keeper/basis_window.py: a sorted
    window, the MAD by selection, the AR(1) fit on a contiguous buffer), to the bit what
    `BasisStats.from_observations` computes on the window afresh, and each window's are computed
    once: the engine reads the window before a block twice (for the signal's z-score, then for the
    strategies), and the second read is the first's answer. A series whose timestamps go
    backwards or that holds a non-finite value is answered the brute-force way, and so is every
    read with `incremental=False` (the reference: each window recomputed afresh, as before
    2026-11-30; the benchmark compares the two)."""

    def __init__(self, window_s: float = 7200, min_samples: int = 20, max_samples: int = 4096,
                 incremental: bool = True, windows: bool = True) -> None:
        if window_s <= 0 or min_samples < 2 or max_samples < min_samples:
            raise ValueError(f"need window_s > 0 and 2 <= min_samples <= max_samples (got window_s={window_s}, "
                             f"min_samples={min_samples}, max_samples={max_samples})")
        self.window_s = window_s
        self.min_samples = min_samples
        self._series: dict[tuple[str, str], BasisSeries] = {}
        self.max_samples = max_samples
        self.incremental = incremental
        self.windows = windows  # False: the incremental statistics carry no window (a backtest's worker ships spans)

    def _past(self, series: BasisSeries, block: int, timestamp_s: int) -> list[tuple[int, int, float]]:
        """The window the brute-force way (any order of blocks and timestamps)."""
        cutoff = timestamp_s - self.window_s
        before = [o for o in series.observations() if o[0] < block]
        inside = [o for o in before if o[1] >= cutoff]
        return inside if len(inside) >= self.min_samples else before[-self.min_samples:]

    def observations(self, market: str, venue: str, before_block: int, timestamp_s: int | None = None) -> list[float]:
        """The recorded basis (bps) of blocks before `before_block` within the window, oldest first."""
        series = self._series.get((market, venue))
        if series is None:
            return []
        now = timestamp_s if timestamp_s is not None else (series.times[-1] if len(series) else 0)
        return [b for _, _, b in self._past(series, before_block, now)]

    def stats(self, market: str, venue: str, before_block: int, timestamp_s: int) -> BasisStats | None:
        """Robust statistics of the window before `before_block`; None below min_samples."""
        return self.stats_and_window(market, venue, before_block, timestamp_s)[0]

    def stats_and_window(self, market: str, venue: str, before_block: int,
                         timestamp_s: int) -> tuple[BasisStats | None, tuple[int, int] | None]:
        """`stats`, and its window as the absolute indices (lo, hi) of the observations it spans
        (0: the first recorded for this market and venue) when it is that contiguous run (None
        for the brute-force path: its window is `window_bps`)."""
        series = self._series.get((market, venue))
        if series is None:
            return None, None
        answered = series.answered
        if answered is not None and answered[0] == before_block and answered[1] == timestamp_s:
            return answered[2], answered[3]  # type: ignore[return-value]
        if not (series.exact_order and self.incremental):
            past = self._past(series, before_block, timestamp_s)
            if len(past) < self.min_samples:
                return None, None
            return BasisStats.from_observations([b for _, _, b in past], [t for _, t, _ in past], self.window_s), None
        lo, hi = series.window(before_block, timestamp_s - self.window_s, self.min_samples)
        if hi - lo < self.min_samples:
            return None, None
        if series.memo is not None and series.memo[0] == lo and series.memo[1] == hi:
            return series.memo[2], (lo, hi)  # type: ignore[return-value]
        found = _window_stats(series, lo, hi, self.windows, self.window_s)
        series.memo = (lo, hi, found)
        return found, (lo, hi)

    def zscore_then_record(self, market: str, venue: str, block: int, basis_bps: float,
                           timestamp_s: int | None = None) -> float | None:
        """Robust z-score of basis_bps against the window before it, then remember it.

        The window before the block is still its window once the basis is recorded (the new
        observation is of the block itself, and what leaves is older than the window), so the
        statistics just read answer the next read of (block, time) at once (the engine's
        strategies, the backtest's worker), unless the series has to answer the brute-force way
        now or dropped an observation for max_samples (which may be the window's first)."""
        ts = block if timestamp_s is None else timestamp_s
        series = self._series.get((market, venue))
        stats, span = self.stats_and_window(market, venue, block, ts) if series is not None else (None, None)
        if series is None:
            series = self._series[(market, venue)] = BasisSeries()
        same = True
        blocks, times = series.blocks, series.times  # (len(series) is base + len(blocks) - first, inlined)
        if series.base + len(blocks) == series.first or blocks[-1] < block:
            series.append(block, ts, basis_bps)
            if series.base + len(blocks) - series.first > self.max_samples:
                series.popleft()
                same = False
        cutoff, keep = ts - self.window_s, self.min_samples + 1
        while series.base + len(blocks) - series.first > keep and times[series.first - series.base] < cutoff:
            series.popleft()  # (min_samples before the newest block stay, for the stats read after it)
        series.answered = (block, ts, stats, span) if same and series.exact_order and self.incremental else None
        return None if stats is None else stats.zscore(basis_bps)


def _window_stats(series: BasisSeries, lo: int, hi: int, with_window: bool = True,
                  window_s: float | None = None) -> BasisStats:
    """`BasisStats.from_observations` of the series' window [lo, hi), from its sorted values and
    spacings: the same numbers, operation for operation where they are floats; its window_bps a
    copy of the window (empty without `with_window`)."""
    values, spacings = series.sorted_window(lo, hi)
    n = hi - lo
    center = median_sorted(values)
    deviation, series.mad_split = mad_sorted_from(values, center, series.mad_split)
    scale = MAD_TO_SIGMA * deviation
    half_life = None
    dt = median_sorted(spacings) if n >= 2 else None
    view = series.values_view(lo, hi)
    if n >= 3 and dt is not None:
        x = view - center
        prev = x[:-1]
        denom = float(np.dot(prev, prev))
        if denom > 0 and dt > 0:
            phi = float(np.dot(prev, x[1:])) / denom
            if phi < 1:
                half_life = half_life_of_phi(phi, dt)
    if half_life is None:
        first, last = float(series.time(lo)), float(series.time(hi - 1))
        if last > first:
            half_life = last - first
    return BasisStats(center, scale, n, half_life, _frozen(view.copy()) if with_window else (), dt, window_s)


def _frozen(values: np.ndarray) -> np.ndarray:
    """A window kept in a BasisStats: its own read-only copy (the stats are shared, memoised)."""
    values.flags.writeable = False
    return values
