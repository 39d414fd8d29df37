"""The engine's decision step raises `margin.frozen_below_guard` (error) when the kill switch freezes
a held market while the account's margin ratio is below the guard: once per block, naming the frozen
markets; never while the ratio is above the guard."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from structlog.testing import capture_logs

from keeper.config import KeeperConfig
from keeper.engine import Engine
from keeper.journal import Journal
from keeper.metrics import KeeperMetrics
from keeper.plan import Planner
from keeper.types import PerpAccountState

from .test_risk import position, snapshot


def frozen_engine(tmp_path: Path) -> Engine:
    """A dry-run engine holding ETH, with the kill switch file naming ETH and the action freeze."""
    config = KeeperConfig()
    config = config.model_copy(update={"risk": config.risk.model_copy(update={"kill_switch_action": "freeze"})})
    engine = Engine(config=config, collector=SimpleNamespace(sources=SimpleNamespace(markets=())),  # type: ignore[arg-type]
                    strategies=[], planner=Planner(config, "0x" + "11" * 20), executor=SimpleNamespace(mode="dry_run"),  # type: ignore[arg-type]
                    journal=Journal(tmp_path / "j.sqlite"), metrics=KeeperMetrics(),
                    kill_switch=lambda: frozenset({"ETH"}), clock=lambda: 1000.0)
    engine.virtual_positions["ETH"] = position()
    return engine


def account(value_usd: int) -> PerpAccountState:
    """An account of `value_usd` holding 100 USD of positions: its margin ratio is value_usd / 100."""
    return PerpAccountState("0x" + "33" * 20, value_usd * 10**18, 0, 100 * 10**18, 0, {})


def test_a_frozen_market_below_the_margin_guard_is_an_error_naming_the_market(tmp_path: Path) -> None:
    engine = frozen_engine(tmp_path)  # the guard: 0.15
    with capture_logs() as logs:
        report = engine.decide_on(snapshot(account=account(10)), 100)  # ratio 0.10
    alarms = [e for e in logs if e["event"] == "margin.frozen_below_guard"]
    assert len(alarms) == 1 and alarms[0]["log_level"] == "error" and alarms[0]["block"] == 100
    assert "margin ratio 0.1000 below guard 0.15" in alarms[0]["reason"]
    assert "every market but ETH, which the kill switch freezes" in alarms[0]["reason"]
    assert report.intents == 0  # the freeze holds ETH: the guard's unwind sends nothing there


def test_a_frozen_market_above_the_margin_guard_raises_no_alarm(tmp_path: Path) -> None:
    engine = frozen_engine(tmp_path)
    with capture_logs() as logs:
        report = engine.decide_on(snapshot(account=account(50)), 100)  # ratio 0.50
    assert report.block_number == 100 and report.intents == 0  # decided: the freeze holds ETH
    assert [e for e in logs if e["event"] == "margin.frozen_below_guard"] == []
