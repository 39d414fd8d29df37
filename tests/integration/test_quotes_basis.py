"""quote_basis_trade predicts the BasisExecutor's Fills to the wei: an open quoted from a
SnapshotCollector snapshot, run for real through the executor with bounds at 0 bps slippage (any
wei of difference would revert), reports exactly `predicted`; so does the close quoted from the
next snapshot. Both directions, both spot venues, an 18- and an 8-decimal spot token."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.txs import codec
from keeper.quote_bounds import compute_bounds
from keeper.quotes import BasisTradeQuote, price_band_for_trade_at, quote_basis_trade, snapshot_price_band
from keeper.types import Direction, MarketSnapshot, PerpAccountState, PerpMarketState, Position, SpotVenue
from keeper.venues.perp_v2_math import PerpPriceBand
from keeper.venues.uniswap_v3_libraries import get_sqrt_ratio_at_tick

from .conftest import Devnet
from .executor_setup import Executor, deploy_executor, send_trade, simulate_trade, token_balance, trade_call

ETH_SIZE_X18 = 3 * 10**18 + 123_456_789  # 18 decimals: no rounding
BTC_SIZE_X18 = 123_456_789_012_345_678  # WBTC has 8 decimals: rounds down to 0.12345678
EXCHANGE = codec("Exchange")
CH = codec("ClearingHouse")
POOL = codec("UniswapV3Pool")
NO_REFERRAL = b"\0" * 32
EXCHANGE_LAST_UPDATED_TICK_SLOT = 208  # Exchange._lastUpdatedTickMap (Curie 2.8.4 storage layout)
EXCHANGE_LAST_TICK_UPDATED_TIMESTAMP_SLOT = 214  # Exchange._lastTickUpdatedTimestampMap


def collector_for(devnet: Devnet, account: str) -> SnapshotCollector:
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=account)
    collector.prepare()
    return collector


def run_exactly(devnet: Devnet, ex: Executor, quote: BasisTradeQuote) -> int:
    """Simulate, then send the quoted trade with 0-bps bounds; assert both report `predicted`.
    Returns the position after, as the executor reports it."""
    bounds = compute_bounds(quote, slippage_bps=0)
    assert bounds.min_net_quote_x18 == quote.predicted.net_quote_x18
    fn, args = trade_call(quote, bounds)
    assert simulate_trade(devnet, ex, fn, args).as_predicted() == quote.predicted
    fills = send_trade(devnet, ex, fn, args)
    assert fills.as_predicted() == quote.predicted
    return fills.position_base_x18_after


def account_position(snapshot: MarketSnapshot, market: str) -> int:
    account = snapshot.account
    assert isinstance(account, PerpAccountState)
    return account.markets[market].position_size_x18


@pytest.mark.parametrize("market, size_x18", [("ETH", ETH_SIZE_X18), ("BTC", BTC_SIZE_X18)])
@pytest.mark.parametrize("venue", ["uniswap_v3", "uniswap_v2"])
@pytest.mark.parametrize("direction", [Direction.SHORT_PERP, Direction.LONG_PERP], ids=["short_perp", "long_perp"])
def test_open_then_close_fills_equal_the_quotes_to_the_wei(
    devnet: Devnet, direction: Direction, venue: SpotVenue, market: str, size_x18: int
) -> None:
    # Given a funded executor and a snapshot of the chain (the executor's Perp account included)
    ex = deploy_executor(devnet)
    collector = collector_for(devnet, ex.address)
    snapshot = collector.fetch_snapshot()
    view = snapshot.markets[market]
    spot_token = devnet.manifest.market(market).spot_token
    spot_before = token_balance(devnet, spot_token, ex.address)

    # When the open is quoted on it and then executed
    opened = quote_basis_trade(view, "open", direction, venue, size_x18)
    position_after = run_exactly(devnet, ex, opened)

    # Then the executor reported exactly the predicted fills (checked inside), the legs offset
    # exactly (8 decimals: the size was rounded down to whole satoshis), and the chain agrees
    scale = 10 ** (18 - view.spot_token_decimals)
    expected_size = size_x18 // scale * scale
    assert opened.predicted.perp_base_x18 == direction.perp_sign * expected_size
    assert opened.predicted.spot_raw == -direction.perp_sign * (expected_size // scale)
    assert opened.predicted.residual_base_x18 == 0
    assert position_after == opened.predicted.perp_base_x18
    assert token_balance(devnet, spot_token, ex.address) - spot_before == opened.predicted.spot_raw
    # fees and impact are real costs of the open
    assert opened.perp.fee_usd > 0 and opened.spot.fee_usd > 0
    assert opened.perp.impact_usd > 0 and opened.spot.impact_usd > -1e-6

    # Given the next snapshot, which sees the position
    after_open = collector.fetch_snapshot()
    assert account_position(after_open, market) == opened.predicted.perp_base_x18
    position = Position(market=market, direction=direction, spot_venue=venue,
                        perp_base_x18=opened.predicted.perp_base_x18, spot_raw=opened.predicted.spot_raw,
                        entry_block=after_open.block_number, entry_timestamp_s=after_open.block_timestamp,
                        entry_basis_bps=opened.mid_basis_bps, net_quote_x18=opened.predicted.net_quote_x18)

    # When the close is quoted on it and executed
    closing = quote_basis_trade(after_open.markets[market], "close", direction, venue, 0, position)
    assert not closing.perp.is_partial_close
    position_after = run_exactly(devnet, ex, closing)

    # Then the executor reported exactly the predicted fills, and everything is back to flat
    assert closing.predicted.perp_base_x18 == -opened.predicted.perp_base_x18
    assert closing.predicted.spot_raw == -opened.predicted.spot_raw
    assert closing.predicted.residual_base_x18 == 0
    assert position_after == 0
    assert token_balance(devnet, spot_token, ex.address) == spot_before
    # and the round trip lost money to fees and impact (no time passed for the basis to move)
    assert opened.predicted.net_quote_x18 + closing.predicted.net_quote_x18 < 0


def exchange_mapping_word(devnet: Devnet, base_token: str, slot: int) -> int:
    key = keccak(bytes.fromhex(base_token[2:].rjust(64, "0")) + slot.to_bytes(32, "big"))
    return int(devnet.rpc.call("eth_getStorageAt", [devnet.contract("Exchange"), "0x" + key.hex(), "latest"]), 16)


def read_price_band(devnet: Devnet, base_token: str, pool_tick: int, trade_timestamp_s: int) -> PerpPriceBand:
    """The band a trade at trade_timestamp_s will see, from Exchange's storage (no getter)."""
    last_tick = exchange_mapping_word(devnet, base_token, EXCHANGE_LAST_UPDATED_TICK_SLOT)
    last_tick = last_tick - (1 << 24) if last_tick >= 1 << 23 else last_tick  # int24
    last_ts = exchange_mapping_word(devnet, base_token, EXCHANGE_LAST_TICK_UPDATED_TIMESTAMP_SLOT)
    max_ticks = devnet.tx.read(devnet.contract("Exchange"), EXCHANGE, "getMaxTickCrossedWithinBlock", base_token)
    return price_band_for_trade_at(last_tick, last_ts, max_ticks, pool_tick, trade_timestamp_s)


