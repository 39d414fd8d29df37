"""The kill switch's state from SIGUSR1 and the file: every market, or the markets the file names;
a name the keeper does not trade, or an unreadable file, means every market."""

from __future__ import annotations

import threading
from pathlib import Path

from structlog.testing import capture_logs

from keeper.config import RiskConfig
from keeper.kill_switch import KillSwitch
from keeper.risk import assess_risk
from tests.unit.test_risk import GWEI, position, signal, snapshot


def test_the_file_decides_which_markets_and_the_signal_means_all(tmp_path: Path) -> None:
    path, flag = tmp_path / "KILL", threading.Event()
    switch = KillSwitch(path, ["ETH", "BTC"], flag)
    assert switch() is False
    path.write_text("")
    assert switch() is True  # an empty file: every market
    path.write_text("eth\n")
    assert switch() == frozenset({"ETH"})
    path.write_text("ETH, btc")
    assert switch() == frozenset({"ETH", "BTC"})
    flag.set()
    assert switch() is True


def test_a_market_it_does_not_trade_or_an_unreadable_file_means_every_market_with_one_alarm(tmp_path: Path) -> None:
    path = tmp_path / "KILL"
    switch = KillSwitch(path, ["ETH", "BTC"])
    path.write_text("ETHH")  # a typo in an emergency
    with capture_logs() as logs:
        assert switch() is True and switch() is True
    alarms = [e for e in logs if e["event"] == "kill_switch.unknown_markets"]
    assert len(alarms) == 1 and alarms[0]["log_level"] == "error" and alarms[0]["unknown"] == ["ETHH"]
    path.unlink()
    path.mkdir()  # there, but not a file
    with capture_logs() as logs:
        assert switch() is True
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["kill_switch.unreadable"]


def test_named_markets_unwind_or_freeze_alone_and_cannot_open() -> None:
    for action, field in (("unwind", "unwind_markets"), ("freeze", "frozen_markets")):
        view = assess_risk(snapshot(), [signal()], {"ETH": position()},
                           RiskConfig().model_copy(update={"kill_switch_action": action}), head_block=100,
                           gas_price_wei=GWEI, realized_today_usd=0.0, kill_switch=frozenset({"ETH"}))
        assert view.unwind_all is None and view.freeze is None  # not every market
        assert getattr(view, field) == {"ETH": f"kill switch: {action} ETH"}
        assert view.can_open("ETH") == f"kill switch: {action} ETH" and view.can_open("BTC") is None


def test_the_markets_come_back_in_their_configured_spelling_and_a_new_typo_alarms_again(tmp_path: Path) -> None:
    path = tmp_path / "KILL"
    switch = KillSwitch(path, ["wstETH", "BTC"])
    path.write_text("WSTETH")
    assert switch() == frozenset({"wstETH"})  # the engine keys markets by the config's spelling
    with capture_logs() as logs:
        path.write_text("ETX")
        switch()
        path.write_text("btc")
        assert switch() == frozenset({"BTC"})
        path.write_text("ETX")
        switch()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["kill_switch.unknown_markets"] * 2


def test_a_market_frozen_while_the_margin_is_below_the_guard_is_named_in_the_alarm() -> None:
    from keeper.types import PerpAccountState

    account = PerpAccountState("0x" + "33" * 20, 10 * 10**18, 0, 100 * 10**18, 0, {})
    view = assess_risk(snapshot(account=account), [signal()], {"ETH": position()},
                       RiskConfig().model_copy(update={"kill_switch_action": "freeze"}), head_block=100,
                       gas_price_wei=GWEI, realized_today_usd=0.0, kill_switch=frozenset({"ETH"}))
    assert view.unwind_all and view.frozen_markets == {"ETH": "kill switch: freeze ETH"}
    assert view.frozen_margin and "every market but ETH, which the kill switch freezes" in view.frozen_margin


def test_each_change_of_the_switch_is_logged_once(tmp_path: Path) -> None:
    # Given a switch read every tick, pulled by the file for ETH, then for every market, then released
    path, flag = tmp_path / "KILL", threading.Event()
    switch = KillSwitch(path, ["ETH", "BTC"], flag)
    with capture_logs() as logs:
        switch()
        path.write_text("ETH")
        switch(), switch()
        path.write_text("")
        switch()
        path.unlink()
        switch(), switch()
        flag.set()
        switch()
    # Then each change is one event, naming what is pulled and by what
    changes = [(e["event"], e["log_level"], e.get("markets"), e.get("source")) for e in logs
               if e["event"] in ("kill_switch.pulled", "kill_switch.released")]
    assert changes == [("kill_switch.pulled", "warning", ["ETH"], str(path)),
                       ("kill_switch.pulled", "warning", "every market", str(path)),
                       ("kill_switch.released", "info", None, None),
                       ("kill_switch.pulled", "warning", "every market", "SIGUSR1")]


def test_a_switch_pulled_from_inside_the_process_is_logged_with_that_source_not_as_sigusr1(tmp_path: Path) -> None:
    # Given keeper simulate's run-end wind-down, which pulls the switch itself (no signal was sent)
    from types import SimpleNamespace

    from keeper.runtime import Runtime

    flag = threading.Event()
    switch = KillSwitch(tmp_path / "KILL", ["ETH", "BTC"], flag)
    runtime = SimpleNamespace(engine=SimpleNamespace(kill_switch=switch), kill_flag=flag)
    with capture_logs() as logs:
        switch()
        Runtime.pull_kill_switch(runtime, "keeper simulate: wind-down")  # type: ignore[arg-type]
        assert switch() is True  # every market
    pulled = [(e["markets"], e["source"]) for e in logs if e["event"] == "kill_switch.pulled"]
    assert pulled == [("every market", "keeper simulate: wind-down")]


def test_the_replays_wind_down_names_itself_as_the_source(tmp_path: Path) -> None:
    # Given keeper simulate --replay's run-end wind-down (before: logged as a SIGUSR1 nobody sent)
    from types import SimpleNamespace

    from keeper.history.forkreplay import _wind_down
    from keeper.pnl_split import ZERO_PNL
    from keeper.runtime import Runtime

    flag = threading.Event()
    switch = KillSwitch(tmp_path / "KILL", ["ETH"], flag)
    runtime = SimpleNamespace(engine=SimpleNamespace(kill_switch=switch), kill_flag=flag,
                              journal=SimpleNamespace(open_positions=lambda: {}, pnl_summary=lambda: SimpleNamespace(total=ZERO_PNL)))
    runtime.pull_kill_switch = lambda source: Runtime.pull_kill_switch(runtime, source)  # type: ignore[arg-type]
    with capture_logs() as logs:
        switch()
        _wind_down(runtime, None, [])  # type: ignore[arg-type]
        switch()
    pulled = [e["source"] for e in logs if e["event"] == "kill_switch.pulled"]
    assert pulled == ["keeper simulate --replay: wind-down"]
