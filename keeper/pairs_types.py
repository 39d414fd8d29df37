"""The pair trade's stage types: what the pairs strategy wants (PairIntent) and what the keeper
holds (PairPosition). Two Perp v2 legs on two markets, A and B, traded in ONE executor call
(IPairExecutor: openPair / closePair). Sizes are signed raw ints (18 decimals, Perp's base units);
USD figures are floats (decisions only, never amounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from keeper.types import PnlEstimate

PairIntentKind = Literal["open", "close"]
PairSide = Literal["long_spread", "short_spread"]  # long spread: long A, short B (spread = log A - beta log B)


@dataclass(frozen=True)
class SpreadFit:
    """The rolling regression of log A on log B over the window: log A = alpha + beta x log B + e.
    spread = log A - beta x log B; mean = alpha (the spread's mean over the window); scale = the
    residuals' standard deviation; z = (spread now - mean) / scale; correlation of log A and log B."""

    beta: float
    mean: float
    scale: float
    correlation: float
    samples: int
    spread: float
    z: float


@dataclass(frozen=True)
class PairIntent:
    strategy: str
    kind: PairIntentKind
    market_a: str
    market_b: str
    side: PairSide
    base_change_x18_a: int  # signed (open); for a close: 0 (the whole positions close)
    base_change_x18_b: int
    hedge_ratio_x18: int  # beta x 1e18 (the executor's hedgeRatio18)
    reason: str
    expected: PnlEstimate
    created_block: int
    valid_until_block: int
    fit: SpreadFit | None = None


@dataclass(frozen=True)
class PairPosition:
    """The pair the keeper holds (from the pairs journal)."""

    pair_id: int
    market_a: str
    market_b: str
    side: PairSide
    base_x18_a: int  # signed position of leg A
    base_x18_b: int
    hedge_ratio_x18: int
    entry_block: int
    entry_timestamp_s: int
    entry_beta: float
    entry_z: float
    entry_spread: float
    quote_x18: int
    entry_mean: float = 0.0  # the regression at entry: the position's model of the spread
    entry_scale: float = 0.0

    def z_at_entry_model(self, log_a: float, log_b: float) -> float:
        """The spread now under the position's own model: (log A - beta_entry x log B - mean at entry)
        / scale at entry. The legs are hedged at beta_entry, so this is what the position earns on."""
        return (log_a - self.entry_beta * log_b - self.entry_mean) / self.entry_scale if self.entry_scale > 0 else 0.0  # sum of both legs' signed quote deltas so far (fee included)
