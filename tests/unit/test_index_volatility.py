"""The index's volatility from the recorded snapshots (keeper/index_volatility.py) and its use by
the exit-stress rule's p (strategies/exit_stress.py): hand-set series and seeded random walks."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from keeper.config import KeeperConfig
from keeper.engine import Engine
from keeper.index_volatility import IndexHistory, ewma_variance_per_s, half_life_s
from keeper.metrics import KeeperMetrics
from keeper.plan import Planner
from keeper.stress import StressParams
from keeper.types import ONE_X18, MarketSnapshot
from strategies.exit_stress import departure_sigma_per_sqrt_s, exit_stress_probability, stress_move_probability
from tests.unit.test_pnl_model import market_view, perp_state

DAY_S = 86_400
TWAP_S = 900


def test_the_estimate_is_the_weighted_sum_of_squared_increments_over_the_weighted_time() -> None:
    # Given records at 0, 60, 120, 240 s (log prices 0, 0.01, 0.01, -0.01) and a 120 s half-life
    times, logs = [0.0, 60.0, 120.0, 240.0], [0.0, 0.01, 0.01, -0.01]
    # weights 2^-(240-60)/120, 2^-(240-120)/120, 2^0 on the increments ending at 60, 120, 240 s
    w = [2 ** -1.5, 2 ** -1.0, 1.0]
    expected = (w[0] * 0.01**2 + w[1] * 0 + w[2] * 0.02**2) / (w[0] * 60 + w[1] * 60 + w[2] * 120)
    assert ewma_variance_per_s(times, logs, 120.0) == pytest.approx(expected, rel=1e-12)
    assert ewma_variance_per_s(times[:3], logs[:3], 120.0) is None  # two increments: no estimate
    # the half-life: T / 3, or four records' spacing on a sparse series
    assert half_life_s([0, 60, 120, 180], TWAP_S) == 300.0
    assert half_life_s([0, 600, 1200, 1800], TWAP_S) == 2_400.0


def brownian_index(rng: np.random.Generator, sigma_daily: float, seconds: int) -> np.ndarray:
    """A log index path at 1 s resolution."""
    steps = rng.normal(0.0, sigma_daily / math.sqrt(DAY_S), seconds)
    return np.concatenate([[0.0], np.cumsum(steps)])


def estimates(path: np.ndarray, spacing_s: int = 60) -> tuple[float, float]:
    """(the recorded history's sigma, the one-sample TWAP departure's sigma) at the path's end."""
    times = list(range(0, len(path), spacing_s))
    history = ewma_variance_per_s([float(t) for t in times], [float(path[t]) for t in times], half_life_s(times, TWAP_S))
    assert history is not None
    departure = abs(path[-1] - math.log(np.mean(np.exp(path[-TWAP_S:]))))
    return math.sqrt(history), departure * math.sqrt(math.pi / 2) / math.sqrt(TWAP_S / 3)


def test_given_random_walks_when_estimating_their_volatility_then_the_history_is_unbiased_and_far_less_noisy() -> None:
    rng = np.random.default_rng(10)
    sigma = 0.3 / math.sqrt(DAY_S)  # 30% a day
    pairs = np.array([estimates(brownian_index(rng, 0.3, 7_200)) for _ in range(300)])
    history, departure = pairs[:, 0] / sigma, pairs[:, 1] / sigma
    assert abs(np.mean(history) - 1) < 0.05 and abs(np.mean(departure) - 1) < 0.15  # both about right on average
    assert np.std(history) < 0.3 * np.std(departure)  # but one sample is several times noisier
    assert np.std(history) < 0.25


def test_given_a_calm_index_then_p_is_about_zero_and_given_a_jump_on_the_last_record_then_p_is_near_one() -> None:
    rng = np.random.default_rng(3)
    path = brownian_index(rng, 0.04, 7_200)  # 4% a day (the suite's calm paths: 2-5%)
    perp = perp_state()
    calm, _ = estimates(path)
    assert stress_move_probability(perp, 0.05, 3_600, calm) < 1e-6
    jumped = path.copy()
    jumped[-1] += 0.05  # a 5% jump on the newest record
    sigma, _ = estimates(jumped)
    assert stress_move_probability(perp, 0.05, 3_600, sigma) > 0.7
    assert stress_move_probability(perp, 0.05, 14_400, sigma) > 0.85


