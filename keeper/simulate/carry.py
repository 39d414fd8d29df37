"""The carry-only bot: a funding-rate bot of the common kind, paper-traded on the same snapshots.

Per market, on one spot venue (Uniswap V3 by default), with a fixed size (the keeper's per-market
notional cap, cut to its limits at each open): while the funding APR exceeds the hurdle it holds
the side that receives funding (short perp + long spot when longs pay, long perp + short spot when
shorts pay); it closes when the APR that side receives falls below the exit hurdle (or flips).
Funding APR = Perp's funding premium / index x 365 (the premium is paid per day). Basis, fees and
gas are ignored in its decisions and counted in its PnL (keeper/simulate/paper.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keeper.simulate.baseline import PaperResult, run_paper_bot
from keeper.simulate.paper import UNLIMITED, AccountLimits, PathPoint, Quoter
from keeper.types import Direction

DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class CarryPolicy:
    entry_apr: float = 0.50  # open when |funding APR| >= 50% (a 0.14% daily premium)
    exit_apr: float = 0.10  # close when the APR received falls below 10%
    notional_usd: float = 25_000.0
    spot_venue: str = "uniswap_v3"

    def __post_init__(self) -> None:
        if not 0 <= self.exit_apr < self.entry_apr:
            raise ValueError(f"need 0 <= exit_apr < entry_apr (got {self.exit_apr}, {self.entry_apr})")
        if self.notional_usd <= 0:
            raise ValueError(f"notional_usd must be > 0, got {self.notional_usd}")

    def open_side(self, point: PathPoint) -> Direction | None:
        apr = funding_apr(point)
        if abs(apr) < self.entry_apr:
            return None
        return Direction.SHORT_PERP if apr > 0 else Direction.LONG_PERP

    def close_reason(self, point: PathPoint, held: Direction) -> str | None:
        received = -held.perp_sign * funding_apr(point)
        if received < self.exit_apr:
            return f"funding APR received {received:.1%} < {self.exit_apr:.0%}"
        return None


def funding_apr(point: PathPoint) -> float:
    """Funding longs pay per year, as a fraction of the index (negative: shorts pay)."""
    if point.index_price_x18 <= 0:
        return 0.0
    return point.funding_premium_x18 / point.index_price_x18 * DAYS_PER_YEAR


def run_carry_bot(points: Mapping[str, Sequence[PathPoint]], quoter: Quoter, policy: CarryPolicy = CarryPolicy(),
                  limits: AccountLimits = UNLIMITED) -> PaperResult:
    return run_paper_bot(points, quoter, policy, policy.notional_usd, limits)
