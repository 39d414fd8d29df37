import math

import numpy as np
import pytest

from keeper.basis_history import BasisStats, decayed_seconds, estimate_half_life_s
from keeper.signals import BasisHistory, compute_signal
from keeper.types import ONE_X18, PerpMarketState, SECONDS_PER_YEAR
from keeper.venues.uniswap_v3_math import V3PoolState


def perp(mark: float, index_twap: float, market_twap: float, max_funding_ppm: int = 100_000,
         vamm: float = 1.0) -> PerpMarketState:
    pool = V3PoolState(sqrt_price_x96=int(math.sqrt(vamm) * 2**96), tick=0, liquidity=1, fee_pips=3000, tick_spacing=60,
                       liquidity_net_by_tick={}, tick_window=(-60, 60))
    return PerpMarketState(base_token="0x" + "11" * 20, pool=pool, mark_price_x18=int(mark * ONE_X18),
                           index_price_x18=int(index_twap * ONE_X18), index_twap_x18=int(index_twap * ONE_X18),
                           market_twap_x18=int(market_twap * ONE_X18), exchange_fee_ratio_ppm=1000,
                           uniswap_fee_ratio_ppm=3000, insurance_fund_fee_ratio_ppm=100_000,
                           max_funding_rate_ppm=max_funding_ppm, twap_interval_s=900)


def test_given_market_above_index_when_computing_then_longs_pay_and_short_perp_carry_is_positive() -> None:
    s = compute_signal(10, "ETH", "uniswap_v3", perp(3030, 3000, 3030, vamm=3060), 3000.0, BasisHistory(60, 2))
    assert s.basis_bps == pytest.approx(200.0, rel=1e-9)  # the tradable basis: vAMM mid vs spot
    assert s.mark_basis_bps == pytest.approx(100.0)  # the margin mark: logged, never decided on
    assert s.funding_rate_per_hour == pytest.approx(0.01 / 24)
    assert s.funding_apr == pytest.approx(0.01 / 86400 * SECONDS_PER_YEAR)
    assert s.carry_apr_short_perp == s.funding_apr and s.carry_apr_long_perp == -s.funding_apr
    assert s.basis_zscore is None  # no history yet


def test_given_a_premium_beyond_the_cap_when_computing_then_funding_is_clamped_like_perp() -> None:
    state = perp(4000, 3000, 4000, max_funding_ppm=100_000)  # +33% premium, capped at 10%
    assert state.funding_premium_x18 == 300 * ONE_X18
    assert perp(2000, 3000, 2000).funding_premium_x18 == -300 * ONE_X18


def test_given_history_when_scoring_then_z_is_robust_and_uses_only_earlier_blocks() -> None:
    history = BasisHistory(window_s=600, min_samples=3)
    for block, value in enumerate([1.0, 2.0, 3.0]):
        history.zscore_then_record("ETH", "v3", block, value, timestamp_s=100 + 12 * block)
    z = history.zscore_then_record("ETH", "v3", 3, 5.0, timestamp_s=136)
    assert z == pytest.approx((5.0 - 2.0) / (1.4826 * 1.0))  # median 2, MAD 1
    # the same block again does not count twice, and does not see itself
    assert history.zscore_then_record("ETH", "v3", 3, 5.0, timestamp_s=136) == pytest.approx(z)


def test_given_one_shock_in_the_history_when_scoring_the_next_then_it_is_not_inflated() -> None:
    # a 150 bps shock among +-1 bps noise: a mean/std yardstick would score the next shock ~2.6
    calm = [(-1.0) ** i for i in range(40)]
    history = BasisHistory(window_s=3600, min_samples=20)
    for block, value in enumerate(calm[:20] + [150.0] + calm[20:]):
        history.zscore_then_record("ETH", "v3", block, value, timestamp_s=60 * block)
    z = history.zscore_then_record("ETH", "v3", 41, 150.0, timestamp_s=60 * 41)
    assert z == pytest.approx((150.0 - 1.0) / (1.4826 * 2.0))  # median 1, MAD 2: the shock moved neither


