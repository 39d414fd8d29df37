"""The AR(1) fit behind the convergence forecast (keeper/basis_history.py fit_ar1): consistent
under white measurement noise where least squares is not, its standard error, its fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keeper.basis_history import MIN_PHI, BasisStats, fit_ar1, half_life_of_phi


def _premium_plus_noise(rng: np.random.Generator, n: int, phi: float, noise_sd: float) -> np.ndarray:
    """An AR(1) premium (unit innovations) seen through white noise of noise_sd, as the tradable
    basis sees it through the spot venue's."""
    premium = np.empty(n)
    premium[0] = rng.normal() / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        premium[t] = phi * premium[t - 1] + rng.normal()
    return premium + noise_sd * rng.normal(size=n)


def test_given_noise_on_a_persistent_premium_then_the_instrument_recovers_phi_where_least_squares_halves_it() -> None:
    # phi 0.95 (stationary sd 3.2) seen through noise of sd 4: lag-1 least squares is attenuated by
    # var(premium) / var(premium + noise) = 10.3 / 26.3, to about 0.37
    x = _premium_plus_noise(np.random.default_rng(1), 40_000, 0.95, 4.0)
    x = x - np.median(x)
    fit = fit_ar1(x)
    assert fit is not None and fit.method == "iv"
    assert fit.phi == pytest.approx(0.95, abs=0.02)
    prev = x[:-1]
    assert float(prev @ x[1:]) / float(prev @ prev) < 0.45  # what estimate_half_life_s's slope gets
    assert 0 < fit.se < 0.02


def test_the_standard_error_covers_the_truth_about_as_often_as_it_says() -> None:
    # 300 windows of 120 observations: phi within 1.96 standard errors in about 95% of them
    rng = np.random.default_rng(2)
    inside = 0
    for _ in range(300):
        x = _premium_plus_noise(rng, 120, 0.9, 1.0)
        fit = fit_ar1(x - np.median(x))
        assert fit is not None
        inside += abs(fit.phi - 0.9) <= 1.96 * fit.se
    assert 0.85 <= inside / 300 <= 0.995


def test_given_no_persistence_at_lag_one_or_too_few_points_then_least_squares_or_nothing() -> None:
    # alternating signs: sum x[t-1] x[t-2] < 0, the instrument says nothing: least squares, phi = -1
    alternating = np.array([(-1.0) ** i for i in range(20)])
    fit = fit_ar1(alternating)
    assert fit is not None and fit.method == "ols" and fit.phi == pytest.approx(-1.0) and fit.se == pytest.approx(0.0)
    three = fit_ar1(np.array([4.0, 2.0, 1.0]))  # three points: no instrument yet
    assert three is not None and three.method == "ols" and three.phi == pytest.approx((8 + 2) / (16 + 4))
    assert fit_ar1(np.array([1.0, 0.5])) is None and fit_ar1(np.zeros(10)) is None
    geometric = fit_ar1(np.array([10 * 0.8 ** i for i in range(12)]))  # an exact decay: no residual
    assert geometric is not None and geometric.phi == pytest.approx(0.8) and geometric.se == pytest.approx(0.0, abs=1e-12)


def test_a_slope_reads_as_a_half_life_none_at_one_a_tenth_of_a_step_at_zero() -> None:
    assert half_life_of_phi(0.5, 60.0) == pytest.approx(60.0)
    assert half_life_of_phi(1.0, 60.0) == math.inf and half_life_of_phi(1.3, 60.0) == math.inf
    assert half_life_of_phi(-0.4, 60.0) == half_life_of_phi(MIN_PHI, 60.0) == pytest.approx(60 * math.log(2) / math.log(1000))


def test_the_stats_fit_their_own_window_about_their_centre() -> None:
    values = [5.0 + 8 * 0.7 ** i for i in range(15)]
    stats = BasisStats.from_observations(values, list(range(0, 60 * 15, 60)), window_s=3_600)
    fit = stats.decay_fit()
    direct = fit_ar1(np.asarray(values) - stats.center_bps)
    assert fit == direct and stats.window_s == 3_600
    assert BasisStats(0.0, 1.0, 2, window_bps=(1.0, 2.0)).decay_fit() is None
