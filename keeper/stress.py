"""Stress: the Perp account's margin ratio under shocks, for sizing and for `keeper stress` (pure).

A hedged basis position is solvent as a pair, but Perp sees only the perp leg: its margin ratio
(account value / total absolute position value, both at the mark) falls when the mark moves
against the perp leg, whatever the spot leg in the executor's wallet gains. So each open perp leg
is marked, under every shock of a grid, at

    stressed mark = index x (1 + index move) x (1 + edge x band)

where band is Perp's own cap on how far the vAMM may trade from the index (maxPriceSpreadRatio,
MarketRegistry.getMarketInfo, read per market from the chain) and edge is -1, 0 or +1 (the vAMM at
the lower band edge, at the index, at the upper edge); and pays adverse funding at `funding_apr`
over the expected holding time. The account's value moves by each leg's PnL at the stressed mark;
its position value is each leg at the stressed mark. A size is acceptable when the worst margin
ratio over the grid stays at or above the guard (risk.min_margin_ratio).

The margin condition is linear in a new leg's size B, per shock s:
    AV_s + B x a_s >= guard x (PV_s + B x p_s)
with a_s = sign x (stressed mark - mark) - stressed mark x (fee + funding), p_s = stressed mark,
so the largest B is min over s of (AV_s - guard x PV_s) / (guard x p_s - a_s) (when the
denominator is positive). Floats: sizing and reports only; amounts are re-quoted exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from keeper.types import ONE_X18, MarketSnapshot, PerpAccountState, PerpMarketState

SECONDS_PER_YEAR = 365 * 86_400
MAINTENANCE_MARGIN_RATIO = 0.0625  # Perp v2's mmRatio (ClearingHouseConfig): liquidation below it


@dataclass(frozen=True)
class StressParams:
    index_move: float  # fraction of the index, shocked both ways (e.g. 0.05)
    funding_apr: float  # adverse funding paid over the holding time (fraction of notional per year)
    hold_s: float  # expected holding time the adverse funding is paid for
    # weight on the estimated chance that the exit happens after the stressed move; the expected net
    # then carries that chance x the stressed close's extra cost (strategies/exit_stress.py); 0: off
    exit_weight: float = 0.0
    # the index's recent volatility per market, sigma per sqrt(s) (keeper/index_volatility.py, recorded
    # by the engine, estimated when read); a market without one falls back to its index's departure
    # from its TWAP
    index_sigma_per_sqrt_s: Mapping[str, float] = field(default_factory=dict)

    def index_sigma(self, market: str) -> float | None:
        return self.index_sigma_per_sqrt_s.get(market)

    def __post_init__(self) -> None:
        if not (0 <= self.index_move < 1 and self.funding_apr >= 0 and self.hold_s >= 0 and self.exit_weight >= 0):
            raise ValueError(f"stress params out of range: {self}")


@dataclass(frozen=True)
class PerpLeg:
    """One perp position as margin sees it: signed size (negative short), mark and index in USD,
    the market's band ratio (maxPriceSpreadRatio as a fraction)."""

    market: str
    size_base: float
    mark_usd: float
    index_usd: float
    band_ratio: float


@dataclass(frozen=True)
class Shock:
    index_move: float  # signed fraction
    edge: int  # -1 lower band edge, 0 at the index, +1 upper band edge
    adverse_funding: bool

    @property
    def label(self) -> str:
        edge = {-1: "vAMM at lower band edge", 0: "vAMM at index", 1: "vAMM at upper band edge"}[self.edge]
        funding = ", adverse funding" if self.adverse_funding else ""
        return f"index {self.index_move:+.1%}, {edge}{funding}"


@dataclass(frozen=True)
class StressRow:
    shock: Shock
    account_value_usd: float
    position_value_usd: float
    perp_pnl_usd: float  # change of the Perp account's value
    hedge_pnl_usd: float  # the spot hedge's change (delta-neutral hedge at the index move)
    margin_ratio: float | None
    liquidation_index_move: float | None  # further index move (signed, worst way) to Perp's maintenance ratio

    @property
    def net_pnl_usd(self) -> float:
        return self.perp_pnl_usd + self.hedge_pnl_usd


def shock_grid(params: StressParams, *, with_funding: bool = True) -> list[Shock]:
    funded = with_funding and params.funding_apr > 0 and params.hold_s > 0
    # the sign is part of the key: 0.0 and -0.0 are equal keys, and their shocks' labels differ
    return list(_grid(params.index_move, math.copysign(1.0, params.index_move), funded))


@lru_cache(maxsize=64)
def _grid(index_move: float, _sign: float, with_funding: bool) -> tuple[Shock, ...]:
    """The grid's shocks, built once per stress setting (the sizing asks for them every search)."""
    moves = sorted({-index_move, 0.0, index_move})
    fundings = (False, True) if with_funding else (False,)
    return tuple(Shock(m, e, f) for m in moves for e in (-1, 0, 1) for f in fundings)


