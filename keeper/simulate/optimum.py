"""The hindsight optimum: per market, the best set of non-overlapping round trips on the run's path.

A candidate round trip opens at recorded snapshot i and closes at snapshot j > i, in one direction,
on one spot venue, at one size. Sizes: a geometric grid (ratio GRID_RATIO, GRID_SIZES of them) down
from the largest the limits allow at the path's lowest price, plus the sizes the keeper and the
reference bots traded. Each leg is an exact quote on its snapshot (keeper.quotes, fees and price
impact included), gas is charged per trade at that snapshot's gas price plus the L1 data fee, and
funding accrues over the holding interval (keeper/simulate/paper.py, the bots' own pricing). An
open is allowed only within the keeper's limits (paper.AccountLimits).

The keeper's own round trips are candidates too, each at its realised PnL (the journal's): they
were carried out on this very chain, so they are feasible by construction, whatever their sizes,
resizes and blocks. Hence the optimum is >= the keeper, and >= any bot whose trades are on the grid
(they are), as long as the dynamic programme is right: the report checks both.

Per market, weighted interval scheduling over snapshots. With V[j] the best PnL flat at snapshot
j, a candidate c's open value a_c[i] = net_quote - gas + F_c[i] and close value b_c[j] =
net_quote - gas - F_c[j] (F_c: cumulative funding paid by c's position from snapshot 0):

    V[j] = max(V[j-1], max_c best_c + b_c[j], max over keeper trips (i, j, v): V[i] + v)
    best_c = max over i < j of V[i] + a_c[i]      (a running maximum: O(n) per candidate)

A round trip may open at the snapshot where the previous one closed. Across markets the account's
caps (total notional, the executor's USDC) are checked on the combined schedule; when they would
bind, the sum of the per-market optima is still an upper bound (a relaxation), and the result says
so (`account_caps_relaxed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keeper.pnl_split import ZERO_PNL, PnlSplit, compute_pnl_split, sum_pnl
from keeper.simulate.paper import (
    SPOT_VENUES,
    UNLIMITED,
    AccountLimits,
    PaperFill,
    PathPoint,
    Quoter,
    compute_funding_paid_x18,
    compute_paper_gas_x18,
)
from keeper.types import Direction

ONE_X18 = 10**18
GRID_RATIO = 1.6
GRID_SIZES = 8


@dataclass(frozen=True)
class KnownTrip:
    """A round trip carried out (the keeper's): snapshot indices and its realised PnL."""

    market: str
    entry_index: int
    exit_index: int
    split: PnlSplit
    label: str = "keeper"
    perp_base_x18: int = 0
    direction: Direction | None = None
    spot_venue: str | None = None


@dataclass(frozen=True)
class OptimalTrip:
    market: str
    direction: Direction | None
    spot_venue: str | None
    entry_index: int
    exit_index: int
    entry_block: int
    exit_block: int
    perp_base_x18: int  # signed, as held
    source: str  # "grid" or "keeper"
    split: PnlSplit

    def as_json(self) -> dict[str, object]:
        return {"market": self.market, "direction": self.direction.value if self.direction else None,
                "spot_venue": self.spot_venue, "entry_index": self.entry_index, "exit_index": self.exit_index,
                "entry_block": self.entry_block, "exit_block": self.exit_block,
                "perp_base_x18": str(self.perp_base_x18), "source": self.source, "pnl": self.split.to_json_dict()}


@dataclass(frozen=True)
class OptimumResult:
    trips: tuple[OptimalTrip, ...]
    by_market_x18: Mapping[str, int]
    candidates: int  # (direction, venue, size) combinations priced
    quotes: int
    account_caps_relaxed: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> PnlSplit:
        return sum_pnl(t.split for t in self.trips) if self.trips else ZERO_PNL


@dataclass
class _Candidate:
    direction: Direction
    venue: str
    size_x18: int
    opens: list[PaperFill | None]
    open_value: list[int | None]  # a[i] (None: cannot open)
    close_fills: list[PaperFill | None]
    close_value: list[int | None]  # b[j] (None: cannot close)
    funding: list[int]  # F[k]: funding paid from point 0 to point k


def size_grid_x18(top_x18: int, extra_x18: Sequence[int] = (), ratio: float = GRID_RATIO,
                  count: int = GRID_SIZES) -> list[int]:
    """top, top / ratio, ... (count sizes), plus the extra sizes; positive, distinct, descending."""
    sizes = {int(top_x18 / ratio**k) for k in range(count)} | {abs(s) for s in extra_x18}
    return sorted((s for s in sizes if s > 0), reverse=True)


def market_sizes_x18(market: str, path: Sequence[PathPoint], limits: AccountLimits,
                     extra_x18: Sequence[int] = ()) -> list[int]:
    """The sizes tried in one market: the grid down from the notional cap at the path's lowest
    price, the caps of each direction (spot inventory, executor USDC) themselves, and extra_x18."""
    prices = [min(p for p in (*pt.spot_mid_usd.values(), pt.perp_mid_usd) if p > 0) for pt in path
              if pt.perp_mid_usd > 0 and pt.spot_mid_usd]
    if not prices or limits.max_notional_usd == float("inf"):
        return size_grid_x18(0, extra_x18)
    low, high = min(prices), max(max(pt.spot_mid_usd.values(), default=0.0) for pt in path)
    top = int(limits.max_notional_usd / low * ONE_X18)
    tops = [top]
    if limits.spot_inventory_raw is not None:
        tops.append(limits.spot_inventory_raw.get(market, 0) * 10 ** (18 - limits.spot_decimals.get(market, 18)))
    if limits.usdc_wallet_usd is not None and high > 0:
        tops.append(int(limits.usdc_wallet_usd / high * ONE_X18))
    scale = 10 ** (18 - limits.spot_decimals.get(market, 18))
    grid = [s // scale * scale for s in size_grid_x18(top, [min(t, top) for t in tops[1:]])]
    return size_grid_x18(0, grid + list(extra_x18))


def _price_candidates(market: str, path: Sequence[PathPoint], quoter: Quoter, limits: AccountLimits,
                      direction: Direction, venue: str, size_x18: int) -> tuple[list[_Candidate], int]:
    """One size in one direction on one venue: its opens at every point the limits allow, and the
    closes of the position they hold. Opens holding different positions (the spot leg rounded
    differently at another price) are separate candidates, each closed with its own amounts."""
    n = len(path)
    quotes = 0
    held: dict[tuple[int, int], list[PaperFill | None]] = {}
    for i in range(n - 1):
        if limits.refusal(path[i], market, direction, venue, size_x18) is not None:
            continue
        fill = quoter.open(i, market, direction, venue, size_x18)
        quotes += 1
        if not isinstance(fill, str):
            held.setdefault((fill.perp_base_x18, fill.spot_raw), [None] * n)[i] = fill
    candidates = []
    for (base, spot), opens in held.items():
        funding = [0]
        for k in range(n - 1):
            funding.append(funding[-1] + compute_funding_paid_x18(
                base, path[k].funding_premium_x18, path[k + 1].timestamp_s - path[k].timestamp_s))
        open_value = [None if f is None else f.net_quote_x18 - compute_paper_gas_x18(path[i], "open") + funding[i]
                      for i, f in enumerate(opens)]
        first_open = next(i for i, v in enumerate(open_value) if v is not None)
        close_fills: list[PaperFill | None] = [None] * n
        close_value: list[int | None] = [None] * n
        for j in range(first_open + 1, n):
            fill = quoter.close(j, market, direction, venue, base, spot)
            quotes += 1
            if not isinstance(fill, str):
                close_fills[j] = fill
                close_value[j] = fill.net_quote_x18 - compute_paper_gas_x18(path[j], "close") - funding[j]
        candidates.append(_Candidate(direction, venue, size_x18, opens, open_value, close_fills, close_value, funding))
    return candidates, quotes


def schedule(n: int, candidates: Sequence[Any], known: Sequence[Any]) -> tuple[list[tuple[str, int, int, int]], int]:
    """Weighted interval scheduling over n snapshots (see the module notes), exact in ints.
    candidates: each with open_value[i] / close_value[j] (None: cannot); known: trips carried out
    (entry_index, exit_index, split). Returns the picks in time order, as (kind "grid" or "known",
    candidate or known index, entry index, exit index), and the best total."""
    ending: dict[int, list[int]] = {}
    for k, trip in enumerate(known):
        if 0 <= trip.entry_index < trip.exit_index < n:
            ending.setdefault(trip.exit_index, []).append(k)
    value = [0] * n
    choice: list[tuple[str, int, int] | None] = [None] * n  # (kind, candidate/known index, entry index)
    best: list[tuple[int, int] | None] = [None] * len(candidates)  # (V[i] + a_c[i], i)
    for j in range(n):
        if j > 0:
            value[j], choice[j] = value[j - 1], None
            for c, cand in enumerate(candidates):
                entry, closing = best[c], cand.close_value[j]
                if entry is not None and closing is not None:
                    total = entry[0] + closing
                    if total > value[j]:
                        value[j], choice[j] = total, ("grid", c, entry[1])
            for k in ending.get(j, ()):
                trip = known[k]
                total = value[trip.entry_index] + trip.split.total_x18
                if total > value[j]:
                    value[j], choice[j] = total, ("known", k, trip.entry_index)
        for c, cand in enumerate(candidates):
            opening, current = cand.open_value[j], best[c]
            if opening is not None and (current is None or value[j] + opening > current[0]):
                best[c] = (value[j] + opening, j)
    picks: list[tuple[str, int, int, int]] = []
    j = n - 1
    while j > 0:
        picked = choice[j]
        if picked is None:
            j -= 1
            continue
        kind, index, i = picked
        picks.append((kind, index, i, j))
        j = i
    picks.reverse()
    return picks, value[n - 1] if n else 0


def optimise_market(market: str, path: Sequence[PathPoint], quoter: Quoter, limits: AccountLimits = UNLIMITED,
                    sizes_x18: Sequence[int] = (), known: Sequence[KnownTrip] = (),
                    venues: Sequence[str] = SPOT_VENUES) -> tuple[list[OptimalTrip], int, int]:
    """The best non-overlapping round trips in one market: (trips, candidates priced, quotes)."""
    n = len(path)
    candidates: list[_Candidate] = []
    quotes = 0
    if n >= 2:
        for direction in (Direction.SHORT_PERP, Direction.LONG_PERP):
            for venue in venues:
                for size in sizes_x18:
                    found, used = _price_candidates(market, path, quoter, limits, direction, venue, size)
                    quotes += used
                    candidates += found
    picks, best_total = schedule(n, candidates, known)
    trips: list[OptimalTrip] = []
    for kind, index, i, j in picks:
        if kind == "grid":
            cand = candidates[index]
            opened, closed = cand.opens[i], cand.close_fills[j]
            assert opened is not None and closed is not None
            split = compute_pnl_split(
                [opened.net_quote_x18, closed.net_quote_x18], [opened.fees, closed.fees],
                cand.funding[j] - cand.funding[i],
                [compute_paper_gas_x18(path[i], "open"), compute_paper_gas_x18(path[j], "close")])
            trips.append(OptimalTrip(market, cand.direction, cand.venue, i, j, path[i].block, path[j].block,
                                     opened.perp_base_x18, "grid", split))
        else:
            trip = known[index]
            trips.append(OptimalTrip(market, trip.direction, trip.spot_venue, i, j, path[i].block, path[j].block,
                                     trip.perp_base_x18, trip.label, trip.split))
    assert sum(t.split.total_x18 for t in trips) == best_total
    return trips, len(candidates), quotes


def run_optimum(points: Mapping[str, Sequence[PathPoint]], quoter: Quoter, limits: AccountLimits = UNLIMITED,
                extra_sizes_x18: Mapping[str, Sequence[int]] | None = None,
                known: Sequence[KnownTrip] = ()) -> OptimumResult:
    """The optimum over every market (see the module notes)."""
    trips: list[OptimalTrip] = []
    by_market: dict[str, int] = {}
    candidates = quotes = 0
    notes: list[str] = []
    for market, path in sorted(points.items()):
        if not path:
            by_market[market] = 0
            continue
        extra = list((extra_sizes_x18 or {}).get(market, ())) + [abs(t.perp_base_x18) for t in known if t.market == market]
        found, priced, used = optimise_market(market, path, quoter, limits, market_sizes_x18(market, path, limits, extra),
                                              [t for t in known if t.market == market])
        trips += found
        candidates += priced
        quotes += used
        by_market[market] = sum(t.split.total_x18 for t in found)
    relaxed = False
    # across markets: the total notional cap and the executor's USDC, on the combined schedule
    n = max((len(p) for p in points.values()), default=0)
    total_usd = [0.0] * n
    usdc_usd = [0.0] * n
    for t in trips:
        path = points[t.market]
        for k in range(t.entry_index, t.exit_index):
            price = path[t.entry_index].spot_mid_usd.get(t.spot_venue or "", 0.0) or path[t.entry_index].perp_mid_usd
            notional = abs(t.perp_base_x18) / ONE_X18 * price
            total_usd[k] += notional
            if t.direction is Direction.SHORT_PERP:
                usdc_usd[k] += notional
    if any(v > limits.max_total_notional_usd * (1 + 1e-9) for v in total_usd):
        relaxed = True
        notes.append("the per-market optima together exceed the total notional cap: their sum is an upper bound")
    if limits.usdc_wallet_usd is not None and any(v > limits.usdc_wallet_usd * (1 + 1e-9) for v in usdc_usd):
        relaxed = True
        notes.append("the per-market optima together need more USDC than the executor holds: their sum is an upper bound")
    return OptimumResult(tuple(trips), by_market, candidates, quotes, relaxed, tuple(notes))