def snapshot_at(block: int, timestamp_s: int, index_usd: float) -> MarketSnapshot:
    perp = dataclasses.replace(perp_state(), index_price_x18=int(index_usd * ONE_X18))
    return MarketSnapshot(block, timestamp_s, 10**9, {"ETH": market_view(perp=perp)}, None, 1)


def test_the_history_records_once_per_block_and_forgets_records_older_than_its_window() -> None:
    history = IndexHistory(window_s=600)
    for block in range(1, 21):
        history.record(snapshot_at(block, 60 * block, 3000.0 * (1.001 if block % 2 else 1.0)))
        history.record(snapshot_at(block, 60 * block, 9999.0))  # the same block again: ignored
    sigma = history.sigma_per_sqrt_s("ETH", TWAP_S)
    # every increment is +-ln(1.001) over 60 s; the last 600 s are kept
    assert sigma == pytest.approx(math.log(1.001) / math.sqrt(60), rel=1e-9)
    assert history.sigma_per_sqrt_s("BTC", TWAP_S) is None
    assert IndexHistory().sigma_per_sqrt_s("ETH", TWAP_S) is None


def test_the_rule_takes_the_larger_of_the_historys_sigma_and_the_twap_departures() -> None:
    # Given an index 1% off its TWAP (the one sample says it has just moved) and a calm recorded history
    view = market_view(perp=dataclasses.replace(perp_state(), index_price_x18=int(3030 * ONE_X18)))
    perp = view.perp
    without = StressParams(0.05, 0.0, 3_600.0, exit_weight=1.0)
    departure = stress_move_probability(perp, 0.05, 3_600, None)  # type: ignore[arg-type]
    sigma = departure_sigma_per_sqrt_s(perp)  # type: ignore[arg-type]
    assert departure == pytest.approx(math.erfc(0.05 / (sigma * 60 * math.sqrt(2)))) and departure > 0.05
    calm = dataclasses.replace(without, index_sigma_per_sqrt_s={"ETH": 0.02 / math.sqrt(DAY_S)})
    # Then the departure, the jump detector, decides (as it does without a history)
    assert exit_stress_probability(view, calm) == pytest.approx(departure)
    assert exit_stress_probability(view, without) == pytest.approx(departure)
    # Given instead the index at its TWAP (the one sample says calm: p = 0) and a volatile history
    flat = market_view()
    assert exit_stress_probability(flat, without) == 0.0
    volatile = dataclasses.replace(without, index_sigma_per_sqrt_s={"ETH": 5e-4})
    # Then the history decides: p of a 5e-4 / sqrt(s) walk over the hour
    assert exit_stress_probability(flat, volatile) == pytest.approx(math.erfc(0.05 / (5e-4 * 60 * math.sqrt(2))))
    # and another market's estimate is not this one's
    assert exit_stress_probability(flat, dataclasses.replace(without, index_sigma_per_sqrt_s={"BTC": 5e-4})) == 0.0


def test_the_engine_records_each_snapshots_index_and_hands_the_estimate_to_the_stress_params() -> None:
    config = KeeperConfig()
    engine = Engine(config=config, collector=SimpleNamespace(sources=SimpleNamespace(markets=[])), strategies=[],
                    planner=Planner(config, "0x" + "11" * 20), executor=SimpleNamespace(mode="dry_run"),
                    journal=None, metrics=KeeperMetrics(), kill_switch=lambda: False)
    for block in range(1, 6):
        engine.index_history.record(snapshot_at(block, 60 * block, 3000.0 * 1.002 ** block))
    stress = engine.strategy_context(snapshot_at(5, 300, 3000.0 * 1.002**5), [], {}).limits.stress
    assert stress is not None
    assert stress.index_sigma("ETH") == pytest.approx(math.log(1.002) / math.sqrt(60), rel=1e-9)


