"""pairs_spread on hand-made series and snapshots: the rolling regression (beta, mean, scale, z,
correlation, the window), the thesis-broken and reversion rules, the beta-neutral integer sizes,
the stress cap, the strategy-base conformance, and the pair books (journal split, optimum)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from keeper.journal import Journal
from keeper.pairs_journal import PairJournal, pair_split, pairs_pnl
from keeper.pairs_types import PairIntent, PairPosition, SpreadFit
from keeper.pnl_split import PnlSplit
from keeper.simulate.optimum import OptimumResult
from keeper.simulate.pair_trips import pair_round_trips, with_pair_trips
from keeper.stress import StressParams
from keeper.types import (
    ONE_X18,
    Direction,
    Intent,
    PerpAccountState,
    PnlEstimate,
    Position,
    perp_price_from_sqrt_x96,
)
from keeper.venues.executor import PairFills
from strategies import PairsSpread, load_strategy
from strategies.base import Skip, StrategyContext
from strategies.pairs_math import excursion_fit, fit_spread, still_widening
from strategies.pairs_spread import PairContext, PairsSpreadParams

from .test_pnl_model import costs, limits, market_view, perp_state, snapshot_of

NOW = 1_700_000_000  # snapshot_of's block timestamp
STRESS = StressParams(index_move=0.05, funding_apr=1.0, hold_s=3600)


# ------------------------------------------------------------------------------ the regression
def series(n: int = 40, beta: float = 1.5, alpha: float = 0.3, noise: float = 0.001, last_shift: float = 0.0
           ) -> tuple[list[float], list[float], list[float]]:
    """log B a zig-zag trend; log A = alpha + beta log B + a deterministic +-noise residual; the
    last point of A shifted by last_shift. One sample a minute ending at NOW."""
    times = [float(NOW - 60 * (n - 1 - k)) for k in range(n)]
    log_b = [math.log(60_000) + 0.002 * (k % 10 if (k // 10) % 2 == 0 else 10 - k % 10) for k in range(n)]
    log_a = [alpha + beta * b + (noise if k % 2 else -noise) for k, b in enumerate(log_b)]
    log_a[-1] += last_shift
    return times, log_a, log_b


def test_given_a_known_linear_relation_when_fitting_then_beta_mean_scale_and_correlation_are_recovered() -> None:
    times, log_a, log_b = series(beta=1.5, alpha=0.3, noise=0.0001)
    fit = fit_spread(times, log_a, log_b, NOW, 3600, 10)
    assert fit is not None and fit.samples == 40
    assert fit.beta == pytest.approx(1.5, abs=0.02)
    residual = np.array(log_a) - fit.beta * np.array(log_b)
    assert fit.mean == pytest.approx(residual.mean(), abs=1e-12)  # the spread's mean over the window
    assert fit.scale == pytest.approx(residual.std(ddof=1), rel=1e-9)
    assert fit.correlation > 0.99
    assert fit.z == pytest.approx((fit.spread - fit.mean) / fit.scale, rel=1e-12)


def test_given_the_last_point_shifted_when_fitting_then_z_has_its_sign_and_size() -> None:
    times, log_a, log_b = series(noise=0.0005, last_shift=+0.01)
    rich = fit_spread(times, log_a, log_b, NOW, 3600, 10)
    times, log_a, log_b = series(noise=0.0005, last_shift=-0.01)
    cheap = fit_spread(times, log_a, log_b, NOW, 3600, 10)
    assert rich is not None and cheap is not None
    assert rich.z > 3 and cheap.z < -3


def test_given_a_window_when_fitting_then_older_samples_are_left_out_and_too_few_give_none() -> None:
    times, log_a, log_b = series(n=40)
    fit = fit_spread(times, log_a, log_b, NOW, 60 * 19.5, 10)  # the last 20 samples
    assert fit is not None and fit.samples == 20
    assert fit_spread(times, log_a, log_b, NOW, 60 * 19.5, 21) is None
    flat = [math.log(60_000)] * 40
    assert fit_spread(times, log_a, flat, NOW, 3600, 10) is None  # log B does not move: no beta


# ------------------------------------------------------------------------------ rules
def position(side: str = "short_spread", beta: float = 1.0, mean: float = 0.0, scale: float = 0.001) -> PairPosition:
    return PairPosition(1, "ETH", "BTC", side, -3 * ONE_X18, 15 * ONE_X18 // 100, int(beta * ONE_X18), 990, NOW - 600,  # type: ignore[arg-type]
                        beta, 2.5, mean + 2.5 * scale, 0, mean, scale)


def fit_of(z: float = 1.0, beta: float = 1.0, corr: float = 0.95) -> SpreadFit:
    return SpreadFit(beta, 0.0, 0.001, corr, 30, z * 0.001, z)


@pytest.mark.parametrize(("fit", "expected"), [
    (fit_of(corr=0.3), "correlation 0.300 < 0.5"),
    (fit_of(beta=1.6), "beta moved 60%"),
    (fit_of(beta=0.45), "beta moved 55%"),
    (fit_of(z=6.5), "past its mean against the position"),
    (fit_of(z=-6.5), None),  # far on the position's favourable side: not a stop
    (fit_of(), None),
])
def test_given_rolling_statistics_when_checking_the_thesis_then_breaks_are_named(fit: SpreadFit, expected: str | None) -> None:
    broken = PairsSpread().thesis_broken(fit, position("short_spread"))
    assert broken is None if expected is None else expected in (broken or "")


def test_given_the_position_model_when_the_spread_returns_then_z_is_measured_at_entry_beta_mean_and_scale() -> None:
    p = position(beta=1.2, mean=0.05, scale=0.002)
    log_b = math.log(60_000)
    assert p.z_at_entry_model(0.05 + 1.2 * log_b + 0.004, log_b) == pytest.approx(2.0)
    assert p.z_at_entry_model(0.05 + 1.2 * log_b, log_b) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------------------ decisions on snapshots
ETH_USD, BTC_USD = 3000.0, 60_000.0


def views(eth_usd: float = ETH_USD, btc_usd: float = BTC_USD) -> tuple:  # type: ignore[type-arg]
    eth = market_view("ETH", 18, eth_usd, perp=perp_state(eth_usd, eth_usd, vamm_usd=eth_usd))
    btc = market_view("BTC", 8, btc_usd, perp=perp_state(btc_usd, btc_usd, vamm_usd=btc_usd, depth_liquidity=2 * 10**22))
    return eth, btc


def account(value_usd: float = 200_000.0) -> PerpAccountState:
    return PerpAccountState("0x" + "33" * 20, int(value_usd * ONE_X18), int(value_usd * 10**6), 0, 0, {})


def pair_context(shift: float, *, value_usd: float = 200_000.0, positions: dict | None = None,  # type: ignore[type-arg]
                 held: PairPosition | None = None, eth_usd: float = ETH_USD, noise: float = 0.0005,
                 common: bool = True, max_leverage: float = 3.0, hold: int = 2) -> PairContext:
    """History: log ETH = log 3000 + (log BTC - log 60000) + noise, the snapshot's prices last; the
    snapshot's ETH is `shift` (log) away from that relation, and so were the `hold` - 1 samples
    before it (the spread ran out and stopped widening: what enter_on_turn waits for)."""
    eth, btc = views(eth_usd * math.exp(shift), BTC_USD)
    snap = snapshot_of(eth, btc, account=account(value_usd))
    ctx = StrategyContext(snapshot=snap, signals={}, positions=positions or {}, costs=costs(),
                           limits=limits(stress=STRESS, max_leverage=max_leverage))
    times, _, log_b = series(n=40, noise=0.0)
    log_b = [b - log_b[-1] + math.log(BTC_USD) for b in log_b]
    if common:
        log_a = [math.log(eth_usd) + (b - math.log(BTC_USD)) + (noise if k % 2 else -noise) for k, b in enumerate(log_b)]
    else:  # no relation: A zig-zags on its own
        log_a = [math.log(eth_usd) + (noise * 4 if k % 3 else -noise * 4) for k in range(len(log_b))]
    for k in range(2, hold + 1):  # the run's earlier samples, on the relation + shift (no noise)
        log_a[-k] = math.log(eth_usd) + (log_b[-k] - math.log(BTC_USD)) + shift
    log_a[-1] = math.log(perp_price_from_sqrt_x96(eth.perp.pool.sqrt_price_x96) / ONE_X18)
    log_b[-1] = math.log(perp_price_from_sqrt_x96(btc.perp.pool.sqrt_price_x96) / ONE_X18)
    return PairContext(ctx, times, log_a, log_b, held)


def strategy(**params: object) -> PairsSpread:
    return PairsSpread.from_params({"min_samples": 10, "notional_usd": 20_000.0, **params})


def test_given_eth_rich_against_btc_when_deciding_then_it_shorts_the_spread_beta_neutral_in_ints() -> None:
    pctx = pair_context(+0.02)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent), decision
    assert decision.kind == "open" and decision.side == "short_spread"
    assert decision.base_change_x18_a < 0 < decision.base_change_x18_b  # short ETH, long BTC
    assert isinstance(decision.base_change_x18_a, int) and isinstance(decision.base_change_x18_b, int)
    eth, btc = pctx.ctx.snapshot.markets["ETH"].perp, pctx.ctx.snapshot.markets["BTC"].perp
    price_a, price_b = perp_price_from_sqrt_x96(eth.pool.sqrt_price_x96), perp_price_from_sqrt_x96(btc.pool.sqrt_price_x96)
    notional_a = -decision.base_change_x18_a * price_a
    notional_b = decision.base_change_x18_b * price_b
    # B's notional = beta x A's, to the rounding of one base wei of B
    assert abs(notional_b * ONE_X18 - notional_a * decision.hedge_ratio_x18) <= price_b * ONE_X18 + notional_a
    assert decision.expected.net_usd > 0 and "expected net" in decision.reason
    assert decision.fit is not None and decision.fit.z > 2


def test_given_eth_cheap_when_deciding_then_it_goes_long_the_spread() -> None:
    decision = strategy().decide_pair(pair_context(-0.02))
    assert isinstance(decision, PairIntent) and decision.side == "long_spread"
    assert decision.base_change_x18_a > 0 > decision.base_change_x18_b


def test_given_z_inside_the_band_or_no_correlation_when_deciding_then_it_skips_with_the_numbers() -> None:
    inside = strategy().decide_pair(pair_context(0.0))
    assert isinstance(inside, Skip) and "|z| < entry" in inside.reason
    unrelated = strategy().decide_pair(pair_context(+0.02, common=False))
    assert isinstance(unrelated, Skip) and "no thesis" in unrelated.reason and "corr" in unrelated.reason


def test_given_a_run_when_finding_the_relation_before_it_then_the_run_is_left_out_of_the_fit() -> None:
    # Given a clean relation (beta 1.5, alpha 0.3), then A running away over the last three samples
    times, log_a, log_b = series(n=40, noise=0.0005)
    for k, jump in zip((-3, -2, -1), (0.01, 0.02, 0.03)):
        log_a[k] += jump
    found = excursion_fit(times, log_a, log_b, 3600.0, 10, 2.0)
    assert found is not None
    relation, start = found
    # Then the relation is the fit through the last sample before the run, and z is the latest's on it
    assert start == 37 and relation.samples == 37
    before = fit_spread(times[:37], log_a[:37], log_b[:37], times[36], 3600.0, 10)
    assert before is not None and (relation.beta, relation.mean, relation.scale) == (before.beta, before.mean, before.scale)
    assert relation.beta == pytest.approx(1.5, rel=1e-2) and relation.correlation > 0.99
    assert relation.spread == pytest.approx(log_a[-1] - relation.beta * log_b[-1])
    assert relation.z == pytest.approx((relation.spread - relation.mean) / relation.scale)
    rolling = fit_spread(times, log_a, log_b, times[-1], 3600.0, 10)
    assert rolling is not None and relation.z > 3 * rolling.z  # the rolling window half absorbed the run
    # And the spread is still widening on that relation (+0.01 a sample, 20 scales); flat after a pause
    widening = still_widening(relation, log_a, log_b)
    assert widening is not None and widening > 10  # 0.01 of spread against a scale near the 0.0005 noise
    log_a[-1] = log_a[-2] + relation.beta * (log_b[-1] - log_b[-2])
    assert still_widening(relation, log_a, log_b) is None
    # No run: nothing to find
    assert excursion_fit(*series(n=40), 3600.0, 10, 2.0) is None


def test_given_a_spread_that_just_jumped_when_entering_on_the_turn_then_it_waits_and_the_old_rule_would_not() -> None:
    jumped = pair_context(+0.02, hold=1)
    waiting = strategy().decide_pair(jumped)
    assert isinstance(waiting, Skip) and "spread still widening" in waiting.reason and "before the run" in waiting.reason
    at_once = strategy(enter_on_turn=False).decide_pair(jumped)
    assert isinstance(at_once, PairIntent) and at_once.side == "short_spread"


def test_given_the_spread_stopped_widening_when_entering_on_the_turn_then_the_entry_model_is_the_relation_before() -> None:
    pctx = pair_context(+0.02, hold=3)
    decision = strategy().decide_pair(pctx)
    assert isinstance(decision, PairIntent) and decision.side == "short_spread", decision
    rolling = strategy().fit(pctx)
    assert rolling is not None and decision.fit is not None
    # the position's model (hedge ratio, mean, scale) is the relation before the run (log ETH - log
    # BTC = log 3000 - log 60000, beta 1): the fit through the last sample before the three run samples
    t, a, b = pctx.times_s, pctx.log_a, pctx.log_b
    before = fit_spread(t[:-3], a[:-3], b[:-3], t[-4], 3600.0, 10)
    assert before is not None and (decision.fit.beta, decision.fit.mean) == (before.beta, before.mean)
    assert decision.fit.beta == pytest.approx(1.0, abs=1e-2) and decision.fit.samples < rolling.samples
    assert decision.fit.z > rolling.z and decision.hedge_ratio_x18 == int(decision.fit.beta * ONE_X18)
    assert "before the run" in decision.reason


def test_given_a_small_shift_when_costs_exceed_the_convergence_then_it_skips_with_the_terms() -> None:
    decision = strategy(entry_z=1.0).decide_pair(pair_context(+0.0012, noise=0.0004))
    assert isinstance(decision, Skip) and "<= 0" in decision.reason and "fees" in decision.reason


def test_given_a_basis_position_in_a_leg_when_deciding_then_one_position_per_market() -> None:
    held = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", -ONE_X18, ONE_X18, 900, NOW - 60, 10.0, 0)
    decision = strategy().decide_pair(pair_context(+0.02, positions={"ETH": held}))
    assert isinstance(decision, Skip) and "one position per market" in decision.reason


# ------------------------------------------------------------------------------ conformance to the strategy base
def test_given_the_basis_pipeline_when_deciding_then_a_skip_per_market_and_no_intent() -> None:
    pctx = pair_context(+0.02)
    out = load_strategy("pairs_spread").decide(pctx.ctx)
    assert [d.market for d in out] == sorted(pctx.ctx.snapshot.markets)
    assert all(isinstance(d, Skip) and d.strategy == "pairs_spread" for d in out)
    assert not any(isinstance(d, Intent) for d in out)


def test_given_params_when_loading_then_they_are_checked_by_name() -> None:
    assert load_strategy("pairs_spread", {"entry_z": 2.5}).params == PairsSpreadParams(entry_z=2.5)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown parameter.*entry_zz"):
        load_strategy("pairs_spread", {"entry_zz": 2.0})
    with pytest.raises(ValueError, match="parameter exit_z must be"):
        load_strategy("pairs_spread", {"entry_z": 1.0, "exit_z": 1.5})
    with pytest.raises(ValueError, match="parameter market_b"):
        load_strategy("pairs_spread", {"market_b": "ETH"})
    with pytest.raises(ValueError, match="parameter min_samples must be an int"):
        load_strategy("pairs_spread", {"min_samples": 2.5})


def test_given_a_decision_then_valid_for_blocks_sets_its_expiry() -> None:
    decision = strategy(valid_for_blocks=5).decide_pair(pair_context(+0.02))
    assert isinstance(decision, PairIntent) and decision.valid_until_block == decision.created_block + 5


# ------------------------------------------------------------------------------ the books
OPEN_FILLS = PairFills(-3 * ONE_X18, 9_000 * ONE_X18, -3 * ONE_X18, ONE_X18 // 20, -3_010 * ONE_X18, ONE_X18 // 20, 7)
CLOSE_FILLS = PairFills(3 * ONE_X18, -8_900 * ONE_X18, 0, -ONE_X18 // 20, 2_995 * ONE_X18, 0, 0)


def test_given_an_open_and_a_close_when_booking_then_the_split_is_quote_less_funding_and_gas(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        book = PairJournal(journal)
        intent = PairIntent("pairs_spread", "open", "ETH", "BTC", "short_spread", -3 * ONE_X18, ONE_X18 // 20, ONE_X18,
                            "test", PnlEstimate(50, 0, 0, 0, 0, 0), 100, 102, SpreadFit(1.0, -3.0, 0.001, 0.9, 30, -2.997, 3.0))
        trade = book.record_trade(intent, block=100, timestamp_s=NOW, predicted=OPEN_FILLS, bounds={"x": 1}, pair_id=None)
        pair_id = book.open_pair(intent, trade, OPEN_FILLS, block=100, timestamp_s=NOW, gas_x18=10**16, perp_fee_x18=12 * ONE_X18,
                                 settled_funding_x18=0)
        held = book.open_position()
        assert held is not None and held.pair_id == pair_id and held.base_x18_a == -3 * ONE_X18 and held.entry_mean == -3.0
        book.book_close(pair_id, CLOSE_FILLS, block=110, reason="reverted", gas_x18=10**16, perp_fee_x18=12 * ONE_X18,
                        settled_funding_x18=2 * ONE_X18)
        assert book.open_position() is None
        (row,) = book.rows()
        split = pair_split(row)
        quote = 9_000 - 3_010 - 8_900 + 2_995
        assert split == PnlSplit(-2 * ONE_X18, quote * ONE_X18 + 24 * ONE_X18, 24 * ONE_X18, 2 * 10**16,
                                 quote * ONE_X18 - 2 * ONE_X18 - 2 * 10**16)
        assert pairs_pnl(journal) == split
        rows, trips = pair_round_trips(journal, [95, 100, 105, 110, 115])
        assert rows[0]["pair"] and rows[0]["closed"] and rows[0]["entry_index"] == 0 and rows[0]["exit_index"] == 2
        assert trips and trips[0].split == split


def test_given_pair_trips_when_adding_to_the_optimum_then_it_dominates_and_says_it_relaxed() -> None:
    base = OptimumResult((), {"ETH": 0, "BTC": 0}, 0, 0, False)
    rows_trip = PnlSplit(0, 5 * ONE_X18, ONE_X18, 0, 4 * ONE_X18)
    from keeper.simulate.optimum import OptimalTrip
    trip = OptimalTrip("ETH/BTC", None, None, 1, 3, 10, 30, -ONE_X18, "keeper_pair", rows_trip)
    result = with_pair_trips(base, [trip])
    assert result.total.total_x18 == 4 * ONE_X18 and result.account_caps_relaxed
    assert result.by_market_x18["ETH/BTC"] == 4 * ONE_X18 and any("pair" in n for n in result.notes)
    assert with_pair_trips(base, []) is base


def test_given_the_example_config_then_pairs_spread_is_off_and_its_params_are_its_defaults() -> None:
    from keeper.config import load_config
    config = load_config(Path(__file__).resolve().parents[2] / "keeper.example.toml", environ={})
    assert "pairs_spread" not in config.strategies.enabled
    assert load_strategy("pairs_spread", config.strategies.params["pairs_spread"]).params == PairsSpreadParams()  # type: ignore[attr-defined]


def test_given_eth_running_ahead_when_optimising_pairs_then_the_grid_finds_the_long_spread_and_dominates_known_trips() -> None:
    from keeper.simulate.optimum import OptimalTrip
    from keeper.simulate.optimum import GRID_SIZES
    from keeper.simulate.pair_optimum import optimise_pairs
    from keeper.simulate.paper import AccountLimits, PathPoint

    def snap(k: int, eth_usd: float) -> object:
        eth, btc = views(eth_usd, BTC_USD)
        return snapshot_of(eth, btc, block=1000 + k)

    snapshots = [snap(0, 3000.0), snap(1, 3000.0), snap(2, 3090.0), snap(3, 3090.0)]  # ETH +3% against BTC

    def path(price: float) -> list[PathPoint]:
        return [PathPoint(1000 + k, NOW + 60 * k, {}, 0, int(price * ONE_X18), 10**8, 3000 * ONE_X18, perp_mid_usd=price)
                for k in range(4)]

    limits_ = AccountLimits(max_notional_usd=20_000.0, max_total_notional_usd=40_000.0)
    known = OptimalTrip("ETH/BTC", None, None, 0, 1, 1000, 1001, ONE_X18, "keeper_pair", PnlSplit(0, 5, 0, 0, 5))
    trips, priced = optimise_pairs(snapshots, path(3000.0), path(60_000.0), "ETH", "BTC", limits_, [ONE_X18], [], [known])  # type: ignore[arg-type]
    assert priced == 2 * GRID_SIZES  # 2 sides x the size grid
    grid = [t for t in trips if t.source.startswith("pair_grid")]
    assert grid and grid[0].source.startswith("pair_grid long_spread") and grid[0].split.total_x18 > 0
    assert grid[0].entry_index <= 1 and grid[0].exit_index >= 2
    total = sum(t.split.total_x18 for t in trips)
    assert total >= known.split.total_x18 and total > 300 * ONE_X18  # ~3% of up to 20,000 USD less fees


def test_given_the_pair_scenarios_then_they_enable_pairs_spread_and_a_bad_param_is_refused_at_load(tmp_path: Path) -> None:
    from keeper.errors import ConfigError
    from keeper.simulate.scenario import load_scenario
    for name in ("pair_spread_revert", "pair_correlation_break"):
        scenario = load_scenario(name)
        assert scenario.strategies is not None and "pairs_spread" in scenario.strategies["enabled"]
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[strategies]\nenabled = ["pairs_spread"]\n[strategies.params.pairs_spread]\nentry_zz = 2.0\n')
    with pytest.raises(ConfigError, match="entry_zz"):
        load_scenario(str(bad))
