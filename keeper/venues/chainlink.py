"""Chainlink-style aggregators: latest answer and its age."""

from __future__ import annotations

from typing import Any, ClassVar

from keeper.artifacts import abi_codec
from keeper.chain.multicall import Call, word_int, word_uint
from keeper.types import OracleState, Unavailable
from keeper.venues.reads import ReadPlan
from keeper.venues.snapshot_reads import MarketAnswers, ReadContext, SnapshotReads

_AGGREGATOR = abi_codec("MockV3Aggregator")  # the AggregatorV3Interface subset is the same
LATEST_ROUND_DATA = _AGGREGATOR.encode("latestRoundData")
DECIMALS = _AGGREGATOR.encode("decimals")


def plan_latest_answer(aggregator: str, decimals: int) -> ReadPlan[OracleState]:
    """latestRoundData -> (roundId, answer, startedAt, updatedAt, answeredInRound)."""

    def decode(data: list[bytes]) -> OracleState:
        answer, updated_at = word_int(data[0], 1), word_uint(data[0], 3)
        return OracleState(answer, decimals, updated_at)

    return ReadPlan([Call(aggregator, LATEST_ROUND_DATA, f"aggregator({aggregator}).latestRoundData")], decode)


class ChainlinkReads(SnapshotReads):
    """The market's oracle answer as its part of a snapshot (MarketView.oracle)."""

    snapshot_field: ClassVar[str] = "oracle"

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        return {"oracle": plan_latest_answer(ctx.static.source.aggregator, ctx.static.oracle_decimals)}

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> OracleState | Unavailable:
        return answers.reads["oracle"]  # type: ignore[no-any-return]
