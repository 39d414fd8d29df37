"""`keeper simulate` against a fork of the session devnet, and its building blocks on the devnet.

The building blocks (balance-slot probing, the mock aggregator, executor provisioning, the
scenario driver's events) run on the devnet itself, reverted after each test. The simulations fork
the session devnet (`devnet_world`) and must leave it untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from rich.console import Console

from keeper.addressbook import book_from_manifest
from keeper.artifacts import PROJECT_ROOT, load_artifact
from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World
from keeper.errors import ConfigError, FatalError
from keeper.simulate.command import run_simulation
from keeper.simulate.driver import ScenarioDriver
from keeper.simulate.fork import (
    FORK_ADMIN,
    _storage,
    balance_of,
    balance_probe_account,
    find_balance_slot,
    fund_gas,
    install_mock_aggregator,
    mapping_slot,
    provision_fork_executor,
    set_token_balance,
    start_fork,
)
from keeper.simulate.realchain import prepare_optimism_world
from keeper.simulate.scenario import load_scenario, parse_scenario

from .conftest import Devnet

USDC = 10**6
E18 = 10**18


# ------------------------------------------------------------------------------ building blocks
def test_balance_slot_is_found_by_probing_and_every_probe_is_restored(devnet: Devnet) -> None:
    # Given the devnet's USDC (MintableERC20), WETH9 and WBTC, when their balance slots are probed
    for name in ("USDC", "WETH9", "WBTC"):
        token = devnet.contract(name)
        found = find_balance_slot(devnet.rpc, token)
        # then the mapping is found (declared at slot 3 in both contracts, Solidity layout)
        assert (found.slot, found.vyper) == (3, False)
        # and no probed slot kept the marker
        probe = balance_probe_account(token)
        assert balance_of(devnet.rpc, token, probe) == 0
        assert all(_storage(devnet.rpc, token, mapping_slot(probe, s, vyper)) == 0
                   for s in range(31) for vyper in (False, True))
    # and a balance written through the slot is what balanceOf reports
    account = Account.create().address
    set_token_balance(devnet.rpc, devnet.contract("USDC"), account, 1_234 * USDC)
    assert balance_of(devnet.rpc, devnet.contract("USDC"), account) == 1_234 * USDC


def test_probing_a_contract_without_a_balance_mapping_fails_clearly(devnet: Devnet) -> None:
    with pytest.raises(FatalError, match="no balanceOf mapping found"):
        find_balance_slot(devnet.rpc, devnet.contract("UniswapV3Factory"), max_slot=3)


def test_mock_aggregator_keeps_decimals_and_answer_then_takes_updates(devnet: Devnet) -> None:
    market = devnet.manifest.market("ETH")
    mock = codec("MockV3Aggregator")
    # Given an aggregator at a round id like a real proxy's (phase << 64 | round)
    answer_before = devnet.tx.read(market.aggregator, mock, "latestAnswer")
    round_before = (1 << 64) + 5
    _set_word(devnet, market.aggregator, 3, round_before)  # latestRound
    _set_word(devnet, market.aggregator, _uint_key_slot(round_before, 4), answer_before)  # getAnswer[round]
    _set_word(devnet, market.aggregator, _uint_key_slot(round_before, 5), 1)  # getTimestamp[round]
    before = devnet.tx.read(market.aggregator, mock, "latestRoundData")
    assert before[:2] == (round_before, answer_before)
    # When the aggregator's code is replaced by MockV3Aggregator's
    answer = install_mock_aggregator(devnet.rpc, market.aggregator, devnet.manifest.accounts.deployer)
    # then it answers as before, with its decimals, from round 1
    assert devnet.rpc.get_code(market.aggregator) == load_artifact("MockV3Aggregator").deployed_bytecode
    assert answer == before[1]
    assert devnet.tx.read(market.aggregator, mock, "decimals") == 8
    round_id, latest, _, _, _ = devnet.tx.read(market.aggregator, mock, "latestRoundData")
    assert (round_id, latest) == (1, before[1])
    # and a posted answer reaches Perp's index through the price feed
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, market.aggregator, mock, "updateAnswer", 3_300 * 10**8)
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, market.chainlink_price_feed, codec("ChainlinkPriceFeedV3"), "update")
    assert devnet.tx.read(market.base_token, codec("BaseToken"), "getIndexPrice", 0) == 3_300 * E18


def _uint_key_slot(key: int, slot: int) -> int:
    return int.from_bytes(keccak(key.to_bytes(32, "big") + slot.to_bytes(32, "big")), "big")


def _set_word(devnet: Devnet, address: str, slot: int, value: int) -> None:
    devnet.rpc.call("anvil_setStorageAt", [address, "0x" + slot.to_bytes(32, "big").hex(),
                                           "0x" + value.to_bytes(32, "big").hex()])


def test_provisioned_executor_is_owned_by_the_key_and_funded_by_storage_writes(devnet: Devnet) -> None:
    owner = Account.create().address
    fund_gas(devnet.rpc, owner)
    usdc = devnet.contract("USDC")
    supply_before = devnet.tx.read(usdc, codec("MintableERC20"), "totalSupply")
    executor = provision_fork_executor(devnet.rpc, book_from_manifest(devnet.manifest), owner)
    ex = codec("BasisExecutor")
    assert devnet.tx.read(executor.address, ex, "operator").lower() == owner.lower()
    assert devnet.tx.read(executor.address, ex, "admin").lower() == FORK_ADMIN.lower() != owner.lower()
    assert balance_of(devnet.rpc, usdc, executor.address) == executor.usdc_wallet_raw == 400_000 * USDC
    assert devnet.tx.read(devnet.contract("Vault"), codec("Vault"), "getBalance", executor.address) == 100_000 * USDC
    for market in devnet.manifest.markets:
        assert balance_of(devnet.rpc, market.spot_token, executor.address) == executor.spot_raw[market.name] > 0
    # funded by writing balances, not by minting: the supply did not move
    assert devnet.tx.read(usdc, codec("MintableERC20"), "totalSupply") == supply_before
    # the impersonation ended: the node no longer sends for the owner
    with pytest.raises(Exception):
        devnet.rpc.call("eth_sendTransaction", [{"from": owner, "to": owner, "value": "0x1"}])


def test_a_scenario_event_on_a_market_the_chain_does_not_have_is_refused_naming_its_field(devnet: Devnet) -> None:
    scenario = parse_scenario({"name": "typo", "events": [
        {"kind": "premium_shock", "at_step": 2, "premium": 0.01},
        {"kind": "index_move", "from_step": 1, "to_step": 3, "pct_per_step": 0.001, "markets": ["ETH", "DOGE"]},
    ]})
    with pytest.raises(ConfigError) as refused:
        ScenarioDriver(devnet.rpc, devnet.manifest, scenario.activity.activity_config(5), scenario=scenario)
    assert str(refused.value) == ("scenario typo: events[1] (index_move).markets: unknown market 'DOGE' "
                                  "(this chain has BTC, ETH)")


def test_scenario_driver_applies_each_kind_of_event(devnet: Devnet) -> None:
    scenario = parse_scenario({"name": "events", "activity": {"step_s": 60, "premium_vol_daily": 0.0}, "events": [
        {"kind": "oracle_pause", "from_step": 1, "to_step": 2, "markets": ["ETH"]},
        {"kind": "index_move", "from_step": 1, "to_step": 2, "pct_per_step": -0.02, "markets": ["ETH"]},
        {"kind": "liquidity_removal", "at_step": 3, "fraction": 0.9, "markets": ["BTC"]},
        {"kind": "premium_shock", "at_step": 3, "premium": 0.03, "markets": ["BTC"]},
        {"kind": "base_fee", "from_step": 4, "to_step": 4, "gwei": 200},
    ]})
    driver = ScenarioDriver(devnet.rpc, devnet.manifest, scenario.activity.activity_config(5), scenario=scenario)
    eth, btc = devnet.manifest.market("ETH"), devnet.manifest.market("BTC")
    mock, pool = codec("MockV3Aggregator"), codec("UniswapV3Pool")

    def head_base_fee() -> int:
        return int(devnet.rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)

    oracle_before = devnet.tx.read(eth.aggregator, mock, "latestRoundData")
    btc_oracle_before = devnet.tx.read(btc.aggregator, mock, "latestRoundData")
    driver.step()
    report = driver.step()
    # oracle_pause: ETH's aggregator got nothing (BTC's did), while ETH spot followed the true price down ~4%
    assert devnet.tx.read(eth.aggregator, mock, "latestRoundData") == oracle_before
    assert devnet.tx.read(btc.aggregator, mock, "latestRoundData")[0] == btc_oracle_before[0] + 2
    eth_tick = next(t for t in report.markets if t.name == "ETH")
    assert eth_tick.spot_v3_price_usd < oracle_before[1] / 1e8 * 0.97
    # liquidity_removal: 90% of the BTC pools' liquidity gone
    liquidity_before = devnet.tx.read(btc.uniswap_v3_pool, pool, "liquidity")
    reserves_before = devnet.tx.read(btc.uniswap_v2_pair, codec("UniswapV2Pair"), "getReserves")
    normal_fee = head_base_fee()
    report = driver.step()
    assert devnet.tx.read(btc.uniswap_v3_pool, pool, "liquidity") < liquidity_before * 0.2
    reserves_after = devnet.tx.read(btc.uniswap_v2_pair, codec("UniswapV2Pair"), "getReserves")
    assert reserves_after[0] < reserves_before[0] * 0.2
    # premium_shock: the BTC perp 3% over its index
    btc_tick = next(t for t in report.markets if t.name == "BTC")
    assert btc_tick.perp_price_usd / btc_tick.index_price_usd - 1 == pytest.approx(0.03, abs=0.002)
    # base_fee: the head block (what the keeper reads) carries the spike, and it ends after the window
    driver.step()
    assert head_base_fee() == 200 * 10**9
    driver.step()
    assert head_base_fee() <= max(normal_fee, 10**9)


def test_resolved_world_matches_the_devnet_manifest(devnet_world: World) -> None:
    # The real-chain path (resolve addresses, mock the oracles, fund the traders by storage
    # writes), run on a fork of the devnet with the devnet's address book: it must find the
    # devnet's own addresses, and the scenario driver must run on what it built.
    node = start_fork(devnet_world.node.rpc_url)
    try:
        assert node.rpc is not None
        origin = devnet_world.manifest
        manifest, sources = prepare_optimism_world(node.rpc, book_from_manifest(origin),
                                                   origin.contracts["NonfungiblePositionManager"])
        assert [m.model_dump() for m in manifest.markets] == [m.model_dump() for m in origin.markets]
        assert {k: v for k, v in manifest.contracts.items()} == {k: origin.contracts[k] for k in manifest.contracts}
        trader = manifest.accounts.traders[0]
        assert DevSender(node.rpc).read(manifest.contracts["Vault"], codec("Vault"), "getBalance", trader) > 0
        scenario = load_scenario("calm")
        driver = ScenarioDriver(node.rpc, manifest, scenario.activity.activity_config(2), scenario=scenario)
        assert driver.step().step == 1
    finally:
        node.stop()


# ------------------------------------------------------------------------------ simulations
def origin_state(rpc: JsonRpc, manifest: DevnetManifest) -> dict[str, Any]:
    tx = DevSender(rpc)
    eth = manifest.market("ETH")
    return {
        "block": rpc.block_number(),
        "keeper_usdc": balance_of(rpc, manifest.contracts["USDC"], manifest.accounts.keeper),
        "maker_vault": tx.read(manifest.contracts["Vault"], codec("Vault"), "getBalance", manifest.accounts.maker),
        "trader_position": tx.read(manifest.contracts["AccountBalance"], codec("AccountBalance"),
                                   "getTakerPositionSize", manifest.accounts.traders[1], eth.base_token),
        "eth_answer": tx.read(eth.aggregator, codec("MockV3Aggregator"), "latestAnswer"),
        "eth_v3_slot0": tx.read(eth.uniswap_v3_pool, codec("UniswapV3Pool"), "slot0"),
    }


@dataclass
class Run:
    report: dict[str, Any]
    paths: list[Path]
    origin_before: dict[str, Any]
    origin_after: dict[str, Any]
    keys_hex: list[str]  # the throwaway keys the run created


def simulate(world: World, out: Path, scenario: str, steps: int, seed: int = 7) -> Run:
    rpc = world.node.rpc
    assert rpc is not None
    before = origin_state(rpc, world.manifest)
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": _manifest_file(world, out)}})
    keys: list[str] = []
    create = Account.create

    def spy(*args: Any, **kwargs: Any) -> Any:
        account = create(*args, **kwargs)
        keys.append(bytes(account.key).hex())
        return account

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Account, "create", spy)
        paths = run_simulation(settings, fork_url=world.node.rpc_url, fork_block=None, blocks=steps,
                               scenario=scenario, seed=seed, out_dir=out, console=Console(quiet=True))
    return Run(json.loads(paths[0].read_text()), paths, before, origin_state(rpc, world.manifest), keys)


def _manifest_file(world: World, out: Path) -> Path:
    path = out.parent / f"{out.name}-origin-manifest.json"
    world.manifest.write(path)
    return path


@pytest.fixture(scope="module")
def mispricing(devnet_world: World, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(devnet_world, tmp_path_factory.mktemp("sim") / "mispricing", "mispricing", 30)


@pytest.fixture(scope="module")
def blowout(devnet_world: World, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(devnet_world, tmp_path_factory.mktemp("sim") / "blowout", "basis_blowout", 40)


def test_simulation_leaves_the_origin_chain_untouched(mispricing: Run) -> None:
    assert mispricing.origin_after == mispricing.origin_before
    # while the fork itself moved: the keeper traded there
    assert mispricing.report["keeper"]["included"] >= 2


def test_report_files_are_written_and_the_pnl_split_sums_to_the_balance_change(mispricing: Run) -> None:
    json_path, html_path = mispricing.paths
    assert json_path.name == "report.json" and html_path.name == "report.html"
    assert "<svg" in html_path.read_text()
    report = mispricing.report
    c = report["consistency"]
    # every position closed by the wind-down, so the identity is exact
    assert c["positions_closed"] and c["open_positions_after_wind_down"] == []
    pnl = report["keeper"]["pnl"]
    split = int(pnl["funding_x18"]) + int(pnl["convergence_x18"]) - int(pnl["fees_x18"]) - int(pnl["gas_x18"])
    assert split == int(pnl["total_x18"]) == int(c["split_sum_x18"])
    balance_change = (int(c["executor_value_change"]["wallet_usdc_x18"]) + int(c["executor_value_change"]["perp_account_x18"])
                      + int(c["executor_value_change"]["spot_x18"]) - int(c["gas_x18"]))
    assert split == balance_change == int(c["balance_change_x18"])
    assert c["split_equals_balance_change"]
    assert c["gas_wei_equal"] and int(c["gas_wei_owner_spent"]) > 0
    # one sample per tick: warm-up, every scenario step, then the wind-down
    phases = [s["phase"] for s in report["samples"]]
    assert phases.count("warmup") == load_scenario("mispricing").warmup_steps
    assert phases.count("scenario") == 30
    assert 2 <= phases.count("wind_down") <= 8
    assert report["samples"][-1]["keeper"]["pnl"]["total_usd"] == pytest.approx(pnl["total_usd"])


def test_the_throwaway_key_reaches_neither_the_logs_nor_the_report(mispricing: Run) -> None:
    assert len(mispricing.keys_hex) == 1
    out = mispricing.paths[0].parent
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"report.json", "report.html", "keeper.log"}
    assert "keys.loaded" in (out / "keeper.log").read_text()  # the log is there, with the address only
    for path in files:
        text = path.read_text(errors="replace").lower()
        assert mispricing.keys_hex[0] not in text and "0x" + mispricing.keys_hex[0] not in text, path
    assert os.environ.get("KEEPER_PRIVATE_KEY") != mispricing.keys_hex[0]


def test_the_keeper_log_ends_as_a_live_run_s_does_stopping_then_stopped(mispricing: Run) -> None:
    # before: the simulated keeper's log just ended, a finished run read like a crashed one
    log_file = mispricing.paths[0].parent / "keeper.log"
    events = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names.count("keeper.stopping") == names.count("keeper.stopped") == 1
    at = names.index("keeper.stopping")
    ticks = len(mispricing.report["samples"])  # one sample per keeper tick: warm-up, scenario, wind-down
    assert {k: v for k, v in events[at].items() if k != "timestamp"} == {
        "event": "keeper.stopping", "level": "info", "reason": "scenario_end", "steps": 30, "ticks": ticks, "phase": "loop"}
    assert events[at + 1]["event"] == "keeper.stopped" and events[at + 1]["ticks"] == ticks
    assert "tick" in names[:at] and "tick" not in names[at:]  # the keeper ticked, and not after it stopped


def test_keeper_beats_the_baseline_on_a_plain_mispricing(mispricing: Run) -> None:
    comparison = mispricing.report["comparison"]
    assert comparison["keeper_usd"] > 0
    assert comparison["keeper_usd"] > comparison["baseline_usd"]
    assert mispricing.report["baseline"]["paper"] and mispricing.report["optimum"]["paper"]
    # the baseline did trade the shock (a 2% spread clears its 1% threshold)
    assert mispricing.report["baseline"]["trades"]


def test_keeper_survives_a_basis_blowout_within_its_limits(blowout: Run) -> None:
    report = blowout.report
    limits = report["limits"]
    held = [s for s in report["samples"] if s["keeper"]["margin_ratio"] is not None]
    assert held, "the keeper took no position: the blow-out tested nothing"
    assert all(s["keeper"]["margin_ratio"] > limits["min_margin_ratio"] for s in held)
    assert limits["liquidations"] == []
    # notional within the per-market and total limits (marked at the index, which drifts a little)
    drift = 1.02
    assert limits["highest_notional_usd"] <= limits["max_notional_usd_per_market"] * drift
    assert limits["highest_total_notional_usd"] <= limits["max_notional_usd_total"] * drift
    assert report["consistency"]["split_equals_balance_change"]
    assert blowout.origin_after == blowout.origin_before


def test_cli_simulate_writes_the_report(devnet_world: World, tmp_path: Path) -> None:
    # `keeper simulate` as a process, on a fork of the devnet, with nothing but its options (the
    # devnet's addresses are found from the prebuilt state's manifest and checked on the chain)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    result = subprocess.run(
        [sys.executable, "-m", "keeper", "simulate", "--fork-url", devnet_world.node.rpc_url, "--blocks", "10",
         "--scenario", "calm", "--out", str(tmp_path / "out")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "out" / "report.html").is_file()
    assert f"wrote {tmp_path / 'out' / 'report.json'}" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["steps"] == 10 and report["scenario"]["name"] == "calm"
    # ... and says how it went: the keeper against its yardsticks, the books check, where the log is
    summary = result.stdout.splitlines()[0]
    assert summary.startswith("calm seed 7, 10 steps on a fork of block ")
    assert f"keeper {report['comparison']['keeper_usd']:+,.2f} USD" in summary and "hindsight optimum" in summary
    assert f"keeper log: {tmp_path / 'out' / 'keeper.log'}" in result.stdout
    assert not any(name.startswith(".simulation-") for name in os.listdir(tmp_path / "out"))  # work dir removed
