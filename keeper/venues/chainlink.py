"""Chainlink-style aggregators: latest answer and its age; past rounds (for `keeper stress`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.artifacts import abi_codec
from keeper.chain.abi import describe_revert
from keeper.chain.multicall import Call, Multicall, word_int, word_uint
from keeper.types import OracleState, Unavailable
from keeper.venues.reads import ReadPlan
from keeper.venues.snapshot_reads import MarketAnswers, ReadContext, SnapshotReads

_AGGREGATOR = abi_codec("MockV3Aggregator")  # the AggregatorV3Interface subset is the same
LATEST_ROUND_DATA = _AGGREGATOR.encode("latestRoundData")
DECIMALS = _AGGREGATOR.encode("decimals")
ROUND_WORDS = 5  # (roundId, answer, startedAt, updatedAt, answeredInRound)


def plan_latest_answer(aggregator: str, decimals: int) -> ReadPlan[OracleState]:
    """latestRoundData -> (roundId, answer, startedAt, updatedAt, answeredInRound)."""

    def decode(data: list[bytes]) -> OracleState:
        round_data = data[0]  # word_int / word_uint inlined: every market, every block in a backtest
        answer, updated_at = int.from_bytes(round_data[32:64], "big", signed=True), int.from_bytes(round_data[96:128], "big")
        return OracleState(answer, decimals, updated_at)

    return ReadPlan([Call(aggregator, LATEST_ROUND_DATA, f"aggregator({aggregator}).latestRoundData")], decode)


class ChainlinkReads(SnapshotReads):
    """The market's oracle answer as its part of a snapshot (MarketView.oracle)."""

    snapshot_field: ClassVar[str] = "oracle"

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        return {"oracle": plan_latest_answer(ctx.static.source.aggregator, ctx.static.oracle_decimals)}

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> OracleState | Unavailable:
        return answers.reads["oracle"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OracleRound:
    round_id: int
    answer_raw: int
    updated_at_s: int


def _decode_round(data: bytes) -> OracleRound:
    return OracleRound(word_uint(data, 0), word_int(data, 1), word_uint(data, 3))


def fetch_recent_rounds(multicall: Multicall, aggregator: str, block: int, max_rounds: int) -> list[OracleRound] | Unavailable:
    """The aggregator's latest round and up to max_rounds - 1 rounds before it (round ids counting
    down), newest first, read at `block` in two Multicall3 calls. The list ends before the first
    round that reverts or is empty (updatedAt 0 or answer <= 0: before the feed's first round, or
    before a proxy's phase), or that is newer than the round after it. Unavailable when
    latestRoundData cannot be read."""
    label = f"aggregator({aggregator})"
    (ok, data), = multicall.run_calls([Call(aggregator, LATEST_ROUND_DATA, f"{label}.latestRoundData")], block)
    if not ok or len(data) < ROUND_WORDS * 32:
        return Unavailable(f"{label}.latestRoundData " + (f"reverted: {describe_revert(data)}" if not ok else "returned no data"))
    latest = _decode_round(data)
    if latest.updated_at_s == 0 or latest.answer_raw <= 0:
        return Unavailable(f"{label}.latestRoundData: no valid round (answer {latest.answer_raw}, "
                           f"updatedAt {latest.updated_at_s})")
    ids = list(range(latest.round_id - 1, max(0, latest.round_id - max_rounds), -1))
    results = multicall.run_calls([Call(aggregator, _AGGREGATOR.encode("getRoundData", i), f"{label}.getRoundData({i})")
                                   for i in ids], block) if ids else []
    rounds = [latest]
    for ok, data in results:
        previous = _decode_round(data) if ok and len(data) >= ROUND_WORDS * 32 else None
        if previous is None or previous.updated_at_s == 0 or previous.answer_raw <= 0 \
                or previous.updated_at_s > rounds[-1].updated_at_s:
            break
        rounds.append(previous)
    return rounds