def test_a_close_that_hits_the_tick_band_is_partial_and_still_exact(devnet: Devnet) -> None:
    eth = devnet.manifest.market("ETH")
    ex = deploy_executor(devnet)
    collector = collector_for(devnet, ex.address)
    # Given one second per block from now on, and a narrow tick band of +-200 ticks per 15 s
    devnet.rpc.call("anvil_setBlockTimestampInterval", [1])
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, devnet.contract("Exchange"), EXCHANGE,
                      "setMaxTickCrossedWithinBlock", eth.base_token, 200)
    # And a short-perp position in ETH (V3 spot): its open re-centres the band on the vAMM's tick
    snapshot = collector.fetch_snapshot()
    opened = quote_basis_trade(snapshot.markets["ETH"], "open", Direction.SHORT_PERP, "uniswap_v3", 30 * 10**18)
    run_exactly(devnet, ex, opened)
    # And, within the same 15 s, another trader pushing the vAMM up to 20 ticks under the band's
    # upper edge, so that buying the position back runs into it
    pool_tick = devnet.tx.read(eth.perp_pool, POOL, "slot0")[1]
    band = read_price_band(devnet, eth.base_token, pool_tick, snapshot.block_timestamp + 2)
    devnet.tx.call_fn(devnet.manifest.accounts.traders[2], devnet.contract("ClearingHouse"), CH, "openPosition",
                      (eth.base_token, False, True, 10**25, 0, DEADLINE_NEVER,
                       get_sqrt_ratio_at_tick(band.last_updated_tick + 180), NO_REFERRAL))
    snapshot = collector.fetch_snapshot()
    view = snapshot.markets["ETH"]
    assert isinstance(view.perp, PerpMarketState)

    # When the close is quoted with the band read from the chain for the next block
    band = read_price_band(devnet, eth.base_token, view.perp.pool.tick, snapshot.block_timestamp + 1)
    assert band.last_updated_tick != view.perp.pool.tick  # the band was not re-centred
    position = Position("ETH", Direction.SHORT_PERP, "uniswap_v3", opened.predicted.perp_base_x18,
                        opened.predicted.spot_raw, snapshot.block_number, snapshot.block_timestamp,
                        opened.mid_basis_bps, opened.predicted.net_quote_x18)
    closing = quote_basis_trade(view, "close", Direction.SHORT_PERP, "uniswap_v3", 0, position, price_band=band)
    # and the snapshot read the same band itself (storage pinned to its block, the 200-tick limit)
    assert snapshot_price_band(view.perp) == band and view.perp.max_tick_crossed_within_block == 200
    assert quote_basis_trade(view, "close", Direction.SHORT_PERP, "uniswap_v3", 0, position) == closing

    # Then it is a partial close, its spot leg cut to the base bought back, and the chain agrees
    assert closing.perp.is_partial_close
    assert 0 < closing.predicted.perp_base_x18 < -position.perp_base_x18
    assert closing.predicted.spot_raw == -closing.predicted.perp_base_x18
    assert closing.predicted.residual_base_x18 == 0
    assert run_exactly(devnet, ex, closing) == position.perp_base_x18 + closing.predicted.perp_base_x18


