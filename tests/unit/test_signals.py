
import pytest

from keeper.signals import BasisHistory, compute_signal
from keeper.types import ONE_X18, PerpMarketState, SECONDS_PER_YEAR
from keeper.venues.uniswap_v3_math import V3PoolState


def perp(mark: float, index_twap: float, market_twap: float, max_funding_ppm: int = 100_000) -> PerpMarketState:
    pool = V3PoolState(sqrt_price_x96=2**96, tick=0, liquidity=1, fee_pips=3000, tick_spacing=60,
                       liquidity_net_by_tick={}, tick_window=(-60, 60))
    return PerpMarketState(base_token="0x" + "11" * 20, pool=pool, mark_price_x18=int(mark * ONE_X18),
                           index_price_x18=int(index_twap * ONE_X18), index_twap_x18=int(index_twap * ONE_X18),
                           market_twap_x18=int(market_twap * ONE_X18), exchange_fee_ratio_ppm=1000,
                           uniswap_fee_ratio_ppm=3000, insurance_fund_fee_ratio_ppm=100_000,
                           max_funding_rate_ppm=max_funding_ppm, twap_interval_s=900)


def test_given_market_above_index_when_computing_then_longs_pay_and_short_perp_carry_is_positive() -> None:
    s = compute_signal(10, "ETH", "uniswap_v3", perp(3030, 3000, 3030), 3000.0, BasisHistory(5, 2))
    assert s.basis_bps == pytest.approx(100.0)
    assert s.funding_rate_per_hour == pytest.approx(0.01 / 24)
    assert s.funding_apr == pytest.approx(0.01 / 86400 * SECONDS_PER_YEAR)
    assert s.carry_apr_short_perp == s.funding_apr and s.carry_apr_long_perp == -s.funding_apr
    assert s.basis_zscore is None  # no history yet


def test_given_a_premium_beyond_the_cap_when_computing_then_funding_is_clamped_like_perp() -> None:
    state = perp(4000, 3000, 4000, max_funding_ppm=100_000)  # +33% premium, capped at 10%
    assert state.funding_premium_x18 == 300 * ONE_X18
    assert perp(2000, 3000, 2000).funding_premium_x18 == -300 * ONE_X18


def test_given_history_when_scoring_then_z_uses_only_earlier_blocks() -> None:
    history = BasisHistory(window=10, min_samples=3)
    for block, value in enumerate([1.0, 2.0, 3.0]):
        history.zscore_then_record("ETH", "v3", block, value)
    z = history.zscore_then_record("ETH", "v3", 3, 5.0)
    assert z == pytest.approx((5.0 - 2.0) / 1.0)
    # the same block again does not count twice, and does not see itself
    assert history.zscore_then_record("ETH", "v3", 3, 5.0) == pytest.approx(z)


def test_given_a_full_window_when_scoring_then_old_values_fall_out() -> None:
    history = BasisHistory(window=3, min_samples=3)
    for block, value in enumerate([100.0, 1.0, 2.0, 3.0]):
        history.zscore_then_record("ETH", "v3", block, value)
    z = history.zscore_then_record("ETH", "v3", 4, 2.0)
    assert z == pytest.approx(0.0)  # 100.0 has left the window: mean of 1,2,3 is 2


def test_given_flat_history_when_scoring_then_z_is_undefined_not_infinite() -> None:
    history = BasisHistory(window=5, min_samples=2)
    for block in range(3):
        history.zscore_then_record("ETH", "v3", block, 7.0)
    assert history.zscore_then_record("ETH", "v3", 3, 9.0) is None


def test_given_bad_window_when_constructing_then_it_says_which_value() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        BasisHistory(window=3, min_samples=5)
