"""The hindsight optimum of pair trades (two Perp legs, one transaction each way) on a run's path.

Used when the run could trade pairs (pairs_spread enabled, or the keeper holds pair trips): a
candidate is a direction (long spread: long A / short B, or short spread), a hedge ratio beta (1,
and each beta the keeper traded) and a notional of leg A (a geometric grid down from the largest
the per-market and total caps allow, plus the keeper's own), sized beta-neutral at the first
snapshot's vAMM prices (fixed base sizes, so one position per candidate and one close quote per
snapshot). Each open and close is an exact pair quote (keeper/quotes_pair.py) on the recorded
snapshot, gas at that snapshot's gas price for the pair's gas units, and funding accrues on both
legs over the holding interval (keeper/simulate/paper.py's rule). The keeper's pair trips are
candidates too, at their realised PnL. Weighted interval scheduling over snapshots
(keeper/simulate/optimum.py schedule); its value is ADDED to the basis optimum (a relaxation: pair and basis
trips may use the same markets in the same blocks), so the sum is an upper bound of a keeper that
trades both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keeper.errors import SkipOpportunity
from keeper.pnl_split import TradeFees, compute_gas_usd_x18, compute_pnl_split
from keeper.quotes import QuoteUnavailable
from keeper.quotes_pair import quote_pair_trade
from keeper.simulate.optimum import GRID_RATIO, GRID_SIZES, OptimalTrip, schedule, size_grid_x18
from keeper.simulate.paper import AccountLimits, PathPoint, compute_funding_paid_x18
from keeper.types import ONE_X18, MarketSnapshot, PerpMarketState, perp_price_from_sqrt_x96
from keeper.venues.gas import pair_typical_gas_units
from strategies.pairs_math import beta_neutral_sizes_x18



@dataclass(frozen=True)
class _Leg:
    quote_x18: int  # both legs' signed quote, fee included
    fee_x18: int


@dataclass
class _PairCandidate:
    side: str
    beta_x18: int
    base_a: int
    base_b: int
    opens: list[_Leg | None]
    open_value: list[int | None]
    closes: list[_Leg | None]
    close_value: list[int | None]
    funding: list[int]


def _gas_x18(point: PathPoint, kind: str) -> int:
    return compute_gas_usd_x18(pair_typical_gas_units(kind) * point.gas_price_wei + point.l1_fee_wei, point.eth_price_x18)


def _quote(snapshot: MarketSnapshot, a: str, b: str, kind: str, base_a: int, base_b: int, beta_x18: int) -> _Leg | None:
    try:
        if kind == "open":
            q = quote_pair_trade(snapshot.markets[a], snapshot.markets[b], "open", base_a, base_b, hedge_ratio_x18=beta_x18)
        else:
            q = quote_pair_trade(snapshot.markets[a], snapshot.markets[b], "close", position_x18_a=base_a,
                                 position_x18_b=base_b, hedge_ratio_x18=beta_x18)
            if q.leg_a.is_partial_close or q.leg_b.is_partial_close:
                return None
    except (SkipOpportunity, QuoteUnavailable, ValueError, KeyError):
        return None
    return _Leg(q.leg_a.quote_delta_x18 + q.leg_b.quote_delta_x18, q.leg_a.fee_x18 + q.leg_b.fee_x18)


def _candidate(snapshots: Sequence[MarketSnapshot], pa: Sequence[PathPoint], pb: Sequence[PathPoint], a: str, b: str,
               side: str, beta_x18: int, base_a: int, base_b: int) -> _PairCandidate:
    n = len(snapshots)
    funding = [0]
    for k in range(n - 1):
        funding.append(funding[-1]
                       + compute_funding_paid_x18(base_a, pa[k].funding_premium_x18, pa[k + 1].timestamp_s - pa[k].timestamp_s)
                       + compute_funding_paid_x18(base_b, pb[k].funding_premium_x18, pb[k + 1].timestamp_s - pb[k].timestamp_s))
    opens = [_quote(snapshots[i], a, b, "open", base_a, base_b, beta_x18) for i in range(n - 1)] + [None]
    open_value = [None if o is None else o.quote_x18 - _gas_x18(pa[i], "open") + funding[i] for i, o in enumerate(opens)]
    first = next((i for i, v in enumerate(open_value) if v is not None), n)
    closes: list[_Leg | None] = [None] * n
    close_value: list[int | None] = [None] * n
    for j in range(first + 1, n):
        closes[j] = _quote(snapshots[j], a, b, "close", base_a, base_b, beta_x18)
        if closes[j] is not None:
            close_value[j] = closes[j].quote_x18 - _gas_x18(pa[j], "close") - funding[j]  # type: ignore[union-attr]
    return _PairCandidate(side, beta_x18, base_a, base_b, opens, open_value, closes, close_value, funding)


def optimise_pairs(snapshots: Sequence[MarketSnapshot], pa: Sequence[PathPoint], pb: Sequence[PathPoint], a: str, b: str,
                   limits: AccountLimits, betas_x18: Sequence[int] = (ONE_X18,), extra_notional_usd: Sequence[float] = (),
                   known: Sequence[OptimalTrip] = ()) -> tuple[list[OptimalTrip], int]:
    """The best non-overlapping pair round trips on the path: (trips, candidates priced)."""
    n = len(snapshots)
    if n < 2 or len(pa) != n or len(pb) != n:
        return list(known), 0
    first_a, first_b = snapshots[0].markets.get(a), snapshots[0].markets.get(b)
    if first_a is None or first_b is None or not isinstance(first_a.perp, PerpMarketState) \
            or not isinstance(first_b.perp, PerpMarketState):
        return list(known), 0
    price_a = perp_price_from_sqrt_x96(first_a.perp.pool.sqrt_price_x96)
    price_b = perp_price_from_sqrt_x96(first_b.perp.pool.sqrt_price_x96)
    candidates: list[_PairCandidate] = []
    for beta_x18 in sorted(set(betas_x18)):
        beta = beta_x18 / ONE_X18
        if beta <= 0:
            continue
        top = min(limits.max_notional_usd, limits.max_notional_usd / beta, limits.max_total_notional_usd / (1 + beta))
        grid = [s / 10**6 for s in size_grid_x18(int(top * 10**6), [int(x * 10**6) for x in extra_notional_usd if x <= top],
                                                   GRID_RATIO, GRID_SIZES)]
        for notional in grid:
            for side, long_a in (("long_spread", True), ("short_spread", False)):
                base_a, base_b = beta_neutral_sizes_x18(notional, price_a, price_b, beta_x18, long_a)
                if base_a and base_b:
                    candidates.append(_candidate(snapshots, pa, pb, a, b, side, beta_x18, base_a, base_b))
    picks, best_total = schedule(n, candidates, known)
    trips: list[OptimalTrip] = []
    for kind, index, i, j in picks:
        if kind == "grid":
            cand = candidates[index]
            opened, closed = cand.opens[i], cand.closes[j]
            assert opened is not None and closed is not None
            split = compute_pnl_split([opened.quote_x18, closed.quote_x18],
                                      [TradeFees(opened.fee_x18, 0), TradeFees(closed.fee_x18, 0)],
                                      cand.funding[j] - cand.funding[i], [_gas_x18(pa[i], "open"), _gas_x18(pa[j], "close")])
            trips.append(OptimalTrip(f"{a}/{b}", None, None, i, j, snapshots[i].block_number, snapshots[j].block_number,
                                     cand.base_a, f"pair_grid {cand.side} beta {cand.beta_x18 / ONE_X18:.3f}", split))
        else:
            trips.append(known[index])
    assert sum(t.split.total_x18 for t in trips) == best_total
    return trips, len(candidates)