@pytest.mark.parametrize("direction", [Direction.SHORT_PERP, Direction.LONG_PERP], ids=["short_perp", "long_perp"])
def test_resizes_up_and_down_fill_as_quoted(devnet: Devnet, direction: Direction) -> None:
    # Given an open 2 ETH position (V2 spot)
    ex = deploy_executor(devnet)
    collector = collector_for(devnet, ex.address)
    opened = quote_basis_trade(collector.fetch_snapshot().markets["ETH"], "open", direction, "uniswap_v2", 2 * 10**18)
    size_x18 = run_exactly(devnet, ex, opened)
    spot_raw = opened.predicted.spot_raw
    # When it is grown by 1.25 and then shrunk by 2.5 (the signed change of its size), each resize
    # quoted on a fresh snapshot
    for change_x18 in (1_250_000_000_000_000_000, -2_500_000_000_000_000_000):
        position = Position("ETH", direction, "uniswap_v2", size_x18, spot_raw, 0, 0, 0.0, 0)
        resized = quote_basis_trade(collector.fetch_snapshot().markets["ETH"], "resize", direction, "uniswap_v2",
                                    change_x18, position)
        # Then the executor's fills are the quote's, to the wei
        after = run_exactly(devnet, ex, resized)
        assert after == size_x18 + resized.predicted.perp_base_x18
        assert abs(after) == abs(size_x18) + change_x18
        size_x18, spot_raw = after, spot_raw + resized.predicted.spot_raw
    assert abs(size_x18) == 750_000_000_000_000_000 and resized.predicted.residual_base_x18 == 0


def test_the_snapshot_reads_the_band_pinned_to_its_block(devnet: Devnet) -> None:
    # Given a snapshot, then a trade in a later block that moves the vAMM and re-centres the band
    eth = devnet.manifest.market("ETH")
    collector = collector_for(devnet, deploy_executor(devnet).address)
    before = collector.fetch_snapshot()
    devnet.rpc.call("evm_increaseTime", [60])
    devnet.tx.call_fn(devnet.manifest.accounts.traders[2], devnet.contract("ClearingHouse"), CH, "openPosition",
                      (eth.base_token, False, True, 10**23, 0, DEADLINE_NEVER, 0, NO_REFERRAL))
    after = collector.fetch_snapshot()
    # When the earlier block is read again
    again = collector.fetch_snapshot(before.block_number)
    perp_before, perp_after, perp_again = (s.markets["ETH"].perp for s in (before, after, again))
    assert isinstance(perp_before, PerpMarketState) and isinstance(perp_after, PerpMarketState)
    assert isinstance(perp_again, PerpMarketState)
    # Then each snapshot holds the band of its own block: the storage the contract keeps, read directly
    assert perp_after.band_last_updated_tick == read_price_band(devnet, eth.base_token, 0, 0).last_updated_tick
    # (the trade's settleFunding re-centred the band on the tick BEFORE the trade, at its block's time)
    assert perp_after.band_last_updated_tick == perp_before.pool.tick != perp_after.pool.tick
    assert perp_after.band_last_updated_timestamp_s == after.block_timestamp != perp_before.band_last_updated_timestamp_s
    assert (perp_again.band_last_updated_tick, perp_again.band_last_updated_timestamp_s) == (
        perp_before.band_last_updated_tick, perp_before.band_last_updated_timestamp_s)
    # and the limit per block is the one Exchange stores at slot 212 (the storage layout checks out)
    assert exchange_mapping_word(devnet, eth.base_token, 212) == perp_after.max_tick_crossed_within_block
