"""The embedded devnet's driver steps, as the block loop runs them (keeper/blockloop.py drive_step):
a step with a scripted premium shock logs `market.shock` with its market, premium, step and block;
the other steps do not."""

from __future__ import annotations

from structlog.testing import capture_logs

from keeper.blockloop import drive_step
from keeper.devnet.activity import ActivityConfig, StepReport, scripted_shock


class ScriptedDriver:
    """MarketActivity's reports without a chain: each step's shock is the scripted one (block = 100 + step)."""

    def __init__(self, config: ActivityConfig, names: list[str]) -> None:
        self.config, self.names, self.steps_done = config, names, 0

    def step(self) -> StepReport:
        self.steps_done += 1
        return StepReport(self.steps_done, 100 + self.steps_done, 60 * self.steps_done, (),
                          scripted_shock(self.steps_done, self.config, self.names))


def test_a_shock_step_logs_market_shock_with_its_fields_and_the_other_steps_do_not() -> None:
    driver = ScriptedDriver(ActivityConfig(shock_every_steps=3), ["BTC", "ETH"])
    with capture_logs() as logs:
        reports = [drive_step(driver) for _ in range(7)]
    assert [r.step for r in reports] == list(range(1, 8))
    shocks = [{k: e[k] for k in ("market", "premium", "step", "block", "log_level")}
              for e in logs if e["event"] == "market.shock"]
    assert shocks == [
        {"market": "BTC", "premium": 0.02, "step": 3, "block": 103, "log_level": "info"},
        {"market": "ETH", "premium": 0.02, "step": 6, "block": 106, "log_level": "info"},
    ]


def test_without_scripted_shocks_no_step_logs_one() -> None:
    driver = ScriptedDriver(ActivityConfig(), ["BTC", "ETH"])  # shock_every_steps 0: never
    with capture_logs() as logs:
        for _ in range(5):
            drive_step(driver)
    assert [e for e in logs if e["event"] == "market.shock"] == []
