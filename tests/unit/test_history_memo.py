"""The backtest's memo of basis statistics answers exactly what BasisHistory computes."""

from __future__ import annotations

import random

from keeper.basis_history import BasisHistory
from keeper.history.memo import MemoBasisHistory


def _drive(history: BasisHistory, seed: int) -> list[object]:
    """The engine's order per block (z-score then record, for two keys; then the stats again),
    plus what a caller may do besides: record a block twice, ask for a later block's window
    before a block inside it is recorded, record an earlier block late, ask for another time's
    window."""
    rng = random.Random(seed)
    seen: list[object] = []
    block, ts = 100, 1_000
    for _ in range(400):
        block += rng.choice((1, 1, 1, 2))
        ts += rng.choice((2, 12, 12, 60, 600))
        for key in (("ETH", "uniswap_v3"), ("BTC", "uniswap_v2")):
            seen.append(history.zscore_then_record(*key, block, rng.gauss(0, 20), ts))
        for key in (("ETH", "uniswap_v3"), ("BTC", "uniswap_v2")):
            seen.append(history.stats(*key, block, ts))
        roll = rng.random()
        if roll < 0.1:
            seen.append(history.zscore_then_record("ETH", "uniswap_v3", block, rng.gauss(0, 20), ts))  # again
        elif roll < 0.2:
            seen.append(history.stats("ETH", "uniswap_v3", block + 3, ts + 5))  # a later block's window,
            block, ts = block + 1, ts + 1  # then a block inside it is recorded
            seen.append(history.zscore_then_record("ETH", "uniswap_v3", block, rng.gauss(0, 20), ts))
            seen.append(history.stats("ETH", "uniswap_v3", block + 2, ts + 4))
            seen.append(history.zscore_then_record("ETH", "uniswap_v3", block - 1, rng.gauss(0, 20), ts))  # late
        elif roll < 0.3:
            seen.append(history.stats("BTC", "uniswap_v2", block, ts + 3_000))  # another time: another window
    return seen


def test_memo_gives_the_plain_history_s_answers_in_every_call_order() -> None:
    for seed in range(5):
        for args in ((), (600, 5), (120, 20, 64)):
            plain, memo = _drive(BasisHistory(*args), seed), _drive(MemoBasisHistory(*args), seed)
            assert memo == plain  # floats equal to the bit, None where None
            assert any(s is not None for s in plain)


def test_memo_computes_the_engine_s_second_read_of_a_block_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    history = MemoBasisHistory(600, 3)
    computed: list[int] = []
    original = BasisHistory.stats

    def counting(self, market, venue, before_block, timestamp_s):  # type: ignore[no-untyped-def]
        computed.append(before_block)
        return original(self, market, venue, before_block, timestamp_s)

    monkeypatch.setattr(BasisHistory, "stats", counting)
    for block in range(10):
        history.zscore_then_record("ETH", "uniswap_v3", block, float(block % 3), 12 * block)
        assert history.stats("ETH", "uniswap_v3", block, 12 * block) == original(history, "ETH", "uniswap_v3", block, 12 * block)
    assert computed == list(range(10))
