"""`keeper stress` against the devnet: the grid from the chain's state, as JSON, and bad input; the
index volatility from the oracle's rounds, or the one sample of the TWAP departure without them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keeper.devnet.txs import codec
from keeper.index_volatility import ewma_variance_per_s, half_life_s
from tests.integration.conftest import Devnet

PROPOSAL = ("--market", "ETH", "--direction", "short_perp", "--notional-usd", "50000", "--collateral-usd", "30000")


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
    (("--index-rounds", "-1"), "--index-rounds"),
    (("--index-rounds", "1025"), "--index-rounds"),
])
def test_stress_bad_input_exits_2_naming_the_option(devnet: Devnet, tmp_path: Path, args: tuple[str, ...],
                                                    field: str) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = run_stress(manifest, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and field in lines[0], result.stderr


def stress_json(devnet: Devnet, tmp_path: Path, *args: str) -> dict[str, Any]:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = run_stress(manifest, *PROPOSAL, "--json", *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def aggregator_rounds(devnet: Devnet, market: str) -> list[tuple[int, int]]:
    """(updatedAt, answer) of every round of the market's aggregator, oldest first, read here."""
    aggregator, mock = devnet.manifest.market(market).aggregator, codec("MockV3Aggregator")
    latest = devnet.tx.read(aggregator, mock, "latestRound")
    return [(r[3], r[1]) for r in (devnet.tx.read(aggregator, mock, "getRoundData", i) for i in range(1, latest + 1))]


def chance(index_move: float, sigma: float, hold_s: float) -> float:
    return math.erfc(index_move / (sigma * math.sqrt(hold_s) * math.sqrt(2)))


def test_stress_takes_the_index_volatility_from_the_oracle_rounds(devnet: Devnet, tmp_path: Path) -> None:
    # Given the ETH oracle swinging 2% up and down every minute for 12 rounds: its volatility is
    # large, while the index ends where its TWAP is (the one sample of the departure sees little)
    for k in range(12):
        devnet.rpc.call("evm_increaseTime", [60])
        devnet.post_index("ETH", (3060 if k % 2 == 0 else 3000) * 10**8)
    rounds = aggregator_rounds(devnet, "ETH")
    # When `keeper stress` proposes an ETH position
    report = stress_json(devnet, tmp_path)
    sigma = report["index_sigma"]
    # Then the volatility comes from every round the oracle has (all inside the keeper's window)
    assert sigma["source"] == "aggregator_rounds" and sigma["fallback_reason"] is None
    assert sigma["rounds_read"] == sigma["rounds_used"] == len(rounds) >= 14
    # And it is the keeper's EWMA estimate over those rounds and the snapshot's time (computed here
    # from the rounds read directly, with the estimator's two functions)
    now = int(devnet.rpc.call("eth_getBlockByNumber", [hex(report["block"]), False])["timestamp"], 16)
    assert now - rounds[0][0] < 7_200
    times = [t for t, _ in rounds] + ([now] if now > rounds[-1][0] else [])
    logs = [math.log(a) for _, a in rounds] + ([math.log(rounds[-1][1])] if now > rounds[-1][0] else [])
    twap_s = devnet.tx.read(devnet.contract("ClearingHouseConfig"), codec("ClearingHouseConfig"), "getTwapInterval")
    expected = math.sqrt(ewma_variance_per_s(times, logs, half_life_s(times, twap_s)) or 0.0)
    assert sigma["history_sigma_per_sqrt_s"] == pytest.approx(expected, rel=1e-9)
    # And the swings outweigh the departure: the chance of the stressed move follows the history
    assert sigma["history_sigma_per_sqrt_s"] > 2 * sigma["departure_sigma_per_sqrt_s"]
    assert sigma["sigma_per_sqrt_s"] == sigma["history_sigma_per_sqrt_s"]
    p = chance(report["index_move"], sigma["sigma_per_sqrt_s"], report["hold_s"])
    assert report["stress_move_probability"] == pytest.approx(p, rel=1e-9)
    assert p > chance(report["index_move"], sigma["departure_sigma_per_sqrt_s"], report["hold_s"]) + 0.01
    # And the table's text says where it came from
    text = run_stress(tmp_path / "manifest.json", *PROPOSAL)
    assert text.returncode == 0, text.stderr
    assert f"the oracle's last {len(rounds)} rounds" in text.stdout
    # And --index-rounds bounds the read: the newest 5 rounds only
    bounded = stress_json(devnet, tmp_path, "--index-rounds", "5")["index_sigma"]
    assert bounded["rounds_read"] == bounded["rounds_used"] == 5
    assert bounded["history_sigma_per_sqrt_s"] != sigma["history_sigma_per_sqrt_s"]


