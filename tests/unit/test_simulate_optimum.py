"""The hindsight optimum's dynamic programme on hand-made paths whose optimum is known by hand
(the fake quoter of test_simulate_paper: net quote = size x spot x spread captured, $3 per leg)."""

from __future__ import annotations

import functools
import itertools

import pytest

from keeper.pnl_split import compute_pnl_split
from keeper.simulate.optimum import KnownTrip, market_sizes_x18, optimise_market, run_optimum, size_grid_x18
from keeper.simulate.paper import (
    AccountLimits,
    PathPoint,
    compute_holding_funding_x18,
    compute_paper_gas_x18,
)
from keeper.types import Direction

from .test_simulate_paper import FEE_X18, SIZE, SPOT_USD, FakeQuoter, points

E18 = 10**18
V3 = ("uniswap_v3",)


def priced_points(spreads: list[float], premium_x18: int = 0, dt_s: int = 60) -> list[PathPoint]:
    return [PathPoint(block=100 + k, timestamp_s=1_000 + k * dt_s, spread_bps={"uniswap_v3": s},
                      funding_premium_x18=premium_x18, index_price_x18=SPOT_USD * E18, gas_price_wei=0,
                      eth_price_x18=3_000 * E18, spot_mid_usd={"uniswap_v3": float(SPOT_USD)},
                      perp_mid_usd=SPOT_USD * (1 + s / 1e4)) for k, s in enumerate(spreads)]


def captured_x18(size_x18: int, bps: int) -> int:
    """What a round trip of size_x18 captures on a `bps` move, after the two $3 legs."""
    return size_x18 * SPOT_USD * bps * 100 // 1_000_000 - 2 * FEE_X18


def test_several_round_trips_beat_the_best_single_one() -> None:
    # Given a spread that swings 0 -> 150 -> 0 -> 150 -> 0 bps, one size ($10,000), no gas, no funding
    spreads = [0, 150, 0, 150, 0]
    path, quoter = priced_points(spreads), FakeQuoter(spreads)
    # when the optimum is found
    trips, candidates, _ = optimise_market("ETH", path, quoter, sizes_x18=[SIZE], venues=V3)
    # then it rides every swing: long perp up, short perp down, four times, each worth 1.5% - $6
    assert [(t.direction, t.entry_index, t.exit_index) for t in trips] == [
        (Direction.LONG_PERP, 0, 1), (Direction.SHORT_PERP, 1, 2), (Direction.LONG_PERP, 2, 3), (Direction.SHORT_PERP, 3, 4)]
    assert sum(t.split.total_x18 for t in trips) == 4 * captured_x18(SIZE, 150) == 4 * 144 * E18
    assert candidates == 2
    # while the best single round trip makes a quarter of it (any 150 bps move: $150 - $6)
    assert max(brute_force(spreads, path, most_trips=1)) == 144 * E18


def test_a_round_trip_that_does_not_pay_its_fees_is_left_out() -> None:
    # Given a 5 bps wiggle: $5 captured against $6 of fees
    spreads = [0, 5, 0]
    trips, _, _ = optimise_market("ETH", priced_points(spreads), FakeQuoter(spreads), sizes_x18=[SIZE], venues=V3)
    assert trips == []


def test_the_spot_inventory_limit_binds_the_long_perp_size() -> None:
    # Given the perp 1.5% cheap, then converging: only a long perp (which sells spot) pays
    spreads = [-150, -150, 0]
    path, quoter = priced_points(spreads), FakeQuoter(spreads)
    free = AccountLimits(max_notional_usd=20_000, max_total_notional_usd=20_000, spot_decimals={"ETH": 6})
    bound = AccountLimits(max_notional_usd=20_000, max_total_notional_usd=20_000, spot_decimals={"ETH": 6},
                          spot_inventory_raw={"ETH": 5 * 10**6})  # 5 ETH to sell
    # when the optimum is found with $20,000 of notional allowed, with and without the inventory
    result_free = run_optimum({"ETH": path}, quoter, free)
    result_bound = run_optimum({"ETH": path}, quoter, bound)
    # then without it: one long perp at the notional cap (20 ETH at $1,000 ... cheap perp mid $985)
    (trip,) = result_free.trips
    top = 20_000 * E18 * E18 // int(SPOT_USD * (1 - 0.015) * E18)
    assert trip.direction is Direction.LONG_PERP and trip.perp_base_x18 == top // 10**12 * 10**12
    assert trip.split.total_x18 == captured_x18(trip.perp_base_x18, 150)
    # and with it: 5 ETH, the inventory, is the best it may do
    (trip,) = result_bound.trips
    assert trip.perp_base_x18 == 5 * E18
    assert result_bound.total.total_x18 == captured_x18(5 * E18, 150) == 69 * E18


def test_the_keepers_own_round_trip_is_a_candidate_at_its_realised_pnl() -> None:
    # Given a flat path (no grid round trip pays) and a keeper round trip that realised $50
    spreads = [0, 0, 0, 0]
    path, quoter = priced_points(spreads), FakeQuoter(spreads)
    realised = compute_pnl_split([50 * E18], [], 0, [])
    known = [KnownTrip("ETH", 1, 2, realised, perp_base_x18=-SIZE, direction=Direction.SHORT_PERP,
                       spot_venue="uniswap_v3")]
    result = run_optimum({"ETH": path}, quoter, known=known)
    # then the optimum takes it, and is >= the keeper
    (trip,) = result.trips
    assert (trip.source, trip.entry_index, trip.exit_index) == ("keeper", 1, 2)
    assert result.total.total_x18 == 50 * E18


