"""A read plan: the calls a venue needs and how to turn their results into state.

Venues build plans; keeper/collect.py concatenates every plan into one Multicall3 batch, splits
the results back and decodes each. One failing sub-call makes only its plan Unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from keeper.chain.abi import describe_revert
from keeper.chain.multicall import Call, CallResult
from keeper.types import Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class ReadPlan(Generic[T]):
    calls: Sequence[Call]
    decode: Callable[[Sequence[bytes]], T]

    def result(self, results: Sequence[CallResult]) -> T | Unavailable:
        for call, res in zip(self.calls, results):
            if not res.success:
                return Unavailable(f"{call.label} reverted: {describe_revert(res.return_data)}")
            if not res.return_data:
                return Unavailable(f"{call.label} returned no data (no contract at {call.target}?)")
        try:
            return self.decode([r.return_data for r in results])
        except (ValueError, IndexError, ZeroDivisionError) as exc:
            return Unavailable(f"{self.calls[0].label}: undecodable result ({exc})")