def test_stress_falls_back_to_the_twap_departure_when_the_oracle_has_too_few_rounds(
        devnet: Devnet, tmp_path: Path) -> None:
    # Given the devnet as deployed: its ETH oracle has two rounds (too few moves for an estimate)
    rounds = aggregator_rounds(devnet, "ETH")
    assert len(rounds) == 2
    # When `keeper stress` proposes an ETH position
    report = stress_json(devnet, tmp_path)
    sigma = report["index_sigma"]
    # Then the volatility is the one sample of the TWAP departure, and the report says why
    assert sigma["source"] == "twap_departure" and sigma["history_sigma_per_sqrt_s"] is None
    assert sigma["rounds_read"] == sigma["rounds_used"] == 2 and "2 round(s)" in sigma["fallback_reason"]
    assert sigma["sigma_per_sqrt_s"] == sigma["departure_sigma_per_sqrt_s"]
    # And the table's text says it too
    text = run_stress(tmp_path / "manifest.json", *PROPOSAL)
    assert text.returncode == 0, text.stderr
    assert "the index vs its TWAP alone" in text.stdout and "2 round(s) in the window" in text.stdout


def test_stress_of_a_flat_account_says_there_is_nothing_to_stress_and_how_to_stress_a_proposal(
        devnet: Devnet, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = run_stress(manifest, "--account", "0x000000000000000000000000000000000000dEaD")
    assert result.returncode == 0, result.stderr
    assert "no perp position in this account" in result.stdout and "--market, --direction" in result.stdout
    proposed = run_stress(manifest, *PROPOSAL)
    assert proposed.returncode == 0 and "no perp position" not in proposed.stdout
    largest = run_stress(manifest, "--account", "0x000000000000000000000000000000000000dEaD", "--market", "ETH",
                         "--direction", "short_perp", "--collateral-usd", "30000")  # notional 0: the largest safe size
    assert largest.returncode == 0 and "no perp position" not in largest.stdout and "largest short_perp" in largest.stdout


def test_stress_takes_the_chain_from_the_config_file(devnet: Devnet, tmp_path: Path) -> None:
    """-c FILE alone: its chain.manifest (and the manifest's node), not a manifest another devnet
    left in .keeper/devnet/ of the working directory; a dead chain.rpc_url is named as such."""
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    stale = tmp_path / ".keeper" / "devnet" / "manifest.json"  # an older devnet's, on a dead port
    devnet.manifest.with_rpc_url("http://127.0.0.1:9").write(stale)
    (tmp_path / "keeper.toml").write_text(f'[chain]\nmanifest = "{manifest}"\n')
    result = subprocess.run([sys.executable, "-m", "keeper", "stress", "-c", "keeper.toml", *PROPOSAL, "--json"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"]
    (tmp_path / "dead.toml").write_text(f'[chain]\nmanifest = "{manifest}"\nrpc_url = "http://127.0.0.1:9"\n')
    result = subprocess.run([sys.executable, "-m", "keeper", "stress", "-c", "dead.toml", *PROPOSAL],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "chain.rpc_url http://127.0.0.1:9" in result.stderr and "--rpc-url" not in result.stderr
