"""`keeper simulate` on the two pair scenarios (pairs_spread enabled by the scenario): both legs in
one transaction each way with fills equal to the predictions, the pair's PnL in the keeper's books
equal to the executor's balance change, the optimum (with its pair grid) above the keeper; the
spread that reverts is earned at the turn; on the broken correlation the default entry (on the turn)
never opens, since the spread never stops widening while the thesis holds, and the entry at the
first sample past entry_z (enter_on_turn = false) is exited by the thesis-broken rule for a smaller
loss than holding on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keeper.devnet.world import World
from keeper.simulate.scenario import scenario_path

from .test_simulate import Run, simulate


def pair_trips(run: Run) -> list[dict[str, Any]]:
    return [t for t in run.report["keeper"]["round_trips"] if t.get("pair")]


def check_books(run: Run) -> None:
    report = run.report
    txs = report["keeper"]["pair_trades"]
    assert txs and all(t["status"] == "included" for t in txs)
    assert all(json.loads(t["fills"]) == json.loads(t["predicted"]) for t in txs)  # to the wei
    c = report["consistency"]
    assert c["positions_closed"] and c["split_equals_balance_change"] and c["gas_wei_equal"]
    assert report["comparison"]["optimum_dominates"] and report["optimum"]["account_caps_relaxed"]
    assert any("pair optimum" in note for note in report["optimum"]["notes"])
    assert run.origin_after == run.origin_before


def held_to_the_end_usd(run: Run, trip: dict[str, Any]) -> float:
    """The trip's PnL had it been held to the last scenario step (the exit's fees aside)."""
    samples = run.report["samples"]
    opening = next(t for t in trip["trades"] if t["kind"] == "open")
    fills = {k: int(v) for k, v in json.loads(opening["fills"]).items()}
    at_exit = next(s for s in samples if s["block"] >= trip["exit_block"])
    last = [s for s in samples if s["phase"] == "scenario"][-1]
    return trip["realised_net_usd"] + sum(
        fills[f"perp_base_x18_{leg}"] / 1e18 * (last["markets"][m]["perp_mid_usd"] - at_exit["markets"][m]["perp_mid_usd"])
        for leg, m in (("a", "ETH"), ("b", "BTC")))


@pytest.fixture(scope="module")
def revert(devnet_world: World, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(devnet_world, tmp_path_factory.mktemp("sim") / "pair_revert", "pair_spread_revert", 40, seed=1)


@pytest.fixture(scope="module")
def broken(devnet_world: World, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(devnet_world, tmp_path_factory.mktemp("sim") / "pair_break", "pair_correlation_break", 40, seed=1)


@pytest.fixture(scope="module")
def broken_at_once(devnet_world: World, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The same scenario with the entry at the first sample past entry_z (enter_on_turn = false)."""
    out = tmp_path_factory.mktemp("sim")
    text = scenario_path("pair_correlation_break").read_text()
    assert "[strategies.params.pairs_spread]\n" in text
    scenario = out / "pair_correlation_break_at_once.toml"
    scenario.write_text(text.replace("[strategies.params.pairs_spread]\n",
                                     "[strategies.params.pairs_spread]\nenter_on_turn = false\n"))
    return simulate(devnet_world, out / "pair_break_at_once", str(scenario), 40, seed=1)


def test_a_spread_that_opens_and_reverts_is_traded_and_earned(revert: Run) -> None:
    check_books(revert)
    (trip,) = pair_trips(revert)
    assert trip["direction"] == "short_spread" and trip["closed"]  # ETH ran ahead: short ETH, long BTC
    assert trip["close_reason"].startswith(("reverted", "edge spent"))
    assert trip["realised_net_usd"] > 100  # entered at the turn, at the run's full deviation ($12 at its start)
    opening = next(t for t in trip["trades"] if t["kind"] == "open")["reason"]
    assert "before the run" in opening
    # sized by the expected net from notional_usd ($10,000) up: the edge grows with size to the $100,000 cap
    assert "the best expected net of" in opening and "market cap A binds at the top" in opening
    assert abs(trip["perp_base"]) * 3000 > 5 * 10_000
    assert revert.report["comparison"]["optimum_usd"] >= revert.report["comparison"]["keeper_usd"]


def test_a_spread_that_keeps_widening_while_the_correlation_breaks_is_never_entered_on_the_turn(broken: Run) -> None:
    assert pair_trips(broken) == [] and broken.report["keeper"]["pair_trades"] == []
    assert broken.report["comparison"]["keeper_usd"] == 0
    log = Path(broken.report["run"]["keeper_log"])
    skips = [json.loads(line) for line in log.read_text().splitlines() if '"pair.skip"' in line]
    assert any("spread still widening" in e["reason"] for e in skips)  # it saw the z past entry_z and waited


def test_a_broken_correlation_entered_at_once_is_exited_by_the_thesis_rule_and_the_loss_limited(
        broken_at_once: Run) -> None:
    check_books(broken_at_once)
    (trip,) = pair_trips(broken_at_once)
    assert trip["close_reason"].startswith("thesis broken")
    assert trip["realised_net_usd"] < 0  # the bet lost ...
    assert held_to_the_end_usd(broken_at_once, trip) < 2 * trip["realised_net_usd"]  # ... less than half of holding on
