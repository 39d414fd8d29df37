"""Batched reads through Multicall3 `aggregate3`: many calls, one eth_call, one block.

Encoding of a fixed list of calls is done once and reused every block (the calldata of a market's
reads does not change); decoding of the Result[] array is done by hand on the raw bytes, which is
several times faster than a generic ABI decoder at thousands of sub-calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, NamedTuple

from eth_utils import keccak

from keeper.chain.rpc import BlockParam, JsonRpc

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
AGGREGATE3_SELECTOR = keccak(text="aggregate3((address,bool,bytes)[])")[:4]
WORD = 32


@dataclass(frozen=True)
class Call:
    """One read: target contract, calldata, and a label used in failure reasons."""

    target: str
    call_data: bytes
    label: str


class CallResult(NamedTuple):
    success: bool
    return_data: bytes


_TRUE_WORD = (1).to_bytes(WORD, "big")
_TUPLE_BYTES_OFFSET = (3 * WORD).to_bytes(WORD, "big")  # bytes follow address, bool, offset


def encode_aggregate3(calls: list[Call]) -> bytes:
    """Calldata of Multicall3.aggregate3 with allowFailure=true on every call (ABI-encoded by
    hand: (address,bool,bytes)[]; a unit test checks it against eth-abi)."""
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = len(calls) * WORD
    for call in calls:
        heads.append(offset.to_bytes(WORD, "big"))
        data = call.call_data
        padded = data + b"\0" * (-len(data) % WORD)
        element = b"".join((
            bytes(12) + bytes.fromhex(call.target[2:]), _TRUE_WORD, _TUPLE_BYTES_OFFSET,
            len(data).to_bytes(WORD, "big"), padded,
        ))
        tails.append(element)
        offset += len(element)
    return b"".join((AGGREGATE3_SELECTOR, WORD.to_bytes(WORD, "big"), len(calls).to_bytes(WORD, "big"), *heads, *tails))


def decode_aggregate3(data: bytes) -> list[CallResult]:
    """Decode `Result[]` ((bool success, bytes returnData)[]) from aggregate3's return data.
    Hand-rolled (a unit test checks it against eth-abi): the hot path of every snapshot."""
    return decode_results(data, result_offsets(data))


def result_offsets(data: bytes) -> list[int]:
    """Where each `Result` tuple of aggregate3's return data starts."""
    frm = int.from_bytes
    array_at = frm(data[0:WORD], "big")
    count = frm(data[array_at : array_at + WORD], "big")
    heads = array_at + WORD
    return [heads + frm(data[head : head + WORD], "big") for head in range(heads, heads + count * WORD, WORD)]


def decode_results(data: bytes, elements: Sequence[int]) -> list[CallResult]:
    """The `Result` tuples starting at `elements` of aggregate3's return data."""
    frm = int.from_bytes
    results: list[CallResult] = []
    append = results.append
    for element in elements:
        bytes_at = element + frm(data[element + WORD : element + 2 * WORD], "big")
        start = bytes_at + WORD
        append(CallResult(data[element + WORD - 1] == 1, data[start : start + frm(data[bytes_at:start], "big")]))
    return results


def successful_payloads(data: bytes, elements: Sequence[int]) -> list[bytes] | None:
    """The return data of the `Result` tuples starting at `elements`, when every one succeeded
    with data; None otherwise (then decode_results says which failed). The replay's hot path: no
    tuple per result."""
    frm = int.from_bytes
    payloads: list[bytes] = []
    append = payloads.append
    for element in elements:
        if data[element + WORD - 1] != 1:
            return None
        # solc puts the bytes right after the head (compared in place: no slice)
        bytes_at = element + (2 * WORD if data.startswith(_TUPLE_HEAD_SIZE, element + WORD)
                              else frm(data[element + WORD : element + 2 * WORD], "big"))
        start = bytes_at + WORD
        length = frm(data[bytes_at:start], "big")
        if not length:
            return None
        append(data[start : start + length])
    return payloads


_TUPLE_HEAD_SIZE = (2 * WORD).to_bytes(WORD, "big")  # the offset of a Result's bytes when they follow its head


