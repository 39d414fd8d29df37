"""The expected exit under basis_convergence's own exit rule (strategies/exit_forecast.py), on
hand-set windows: overshoot replayed from the window, the centre moving onto a lasting departure,
the decay into the exit band; and the strategy's expected convergence following it."""

from __future__ import annotations

import pytest

from keeper.types import Direction, Intent
from strategies import BasisConvergence
from strategies.base import BasisStats, Skip
from strategies.basis_convergence import BasisConvergenceParams
from keeper.basis_history import Ar1Fit, half_life_of_phi
from strategies.exit_forecast import (
    catch_up_observations,
    decay_forecast,
    forecast_exit,
    posterior_decay_forecast,
    replay_episodes,
    window_capacity,
)

from .test_strategies import context, only, rich_eth

CALM = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.5, -1.5, 0.0] * 2  # 20 observations, MAD-scale ~1.5 bps


def test_given_a_departure_ended_by_the_next_shock_when_replayed_then_the_exit_lands_past_the_centre() -> None:
    # +150 bps for 6 observations, then -140: the rule (crossed the centre) fires on the -140
    excess = CALM + [150.0] * 6 + [-140.0]
    episodes = replay_episodes(excess, entry_bps=75.0, exit_bps=1.0)
    assert episodes == [(pytest.approx(-140 / 150), 6, 150.0)]


def test_given_the_window_ends_departed_when_entering_on_the_flip_then_the_entry_observation_resolves_it() -> None:
    # Given a window whose last 6 observations are +150 bps (unresolved in the window), entering now at -150
    window = CALM + [150.0] * 6
    forecast = forecast_exit(window, 0.0, 1.5, 60.0, 300.0, -150.0, entry_z=2.0, exit_bps=0.75, horizon_s=86_400)
    # Then that departure ended past the centre by the whole swing, after 6 observations; with the
    # decay model as one more departure of the same size, the forecast is half way between them
    model = decay_forecast(window, 60.0, 300.0, -150.0, 3.0, 0.75, 86_400)
    assert model.remaining_ratio == pytest.approx(2 ** (-840 / 300)) and model.hold_s == 840  # the median, 14 later
    assert forecast.remaining_ratio == pytest.approx((-1.0 + model.remaining_ratio) / 2)
    assert forecast.hold_s == pytest.approx((360.0 + 840.0) / 2)
    assert "1 departure(s) in the window replayed" in forecast.source
    # five departures ended by a flip in the window move it most of the way: a flip is what this path does
    flips = CALM + ([150.0] * 6 + [-150.0] * 6) * 2 + [150.0] * 6
    many = forecast_exit(flips, 0.0, 1.5, 60.0, 300.0, -150.0, 2.0, 0.75, 86_400)
    assert "5 departure(s)" in many.source and many.remaining_ratio < -0.7


def test_given_only_small_wiggles_in_the_window_when_entering_a_big_departure_then_they_do_not_inform_it() -> None:
    # A 10 bps wiggle that reverted is < half of the 150 bps entered on: the parametric path answers
    window = CALM[:10] + [10.0, 0.0] + CALM[10:]
    forecast = forecast_exit(window, 0.0, 1.5, 60.0, 60.0, 150.0, entry_z=2.0, exit_bps=0.75, horizon_s=86_400)
    assert "replayed" not in forecast.source and forecast.remaining_ratio >= 0


def test_given_a_slow_decay_when_the_median_catches_up_first_then_the_exit_is_where_the_basis_has_decayed_to() -> None:
    # 20 observations 600 s apart, none departed: the median moves onto the departure after 11 more;
    # a 12-hour half-life has taken only 2^(-6600/43200) of the excess by then
    forecast = forecast_exit(CALM, 0.0, 1.5, 600.0, 43_200.0, 300.0, entry_z=2.0, exit_bps=0.75, horizon_s=86_400)
    assert forecast.hold_s == pytest.approx(11 * 600.0)
    assert forecast.remaining_ratio == pytest.approx(2 ** (-6600 / 43_200))
    assert "centre moves" in forecast.source
    # observations already departed on this side bring the catch-up nearer
    departed = CALM[4:] + [300.0] * 4
    assert forecast_exit(departed, 0.0, 1.5, 600.0, 43_200.0, 300.0, 2.0, 0.75, 86_400).hold_s == pytest.approx(7 * 600.0)


