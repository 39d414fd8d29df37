"""The backtest's paper account: funding accrues from the recorded premium, as the paper trades
of the simulation book it; the account the engine reads follows the books."""

from __future__ import annotations

from dataclasses import replace

from keeper.history.books import INITIAL_MARGIN_PPM, PaperAccount
from keeper.simulate.paper import compute_funding_paid_x18
from keeper.types import ONE_X18, Direction, Position

from .test_pnl_model import market_view, perp_state, snapshot_of


def _short(size: float = 2.0) -> Position:
    return Position(market="ETH", direction=Direction.SHORT_PERP, spot_venue="uniswap_v3",
                    perp_base_x18=-int(size * ONE_X18), spot_raw=int(size * ONE_X18), entry_block=1,
                    entry_timestamp_s=0, entry_basis_bps=0.0, net_quote_x18=0)


def test_given_longs_paying_when_a_short_is_held_an_hour_then_it_receives_the_premium_over_the_hour() -> None:
    rich = market_view(perp=perp_state(3000.0, 3000.0, market_twap_usd=3030.0))
    first = snapshot_of(rich, block=10)
    later = replace(snapshot_of(rich, block=11), block_timestamp=first.block_timestamp + 3600)
    account, positions = PaperAccount(50_000), {"ETH": _short()}
    account.accrue(first, positions)
    account.accrue(later, positions)
    premium = rich.perp.funding_premium_x18  # type: ignore[union-attr]
    expected = compute_funding_paid_x18(-2 * ONE_X18, premium, 3600)
    assert expected == -int(2.5 * ONE_X18)  # 2 ETH x $30 x 1 h / 24 h, received
    assert account.pending_x18["ETH"] == expected
    assert account.settle("ETH") == expected and account.settle("ETH") == 0


def test_given_positions_and_pnl_when_the_engine_reads_the_account_then_it_follows_the_books() -> None:
    view = market_view(perp=perp_state(3000.0, 3000.0))
    snapshot = snapshot_of(view)
    account = PaperAccount(50_000)
    account.pending_x18["ETH"] = 7
    state = account.state(snapshot, {"ETH": _short()}, pnl_to_date_x18=-1_000 * ONE_X18)
    assert state.markets["ETH"].position_size_x18 == -2 * ONE_X18
    assert state.markets["ETH"].pending_funding_x18 == 7
    assert state.account_value_x18 == 49_000 * ONE_X18
    assert state.total_abs_position_value_x18 == 6_000 * ONE_X18
    assert state.free_collateral_raw == (49_000 - 6_000 * INITIAL_MARGIN_PPM // 10**6) * 10**6
    assert state.margin_ratio == 49_000 / 6_000
    flat = account.state(snapshot, {}, 0)
    assert flat.margin_ratio is None and flat.free_collateral_raw == 50_000 * 10**6
