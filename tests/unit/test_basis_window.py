"""The incremental basis statistics (keeper/basis_window.py, BasisHistory) against a brute-force
recomputation of every window: the same floats to the bit, None where None, on random streams
with expiries, duplicates, shocks, zeros and odd call orders."""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np
import pytest

from keeper.basis_history import BasisHistory, BasisStats
from keeper.basis_window import mad_sorted_from, median_abs_deviation_sorted, median_sorted


class BruteForceHistory:
    """The window and its statistics recomputed from scratch on every read (the definition)."""

    def __init__(self, window_s: float = 7200, min_samples: int = 20, max_samples: int = 4096) -> None:
        self.window_s, self.min_samples, self.max_samples = window_s, min_samples, max_samples
        self.series: dict[tuple[str, str], deque[tuple[int, int, float]]] = {}

    def _past(self, market: str, venue: str, block: int, ts: int) -> list[tuple[int, int, float]]:
        before = [o for o in self.series.get((market, venue), ()) if o[0] < block]
        inside = [o for o in before if o[1] >= ts - self.window_s]
        return inside if len(inside) >= self.min_samples else before[-self.min_samples:]

    def stats(self, market: str, venue: str, before_block: int, timestamp_s: int) -> BasisStats | None:
        past = self._past(market, venue, before_block, timestamp_s)
        if len(past) < self.min_samples:
            return None
        return BasisStats.from_observations([b for _, _, b in past], [t for _, t, _ in past], self.window_s)

    def zscore_then_record(self, market: str, venue: str, block: int, basis_bps: float,
                           timestamp_s: int | None = None) -> float | None:
        ts = block if timestamp_s is None else timestamp_s
        stats = self.stats(market, venue, block, ts)
        series = self.series.setdefault((market, venue), deque(maxlen=self.max_samples))
        if not series or series[-1][0] < block:
            series.append((block, ts, basis_bps))
        while len(series) > self.min_samples + 1 and series[0][1] < ts - self.window_s:
            series.popleft()
        return None if stats is None else stats.zscore(basis_bps)

    def observations(self, market: str, venue: str, before_block: int, timestamp_s: int | None = None) -> list[float]:
        series = self.series.get((market, venue), ())
        now = timestamp_s if timestamp_s is not None else (series[-1][1] if series else 0)
        return [b for _, _, b in self._past(market, venue, before_block, now)]


def _bits(x: object) -> object:
    """Floats by their bits (so -0.0 != 0.0 and nan == nan); BasisStats field by field, with the
    window's AR(1) fit and standard error (the convergence forecast's) and the window's length."""
    if isinstance(x, BasisStats):
        fit = x.decay_fit()
        fitted = None if fit is None else (_bits(fit.phi), _bits(fit.se), fit.method)
        return tuple(_bits(v) for v in (x.center_bps, x.scale_bps, x.samples, x.half_life_s, x.window_s)) + (fitted,)
    return x.hex() if isinstance(x, float) else x


def _value(rng: random.Random, last: list[float]) -> float:
    roll = rng.random()
    if roll < 0.15 and last:
        return rng.choice(last)  # a duplicate
    if roll < 0.2:
        return rng.choice((0.0, -0.0, 1.0, -1.0))
    if roll < 0.25:
        return rng.choice((1, -1)) * rng.uniform(200, 5_000)  # a shock
    if roll < 0.3:
        return round(rng.gauss(0, 20), 1)  # a coarse grid: many ties
    return rng.gauss(rng.choice((0, 0, 40)), 20)


