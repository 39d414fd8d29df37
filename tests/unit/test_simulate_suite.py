"""`keeper simulate --suite`: its inputs (seeds, scenario files and directories), the medians
table, the index page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keeper.artifacts import PROJECT_ROOT
from keeper.errors import ConfigError
from keeper.simulate.suite import parse_seeds, render_index, resolve_scenarios, run_row, scenario_medians

SCENARIOS = PROJECT_ROOT / "scenarios"


def test_seeds_parse_and_bad_ones_name_the_option() -> None:
    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("3, 2,1") == [3, 2, 1]
    for bad in ("", "a,b", "1,-2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match=r"--seeds: each seed once \(got 3 more than once"):
        parse_seeds("3, 3,1")  # not silently one run: it would weigh twice in the medians


def test_scenarios_come_from_directories_files_and_names(tmp_path: Path) -> None:
    # Given the default (scenarios/), a directory of one's own, a file anywhere and a name
    everything = resolve_scenarios([])
    assert everything == sorted(SCENARIOS.glob("*.toml")) and len(everything) >= 13
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "b.toml").write_text('name = "b"\n')
    (mine / "a.toml").write_text('name = "a"\n')
    elsewhere = tmp_path / "c.toml"
    elsewhere.write_text('name = "c"\n')
    found = resolve_scenarios([str(mine), str(elsewhere), "calm", str(mine / "a.toml")])
    # then each once, in order, directories sorted
    assert found == [mine / "a.toml", mine / "b.toml", elsewhere, SCENARIOS / "calm.toml"]


def test_a_bad_scenario_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "x"\n[activity]\nstep_s = 0\n')
    with pytest.raises(ConfigError, match="activity.step_s"):
        resolve_scenarios([str(tmp_path / "bad.toml")])
    with pytest.raises(ConfigError, match="no such scenario"):
        resolve_scenarios(["no_such_one"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no \\*.toml"):
        resolve_scenarios([str(empty)])


def report(keeper: float, optimum: float, expected: float | None, realised: float) -> dict[str, Any]:
    return {"comparison": {"keeper_usd": keeper, "baseline_usd": -1.0, "carry_only_usd": -2.0, "optimum_usd": optimum,
                           "optimum_dominates": optimum >= keeper, "violations": []},
            "keeper": {"included": 2, "round_trips": [{"expected_net_usd": expected, "realised_net_usd": realised}]},
            "limits": {"lowest_margin_ratio": 0.5}, "consistency": {}, "run": {"wall_s": 3.0}}


def test_rows_and_medians_across_seeds() -> None:
    runs = [{"scenario": "s", "seed": seed, "report": f"s/seed-{seed}/report.html"} | run_row(report(k, o, e, r))
            for seed, (k, o, e, r) in enumerate([(10.0, 40.0, 30.0, 10.0), (20.0, 30.0, None, 5.0), (60.0, 100.0, 50.0, 60.0)])]
    assert runs[0]["capture"] == 0.25 and runs[0]["expected_error_usd"] == 20.0
    assert runs[1]["expected_error_usd"] is None  # no expectation logged: no error to count
    (entry,) = scenario_medians(runs + [{"scenario": "s", "seed": 9, "error": "boom", "optimum_dominates": False,
                                         "report": "s/seed-9/report.html"}])
    assert entry["keeper_usd"] == 20.0 and entry["optimum_usd"] == 40.0 and entry["capture"] == 0.6
    assert entry["expected_error_usd"] == 15.0  # median of 20 and 10
    assert entry["failed"] == 1 and entry["optimum_dominates"] is True
    page = render_index({"origin_url": "http://x", "origin_chain_id": 1, "fork_block": 5, "seeds": [0, 1, 2, 9],
                         "wall_s": 1.0, "runs": runs, "scenarios": [entry]})
    assert all(f'href="s/seed-{seed}/report.html"' in page for seed in range(3))


def test_the_accuracy_figure_is_the_median_relative_error_over_all_trips_and_by_who_closed_them() -> None:
    from keeper.simulate.suite import describe_accuracy, expected_vs_realised

    def trip(expected: float | None, realised: float, by: str | None) -> dict[str, Any]:
        return {"expected_net_usd": expected, "realised_net_usd": realised, "closed_by_strategy": by}

    runs = [{"round_trips": [trip(100.0, 300.0, "basis_convergence"), trip(100.0, 90.0, "risk")]},
            {"round_trips": [trip(-50.0, -25.0, "risk"), trip(None, 10.0, "risk")]}, {"error": "failed"}]
    accuracy = expected_vs_realised(runs)
    # |err| / |expected|: 200%, 10%, 50% (a trip without an expected figure is not counted)
    assert accuracy["round_trips"] == 3 and accuracy["median_abs_rel_error"] == pytest.approx(0.5)
    assert accuracy["closed_by_strategy"] == {"round_trips": 1, "median_abs_rel_error": pytest.approx(2.0)}
    assert accuracy["closed_by_risk"] == {"round_trips": 2, "median_abs_rel_error": pytest.approx(0.3)}
    assert "50% over 3" in describe_accuracy(accuracy) and "200% over 1" in describe_accuracy(accuracy)


def test_a_run_shorter_than_its_scenarios_events_says_which_did_not_happen() -> None:
    """`--blocks 4` on a scenario whose shock is at step 50: the result says so (before: a clean
    result of a run in which the scenario's event never happened)."""
    from keeper.simulate.suite import describe_run

    events = [{"kind": "premium_shock", "at_step": 3, "premium": 0.02, "markets": None},
              {"kind": "index_move", "from_step": 5, "to_step": 9, "pct_per_step": -0.01, "markets": ["ETH"]},
              {"kind": "premium_shock", "at_step": 50, "premium": 0.02, "markets": None}]
    run_report = {"scenario": {"name": "late", "events": events}, "keeper": {"trades": []},
                  "run": {"seed": 7, "steps": 4, "fork_block": 159, "wall_s": 3.0, "keeper_log": "simulation/keeper.log"},
                  "comparison": {"keeper_usd": 0.0, "baseline_usd": 0.0, "carry_only_usd": 0.0, "optimum_usd": 1.0,
                                 "capture": 0.0, "optimum_dominates": True},
                  "consistency": {"split_equals_balance_change": True}, "limits": {"lowest_margin_ratio": None}}
    lines = describe_run(run_report).splitlines()
    assert ("NOT RUN in 4 steps (raise --blocks): events[1] (index_move) from step 5, events[2] (premium_shock) "
            "at step 50") in lines
