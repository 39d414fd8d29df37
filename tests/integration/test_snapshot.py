"""The snapshot collector reads exactly what the contracts say, at one block, in few calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.txs import codec
from keeper.signals import BasisHistory, Signal, compute_signals
from keeper.types import SPOT_VENUES, PerpMarketState, Unavailable, V2PairState, perp_price_from_sqrt_x96
from keeper.venues.uniswap_v3_math import V3PoolState

from .conftest import Devnet

USDC = 10**6


def collector_for(devnet: Devnet, account: str | None = None) -> SnapshotCollector:
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=account)
    collector.prepare()
    return collector


def read_at(devnet: Devnet, block: int, to: str, abi: str, fn: str, *args: object) -> object:
    c = codec(abi)
    out = c.decode(fn, devnet.rpc.eth_call(to, c.encode(fn, *args), block), len(args))
    return out[0] if len(out) == 1 else out


def initialized_ticks_by_direct_reads(devnet: Devnet, pool: str, block: int, window: tuple[int, int], spacing: int) -> dict[int, int]:
    pool_abi = codec("UniswapV3Pool")
    nets = {}
    for word in range(window[0] // spacing >> 8, (window[1] // spacing >> 8) + 1):
        bitmap = read_at(devnet, block, pool, "UniswapV3Pool", "tickBitmap", word)
        for bit in range(256):
            if bitmap >> bit & 1:
                tick = (word * 256 + bit) * spacing
                nets[tick] = pool_abi.decode("ticks", devnet.rpc.eth_call(pool, pool_abi.encode("ticks", tick), block))[1]
    return nets


def test_steady_state_snapshot_takes_two_calls_and_matches_direct_reads(devnet: Devnet) -> None:
    trader = devnet.manifest.accounts.traders[0]
    collector = collector_for(devnet, account=trader)
    first = collector.fetch_snapshot()
    assert first.rpc_round_trips == 3  # the first one learns each pool's tick window
    devnet.rpc.call("evm_mine")
    snap = collector.fetch_snapshot()
    assert snap.rpc_round_trips == 2
    block = snap.block_number
    perp_addrs = devnet.manifest.contracts
    for m in devnet.manifest.markets:
        view = snap.markets[m.name]
        perp = view.perp
        assert isinstance(perp, PerpMarketState)
        assert perp.mark_price_x18 == read_at(devnet, block, perp_addrs["AccountBalance"], "AccountBalance", "getMarkPrice", m.base_token)
        assert perp.index_price_x18 == read_at(devnet, block, m.base_token, "BaseToken", "getIndexPrice", 0)
        assert perp.index_twap_x18 == read_at(devnet, block, m.base_token, "BaseToken", "getIndexPrice", 900)
        sqrt_twap = read_at(devnet, block, perp_addrs["Exchange"], "Exchange", "getSqrtMarketTwapX96", m.base_token, 900)
        assert perp.market_twap_x18 == perp_price_from_sqrt_x96(sqrt_twap)  # type: ignore[arg-type]
        assert perp.exchange_fee_ratio_ppm == 1000 and perp.max_funding_rate_ppm == 100_000
        for pool_state, pool in ((perp.pool, m.perp_pool), (view.spot_v3, m.uniswap_v3_pool)):
            assert isinstance(pool_state, V3PoolState)
            slot0 = read_at(devnet, block, pool, "UniswapV3Pool", "slot0")
            assert (pool_state.sqrt_price_x96, pool_state.tick) == slot0[:2]  # type: ignore[index]
            assert pool_state.liquidity == read_at(devnet, block, pool, "UniswapV3Pool", "liquidity")
            direct = initialized_ticks_by_direct_reads(devnet, pool, block, pool_state.tick_window, pool_state.tick_spacing)
            assert dict(pool_state.liquidity_net_by_tick) == direct and len(direct) >= 4
        pair = view.spot_v2
        assert isinstance(pair, V2PairState)
        r0, r1, _ = read_at(devnet, block, m.uniswap_v2_pair, "UniswapV2Pair", "getReserves")  # type: ignore[misc]
        assert {pair.reserve_spot_raw, pair.reserve_usdc_raw} == {r0, r1}
        answer = read_at(devnet, block, m.aggregator, "MockV3Aggregator", "latestAnswer")
        assert not isinstance(view.oracle, Unavailable) and view.oracle.answer_raw == answer
    account = snap.account
    assert account is not None and not isinstance(account, Unavailable)
    assert account.account_value_x18 == read_at(devnet, block, perp_addrs["ClearingHouse"], "ClearingHouse", "getAccountValue", trader)
    assert account.free_collateral_raw == read_at(devnet, block, perp_addrs["Vault"], "Vault", "getFreeCollateral", trader)
    # the account's wallet, read in the same batch: USDC and every spot token
    for token in {perp_addrs["USDC"], *(m.spot_token for m in devnet.manifest.markets)}:
        assert snap.wallet_raw[token] == read_at(devnet, block, token, "MintableERC20", "balanceOf", trader)


def test_an_account_set_after_a_snapshot_is_read_from_the_next_one(devnet: Devnet) -> None:
    # keeper run checks the chain's code before it knows its executor, then names the account
    collector = collector_for(devnet)
    for _ in range(2):  # the second: with the tick windows known, the plans it caches for the blocks after
        assert collector.fetch_snapshot().account is None
    collector.account = devnet.manifest.accounts.traders[0]  # the cached plans had no account read
    snap = collector.fetch_snapshot()
    assert snap.account is not None and not isinstance(snap.account, Unavailable) and snap.wallet_raw


def test_a_failing_sub_read_marks_only_that_venue_unavailable(devnet: Devnet) -> None:
    collector = collector_for(devnet)
    eth = devnet.manifest.market("ETH")
    # Given the ETH V2 pair's code replaced by code that always reverts (INVALID opcode)
    devnet.rpc.call("anvil_setCode", [eth.uniswap_v2_pair, "0xfe"])
    snap = collector.fetch_snapshot()
    # Then ETH's V2 venue is unavailable with a reason naming the read, and everything else is read
    v2 = snap.markets["ETH"].spot_v2
    assert isinstance(v2, Unavailable) and "getReserves reverted" in v2.reason
    assert isinstance(snap.markets["ETH"].spot_v3, V3PoolState)
    assert isinstance(snap.markets["BTC"].spot_v2, V2PairState)
    signals = compute_signals(snap, BasisHistory(window_s=600, min_samples=2))
    skipped = [s for s in signals if not isinstance(s, Signal)]
    assert [(s.market, s.spot_venue) for s in skipped] == [("ETH", "uniswap_v2")]


def test_a_big_price_move_rereads_the_tick_window_and_stays_exact(devnet: Devnet) -> None:
    collector = collector_for(devnet)
    collector.fetch_snapshot()
    eth = devnet.manifest.market("ETH")
    trader = devnet.manifest.accounts.traders[1]
    # Given a swap that moves the ETH spot price far (more than a bitmap word of ticks)
    devnet.tx.call_fn(trader, devnet.contract("SwapRouter"), codec("SwapRouter"), "exactInputSingle",
                      (devnet.contract("USDC"), eth.spot_token, eth.uniswap_v3_fee_pips, trader, DEADLINE_NEVER,
                       15_000_000 * USDC, 0, 0))
    snap = collector.fetch_snapshot()
    pool = snap.markets["ETH"].spot_v3
    assert isinstance(pool, V3PoolState)
    assert pool.tick_window[0] <= pool.tick <= pool.tick_window[1]
    direct = initialized_ticks_by_direct_reads(devnet, eth.uniswap_v3_pool, snap.block_number, pool.tick_window, pool.tick_spacing)
    assert dict(pool.liquidity_net_by_tick) == direct


def test_funding_sign_and_carry_follow_the_premium(devnet: Devnet) -> None:
    collector = collector_for(devnet)
    eth = devnet.manifest.market("ETH")
    pusher = devnet.manifest.accounts.traders[2]
    # Given the perp pushed ~2% above the index and 20 minutes of TWAP at that level
    limit = int((3060 ** 0.5) * 2**96)
    devnet.tx.call_fn(pusher, devnet.contract("ClearingHouse"), codec("ClearingHouse"), "openPosition",
                      (eth.base_token, False, True, 10**26, 0, DEADLINE_NEVER, limit, b"\0" * 32))
    for _ in range(4):
        devnet.rpc.call("evm_increaseTime", [300])
        devnet.tx.call_fn(devnet.manifest.accounts.deployer, eth.aggregator, codec("MockV3Aggregator"), "updateAnswer", 3000 * 10**8)
        devnet.tx.call_fn(devnet.manifest.accounts.deployer, eth.chainlink_price_feed, codec("ChainlinkPriceFeedV3"), "update")
    snap = collector.fetch_snapshot()
    signal = next(s for s in compute_signals(snap, BasisHistory(600, 2)) if isinstance(s, Signal) and s.market == "ETH")
    # Then longs pay: funding positive, short perp + long spot earns it; basis is positive
    assert signal.funding_rate_per_hour > 0
    assert signal.carry_apr_short_perp == signal.funding_apr > 0 > signal.carry_apr_long_perp
    assert signal.basis_bps > 100
    # About 2% per day at a 2% premium: funding per hour ~ 0.02 / 24
    assert signal.funding_rate_per_hour == pytest.approx(0.02 / 24, rel=0.25)


def test_scan_cli_prints_rows_and_exits_2_on_bad_input(devnet: Devnet, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    result = subprocess.run([sys.executable, "-m", "keeper", "scan", "--manifest", str(manifest), "--json",
                             "--history-blocks", "3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["market"] for r in rows] == ["ETH", "BTC"]
    for row in rows:
        assert row["unavailable"] == []
        assert list(row["spot"]) == list(SPOT_VENUES)  # a column set per spot venue, each read by its adapter
        for spot in row["spot"].values():
            assert spot["basis_bps"] == pytest.approx((row["perp_vamm_usd"] / spot["spot_usd"] - 1) * 1e4)
            assert 0 < spot["depth_1pct_usd"] < spot["depth_2pct_usd"]
        # A chain loaded from a state file has no state before the load: scan reads what exists
        # (fewer blocks than asked for) and says how many, instead of failing.
        assert 0 <= row["zscore_history_blocks"] < 3
    # A wrong chain id in the manifest, and a manifest address without code: one line, exit 2
    bad = json.loads(manifest.read_text())
    bad["chain_id"] = 10
    (tmp_path / "wrong-chain.json").write_text(json.dumps(bad))
    bad["chain_id"] = devnet.manifest.chain_id
    bad["markets"][1]["aggregator"] = "0x" + "ab" * 20
    (tmp_path / "no-code.json").write_text(json.dumps(bad))
    for name, expected in (("wrong-chain.json", "expected 10"), ("no-code.json", "BTC.aggregator")):
        result = subprocess.run([sys.executable, "-m", "keeper", "scan", "--manifest", str(tmp_path / name)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "-m", "keeper", "scan", "--manifest", str(manifest), "--rpc-url",
                             "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "http://127.0.0.1:9" in result.stderr




def test_scan_takes_the_chain_from_the_config_file(devnet: Devnet, tmp_path: Path) -> None:
    """-c FILE: its chain.manifest, not a manifest another devnet left in .keeper/devnet/."""
    manifest = tmp_path / "manifest.json"
    devnet.manifest.write(manifest)
    devnet.manifest.with_rpc_url("http://127.0.0.1:9").write(tmp_path / ".keeper" / "devnet" / "manifest.json")
    (tmp_path / "keeper.toml").write_text(f'[chain]\nmanifest = "{manifest}"\n')
    result = subprocess.run([sys.executable, "-m", "keeper", "scan", "-c", "keeper.toml", "--json", "--history-blocks", "0"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {row["market"] for row in json.loads(result.stdout)} == {m.name for m in devnet.manifest.markets}
