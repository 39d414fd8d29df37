"""Uniswap V3's part of a snapshot: the market's spot pool, read in full (head, bitmap window,
initialized ticks' liquidity)."""

from __future__ import annotations

from typing import Any, ClassVar

from keeper.types import Unavailable
from keeper.venues import uniswap_v3
from keeper.venues.reads import ReadPlan
from keeper.venues.snapshot_reads import MarketAnswers, PoolSlot, ReadContext, SnapshotReads
from keeper.venues.uniswap_v3_math import V3PoolState


class UniswapV3Reads(SnapshotReads):
    snapshot_field: ClassVar[str] = "spot_v3"

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        pool = ctx.static.spot_v3_pool
        return {"v3_head": uniswap_v3.plan_head(pool.address)} if pool else {}

    def pools(self, ctx: ReadContext) -> tuple[PoolSlot, ...]:
        pool = ctx.static.spot_v3_pool
        return (PoolSlot("v3_head", "v3_bitmap", pool),) if pool else ()

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> V3PoolState | Unavailable:
        return answers.pool_state(ctx.static.spot_v3_pool)
