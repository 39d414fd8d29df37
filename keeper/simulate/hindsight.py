"""The hindsight bound: the best single round trip per market on the recorded path.

For each market: over both directions, both spot venues and every pair of recorded snapshots
i < j, open at i and close at j with the baseline's fixed size, each leg an exact quote on its
snapshot (fees and price impact included), funding accrued from i to j, gas charged per trade
(keeper/simulate/paper.py), and keep the best; no trade (0) when nothing beats it. The bound is
the sum over markets. It is what a trader who knew the path could make with ONE trade of that
size per market, not an upper limit on any strategy (several trades, or another size, can beat
it); like the baseline it is paper-traded and does not move the chain.

The search is linear per (direction, venue): the best entry before j is a running maximum of
open_i - gas_i + F_i, where F is the cumulative funding per position, so a pair's total is
that maximum + close_j - gas_j - F_j.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keeper.pnl_split import ZERO_PNL, PnlSplit, compute_pnl_split, sum_pnl
from keeper.simulate.baseline import PaperTrade
from keeper.simulate.paper import (
    SPOT_VENUES,
    PaperFill,
    PathPoint,
    Quoter,
    compute_funding_paid_x18,
    compute_paper_gas_x18,
    fixed_size_x18,
)
from keeper.types import Direction


@dataclass(frozen=True)
class HindsightResult:
    trades: Mapping[str, PaperTrade | None]  # by market; None: no round trip beats doing nothing
    notional_usd: float

    @property
    def total(self) -> PnlSplit:
        found = [t.split for t in self.trades.values() if t is not None]
        return sum_pnl(found) if found else ZERO_PNL


def best_round_trip(market: str, path: Sequence[PathPoint], quoter: Quoter, size_x18: int,
                    venues: Sequence[str] = SPOT_VENUES) -> PaperTrade | None:
    best: tuple[int, PaperTrade] | None = None
    n = len(path)
    for direction in (Direction.SHORT_PERP, Direction.LONG_PERP):
        for venue in venues:
            opens: list[PaperFill | None] = []
            for i in range(n - 1):
                fill = quoter.open(i, market, direction, venue, size_x18)
                opens.append(None if isinstance(fill, str) else fill)
            first = next((f for f in opens if f is not None), None)
            if first is None:
                continue
            base, spot = first.perp_base_x18, first.spot_raw
            cumulative = [0]  # funding paid by the position from point 0 to point k
            for k in range(n - 1):
                cumulative.append(cumulative[-1] + compute_funding_paid_x18(
                    base, path[k].funding_premium_x18, path[k + 1].timestamp_s - path[k].timestamp_s))
            best_entry: tuple[int, int] | None = None  # (open net - gas + F_i, i)
            for j in range(1, n):
                i = j - 1
                fill_i = opens[i]
                if fill_i is not None and (fill_i.perp_base_x18, fill_i.spot_raw) == (base, spot):
                    value = fill_i.net_quote_x18 - compute_paper_gas_x18(path[i], "open") + cumulative[i]
                    if best_entry is None or value > best_entry[0]:
                        best_entry = (value, i)
                if best_entry is None:
                    continue
                close = quoter.close(j, market, direction, venue, base, spot)
                if isinstance(close, str):
                    continue
                close_gas = compute_paper_gas_x18(path[j], "close")
                total = best_entry[0] + close.net_quote_x18 - close_gas - cumulative[j]
                if best is None or total > best[0]:
                    i = best_entry[1]
                    opened = opens[i]
                    assert opened is not None
                    split = compute_pnl_split([opened.net_quote_x18, close.net_quote_x18], [opened.fees, close.fees],
                                              cumulative[j] - cumulative[i],
                                              [compute_paper_gas_x18(path[i], "open"), close_gas])
                    best = (total, PaperTrade(market, direction, venue, i, j, path[i].block, path[j].block, base,
                                              path[i].spread_bps.get(venue), path[j].spread_bps.get(venue),
                                              "hindsight", split))
    if best is None or best[0] <= 0:
        return None
    return best[1]


def run_hindsight(points: Mapping[str, Sequence[PathPoint]], quoter: Quoter, notional_usd: float) -> HindsightResult:
    trades = {}
    for market, path in sorted(points.items()):
        size_x18 = fixed_size_x18(notional_usd, path[0].index_price_x18) if path else 0
        trades[market] = best_round_trip(market, path, quoter, size_x18) if len(path) >= 2 and size_x18 else None
    return HindsightResult(trades, notional_usd)