def _drive(history: object, seed: int, steps: int = 500) -> list[object]:
    """The engine's order per block (z-score then record for each key, then the stats again), plus
    what other callers may do: record a block twice, read a later block's window before a block
    inside it is recorded, record an earlier block late, read another time's window, bursts of
    blocks with one timestamp, gaps longer than the window, timestamps that go backwards."""
    rng = random.Random(seed)
    seen: list[object] = []
    block, ts, last = 100, 1_000, []
    keys = (("ETH", "uniswap_v3"), ("BTC", "uniswap_v2"))
    for _ in range(steps):
        block += rng.choice((1, 1, 1, 2))
        ts += rng.choice((0, 2, 12, 12, 12, 60, 600, 601)) if rng.random() > 0.01 else 9_000
        for key in keys:
            value = _value(rng, last)
            last = (last + [value])[-50:]
            seen.append(_bits(history.zscore_then_record(*key, block, value, ts)))  # type: ignore[attr-defined]
        for key in keys:
            seen.append(_bits(history.stats(*key, block, ts)))  # type: ignore[attr-defined]
        roll = rng.random()
        if roll < 0.05:
            seen.append(_bits(history.zscore_then_record("ETH", "uniswap_v3", block, 1.0, ts)))  # type: ignore[attr-defined]
        elif roll < 0.1:
            seen.append(_bits(history.stats("ETH", "uniswap_v3", block + 3, ts + 5)))  # type: ignore[attr-defined]
            block, ts = block + 1, ts + 1
            seen.append(_bits(history.zscore_then_record("ETH", "uniswap_v3", block, 2.5, ts)))  # type: ignore[attr-defined]
            seen.append(_bits(history.zscore_then_record("ETH", "uniswap_v3", block - 1, 3.0, ts)))  # type: ignore[attr-defined]
        elif roll < 0.15:
            seen.append(_bits(history.stats("BTC", "uniswap_v2", block, ts + rng.choice((-500, 30, 3_000))))) # type: ignore[attr-defined]
            seen.append(_bits(history.stats("BTC", "uniswap_v2", block - rng.randint(1, 40), ts)))  # type: ignore[attr-defined]
            seen.append(history.observations("BTC", "uniswap_v2", block, ts))  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("args", [(), (600, 5), (120, 20, 64), (3_600, 2, 40), (1_000, 7)])
def test_incremental_statistics_equal_brute_force_recomputation(args: tuple[int, ...]) -> None:
    for seed in range(4):
        history = BasisHistory(*args)
        fast, brute = _drive(history, seed), _drive(BruteForceHistory(*args), seed)
        assert fast == brute
        assert all(series.exact_order for series in history._series.values())  # the incremental path answered
        assert _drive(BasisHistory(*args, incremental=False), seed) == brute  # the reference path (the benchmark's)
        assert sum(s is not None and not isinstance(s, list) for s in brute) > 100


def test_a_timestamp_going_backwards_or_a_nan_is_answered_the_brute_force_way() -> None:
    fast, brute = BasisHistory(600, 3), BruteForceHistory(600, 3)
    for history in (fast, brute):
        for i in range(20):
            history.zscore_then_record("ETH", "v3", 10 + i, float(i % 4), 100 * i if i != 12 else 50)
            history.zscore_then_record("BTC", "v2", 10 + i, float(i % 3) if i != 15 else math.nan, 12 * i)
    assert not fast._series[("ETH", "v3")].exact_order and not fast._series[("BTC", "v2")].exact_order
    for key in (("ETH", "v3"), ("BTC", "v2")):
        for block, ts in ((30, 2_000), (25, 1_500), (40, 100)):
            assert _bits(fast.stats(*key, block, ts)) == _bits(brute.stats(*key, block, ts))


def test_median_and_mad_by_selection_equal_numpy_on_random_sorted_windows() -> None:
    rng = random.Random(7)
    for _ in range(3_000):
        n = rng.randint(1, 60)
        values = sorted(_value(rng, []) for _ in range(n))
        arr = np.array(values)
        center = float(np.median(arr))
        assert median_sorted(values).hex() == center.hex()
        assert median_abs_deviation_sorted(values, center).hex() == float(np.median(np.abs(arr - center))).hex()


def test_the_mad_and_its_split_are_the_same_from_any_starting_hint() -> None:
    rng = random.Random(11)
    for _ in range(2_000):
        n = rng.randint(1, 70)
        values = sorted(_value(rng, []) for _ in range(n))
        center = median_sorted(values)
        mad, split = mad_sorted_from(values, center, None)
        assert mad.hex() == median_abs_deviation_sorted(values, center).hex()
        for hint in (split, split - 1, split + 1, split - 5, split + 9, -3, 0, n, n + 4, rng.randint(-10, n + 10)):
            got, got_split = mad_sorted_from(values, center, hint)
            assert (got.hex(), got_split) == (mad.hex(), split), (values, hint)


def test_the_engine_s_second_read_of_a_block_is_computed_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import keeper.basis_history as module

    computed: list[tuple[int, int]] = []
    original = module._window_stats

    def counting(series, lo, hi, *rest):  # type: ignore[no-untyped-def]
        computed.append((lo, hi))
        return original(series, lo, hi, *rest)

    monkeypatch.setattr(module, "_window_stats", counting)
    history, brute = BasisHistory(600, 3), BruteForceHistory(600, 3)
    for block in range(10):
        for h in (history, brute):
            h.zscore_then_record("ETH", "uniswap_v3", block, float(block % 3), 12 * block)
        assert _bits(history.stats("ETH", "uniswap_v3", block, 12 * block)) == _bits(brute.stats("ETH", "uniswap_v3", block, 12 * block))
    assert len(computed) == len(set(computed)) == 7  # blocks 3..9, each window once
