"""A short `keeper simulate --suite` on a fork of the session devnet: every run's optimum dominates
the keeper and both reference bots, and suite.json / index.html hold what the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from keeper.artifacts import PROJECT_ROOT
from keeper.config import load_config
from keeper.devnet.world import World
from keeper.simulate.suite import run_suite

RUN_FIELDS = {"scenario", "seed", "keeper_usd", "baseline_usd", "carry_only_usd", "optimum_usd", "trades",
              "lowest_margin_ratio", "optimum_dominates", "round_trips"}


def test_short_suite_optimum_dominates_everywhere(devnet_world: World, tmp_path: Path) -> None:
    # Given the devnet as the fork origin and two scenarios (one of them from outside scenarios/)
    manifest = tmp_path / "origin-manifest.json"
    devnet_world.manifest.write(manifest)
    elsewhere = tmp_path / "flip.toml"
    elsewhere.write_text((PROJECT_ROOT / "scenarios" / "alternating_premium.toml").read_text())
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": manifest}})
    # when a short suite runs them with two seeds
    out = tmp_path / "suite"
    suite = run_suite(settings, fork_url=devnet_world.node.rpc_url, fork_block=None,
                      scenarios=[str(PROJECT_ROOT / "scenarios" / "mispricing.toml"), str(elsewhere)], seeds=[1, 2],
                      out_dir=out, console=Console(quiet=True), steps=14)
    # then every scenario x seed ran, and in each the optimum is >= the keeper and both bots
    runs = suite["runs"]
    assert [(r["scenario"], r["seed"]) for r in runs] == [("mispricing", 1), ("mispricing", 2),
                                                          ("alternating_premium", 1), ("alternating_premium", 2)]
    for run in runs:
        assert "error" not in run, run.get("error")
        assert RUN_FIELDS <= set(run)
        assert run["optimum_dominates"], run["violations"]
        assert run["optimum_usd"] >= max(run["keeper_usd"], run["baseline_usd"], run["carry_only_usd"])
        assert run["positions_closed"] and run["split_equals_balance_change"]
        for trip in run["round_trips"]:
            assert {"expected_net_usd", "realised_net_usd"} <= set(trip)
    assert suite["optimum_dominates_everywhere"]
    # and the check is not vacuous: the keeper traded round trips in some run
    assert any(run["round_trips"] for run in runs)
    # and suite.json is the same suite; index.html links every run's report, which exists
    assert json.loads((out / "suite.json").read_text())["runs"] == json.loads(json.dumps(runs))
    page = (out / "index.html").read_text()
    for run in runs:
        assert f'href="{run["report"]}"' in page and (out / run["report"]).is_file()
        # and each run's keeper log ends as a live run's does (before: it just ended)
        log_lines = (out / run["report"]).parent.joinpath("keeper.log").read_text().splitlines()
        assert [json.loads(line)["event"] for line in log_lines[-2:]] == ["keeper.stopping", "keeper.stopped"]
    assert [e["scenario"] for e in suite["scenarios"]] == ["mispricing", "alternating_premium"]
