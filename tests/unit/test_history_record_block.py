"""A block's recorded reads are that block's: an answer carrying another block's number (anvil, read
at its head while it mines the next block) is read again, and refused if it stays wrong (the audit:
`keeper record --follow` on a driven devnet wrote block 1767's reads with block 1768's answer, and
the backtest then stopped at it with "no recorded answer ... another keeper version?")."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from keeper.history import record as record_module
from keeper.history.record import BlockRecorder, WrongBlockAnswer
from keeper.types import Unavailable

HEADER = {"timestamp": "0x10", "hash": "0x" + "11" * 32, "parentHash": "0x" + "22" * 32, "baseFeePerGas": "0x7",
          "gasUsed": "0x1", "gasLimit": "0x2"}


REVERTED = Unavailable("AccountBalance.getMarkPrice(0x82e0) reverted: SafeMath: subtraction overflow")


class _Collector:
    def __init__(self, answered: list[int], perp: list[Any] | None = None) -> None:
        self.answered = answered
        self.perp = perp or ["state"] * len(answered)
        self._last_tick = {"pool": 5}
        self.windows_seen: list[dict[str, int]] = []

    def fetch_snapshot(self, block: int) -> Any:
        self.windows_seen.append(dict(self._last_tick))
        self._last_tick = {"pool": 99}  # what the (wrong) answer's heads moved it to
        view = SimpleNamespace(perp=self.perp.pop(0), spot_v2="v2", spot_v3="v3", oracle="oracle")
        return SimpleNamespace(block_number=self.answered.pop(0), markets={"ETH": view}, account=None)


class _Rpc:
    url = "http://127.0.0.1:1"

    def batch(self, requests: list[Any]) -> list[Any]:
        return [HEADER for _ in requests]


def _recorder(answered: list[int], perp: list[Any] | None = None) -> tuple[BlockRecorder, _Collector]:
    collector = _Collector(answered, perp)
    multicall = SimpleNamespace(captured=[])
    return BlockRecorder(_Rpc(), collector, multicall, False), collector  # type: ignore[arg-type]


def test_an_answer_for_the_next_block_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_module, "WRONG_BLOCK_PAUSE_S", 0.0)
    # Given a node that answers block 1767's reads with block 1768's state once, then right
    recorder, collector = _recorder([1768, 1767])
    # When the block is recorded
    record = recorder.record(1767)
    # Then it was read twice, both times from the same window centres, and those are recorded
    assert record.block == 1767 and len(collector.windows_seen) == 2
    assert collector.windows_seen == [{"pool": 5}, {"pool": 5}] and record.window_ticks == {"pool": 5}


def test_an_answer_that_stays_wrong_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_module, "WRONG_BLOCK_PAUSE_S", 0.0)
    recorder, _ = _recorder([1768, 1768, 1768])
    with pytest.raises(WrongBlockAnswer, match="answered the reads of block 1767 with block 1768's state, 3 times"):
        recorder.record(1767)


def test_a_failed_read_of_the_head_block_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_module, "WRONG_BLOCK_PAUSE_S", 0.0)
    # Given the head block, whose getMarkPrice reverted once (anvil mining the next block; the audit)
    recorder, collector = _recorder([1758, 1758], perp=[REVERTED, "state"])
    recorder.record(1758, at_head=True)
    # Then it was read again, and the second answer is the one recorded
    assert len(collector.windows_seen) == 2 and collector.perp == []


def test_a_read_that_fails_every_time_or_below_the_head_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_module, "WRONG_BLOCK_PAUSE_S", 0.0)
    # Given a market unreadable at the head every time: recorded as the chain answers it
    recorder, collector = _recorder([9, 9, 9], perp=[REVERTED] * 3)
    assert recorder.record(9, at_head=True).block == 9 and len(collector.windows_seen) == 3
    # Given a block below the head: its answer is history, read once
    recorder, collector = _recorder([8], perp=[REVERTED])
    assert recorder.record(8).block == 8 and len(collector.windows_seen) == 1
