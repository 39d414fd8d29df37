"""Baseline arithmetic on hand-made paths: a fake quoter whose fills are simple
(net quote = size x spread captured, fee per leg), so every expected number is written by hand."""

from __future__ import annotations

from keeper.pnl_split import TradeFees, compute_gas_usd_x18
from keeper.simulate.baseline import ThresholdPolicy, run_threshold_baseline
from keeper.simulate.paper import (
    PaperFill,
    PathPoint,
    compute_funding_paid_x18,
    compute_holding_funding_x18,
    compute_paper_gas_x18,
    directed_spread_bps,
    fixed_size_x18,
)
from keeper.types import Direction
from keeper.venues.gas import typical_gas_units

E18 = 10**18
SPOT_USD = 1_000  # spot at $1,000; the perp at spot x (1 + spread)
FEE_X18 = 3 * E18  # $3 per leg


class FakeQuoter:
    """Opens and closes at the point's spread, exactly: a short perp opened at spread s and closed
    at spread t captures size x spot x (s - t), minus FEE_X18 per leg. Points listed in
    `unquotable` cannot be quoted."""

    def __init__(self, spreads_bps: list[float], unquotable: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.spreads = spreads_bps
        self.unquotable = unquotable
        self.calls: list[tuple[str, int]] = []

    def _gross(self, k: int, base_x18: int) -> int:
        # selling base at the perp and buying it at spot: base x spot x spread (USD x18)
        return base_x18 * SPOT_USD * round(self.spreads[k] * 100) // 1_000_000

    def open(self, k: int, market: str, direction: Direction, venue: str, size_x18: int) -> PaperFill | str:
        self.calls.append(("open", k))
        if k in self.unquotable:
            return "pool cannot fill"
        sign = -direction.perp_sign  # short perp earns the spread
        return PaperFill(direction.perp_sign * size_x18, -direction.perp_sign * size_x18 // 10**12,
                         sign * self._gross(k, size_x18) - FEE_X18, TradeFees(FEE_X18, 0))

    def close(self, k: int, market: str, direction: Direction, venue: str, perp_base_x18: int,
              spot_raw: int) -> PaperFill | str:
        self.calls.append(("close", k))
        if k in self.unquotable:
            return "pool cannot fill"
        sign = direction.perp_sign  # closing a short buys the perp back at the spread
        return PaperFill(-perp_base_x18, -spot_raw, sign * self._gross(k, abs(perp_base_x18)) - FEE_X18,
                         TradeFees(FEE_X18, 0))


def points(spreads: list[float], premium_x18: int = 0, dt_s: int = 60, gas_price_wei: int = 0) -> list[PathPoint]:
    return [PathPoint(block=100 + k, timestamp_s=1_000 + k * dt_s, spread_bps={"uniswap_v3": s},
                      funding_premium_x18=premium_x18, index_price_x18=SPOT_USD * E18,
                      gas_price_wei=gas_price_wei, eth_price_x18=3_000 * E18) for k, s in enumerate(spreads)]


POLICY = ThresholdPolicy(open_spread_bps=100, close_spread_bps=-10, notional_usd=10_000)
SIZE = 10 * E18  # $10,000 at $1,000


# ------------------------------------------------------------------------------ arithmetic
def test_funding_is_paid_by_longs_when_the_premium_is_positive_and_rounds_against_the_position() -> None:
    # 1 base, premium $1, one day: a long pays $1, a short receives $1
    assert compute_funding_paid_x18(E18, E18, 86_400) == E18
    assert compute_funding_paid_x18(-E18, E18, 86_400) == -E18
    # a third of a wei is paid as a whole wei (long), received as zero (short)
    assert compute_funding_paid_x18(1, 1, 28_800) == 1
    assert compute_funding_paid_x18(-1, 1, 28_800) == 0


def test_holding_funding_sums_the_intervals_held() -> None:
    path = points([0, 0, 0, 0], premium_x18=E18, dt_s=43_200)  # $1 premium, half-day steps
    assert compute_holding_funding_x18(path, 1, 3, -2 * E18) == -2 * E18  # short 2 for a day receives $2


def test_paper_gas_uses_the_snapshot_gas_price_and_eth_index() -> None:
    point = points([0], gas_price_wei=10**9)[0]
    assert compute_paper_gas_x18(point, "open") == compute_gas_usd_x18(typical_gas_units("open") * 10**9, 3_000 * E18)


def test_directed_spread_and_fixed_size() -> None:
    assert directed_spread_bps(120.0, Direction.SHORT_PERP) == 120.0
    assert directed_spread_bps(120.0, Direction.LONG_PERP) == -120.0
    assert fixed_size_x18(10_000, 1_000 * E18) == SIZE
    assert fixed_size_x18(10_000, 0) == 0


# ------------------------------------------------------------------------------ baseline
def test_baseline_opens_at_one_percent_and_closes_past_minus_ten_bps() -> None:
    # Given a spread that jumps to 150 bps, converges through zero to -20 bps
    spreads = [0, 50, 150, 120, 60, 0, -20, -5]
    result = run_threshold_baseline({"ETH": points(spreads)}, FakeQuoter(spreads), POLICY)
    # then one short-perp round trip, opened at 150 bps (index 2) and closed at -20 bps (index 6)
    (trade,) = result.trades
    assert (trade.direction, trade.entry_index, trade.exit_index) == (Direction.SHORT_PERP, 2, 6)
    assert trade.exit_reason == "spread crossed the close threshold"
    gross = SIZE * SPOT_USD * (15_000 + 2_000) // 1_000_000  # 1.70% of $10,000 = $170
    assert trade.split.convergence_x18 == gross
    assert trade.split.fees_x18 == 2 * FEE_X18
    assert trade.split.total_x18 == gross - 2 * FEE_X18  # no funding, no gas here
    assert result.total.total_x18 == trade.split.total_x18
    assert result.position_base_x18["ETH"] == (0, 0, -SIZE, -SIZE, -SIZE, -SIZE, 0, 0)
    assert result.equity_x18[-1] == trade.split.total_x18


def test_baseline_ignores_fees_in_its_decisions() -> None:
    # A 100 bps spread that only converges to zero: the bot opens (fees are not its concern), never
    # sees -10 bps, and is closed at the end of the run, paying both legs' fees for a 1% capture.
    spreads = [0, 100, 50, 0, 0]
    result = run_threshold_baseline({"ETH": points(spreads)}, FakeQuoter(spreads), POLICY)
    (trade,) = result.trades
    assert trade.exit_reason == "end of run" and trade.exit_index == 4
    assert trade.split.total_x18 == SIZE * SPOT_USD * 10_000 // 1_000_000 - 2 * FEE_X18


def test_baseline_goes_long_perp_on_a_negative_spread_and_ignores_99_bps() -> None:
    spreads = [-99, 99, -130, -40, 15, 0]
    result = run_threshold_baseline({"ETH": points(spreads)}, FakeQuoter(spreads), POLICY)
    (trade,) = result.trades
    assert (trade.direction, trade.entry_index, trade.exit_index) == (Direction.LONG_PERP, 2, 4)
    assert trade.split.convergence_x18 == SIZE * SPOT_USD * (13_000 + 1_500) // 1_000_000


def test_baseline_pays_funding_and_gas_while_it_holds() -> None:
    spreads = [200, 100, -50]
    path = points(spreads, premium_x18=E18, dt_s=43_200, gas_price_wei=10**9)  # shorts receive $1 / base / day
    result = run_threshold_baseline({"ETH": path}, FakeQuoter(spreads), POLICY)
    (trade,) = result.trades
    assert trade.split.funding_x18 == 10 * E18  # short 10 base for a day at a $1 premium
    assert trade.split.gas_x18 == compute_paper_gas_x18(path[0], "open") + compute_paper_gas_x18(path[2], "close")
    assert trade.split.total_x18 == (trade.split.convergence_x18 - trade.split.fees_x18 + trade.split.funding_x18
                                     - trade.split.gas_x18)


def test_baseline_retries_when_the_open_cannot_be_quoted() -> None:
    spreads = [0, 150, 140, -30, 0]
    result = run_threshold_baseline({"ETH": points(spreads)}, FakeQuoter(spreads, unquotable={1}), POLICY)
    (trade,) = result.trades
    assert trade.entry_index == 2
    assert any("not quotable" in note for note in result.notes)