@dataclass(frozen=True)
class ResultLayout:
    """Where an aggregate3 answer keeps each call's result, for answers whose head words (the
    array offset, count and element offsets) are byte for byte those of the answer it was taken
    from: then each element starts at the same place, and an element's bytes (success, offset,
    length, data) lie between its start and the next element's, so equal bytes there are an
    equal result. `of(data)` is None when the encoding is not laid out that way (never for solc's
    encoder); callers then decode in full."""

    size: int
    heads_end: int  # the head words end here
    elements: tuple[int, ...]

    @classmethod
    def of(cls, data: bytes) -> ResultLayout | None:
        elements = result_offsets(data)
        ends = elements[1:] + [len(data)]
        heads_end = int.from_bytes(data[0:WORD], "big") + WORD * (1 + len(elements))
        previous = heads_end
        frm = int.from_bytes
        for element, end in zip(elements, ends):
            if element < previous or element + 3 * WORD > end:
                return None
            bytes_at = element + frm(data[element + WORD : element + 2 * WORD], "big")
            if not element + 2 * WORD <= bytes_at <= end - WORD or bytes_at + WORD + frm(data[bytes_at : bytes_at + WORD], "big") > end:
                return None
            previous = end
        return cls(len(data), heads_end, tuple(elements))

    def fits(self, data: bytes, source: bytes) -> bool:
        """Does `data` share `source`'s head words (so this layout, taken from `source`, is its)?"""
        return len(data) == self.size and data[: self.heads_end] == source[: self.heads_end]

    def span(self, first: int, count: int) -> tuple[int, int]:
        """The bytes of results first .. first + count - 1 (none: an empty span where they would start,
        the answer's end after the last result)."""
        def start_of(k: int) -> int:
            return self.elements[k] if k < len(self.elements) else self.size

        return start_of(first), start_of(first + count)


class Multicall:
    """Runs call lists through Multicall3 at a given block."""

    def __init__(self, rpc: JsonRpc, address: str = MULTICALL3_ADDRESS) -> None:
        self.rpc = rpc
        self.address = address

    def run(self, calldata: bytes, block: int | str = "latest") -> list[CallResult]:
        """Run pre-encoded aggregate3 calldata (see encode_aggregate3)."""
        return self._answer(calldata, self.rpc.eth_call(self.address, calldata, self._at(block)))

    def run_calls(self, calls: list[Call], block: int | str = "latest") -> list[CallResult]:
        return self.run(encode_aggregate3(calls), block)

    def run_with_requests(self, calldata: bytes | None, block: int,
                          requests: list[tuple[str, list[Any]]]) -> tuple[list[CallResult] | None, list[Any]]:
        """Pre-encoded aggregate3 calldata (None: none) and extra JSON-RPC requests (e.g. storage
        reads) in ONE batch round trip, the call pinned to `block` (the requests carry their own
        block). Returns the decoded call results and the requests' raw replies, in order."""
        at = self._at(block)
        calls = [] if calldata is None else [("eth_call", [{"to": self.address, "data": "0x" + calldata.hex()},
                                                          hex(at) if isinstance(at, int) else at])]
        if at != block:  # pinned by hash: the requests pinned to that block's number are too
            requests = [(m, [*p[:-1], at]) if p and p[-1] == hex(block) else (m, p) for m, p in requests]
        replies = self.rpc.batch(calls + requests)
        raw = self._answer(calldata, bytes.fromhex(replies[0][2:])) if calls else None
        return raw, self._extra(requests, list(replies[len(calls):]))

    def _at(self, block: int | str) -> BlockParam:
        """Hook: the block parameter a read of `block` goes out with (a recording pins it by hash)."""
        return block

    def _answer(self, calldata: bytes | None, raw: bytes) -> list[CallResult]:
        """Hook: the decoded answer to `calldata` (a recording keeps the raw bytes)."""
        return decode_aggregate3(raw)

    def _extra(self, requests: list[tuple[str, list[Any]]], replies: list[Any]) -> list[Any]:
        """Hook: the extra requests' replies (a recording keeps them)."""
        return replies


# ---------------------------------------------------------------------------- word decoders
def word_uint(data: bytes, index: int = 0) -> int:
    return int.from_bytes(data[index * WORD : (index + 1) * WORD], "big")


def word_int(data: bytes, index: int = 0) -> int:
    return int.from_bytes(data[index * WORD : (index + 1) * WORD], "big", signed=True)


def word_address(data: bytes, index: int = 0) -> str:
    return "0x" + data[index * WORD + 12 : (index + 1) * WORD].hex()
