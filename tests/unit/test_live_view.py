"""The live panel: rows from a tick's snapshot and signals, the log tap, what a person sees."""

from __future__ import annotations

from rich.console import Console

from keeper.live import LiveState, compute_rows, estimate_upnl_usd
from keeper.signals import Signal
from keeper.types import Direction, MarketSnapshot, MarketView, PerpAccountMarket, PerpAccountState, Position, Unavailable

GONE = Unavailable("not read in this test")


def snapshot(block: int = 42) -> MarketSnapshot:
    view = MarketView("ETH", 18, True, GONE, GONE, GONE, GONE)  # type: ignore[arg-type]
    account = PerpAccountState("0xexec", account_value_x18=30_000 * 10**18, free_collateral_raw=12_345 * 10**6,
                               total_abs_position_value_x18=100_000 * 10**18, margin_requirement_for_liquidation_x18=0,
                               markets={"ETH": PerpAccountMarket(-10 * 10**18, 0, 0)})
    return MarketSnapshot(block, 1_700_000_000, 10**8, {"ETH": view}, account, 2)


def signal(venue: str, basis_bps: float, z: float | None) -> Signal:
    return Signal("ETH", venue, 42, spot_price_usd=2_990.0, mark_price_usd=3_000.0, index_price_usd=2_995.0,
                  basis_bps=basis_bps, funding_rate_per_hour=0.00001, funding_apr=0.0876,
                  carry_apr_short_perp=0.0876, carry_apr_long_perp=-0.0876, basis_zscore=z)


def short_position() -> Position:
    # short 10 perp at 3,010 and long 10 spot at 2,980: net quote +300 so far
    return Position("ETH", Direction.SHORT_PERP, "uniswap_v3", perp_base_x18=-10 * 10**18, spot_raw=10 * 10**18,
                    entry_block=40, entry_timestamp_s=0, entry_basis_bps=33.0, net_quote_x18=300 * 10**18,
                    funding_paid_x18=-5 * 10**18)


def test_unrealised_pnl_closes_both_legs_at_todays_mark_and_spot() -> None:
    # 300 - 10 x 3,000 + 10 x 2,990 - (-5 funding paid, i.e. received) = 300 - 30,000 + 29,900 + 5
    upnl = estimate_upnl_usd(short_position(), snapshot(), [signal("uniswap_v3", 33.4, 1.0)])
    assert upnl == 205.0


def test_rows_show_the_basis_each_signal_carries_and_the_largest_z() -> None:
    rows = compute_rows(snapshot(), (signal("uniswap_v3", 33.4, 1.5), signal("uniswap_v2", 31.0, -2.5)),
                        {"ETH": short_position()})
    (row,) = rows
    assert row.basis_bps == {"uniswap_v3": 33.4, "uniswap_v2": 31.0}
    assert row.zscore == -2.5 and row.funding_apr == 0.0876 and row.position_base == -10.0


def test_the_panel_shows_markets_margin_recent_events_and_the_log_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = LiveState(log_file=tmp_path / "keeper.log")
    state.tap(None, "info", {"event": "keeper.started", "mode": "live", "chain_id": 31337})
    state.tap(None, "info", {"event": "decision.intent", "block": 42, "market": "ETH", "kind": "open",
                             "direction": "short_perp", "expected_net_usd": 12.5})
    state.tap(None, "info", {"event": "decision.skip", "block": 41, "strategy": "funding_carry", "market": "ETH",
                             "reason": "no open: carry +1.82% APR < hurdle 5.00%"})
    state.observe_tick(snapshot(), (signal("uniswap_v3", 33.4, 1.5),), {"ETH": short_position()}, 21.7, "ws (pushed)")
    console = Console(record=True, width=110, color_system=None)
    console.print(state)
    text = console.export_text()
    assert "block 42" in text and "ws (pushed)" in text and "21.7 ms" in text and "live" in text
    assert "+33.4" in text and "+8.76%" in text and "+1.50" in text and "-10.0000" in text
    assert "margin ratio 0.300" in text and "12,345" in text
    assert "decision.intent" in text and "short_perp" in text
    assert "ETH    #41 funding_carry: no open: carry +1.82% APR < hurdle 5.00%" in text  # the market's last decision
    assert str(tmp_path / "keeper.log") in text


def test_the_panel_shows_the_warm_start_s_progress_before_the_first_tick(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = LiveState(log_file=tmp_path / "keeper.log")
    state.tap(None, "info", {"event": "warm_start.progress", "read": 500, "planned": 3600, "block": 900, "seconds": 1.4})
    state.tap(None, "warning", {"event": "warm_start.partial", "read": 812, "first_unreadable": 587, "seconds": 2.3,
                                "reason": "RpcError: missing trie node"})
    console = Console(record=True, width=110, color_system=None)
    console.print(state)
    text = console.export_text()
    assert "#900 warm_start.progress read=500 planned=3600 seconds=1.4" in text
    assert "warm_start.partial read=812 first_unreadable=587 seconds=2.3" in text


def test_the_panel_shows_every_warning_and_error_as_an_incident_and_the_kill_switch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given events the panel has no line for, at error and warning, one at info, and the kill switch
    state = LiveState(log_file=tmp_path / "keeper.log")
    state.tap(None, "error", {"event": "kill_switch.unknown_markets", "path": ".keeper/KILL", "unknown": ["ETHH"]})
    state.tap(None, "error", {"event": "unwind.wallet_short", "block": 77, "market": "BTC", "kind": "close",
                              "reason": "wallet short by 12 USDC"})
    state.tap(None, "warning", {"event": "market.quarantined", "market": "ETH", "reason": "3 errors in a row"})
    state.tap(None, "info", {"event": "journal.pruned", "decisions": 5})
    state.tap(None, "warning", {"event": "kill_switch.pulled", "markets": "every market", "source": ".keeper/KILL"})
    console = Console(record=True, width=130, color_system=None)
    console.print(state)
    text = console.export_text()
    # Then the warnings and errors are in the recent list with what they are about; the info is not
    assert "kill_switch.unknown_markets unknown=['ETHH']" in text
    assert "#77 unwind.wallet_short market=BTC kind=close reason=wallet short by 12 USDC" in text
    assert "market.quarantined market=ETH reason=3 errors in a row" in text
    assert "kill_switch.pulled markets=every market source=.keeper/KILL" in text
    assert "journal.pruned" not in text


def test_a_log_file_that_cannot_be_written_is_a_config_error_naming_the_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys
    from pathlib import Path

    import pytest

    from keeper.config import KeeperConfig
    from keeper.errors import ConfigError
    from keeper.live import start_live_view

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the panel is for a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    config = KeeperConfig.model_validate({"monitoring": {"log_file": Path("/proc/x/y.log")}})
    with pytest.raises(ConfigError, match=r"monitoring.log_file /proc/x/y.log: cannot write it"):  # was a FileNotFoundError
        start_live_view(config)