def stressed_mark(leg: PerpLeg, shock: Shock) -> float:
    return leg.index_usd * (1 + shock.index_move) * (1 + shock.edge * leg.band_ratio)


def _leg_terms(leg: PerpLeg, shock: Shock, params: StressParams) -> tuple[float, float, float]:
    """(perp PnL, funding paid, position value) of one leg under one shock."""
    mark = stressed_mark(leg, shock)
    pnl = leg.size_base * (mark - leg.mark_usd)
    funding = abs(leg.size_base) * mark * params.funding_apr * params.hold_s / SECONDS_PER_YEAR if shock.adverse_funding else 0.0
    return pnl, funding, abs(leg.size_base) * mark


def stress_account(account_value_usd: float, legs: Sequence[PerpLeg], params: StressParams,
                   shocks: Sequence[Shock] | None = None) -> list[StressRow]:
    """The account under each shock of the grid (default: shock_grid(params))."""
    rows = []
    for shock in shocks if shocks is not None else shock_grid(params):
        pnl = funding = value = hedge = 0.0
        for leg in legs:
            p, f, v = _leg_terms(leg, shock, params)
            pnl, funding, value = pnl + p, funding + f, value + v
            hedge -= leg.size_base * leg.index_usd * shock.index_move
        account = account_value_usd + pnl - funding
        ratio = account / value if value > 0 else None
        rows.append(StressRow(shock, account, value, pnl - funding, hedge, ratio,
                              liquidation_move(account_value_usd, legs, params, shock)))
    return rows


def liquidation_move(account_value_usd: float, legs: Sequence[PerpLeg], params: StressParams, shock: Shock) -> float | None:
    """The index move (from the shock's, in the direction that hurts the account) at which the
    margin ratio reaches Perp's maintenance ratio, by bisection; None when flat or beyond +-100%."""
    if not legs or all(leg.size_base == 0 for leg in legs):
        return None

    def ratio(move: float) -> float:
        moved = Shock(move, shock.edge, shock.adverse_funding)
        pnl = funding = value = 0.0
        for leg in legs:
            p, f, v = _leg_terms(leg, moved, params)
            pnl, funding, value = pnl + p, funding + f, value + v
        return (account_value_usd + pnl - funding) / value if value > 0 else float("inf")

    down, up = ratio(shock.index_move - 0.01), ratio(shock.index_move + 0.01)
    direction = 1.0 if up < down else -1.0
    lo, hi = shock.index_move, shock.index_move + direction * 0.99
    if not -1 < hi < 10 or ratio(hi) > MAINTENANCE_MARGIN_RATIO:
        return None
    if ratio(lo) <= MAINTENANCE_MARGIN_RATIO:
        return 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if ratio(mid) > MAINTENANCE_MARGIN_RATIO:
            lo = mid
        else:
            hi = mid
    return lo - shock.index_move


def worst_margin_ratio(rows: Sequence[StressRow]) -> float | None:
    ratios = [r.margin_ratio for r in rows if r.margin_ratio is not None]
    return min(ratios) if ratios else None


def max_stressed_size_base(account_value_usd: float, legs: Sequence[PerpLeg], new_leg: PerpLeg, fee_ratio: float,
                           params: StressParams, guard: float) -> tuple[float, Shock | None]:
    """The largest |size| of `new_leg` (its size_base gives the side: < 0 short, > 0 long) for
    which the margin ratio stays >= guard under every shock of the grid, with the new leg's entry
    fee (fee_ratio of its notional) paid; and the shock that binds (None: nothing binds)."""
    sign = -1.0 if new_leg.size_base < 0 else 1.0
    best, binding = float("inf"), None
    for shock in shock_grid(params):
        pnl = funding = value = 0.0
        for leg in legs:
            p, f, v = _leg_terms(leg, shock, params)
            pnl, funding, value = pnl + p, funding + f, value + v
        av = account_value_usd + pnl - funding
        mark = stressed_mark(new_leg, shock)
        funding_per_base = mark * params.funding_apr * params.hold_s / SECONDS_PER_YEAR if shock.adverse_funding else 0.0
        a = sign * (mark - new_leg.mark_usd) - new_leg.mark_usd * fee_ratio - funding_per_base
        denominator = guard * mark - a
        room = av - guard * value
        if room <= 0:
            return 0.0, shock
        if denominator > 0 and room / denominator < best:
            best, binding = room / denominator, shock
    return best, binding


def legs_from_snapshot(snapshot: MarketSnapshot) -> list[PerpLeg]:
    """The account's open perp legs, marked and banded as the snapshot reads them."""
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        return []
    legs = []
    for market, held in account.markets.items():
        view = snapshot.markets.get(market)
        if held.position_size_x18 == 0 or view is None or not isinstance(view.perp, PerpMarketState):
            continue
        perp = view.perp
        legs.append(PerpLeg(market, held.position_size_x18 / ONE_X18, perp.mark_price_x18 / ONE_X18,
                            perp.index_price_x18 / ONE_X18, perp.max_price_spread_ratio_ppm / 1e6))
    return legs
