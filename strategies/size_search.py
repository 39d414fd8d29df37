"""The size search (pure): the best of an expected-net function over sizes, with few exact quotes.

strategies/pnl.py builds the function (estimate_open: every size quoted exactly) and, from the
model, the proof that lets a search whose answer is its smallest size skip most quotes
(`dominated`, see search_size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init

if TYPE_CHECKING:
    from strategies.pnl import OpenEvaluation

GOLDEN = (math.sqrt(5) - 1) / 2


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class SizeSearch:
    best: OpenEvaluation | None  # the best size found (None: no size could be quoted)
    evaluations: int  # sizes evaluated (each: two exact basis-trade quotes, entry and exit)
    low_x18: int
    high_x18: int
    first_failure: str | None  # why a size could not be quoted, if one could not
    proven_worse: int = 0  # sizes the search would have quoted, proven worse than the best without quoting

    @property
    def quotes(self) -> int:
        return 2 * self.evaluations


# dominated(size_x18, low_x18): True when evaluate(size) is provably below evaluate(low) in net USD
Dominance = Callable[[int, int], bool]


def search_size(evaluate: Callable[[int], OpenEvaluation], low_x18: int, high_x18: int, step_x18: int,
                max_evaluations: int = 10, grid_points: int = 5, rel_tolerance: float = 1e-3, *,
                dominated: Dominance | None = None, answer_below_usd: float = -math.inf) -> SizeSearch:
    """Maximise evaluate(size).net_usd over sizes in [low, high] (multiples of step), with at
    most max_evaluations calls: a geometric grid of grid_points sizes (low and high included),
    then Brent-style refinement around the best point: the vertex of the parabola through it and
    its two neighbours when that lies strictly inside them, else a golden-section step into the
    wider side (a geometric step when the best is an end of the range). Stops early once the next
    step would move the size by less than rel_tolerance. A size whose quote raises
    SkipOpportunity counts as -infinity.

    With `dominated` (the caller's proof that a size's net is below the smallest size's, from
    bounds on the model, without quoting it), the search first tries the answer "the smallest
    size is best": while low stays the best point, the search's sizes do not depend on the values
    (the grid, then the geometric mean of low and its nearest neighbour), so they are known in
    advance; each is proven worse or quoted and checked. When all are, and low's net is below
    answer_below_usd (so that the answer is a no-trade, whose text has no count of sizes), that
    is the search's answer, the same best evaluation the full search finds; otherwise the full
    search runs (on the sizes already quoted)."""
    if step_x18 <= 0 or max_evaluations < 1:
        raise ValueError(f"need step_x18 > 0 and max_evaluations >= 1 (got {step_x18}, {max_evaluations})")
    low_x18 = max(step_x18, -(-low_x18 // step_x18) * step_x18)
    high_x18 = high_x18 // step_x18 * step_x18
    if high_x18 < low_x18:
        return SizeSearch(None, 0, low_x18, high_x18, "size range is empty")
    quoted: dict[int, OpenEvaluation | str] = {}  # every size quoted: its evaluation, or why it could not be

    def quote(size: int) -> OpenEvaluation | str:
        if size not in quoted:
            try:
                quoted[size] = evaluate(size)
            except SkipOpportunity as exc:
                quoted[size] = str(exc)
        return quoted[size]

    def snap(size_x18: float) -> int:
        return min(high_x18, max(low_x18, int(size_x18) // step_x18 * step_x18))

    points = max(1, min(grid_points, max_evaluations))
    if points == 1 or high_x18 == low_x18:
        grid = [high_x18]
    else:
        ratio = high_x18 / low_x18
        grid = sorted({snap(low_x18 * ratio ** (i / (points - 1))) for i in range(points)} | {low_x18, high_x18})
    grid = grid[:max_evaluations]

    if dominated is not None and len(grid) > 1:
        at_low = _low_is_best(quote, grid, snap, step_x18, max_evaluations, rel_tolerance, dominated, answer_below_usd)
        if at_low is not None:
            best, proven = at_low
            failures = [q for q in quoted.values() if isinstance(q, str)]
            return SizeSearch(best, len(quoted), low_x18, high_x18, failures[0] if failures else None, proven)

    cache: dict[int, OpenEvaluation | None] = {}
    failure: list[str] = []

    def value(size: int) -> float:
        if size not in cache:
            result = quote(size)
            cache[size] = None if isinstance(result, str) else result
            if isinstance(result, str):
                failure.append(result)
        result = cache[size]
        return -math.inf if result is None else result.net_usd

    for size in grid:
        value(size)

    while len(cache) < max_evaluations:
        xs = sorted(cache)
        fs = [value(x) for x in xs]
        j = max(range(len(xs)), key=lambda k: fs[k])
        if len(xs) < 2 or not math.isfinite(fs[j]):
            break
        candidate = _next_size(xs, fs, j)
        if candidate is None:
            break
        size = snap(candidate)
        if size in cache or abs(size - xs[j]) <= max(step_x18, rel_tolerance * xs[j]):
            break
        value(size)
    found = [e for e in cache.values() if e is not None]
    best = max(found, key=lambda e: e.net_usd) if found else None
    return SizeSearch(best, len(cache), low_x18, high_x18, failure[0] if failure else None)


def _low_is_best(quote: Callable[[int], OpenEvaluation | str], grid: list[int], snap: Callable[[float], int],
                 step_x18: int, max_evaluations: int, rel_tolerance: float, dominated: Dominance,
                 answer_below_usd: float) -> tuple[OpenEvaluation, int] | None:
    """(low's evaluation, sizes proven worse) when the search's answer is provably low's and a
    no-trade (see search_size), else None. Mirrors search_size's loop with the best at index 0:
    the next size is then always the geometric mean of the two smallest sizes."""
    low_x18 = grid[0]
    at_low = quote(low_x18)
    if isinstance(at_low, str) or not at_low.net_usd < answer_below_usd:
        return None
    path = list(grid[1:])
    second = grid[1]  # the smallest size above low: each new size is below it (snapped, never below low)
    tolerance = max(step_x18, rel_tolerance * low_x18)
    while len(path) + 1 < max_evaluations:
        size = snap(math.sqrt(low_x18 * second))
        if size == second or abs(size - low_x18) <= tolerance:  # (a size already there is low or second)
            break
        second = size
        path.append(size)
    proven = 0
    for size in path:
        if dominated(size, low_x18):
            proven += 1
            continue
        other = quote(size)
        if not isinstance(other, str) and other.net_usd > at_low.net_usd:
            return None  # low is not the best: the full search decides
    return at_low, proven


def _next_size(xs: list[int], fs: list[float], j: int) -> float | None:
    """The next size to try around the best evaluated one, xs[j] (xs sorted)."""
    if j == 0:  # the smallest size is best: halve the way (geometrically) to its neighbour
        return math.sqrt(xs[0] * xs[1])
    if j == len(xs) - 1:  # the largest is best: it is the top of the range, look just below
        return math.sqrt(xs[-2] * xs[-1])
    (x0, x1, x2), (f0, f1, f2) = xs[j - 1:j + 2], fs[j - 1:j + 2]
    if all(math.isfinite(f) for f in (f0, f2)):
        numerator = (x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)
        denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
        if denominator != 0:
            vertex = x1 - 0.5 * numerator / denominator
            if x0 < vertex < x2 and abs(vertex - x1) > 1e-9 * x1:
                return vertex
    # golden-section step into the wider side of the bracket
    return x1 + (1 - GOLDEN) * (x2 - x1) if x2 - x1 > x1 - x0 else x1 - (1 - GOLDEN) * (x1 - x0)