def test_given_a_fast_decay_when_forecast_then_the_exit_is_the_first_observation_inside_the_band() -> None:
    # 150 -> 0.75 bps takes log2(200) = 7.64 half-lives of 60 s = 458.6 s: the 8th observation (480 s)
    forecast = forecast_exit(CALM, 0.0, 1.5, 60.0, 60.0, 150.0, entry_z=2.0, exit_bps=0.75, horizon_s=86_400)
    assert forecast.hold_s == pytest.approx(480.0)
    assert forecast.remaining_ratio == pytest.approx(2 ** -8)


def test_given_no_fitted_decay_when_forecast_then_the_centre_at_the_horizon_as_before() -> None:
    forecast = forecast_exit(CALM, 0.0, 1.5, 60.0, None, 150.0, entry_z=2.0, exit_bps=0.75, horizon_s=3600)
    assert (forecast.remaining_ratio, forecast.hold_s) == (0.0, 3600)


def _stats(window: list[float]) -> dict[tuple[str, str], BasisStats]:
    stats = BasisStats(0.0, 1.5, len(window), half_life_s=300.0, window_bps=tuple(window), spacing_s=60.0)
    return {("ETH", "uniswap_v3"): stats, ("ETH", "uniswap_v2"): stats}


def test_given_a_window_whose_departures_overshoot_when_opening_then_the_expected_convergence_counts_the_swing() -> None:
    # Given the perp 2% rich (200 bps) and a window in which a -200 bps departure ended at +200
    view = rich_eth(0.02)
    z = {("ETH", "uniswap_v3"): 133.0, ("ETH", "uniswap_v2"): 133.0}
    window = CALM + [-200.0] * 6
    with_rule = only(BasisConvergence().decide(context(view, z=z, stats=_stats(window))))
    without = only(BasisConvergence(BasisConvergenceParams(exit_from_window=False)).decide(
        context(view, z=z, stats=_stats(window))))
    assert isinstance(with_rule, Intent) and isinstance(without, Intent)
    assert with_rule.direction is Direction.SHORT_PERP
    # Then the expected exit is past the centre: the convergence per unit of size is (1 - the share
    # of the excess left at exit) times that of an exit at the centre, and more than it
    forecast = BasisConvergence().exit_forecast(context(view, z=z, stats=_stats(window)), 200.0, _stats(window)[("ETH", "uniswap_v3")])
    assert forecast.remaining_ratio < 0
    per_base = with_rule.expected.convergence_usd / with_rule.perp_base_x18
    per_base_without = without.expected.convergence_usd / without.perp_base_x18
    assert per_base == pytest.approx((1 - forecast.remaining_ratio) * per_base_without, rel=0.02)
    assert "replayed" in with_rule.reason and f"expected hold {forecast.hold_s:.0f} s" in with_rule.reason


def test_given_a_persistent_departure_when_opening_then_the_smaller_expected_convergence_does_not_pay() -> None:
    # Given 200 bps rich on a window 600 s apart with a 12-hour half-life: the median catches up
    # with the departure after 11 observations, when only 1 - 2^(-6600/43200) of it is gone
    view = rich_eth(0.02)
    z = {("ETH", "uniswap_v3"): 133.0, ("ETH", "uniswap_v2"): 133.0}
    stats = BasisStats(0.0, 1.5, 20, half_life_s=43_200.0, window_bps=tuple(CALM), spacing_s=600.0)
    ctx = context(view, z=z, stats={("ETH", "uniswap_v3"): stats, ("ETH", "uniswap_v2"): stats})
    strategy = BasisConvergence()
    forecast = strategy.exit_forecast(ctx, 200.0, stats)
    assert forecast.remaining_ratio == pytest.approx(2 ** (-6600 / 43_200))
    assert strategy.exit_basis_bps(200.0, 200.0, forecast) == pytest.approx(200.0 * 2 ** (-6600 / 43_200))
    # Then it does not open, where expecting the basis back at the centre opened
    assert isinstance(only(strategy.decide(ctx)), Skip)
    assert isinstance(only(BasisConvergence(BasisConvergenceParams(exit_from_window=False)).decide(ctx)), Intent)


