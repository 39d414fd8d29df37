"""A strategy's "no trade" decisions in the journal: one row per change of reason, not one per
block (on a 2-second chain that is 43,200 rows a day per strategy and market).

A reason's shape is its text with the numbers taken out ("z 0.41 below entry 2.0" and
"z 0.57 below entry 2.0" are the same reason); a row is written when the shape changes for that
strategy and market, carrying the full text of the first. The log event `decision.skip` still
has every block's numbers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(r"[-+]?\d[\d,_]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@functools.lru_cache(maxsize=4096)  # a market's reasons repeat, numbers and all (3 in 4 on a calm chain)
def reason_shape(reason: str) -> str:
    return _NUMBER.sub("#", reason)


@dataclass
class SkipLog:
    journal: Any  # keeper.journal.Journal
    last_shape: dict[tuple[str, str], str] = field(default_factory=dict)
    written: int = 0
    suppressed: int = 0

    def record(self, *, block: int, strategy: str, market: str, reason: str, timestamp_s: int | None) -> int | None:
        """The decision id when a row was written, None when the reason did not change."""
        shape = reason_shape(reason)
        key = (strategy, market)
        if self.last_shape.get(key) == shape:
            self.suppressed += 1
            return None
        self.last_shape[key] = shape
        self.written += 1
        return self.journal.record_skip(block=block, strategy=strategy, market=market, reason=reason,
                                        timestamp_s=timestamp_s)