def test_given_a_window_in_seconds_when_scoring_then_old_values_fall_out() -> None:
    history = BasisHistory(window_s=100, min_samples=3)
    for block, (t, value) in enumerate([(0, 100.0), (150, 1.0), (160, 2.0), (170, 3.0)]):
        history.zscore_then_record("ETH", "v3", block, value, timestamp_s=t)
    z = history.zscore_then_record("ETH", "v3", 4, 2.0, timestamp_s=180)
    assert z == pytest.approx(0.0)  # 100.0 (t=0) is older than 100 s: median of 1,2,3 is 2
    assert history.observations("ETH", "v3", before_block=5, timestamp_s=180) == [1.0, 2.0, 3.0, 2.0]


def test_given_sparse_blocks_when_too_few_fall_in_the_window_then_the_last_min_samples_are_used() -> None:
    history = BasisHistory(window_s=100, min_samples=3)
    for block, (t, value) in enumerate([(0, 1.0), (600, 2.0), (1200, 3.0)]):  # ten-minute blocks
        history.zscore_then_record("ETH", "v3", block, value, timestamp_s=t)
    stats = history.stats("ETH", "v3", 3, 1800)
    assert stats is not None and stats.samples == 3 and stats.center_bps == 2.0
    # and after the next block is recorded, its statistics (read before it) still have their sample
    history.zscore_then_record("ETH", "v3", 3, 4.0, timestamp_s=1800)
    history.zscore_then_record("ETH", "v3", 4, 5.0, timestamp_s=2400)
    stats = history.stats("ETH", "v3", 4, 2400)
    assert stats is not None and stats.samples == 3 and stats.center_bps == 3.0


def test_given_flat_history_when_scoring_then_z_is_undefined_not_infinite() -> None:
    history = BasisHistory(window_s=60, min_samples=2)
    for block in range(3):
        history.zscore_then_record("ETH", "v3", block, 7.0, timestamp_s=block)
    assert history.zscore_then_record("ETH", "v3", 3, 9.0, timestamp_s=3) is None


def test_given_bad_window_when_constructing_then_it_says_which_value() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        BasisHistory(window_s=3, min_samples=1)


def test_given_an_ar1_path_when_estimating_then_the_half_life_is_recovered() -> None:
    # x[t+1] = 0.5 x[t] every 60 s: half-life exactly 60 s
    values = np.array([64.0 * 0.5 ** i for i in range(7)] + [0.0] * 5)
    stats = BasisStats.from_observations(values, list(range(0, 60 * len(values), 60)))
    assert stats.center_bps == pytest.approx(1.5)
    assert estimate_half_life_s(values, np.arange(0, 60.0 * len(values), 60), 0.0) == pytest.approx(60.0, rel=1e-3)
    assert estimate_half_life_s(np.array([1.0, 2.0, 4.0, 8.0]), np.arange(4.0), 0.0) is None  # no decay
    # white noise (alternating signs): no persistence from one step to the next, a tenth of a step
    noise = np.array([(-1.0) ** i for i in range(20)])
    assert estimate_half_life_s(noise, np.arange(0, 60.0 * 20, 60), 0.0) == pytest.approx(60 * math.log(2) / math.log(1000))


def test_given_a_half_life_when_integrating_then_decayed_seconds_follow_the_exponential() -> None:
    assert decayed_seconds(None, 3600) == 3600
    assert decayed_seconds(600, 10**9) == pytest.approx(600 / math.log(2))
    assert decayed_seconds(600, 600) == pytest.approx(0.5 * 600 / math.log(2))


def test_given_no_reversion_in_the_history_then_the_half_life_is_its_span_not_forever() -> None:
    values = [0.0] * 16 + [10 * 1.2 ** i for i in range(15)]  # departures that only grow: phi >= 1
    assert estimate_half_life_s(np.array(values), np.arange(0, 60.0 * 31, 60), float(np.median(values))) is None
    stats = BasisStats.from_observations(values, list(range(0, 60 * 31, 60)))
    assert stats.half_life_s == pytest.approx(60 * 30)
    assert BasisStats.from_observations(values).half_life_s is None  # no timestamps: nothing to say


def test_an_index_without_a_twap_yet_reads_no_funding_instead_of_failing_the_tick() -> None:
    state = perp(3030, 0, 3030, vamm=3060)  # an oracle that has no TWAP yet (index TWAP 0)
    assert state.funding_rate_per_s == 0.0
    s = compute_signal(10, "ETH", "uniswap_v3", state, 3000.0, BasisHistory(60, 2))
    assert s.funding_apr == 0.0 and s.basis_bps == pytest.approx(200.0, rel=1e-9)