def test_given_decay_uncertainty_when_forecast_then_the_window_s_own_fit_decides_not_the_stated_half_life() -> None:
    # Given a window 600 s apart whose departures decay by 0.99 an observation (its AR(1) fit: an
    # 11.5-hour half-life, exactly, so no uncertainty) and stats that state a 60 s half-life
    view = rich_eth(0.02)
    z = {("ETH", "uniswap_v3"): 133.0, ("ETH", "uniswap_v2"): 133.0}
    window = tuple(2.9 * 0.99 ** i for i in range(20))
    stats = BasisStats(0.0, 1.5, 20, half_life_s=60.0, window_bps=window, spacing_s=600.0)
    fit = stats.decay_fit()
    assert fit is not None and fit.method == "iv" and fit.phi == pytest.approx(0.99) and fit.se < 1e-9
    ctx = context(view, z=z, stats={("ETH", "uniswap_v3"): stats, ("ETH", "uniswap_v2"): stats})
    # Then with decay_uncertainty the fit decides: the median catches up after 11 observations, when
    # only 1 - 2^(-6600 / half-life) of the departure is gone, and it does not open
    strategy = BasisConvergence(BasisConvergenceParams(decay_uncertainty=True))
    forecast = strategy.exit_forecast(ctx, 200.0, stats)
    remaining = 2 ** (-6600 / half_life_of_phi(0.99, 600.0))
    assert forecast.remaining_ratio == pytest.approx(remaining) and forecast.hold_s == pytest.approx(6600.0)
    assert "AR(1) 0.990" in forecast.source
    assert isinstance(only(strategy.decide(ctx)), Skip)
    # without it (the default), the stated 60 s half-life: nearly all of it back, and it opens
    default = BasisConvergence().exit_forecast(ctx, 200.0, stats)
    assert default.remaining_ratio < 0.01 and "AR(1)" not in default.source
    assert isinstance(only(BasisConvergence().decide(ctx)), Intent)


def test_given_a_window_still_filling_when_forecast_then_only_decay_uncertainty_counts_its_growth() -> None:
    # Given 20 one-minute observations of a 2-hour window (room for 120), none departed, a slow decay
    view = rich_eth(0.02)
    z = {("ETH", "uniswap_v3"): 133.0, ("ETH", "uniswap_v2"): 133.0}
    window = tuple(2.9 * 0.99 ** i for i in range(20))
    stats = BasisStats(0.0, 1.5, 20, half_life_s=43_200.0, window_bps=window, spacing_s=60.0, window_s=7_200.0)
    ctx = context(view, z=z, stats={("ETH", "uniswap_v3"): stats, ("ETH", "uniswap_v2"): stats})
    # Then by default the median catches up as a full window's would: after 20 // 2 + 1 = 11 observations
    assert BasisConvergence().exit_forecast(ctx, 200.0, stats).hold_s == pytest.approx(11 * 60.0)
    # and with decay_uncertainty the window grows with each new one: after 21 (more than half of 20 + 21)
    calibrated = BasisConvergence(BasisConvergenceParams(decay_uncertainty=True)).exit_forecast(ctx, 200.0, stats)
    assert calibrated.hold_s == pytest.approx(21 * 60.0)


def test_given_decay_uncertainty_without_the_window_forecast_when_configured_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="decay_uncertainty"):
        BasisConvergenceParams(exit_from_window=False, decay_uncertainty=True)


def test_given_an_uncertain_slope_when_forecast_then_it_expects_less_convergence_than_its_point_estimate() -> None:
    # The share remaining is convex in the slope: the mean over phi's uncertainty (five points of a
    # normal, phi + z x se, clipped at 1) sits above the share at phi itself, and has a spread
    sure = posterior_decay_forecast(CALM, 60.0, Ar1Fit(0.9, 0.0, "iv"), 150.0, 3.0, 0.75, 86_400)
    point = decay_forecast(CALM, 60.0, half_life_of_phi(0.9, 60.0), 150.0, 3.0, 0.75, 86_400)
    assert (sure.remaining_ratio, sure.hold_s, sure.remaining_sd) == (pytest.approx(point.remaining_ratio), point.hold_s, 0.0)
    unsure = posterior_decay_forecast(CALM, 60.0, Ar1Fit(0.9, 0.1, "iv"), 150.0, 3.0, 0.75, 86_400)
    by_hand = [decay_forecast(CALM, 60.0, half_life_of_phi(min(1.0, 0.9 + z * 0.1), 60.0), 150.0, 3.0, 0.75, 86_400)
               for z in (-1.2815516, -0.5244005, 0.0, 0.5244005, 1.2815516)]
    assert unsure.remaining_ratio == pytest.approx(sum(f.remaining_ratio for f in by_hand) / 5, rel=1e-5)
    assert unsure.remaining_ratio > point.remaining_ratio and unsure.remaining_sd > 0.1
    # the top point (phi + 1.28 se >= 1) does not decay: it keeps the whole excess until the median moves
    assert by_hand[-1].remaining_ratio == 1.0 and by_hand[-1].hold_s == 11 * 60.0
    assert "+- 0.100" in unsure.source and "(sd " in unsure.describe()


