"""The backtest's collector decodes only the read plans whose bytes changed since the previous
block, and its values are always the live collector's full decode of the same answer."""

from __future__ import annotations

from typing import Any

from eth_abi import encode

from keeper.chain.multicall import Call, decode_aggregate3
from keeper.collect import SnapshotCollector
from keeper.history.replay import ReplayCollector
from keeper.venues.reads import ReadPlan


class _Answer:
    """Stands for the recorded Multicall3: answers any calldata with the current bytes."""

    answer = b""

    def raw(self, calldata: bytes, block: int | str = "latest") -> bytes:
        return self.answer


def _plan(tag: int, n: int, decoded: list[int]) -> ReadPlan[Any]:
    def decode(data: Any) -> tuple[bytes, ...]:
        decoded.append(tag)
        return tuple(data)

    return ReadPlan([Call("0x" + "11" * 20, bytes([tag, i]), f"c{tag}.{i}") for i in range(n)], decode)


def _answer(words: list[bytes]) -> bytes:
    return encode(["(bool,bytes)[]"], [[(True, w) for w in words]])


def test_given_one_plans_bytes_changed_when_the_next_block_is_decoded_then_only_it_is_decoded_again() -> None:
    decoded: list[int] = []
    plans = [_plan(0, 2, decoded), _plan(1, 1, decoded), _plan(2, 3, decoded)]
    collector = ReplayCollector.__new__(ReplayCollector)
    collector._known, collector.multicall = {}, _Answer()  # type: ignore[assignment]
    words = [bytes([k]) * 32 for k in range(6)]

    def run(answer: bytes) -> list[Any]:
        collector.multicall.answer = answer  # type: ignore[attr-defined]
        got = collector._run(plans, 7, b"calldata")
        counted = list(decoded)
        assert got == SnapshotCollector._decode(plans, decode_aggregate3(answer))  # the live decode's values
        decoded[:] = counted
        return got

    first = run(_answer(words))
    assert decoded == [0, 1, 2]
    # the middle plan's word changes (same size): only it is decoded, the others keep their values
    words[2] = b"\x99" * 32
    second = run(_answer(words))
    assert decoded == [0, 1, 2, 1] and second[0] is first[0] and second[2] is first[2]
    # the same answer again: nothing decoded
    assert run(_answer(words)) == second and decoded == [0, 1, 2, 1]
    # a result of another size moves the layout: everything decoded afresh
    words[4] = b"\x01" * 64
    run(_answer(words))
    assert decoded == [0, 1, 2, 1, 0, 1, 2]


def test_given_a_plan_with_no_calls_last_when_a_block_is_decoded_then_its_values_are_the_live_decodes() -> None:
    # a devnet block before every contract is deployed reads some plans with no call at all; one
    # at the end of the answer used to raise IndexError out of `keeper backtest` (a traceback)
    decoded: list[int] = []
    plans = [_plan(0, 0, decoded), _plan(1, 2, decoded), _plan(2, 0, decoded)]
    collector = ReplayCollector.__new__(ReplayCollector)
    collector._known, collector.multicall = {}, _Answer()  # type: ignore[assignment]
    words = [bytes([k]) * 32 for k in range(2)]
    for _ in range(2):  # the second block: the same calldata, through the remembered layout
        collector.multicall.answer = _answer(words)  # type: ignore[attr-defined]
        assert collector._run(plans, 7, b"calldata") == SnapshotCollector._decode(plans, decode_aggregate3(_answer(words)))
        words[1] = b"\x99" * 32
