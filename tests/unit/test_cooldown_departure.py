"""The exit cooldown lets a reopen on a NEW departure through (hand-set states)."""

from __future__ import annotations

from keeper.risk import ExitMark, cooldown_reason, departure_since_exit
from keeper.signals import Signal
from keeper.types import ONE_X18, Direction, Intent, PnlEstimate

EXITED = ExitMark(1_000, "short_perp", "uniswap_v3", 0.8)  # closed on convergence near the centre


def signal(basis_bps: float, venue: str = "uniswap_v3", spot: float = 60_000.0) -> Signal:
    return Signal(market="BTC", spot_venue=venue, block_number=1, spot_price_usd=spot, mark_price_usd=spot,
                  index_price_usd=spot, basis_bps=basis_bps, funding_rate_per_hour=0.0, funding_apr=0.0,
                  carry_apr_short_perp=0.0, carry_apr_long_perp=0.0, basis_zscore=50.0)


def reopen(direction: Direction = Direction.SHORT_PERP, base: float = 1.5) -> Intent:
    # $90,000 of notional; fees 700 + impact 340 + gas 10 = $1,050 = 116.7 bps round trip
    return Intent(strategy="basis_convergence", kind="open", market="BTC", direction=direction,
                  spot_venue="uniswap_v3", perp_base_x18=int(base * ONE_X18), reason="test",
                  expected=PnlEstimate(2_900.0, 15.0, 700.0, 340.0, 10.0, 0.2), created_block=1, valid_until_block=3)


def decide(basis_now: float, intent: Intent | None = None) -> str | None:
    intent = intent or reopen()
    moved, round_trip = departure_since_exit(EXITED, intent, {("BTC", "uniswap_v3"): signal(basis_now)}) or (None, None)
    return cooldown_reason("BTC", intent.direction.value, EXITED, 1_240, 300, moved_bps=moved,
                           round_trip_bps=round_trip)


def test_given_a_new_blowout_after_the_exit_then_the_same_side_reopens_inside_the_cooldown() -> None:
    # collapse_then_blowout: exited at 0.8 bps, the perp is 320 bps rich a few minutes later
    moved, round_trip = departure_since_exit(EXITED, reopen(), {("BTC", "uniswap_v3"): signal(320.8)}) or (0, 0)
    assert moved == 320.0
    assert round_trip == (700.0 + 340.0 + 10.0) / 90_000.0 * 1e4
    assert decide(320.8) is None


def test_given_the_basis_back_near_the_exit_then_the_reopen_still_cools_down() -> None:
    reason = decide(12.0)  # churn: 11.2 bps since the exit does not pay a 116.7 bps round trip
    assert reason is not None and "60 s left" in reason
    assert "moved 11.2 bps" in reason and "round trip 116.7 bps" in reason


def test_given_the_basis_moved_the_other_way_then_it_is_no_departure() -> None:
    assert decide(-320.0) is not None


def test_given_a_long_perp_the_departure_is_a_falling_basis() -> None:
    exited = ExitMark(1_000, "long_perp", "uniswap_v3", -1.0)
    intent = reopen(Direction.LONG_PERP)
    moved = departure_since_exit(exited, intent, {("BTC", "uniswap_v3"): signal(-201.0)})
    assert moved == (200.0, (1_050.0 / 90_000.0) * 1e4)


def test_given_an_exit_without_a_basis_then_the_plain_cooldown_applies() -> None:
    assert departure_since_exit((1_000, "short_perp"), reopen(), {("BTC", "uniswap_v3"): signal(320.0)}) is None
    assert departure_since_exit(ExitMark(1_000, "short_perp"), reopen(), {("BTC", "uniswap_v3"): signal(320.0)}) is None
    assert departure_since_exit(EXITED, reopen(), {}) is None
    assert cooldown_reason("BTC", "short_perp", (1_000, "short_perp"), 1_240, 300) is not None