def test_the_sigmas_mapping_has_the_markets_with_an_estimate_and_keeps_at_most_max_records() -> None:
    def price(block: int) -> float:
        return 3000.0 * (1.001 if block % 2 else 1.0) * (1.01 if block > 26 else 1.0)

    history = IndexHistory(window_s=10_000, max_records=5)
    for block in range(1, 31):
        history.record(snapshot_at(block, 60 * block, price(block)))
    sigmas = history.sigmas(snapshot_at(30, 1_800, price(30)))
    assert list(sigmas) == ["ETH"] and "BTC" not in sigmas and sigmas.get("BTC") is None
    # only the last 5 records (blocks 26-30) count, the 1% step from 26 to 27 among them
    kept = range(26, 31)
    expected = ewma_variance_per_s([60.0 * b for b in kept], [math.log(price(b) * ONE_X18) for b in kept], 300.0)
    assert expected is not None and sigmas["ETH"] == pytest.approx(math.sqrt(expected), rel=1e-12)
    assert sigmas["ETH"] == history.sigma_per_sqrt_s("ETH", TWAP_S)


def test_the_estimate_is_read_again_after_a_new_block_and_for_another_twap_interval() -> None:
    history = IndexHistory()
    for block in range(1, 11):
        history.record(snapshot_at(block, 60 * block, 3000.0 * (1.001 if block % 2 else 1.0)))
    calm = history.sigma_per_sqrt_s("ETH", TWAP_S)
    assert calm is not None and history.sigmas(snapshot_at(10, 600, 3000.0))["ETH"] == calm
    history.record(snapshot_at(11, 660, 3000.0 * 1.01))  # a 1% jump on the newest block
    jumped = history.sigmas(snapshot_at(11, 660, 3000.0 * 1.01))["ETH"]
    assert jumped > 2 * calm and jumped == history.sigma_per_sqrt_s("ETH", TWAP_S)
    # the same block with a longer TWAP interval: a longer half-life, the jump weighs less
    assert history.sigma_per_sqrt_s("ETH", 4 * TWAP_S) < jumped


def test_the_estimate_read_from_the_numpy_buffers_is_the_estimate_of_the_records_to_the_bit() -> None:
    # Given a history kept in lists and, for the estimate, in numpy buffers that grow and are
    # compacted (more than 2 x 1,024 records dropped), at uneven spacings and prices
    history = IndexHistory(window_s=3_000, max_records=300)
    rng = np.random.default_rng(7)
    time_s, seen = 0, 0
    for block in range(1, 3_500):
        time_s += int(rng.integers(1, 30))
        history.record(snapshot_at(block, time_s, 3000.0 * math.exp(float(rng.normal(0, 0.01)))))
        if block % 97 == 0 or block > 3_480:
            series = history._series["ETH"]
            times, logs = series.times[series.first:], series.logs[series.first:]
            variance = ewma_variance_per_s(np.array(times), logs, half_life_s(np.array(times), TWAP_S))
            # then the estimate is the one of the records as the lists hold them, to the bit
            assert variance is not None and history.sigma_per_sqrt_s("ETH", TWAP_S) == math.sqrt(variance)
            seen += 1
    assert seen > 30 and history._series["ETH"].first < 1_024  # compacted on the way


def test_the_median_spacing_is_the_sorted_spacings_upper_middle_one() -> None:
    rng = np.random.default_rng(3)
    for n in (2, 3, 4, 9, 10, 600):
        times = np.cumsum(rng.integers(0, 20, n)).astype(float)  # repeated times: spacings of 0 are left out
        spacings = np.sort(np.diff(times)[np.diff(times) > 0])
        median = float(spacings[len(spacings) // 2]) if len(spacings) else 0.0
        assert half_life_s(times, TWAP_S) == max(TWAP_S / 3, 4 * median, 1.0)
