"""Perp v2's part of a snapshot: the market's prices, fees and limits, its vAMM (a Uniswap V3
pool, read in full), the stored tick band (two storage words) and the account's positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from keeper.types import PerpMarketState, Unavailable
from keeper.venues import perp_v2, uniswap_v3
from keeper.venues.reads import ReadPlan
from keeper.venues.snapshot_reads import MarketAnswers, PoolSlot, ReadContext, SnapshotReads, StorageRequest
from keeper.venues.sources import MarketStatic


class PerpV2Reads(SnapshotReads):
    snapshot_field: ClassVar[str] = "perp"
    reads_storage: ClassVar[bool] = True

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        return {"perp": perp_v2.plan_market(ctx.perp, ctx.static.source.base_token, ctx.config.twap_interval_s),
                "perp_head": uniswap_v3.plan_head(ctx.static.perp_pool.address)}

    def pools(self, ctx: ReadContext) -> tuple[PoolSlot, ...]:
        return (PoolSlot("perp_head", "perp_bitmap", ctx.static.perp_pool),)

    def storage_requests(self, ctx: ReadContext, block: int) -> list[StorageRequest]:
        return perp_v2.band_storage_requests(ctx.perp.exchange, ctx.static.source.base_token, block)

    def account_plan(self, perp: perp_v2.PerpAddresses, account: str, statics: Sequence[MarketStatic]) -> ReadPlan[Any]:
        return perp_v2.plan_account(perp, account, [(s.source.name, s.source.base_token) for s in statics])

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> PerpMarketState | Unavailable:
        reads = answers.reads["perp"]
        if isinstance(reads, Unavailable):
            return reads
        pool = answers.pool_state(ctx.static.perp_pool)
        if isinstance(pool, Unavailable):
            return pool
        words = answers.storage.get("perp")
        band = perp_v2.decode_band_storage(*words) if words else None
        cfg = ctx.config
        return PerpMarketState(  # positional, in the field order (two a block in a backtest)
            ctx.static.source.base_token, pool, reads.mark_price_x18,  # base_token, pool, mark_price_x18
            reads.index_price_x18, reads.index_twap_x18, reads.market_twap_x18,  # index, index TWAP, market TWAP
            reads.exchange_fee_ratio_ppm, reads.uniswap_fee_ratio_ppm, reads.insurance_fund_fee_ratio_ppm,
            cfg.max_funding_rate_ppm, cfg.twap_interval_s, reads.max_price_spread_ratio_ppm,
            band[0] if band else None, band[1] if band else None,  # band_last_updated_tick, ..._timestamp_s
            reads.max_tick_crossed_within_block, answers.block_timestamp_s)  # ..., snapshot_timestamp_s