def test_given_a_window_still_growing_when_the_median_catches_up_then_it_takes_the_new_observations_too() -> None:
    # 20 observations of a 7,200 s window 60 s apart (it will hold 120): each new departed observation
    # also lengthens the window, so the median moves after 21 of them, not 11 (a full window's)
    assert window_capacity(20, 60.0, 7_200.0) == 120 and window_capacity(20, 600.0, 7_200.0) == 20
    assert window_capacity(20, 60.0, None) == 20 and window_capacity(20, None, 7_200.0) == 20
    assert catch_up_observations(20, 0, 20) == 11 and catch_up_observations(20, 0, 120) == 21
    assert catch_up_observations(20, 4, 20) == 7 and catch_up_observations(20, 15, 20) == 1
    assert catch_up_observations(20, 0, 30) == 16  # full at 30 after 10 more, then sliding: 16 of 30
    slow = forecast_exit(CALM, 0.0, 1.5, 60.0, 43_200.0, 300.0, 2.0, 0.75, 86_400, window_s=7_200.0)
    assert slow.hold_s == pytest.approx(21 * 60.0)


def test_given_no_exit_band_or_no_finite_departure_then_the_decay_model_forecasts_no_decay() -> None:
    for exit_bps, excess_bps in ((0.0, 40.0), (-1.0, 40.0), (5.0, float("nan"))):
        forecast = decay_forecast([0.0, 1.0, 2.0], 12.0, 600.0, excess_bps, 20.0, exit_bps, 86_400.0)
        assert forecast.remaining_ratio == 0.0 and forecast.hold_s == 86_400.0


def test_the_catch_up_closed_form_is_the_count_observation_by_observation() -> None:
    def counted(n: int, departed: int, capacity: int) -> int:  # the definition, one observation at a time
        m = 1
        while departed + m < min(n + m, capacity) // 2 + 1:
            m += 1
        return m

    for n in range(0, 60):
        for departed in range(0, n + 1):
            for capacity in range(n, n + 90, 3):
                assert catch_up_observations(n, departed, capacity) == counted(n, departed, capacity), (n, departed, capacity)


def _replayed_by_a_loop(excess: list[float], entry_bps: float, exit_bps: float) -> list[tuple[float, int, float]]:
    """The rule of replay_episodes, observation by observation (the reference its arrays must give)."""
    out = []
    for i, x in enumerate(excess[:-1]):
        side = 1.0 if x > 0 else -1.0
        if not abs(x) >= entry_bps or (i > 0 and side * excess[i - 1] >= entry_bps):
            continue  # not departed, or not the departure's first observation
        for j in range(i + 1, len(excess)):
            if side * excess[j] <= 0 or abs(excess[j]) < exit_bps:
                out.append((excess[j] / x, j - i, abs(x)))
                break
    return out


def test_given_random_windows_with_signed_zeros_and_ties_when_replayed_then_the_episodes_are_the_loops_to_the_bit() -> None:
    import random

    rng = random.Random(12)
    values = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 5.0, -5.0]  # ties with the thresholds, both zeros
    for _ in range(3_000):
        excess = [rng.choice(values + [rng.uniform(-9.0, 9.0)]) for _ in range(rng.randint(0, 30))]
        entry_bps, exit_bps = rng.choice([2.5, 5.0, 1.0, 3.3]), rng.choice([1.0, 0.5, 0.0, 2.5])
        assert replay_episodes(excess, entry_bps, exit_bps) == _replayed_by_a_loop(excess, entry_bps, exit_bps)
