"""The venue-agnostic collector (each venue plans its reads and builds its MarketView field) makes
the same snapshots, from the same calls in the same batches, as main's venue-specific collector
(frozen in tests/integration/legacy_collect.py), block after block on a driven devnet: quiet
blocks, a perp push that moves a vAMM, spot swaps that move a pool's price past its bitmap window
(a third round trip), oracle updates, and a venue whose reads revert."""

from __future__ import annotations

from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.txs import codec
from keeper.types import MarketSnapshot, PerpMarketState, Unavailable

from . import legacy_collect
from .conftest import Devnet

USDC = 10**6


def assert_same_snapshot(new: SnapshotCollector, old: legacy_collect.SnapshotCollector, block: int) -> MarketSnapshot:
    got, want = new.fetch_snapshot(block), old.fetch_snapshot(block)
    assert got == want  # every field, every market, the account, the wallet and the round trips
    assert new._phase1().calldata == old._phase1().calldata  # the same calls, in the same order
    assert set(new._ticks_cache) == set(old._ticks_cache)
    for key, (plans, calldata) in new._ticks_cache.items():
        assert calldata == old._ticks_cache[key][1] and len(plans) == len(old._ticks_cache[key][0])
    return got


def test_new_collector_equals_the_old_one_block_after_block(devnet: Devnet) -> None:
    trader = devnet.manifest.accounts.traders[0]
    sources = Sources.from_manifest(devnet.manifest)
    new = SnapshotCollector(devnet.rpc, sources, account=trader)
    old = legacy_collect.SnapshotCollector(devnet.rpc, legacy_collect.Sources.from_manifest(devnet.manifest), account=trader)
    new.prepare()
    old.prepare()
    assert [(s.source.name, s.perp_pool.address, s.oracle_decimals) for s in new.static] == \
        [(s.source.name, s.perp_pool.address, s.oracle_decimals) for s in old.static]
    eth, btc = devnet.manifest.market("ETH"), devnet.manifest.market("BTC")
    mover = devnet.manifest.accounts.traders[1]
    router, usdc = devnet.contract("SwapRouter"), devnet.contract("USDC")

    def swap(token_in: str, token_out: str, fee: int, amount: int) -> None:
        devnet.tx.call_fn(mover, router, codec("SwapRouter"), "exactInputSingle",
                          (token_in, token_out, fee, mover, DEADLINE_NEVER, amount, 0, 0))

    def step() -> MarketSnapshot:
        return assert_same_snapshot(new, old, devnet.rpc.block_number())

    assert step().rpc_round_trips == 3  # the first snapshot learns the windows
    for _ in range(3):  # quiet blocks: two round trips, every cache hit
        devnet.rpc.call("evm_mine")
        assert step().rpc_round_trips == 2
    # a perp push moves ETH's vAMM and stores a new tick band
    limit = int((3060 ** 0.5) * 2**96)
    devnet.tx.call_fn(devnet.manifest.accounts.traders[2], devnet.contract("ClearingHouse"), codec("ClearingHouse"),
                      "openPosition", (eth.base_token, False, True, 10**26, 0, DEADLINE_NEVER, limit, b"\0" * 32))
    perp = step().markets["ETH"].perp
    assert isinstance(perp, PerpMarketState) and perp.band_last_updated_tick is not None
    # a far spot move (past the bitmap window), then back, then an oracle update
    swap(usdc, eth.spot_token, eth.uniswap_v3_fee_pips, 15_000_000 * USDC)
    assert step().rpc_round_trips == 3  # the window is re-read around the new tick
    devnet.rpc.call("evm_mine")
    step()
    swap(usdc, btc.spot_token, btc.uniswap_v3_fee_pips, 5_000_000 * USDC)
    step()
    devnet.rpc.call("evm_increaseTime", [300])
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, eth.aggregator, codec("MockV3Aggregator"), "updateAnswer", 2900 * 10**8)
    step()
    # a venue whose reads revert: only its field is Unavailable, in both
    devnet.rpc.call("anvil_setCode", [eth.uniswap_v2_pair, "0xfe"])
    step()
    assert isinstance(new.fetch_snapshot(devnet.rpc.block_number()).markets["ETH"].spot_v2, Unavailable)
