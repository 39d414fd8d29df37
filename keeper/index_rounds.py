"""The index's volatility from the oracle's past rounds, for a command that has no recorded history.

The running keeper estimates each market's index volatility from the index it records every block
(keeper/index_volatility.py). A one-shot command (`keeper stress`) has recorded nothing, but Perp's
index is the answer of a Chainlink-style aggregator (BaseToken -> PriceFeedDispatcher ->
ChainlinkPriceFeedV3 -> aggregator; the manifest's and the address book's `aggregator`), and the
aggregator keeps its past rounds: this module reads up to `max_rounds` of them at the snapshot's
block (keeper/venues/chainlink.py: fetch_recent_rounds, two Multicall3 calls) and runs them through
the same IndexHistory the keeper fills: the same window, weights and half-life. The rounds are its
records, oldest first, numbered in order; the snapshot's time with the latest answer is the newest
record (the keeper's newest record is the current block too). Two rounds at one timestamp count
once, as the newest (a block shows the keeper only the last). Between rounds the index does not
move, so the steps the keeper would record between them add time and no move, as here.

Where the estimate can differ from the keeper's: ChainlinkPriceFeedV3 serves its cached last valid
price when a round is invalid (future timestamp, non-positive answer), which the raw rounds still
show; and a round is placed at its own time, not at the next block the keeper would have read.
Floats: sizing and reporting only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keeper.chain.multicall import Multicall
from keeper.errors import RpcError, TransientError
from keeper.index_volatility import MIN_INCREMENTS, IndexHistory
from keeper.types import Unavailable
from keeper.venues.chainlink import OracleRound, fetch_recent_rounds

DEFAULT_MAX_ROUNDS = 64  # 64 minutes of the devnet driver's one round a minute; past 3 x a 15-minute TWAP
MAX_ROUNDS = 1_024  # IndexHistory keeps no more records than this: rounds past it would be read for nothing


@dataclass(frozen=True)
class RoundsSigma:
    """sigma_per_sqrt_s: the estimate, None when there is none (`reason` says why)."""

    sigma_per_sqrt_s: float | None
    rounds_read: int
    rounds_used: int  # inside the estimate's window (IndexHistory.window_s)
    reason: str | None = None


def sigma_from_rounds(rounds: Sequence[OracleRound], now_s: int, twap_interval_s: float) -> RoundsSigma:
    """The estimate from `rounds` (newest first, as fetch_recent_rounds returns them) at time now_s."""
    ordered: list[OracleRound] = []
    for r in reversed(rounds):
        if r.updated_at_s > now_s:
            continue  # dated after the snapshot: ChainlinkPriceFeedV3 does not take it either
        if ordered and ordered[-1].updated_at_s == r.updated_at_s:
            ordered[-1] = r  # the same time: only the newest counts
        else:
            ordered.append(r)
    if not ordered:
        return RoundsSigma(None, len(rounds), 0, "the aggregator has no round dated at or before the snapshot")
    history = IndexHistory()
    for i, r in enumerate(ordered):
        history.record_price("index", i, r.updated_at_s, r.answer_raw)
    now_record = now_s > ordered[-1].updated_at_s
    if now_record:
        history.record_price("index", len(ordered), now_s, ordered[-1].answer_raw)
    used = history.records("index") - now_record
    sigma = history.sigma_per_sqrt_s("index", twap_interval_s)
    reason = None if sigma is not None else (f"{used} round(s) in the window: fewer than {MIN_INCREMENTS} timed moves "
                                                 f"to the snapshot")
    return RoundsSigma(sigma, len(rounds), used, reason)


def fetch_rounds_sigma(multicall: Multicall, aggregator: str, block: int, now_s: int, twap_interval_s: float,
                       max_rounds: int = DEFAULT_MAX_ROUNDS) -> RoundsSigma:
    """Read the aggregator's recent rounds at `block` and estimate; no estimate (with the reason)
    when it cannot be read."""
    if max_rounds <= 0:
        return RoundsSigma(None, 0, 0, "no rounds read (--index-rounds 0)")
    try:
        rounds = fetch_recent_rounds(multicall, aggregator, block, max_rounds)
    except (RpcError, TransientError) as exc:
        return RoundsSigma(None, 0, 0, f"aggregator {aggregator} unreadable: {exc}")
    if isinstance(rounds, Unavailable):
        return RoundsSigma(None, 0, 0, rounds.reason)
    return sigma_from_rounds(rounds, now_s, twap_interval_s)
