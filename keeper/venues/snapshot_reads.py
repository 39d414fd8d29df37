"""How a venue reads its part of a snapshot: the calls it plans for one market, and how it turns
their answers into its MarketView field.

keeper/collect.py knows no venue: per market it asks each reader of
keeper/venues/registry.SNAPSHOT_READERS (in that order) for its head reads, batches every market's
plans into one Multicall3 aggregate3 (phase 1, with the tick-bitmap words of each concentrated-
liquidity pool a reader declares), reads those pools' initialized ticks and the readers' storage
words in the next round trip (phase 2), and hands each reader its decoded answers. The order of
the readers is the order of the calls in the batch, which recorded history files depend on
(keeper/history/replay.py): append a new venue's reader, never reorder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from keeper.types import Unavailable
from keeper.venues.perp_v2 import PerpAddresses, PerpConfig
from keeper.venues.reads import ReadPlan
from keeper.venues.sources import MarketStatic, PoolStatic
from keeper.venues.uniswap_v3_math import V3PoolState

StorageRequest = tuple[str, list[Any]]


@dataclass(frozen=True)
class ReadContext:
    """What a reader may use to plan one market's reads (fixed once the collector is prepared)."""

    static: MarketStatic
    perp: PerpAddresses
    config: PerpConfig


@dataclass(frozen=True)
class PoolSlot:
    """A concentrated-liquidity pool a reader needs in full (head, bitmap window, tick liquidity):
    its head plan is `head_key` among the reader's head plans; its window goes under `window_key`."""

    head_key: str
    window_key: str
    pool: PoolStatic


class MarketAnswers(NamedTuple):  # a tuple: built for every market every block
    """One market's decoded reads at one block, as its readers get them back."""

    reads: Mapping[str, Any]  # plan key -> decoded value or Unavailable (every reader's keys)
    pool_state: Callable[[PoolStatic | None], V3PoolState | Unavailable]  # a declared pool, in full
    storage: Mapping[str, Sequence[str] | None]  # snapshot field -> its reader's storage words (None: failed)
    block_timestamp_s: int


class SnapshotReads:
    """A venue's reads (mixed into its adapter; the oracle has a reader of its own)."""

    snapshot_field: ClassVar[str]  # the MarketView field it fills
    reads_storage: ClassVar[bool] = False  # whether it makes storage_requests

    def head_plans(self, ctx: ReadContext) -> dict[str, ReadPlan[Any]]:
        """Phase 1: the market's plans, keyed (keys are unique across readers)."""
        return {}

    def pools(self, ctx: ReadContext) -> tuple[PoolSlot, ...]:
        """The concentrated-liquidity pools whose ticks the venue's state needs."""
        return ()

    def storage_requests(self, ctx: ReadContext, block: int) -> list[StorageRequest]:
        """Phase 2: extra JSON-RPC requests (storage words) pinned to `block`."""
        return []

    def account_plan(self, perp: PerpAddresses, account: str, statics: Sequence[MarketStatic]) -> ReadPlan[Any] | None:
        """Phase 1: the account's state on this venue (the snapshot's `account` field), if it has one."""
        return None

    def snapshot_part(self, ctx: ReadContext, answers: MarketAnswers) -> Any:
        """The venue's MarketView field from its answers (or Unavailable with the reason)."""
        raise NotImplementedError
