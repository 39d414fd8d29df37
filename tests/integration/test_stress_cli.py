"""`keeper stress` against the devnet: the grid from the chain's state, as JSON, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Devnet


def run_stress(manifest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keeper", "stress", "--manifest", str(manifest), *args],
                          capture_output=True, text=True, timeout=60)


def test_stress_json_for_a_proposed_position_gives_the_grid_and_the_size_cap(devnet: Devnet, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = run_stress(manifest, "--market", "ETH", "--direction", "short_perp", "--notional-usd", "50000",
                        "--collateral-usd", "30000", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert len(rows) == 18  # index -5% / 0 / +5% x band edge -1 / 0 / +1 x adverse funding or not
    worst = min(rows, key=lambda r: r["margin_ratio"])
    # a short perp is hurt most by the index rising with the vAMM at the upper band edge, paying funding
    assert (worst["index_move"], worst["band_edge"], worst["adverse_funding"]) == (0.05, 1, True)
    assert worst["margin_ratio"] == pytest.approx(report["worst_margin_ratio"])
    assert worst["perp_pnl_usd"] < 0 < worst["hedge_pnl_usd"]
    assert 0 < worst["liquidation_index_move"]
    # the size cap: the largest short that keeps the guard (0.15) under every shock, above this 50k
    assert report["max_proposal_notional_usd"] > 50_000 and report["worst_margin_ratio"] > report["guard"]
    # the close of the proposal on each spot venue, now and after the stressed move (the devnet's
    # concentrated ranges are thick around the price only: the stressed close costs more)
    exits = report["proposal_exit_cost"]
    assert set(exits) == {"uniswap_v2", "uniswap_v3"}
    assert 0 < exits["uniswap_v3"]["normal_usd"] < exits["uniswap_v3"]["stressed_usd"]
    assert "band edge" in exits["uniswap_v3"]["worst"]
    assert 0 <= report["stress_move_probability"] <= 1


@pytest.mark.parametrize("args, field", [
    (("--market", "ETH"), "--direction"),
    (("--market", "ETH", "--direction", "sideways"), "--direction"),
    (("--market", "DOGE", "--direction", "long_perp", "--collateral-usd", "1000"), "--market DOGE"),
    (("--notional-usd", "-5"), "--notional-usd"),
    (("--collateral-usd", "0"), "--collateral-usd"),
])
def test_stress_bad_input_exits_2_naming_the_option(devnet: Devnet, tmp_path: Path, args: tuple[str, ...],
                                                    field: str) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = run_stress(manifest, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and field in lines[0], result.stderr
