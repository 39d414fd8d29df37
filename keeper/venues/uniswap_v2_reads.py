"""Uniswap V2's part of a snapshot: the market's spot pair reserves."""

from __future__ import annotations

from typing import Any, ClassVar

from keeper.types import Unavailable, V2PairState
from keeper.venues import uniswap_v2
from keeper.venues.reads import ReadPlan
from keeper.venues.snapshot_reads import MarketAnswers, ReadContext, SnapshotReads


class UniswapV2Reads(SnapshotReads):
    snapshot_field: ClassVar[str] = "spot_v2"

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        source = ctx.static.source
        return {"v2": uniswap_v2.plan_pair_reserves(source.uniswap_v2_pair, source.spot_is_token0)} if source.uniswap_v2_pair else {}

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> V2PairState | Unavailable:
        return answers.reads["v2"] if "v2" in answers.reads else Unavailable("no Uniswap V2 pair configured")
