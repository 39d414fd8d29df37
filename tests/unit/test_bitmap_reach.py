"""The collector's tick windows reach the exit-stress rule's stressed prices on fine-spaced pools
(strategies/exit_stress.py refuses a size whose stressed close it cannot quote exactly)."""

from __future__ import annotations

import math

from keeper.collect import STRESS_REACH_TICKS, SnapshotCollector


def _collector(half_width: int = 2) -> SnapshotCollector:
    collector = SnapshotCollector.__new__(SnapshotCollector)
    collector.half_width = half_width
    return collector


def test_fine_spaced_pools_read_enough_words_to_reach_the_default_stress_and_wide_ones_keep_the_width() -> None:
    collector = _collector()
    assert [collector.half_width_for(s) for s in (1, 10, 60, 200)] == [11, 2, 2, 2]
    assert _collector(4).half_width_for(60) == 4  # never narrower than configured
    # the default stress (index -5%, vAMM 10% under it) in ticks, against what a window guarantees
    # right before it is re-centred (one word of its half-width is the margin)
    stressed_ticks = math.ceil(-math.log(0.95 * 0.90) / math.log(1.0001))
    for spacing in (1, 10, 60, 200):
        assert (collector.half_width_for(spacing) - 1) * 256 * spacing >= STRESS_REACH_TICKS >= stressed_ticks