def test_funding_over_the_holding_interval_counts() -> None:
    # Given no spread at all but longs paying shorts $1 a day per ETH (premium $1), half-day steps
    spreads = [0, 0, 0]
    path = priced_points(spreads, premium_x18=E18, dt_s=43_200)
    trips, _, _ = optimise_market("ETH", path, FakeQuoter(spreads), sizes_x18=[1_000 * E18], venues=V3)
    # then a short perp held the whole day receives $1,000 for $6 of fees
    (trip,) = trips
    assert (trip.direction, trip.entry_index, trip.exit_index) == (Direction.SHORT_PERP, 0, 2)
    assert trip.split.funding_x18 == 1_000 * E18 and trip.split.total_x18 == 994 * E18


def test_the_size_grid_is_geometric_and_holds_the_caps_and_extra_sizes() -> None:
    assert size_grid_x18(16 * E18, [3 * E18], ratio=2, count=4) == [16 * E18, 8 * E18, 4 * E18, 3 * E18, 2 * E18]
    limits = AccountLimits(max_notional_usd=10_000, max_total_notional_usd=10_000, spot_decimals={"ETH": 6},
                           spot_inventory_raw={"ETH": 3 * 10**6})
    sizes = market_sizes_x18("ETH", priced_points([0, 0]), limits, [7 * E18])
    assert sizes[0] == 10 * E18 and 3 * E18 in sizes and 7 * E18 in sizes


# ------------------------------------------------------------------------------ against brute force
def brute_force(spreads: list[float], path: list[PathPoint], most_trips: int = 99) -> list[int]:
    """Every schedule's PnL: each set of non-overlapping round trips (a trip may open where the
    previous one closed), up to most_trips of them, enumerated exhaustively."""
    quoter = FakeQuoter(spreads)
    n = len(spreads)

    def trip(direction: Direction, i: int, j: int) -> int:
        opened = quoter.open(i, "ETH", direction, "uniswap_v3", SIZE)
        assert not isinstance(opened, str)
        closed = quoter.close(j, "ETH", direction, "uniswap_v3", opened.perp_base_x18, opened.spot_raw)
        assert not isinstance(closed, str)
        funding = compute_holding_funding_x18(path, i, j, opened.perp_base_x18)
        gas = compute_paper_gas_x18(path[i], "open") + compute_paper_gas_x18(path[j], "close")
        return opened.net_quote_x18 + closed.net_quote_x18 - funding - gas

    @functools.cache
    def schedules(start: int, left: int) -> tuple[int, ...]:
        found = [0]
        if left:
            for direction, (i, j) in itertools.product(Direction, itertools.combinations(range(start, n), 2)):
                found += [trip(direction, i, j) + rest for rest in schedules(j, left - 1)]
        return tuple(found)

    return list(schedules(0, most_trips))


@pytest.mark.parametrize("spreads", [
    [0, 50, 150, 120, 60, 0, -20, -5],
    [10, -80, -30, 40, 90, -60, 0],
    [5, 5, 6, 5],
    [0, 150, -150, 150, -150, 0],
])
def test_the_programme_finds_the_brute_force_optimum(spreads: list[float]) -> None:
    # Given paths with funding ($0.10 premium, hourly steps) and gas
    path = points(spreads, premium_x18=E18 // 10, dt_s=3_600, gas_price_wei=10**8)
    trips, _, _ = optimise_market("ETH", path, FakeQuoter(spreads), sizes_x18=[SIZE], venues=V3)
    # then its schedule is worth the best of every schedule there is, and is one of them
    assert sum(t.split.total_x18 for t in trips) == max(brute_force(spreads, path))
    assert all(a.exit_index <= b.entry_index for a, b in zip(trips, trips[1:]))
    assert all(t.entry_index < t.exit_index and t.split.total_x18 > 0 for t in trips)


def test_a_bot_the_optimum_does_not_dominate_is_named_with_its_trades() -> None:
    from keeper.simulate.baseline import PaperResult, PaperTrade
    from keeper.simulate.compare import dominance

    def split(usd: int):  # type: ignore[no-untyped-def]
        return compute_pnl_split([usd * E18], [], 0, [])

    bot = PaperResult((PaperTrade("ETH", Direction.SHORT_PERP, "uniswap_v3", 1, 4, 101, 104, -SIZE, 120.0, -15.0,
                                  "spread crossed the close threshold", split(70)),), (0,), {})
    keeper_trips = [{"market": "BTC", "direction": "long_perp", "entry_block": 102, "exit_block": 103,
                     "realised_net_usd": 80.0}]
    # Given an optimum of $60, a bot that made $70 and a keeper that made $80
    lines = dominance(split(60), split(80), keeper_trips, {"threshold bot": bot})
    # then both are flagged, each naming the trades
    assert len(lines) == 2
    assert "keeper $80.00" in lines[0] and "BTC long_perp blocks 102-103 $80.00" in lines[0]
    assert "threshold bot $70.00" in lines[1] and "ETH short_perp uniswap_v3 blocks 101-104 $70.00" in lines[1]
    # and an optimum of $80 dominates both
    assert dominance(split(80), split(80), keeper_trips, {"threshold bot": bot}) == []
