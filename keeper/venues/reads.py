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
        payloads = [data for ok, data in results if ok and data]
        if len(payloads) != len(results):
            for call, (ok, data) in zip(self.calls, results):
                if not ok:
                    return Unavailable(f"{call.label} reverted: {describe_revert(data)}")
                if not data:
                    return Unavailable(f"{call.label} returned no data (no contract at {call.target}?)")
        return self.result_of_payloads(payloads)

    def result_of_payloads(self, payloads: Sequence[bytes]) -> T | Unavailable:
        """The decoded value of the calls' return data, every call having succeeded with data."""
        try:
            return self.decode(payloads)
        except (ValueError, IndexError, ZeroDivisionError) as exc:
            return Unavailable(f"{self.calls[0].label}: undecodable result ({exc})")
