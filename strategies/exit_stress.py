"""The cost of the exit after a stressed move, quoted exactly, and the sizing rule built on it (pure).

Stress sizing (keeper/stress.py) keeps the margin ratio above the guard under a stressed move; it
says nothing about what CLOSING costs after that move. A position sized near the cap when the pools
are thick can pay several times its entry's impact to close once the price has left the range the
liquidity sits in (docs/decisions-log.md, issue 10, fourth pass: 108-158 bps per leg at the close vs 10-36 at the
open). So each size is also quoted as the close of the same position on the pools moved to the
stressed prices the margin stress uses:

    perp: the vAMM moved through its ticks to index x (1 + s x index_move) x (1 + s x band)
          (band = Perp's maxPriceSpreadRatio: the vAMM at the band edge beyond the index move)
    spot: the venue's pool moved to spot mid x (1 + s x index_move) (V3 through its ticks, V2
          along its constant product)

for s = -1 and +1 (the two far edges, where a concentrated range is thinnest), with Perp's tick band
refreshed at the moved tick. Pools are moved by the exact swap math with a price limit, so the
liquidity at the stressed price is the pool's real liquidity there (every initialized tick crossed).
A pool whose read tick window does not reach the stressed price cannot be moved exactly: then
nothing is known of the liquidity there and the rule is CONSERVATIVE, the size is refused with that
reason (as is a stressed close that Perp's tick band would make partial).

The rule (a probability weight, not a hard cap): the exit expected at entry is the normal close with
probability 1 - p and the stressed close with probability p, so each size's expected net is charged
p x (stressed close cost - normal close cost) (fees + impact of each quoted close, the worse of the two
stressed states; booked as price impact), and the size search maximises that. p is the chance of an
index move of at least index_move within the expected hold for a random walk of volatility sigma:

    p = min(1, exit_weight x erfc(index_move / (sigma x sqrt(hold) x sqrt(2))))

sigma combines two estimates of the index's volatility, both from what the keeper already reads:

    sigma = max(sigma_history, sigma_departure)

sigma_history is the exponentially weighted realized variance of the log index over the blocks the
engine has recorded (keeper/index_volatility.py, no read of its own):

    sigma_history^2 = sum_i w_i r_i^2 / sum_i w_i dt_i,  r_i = ln(index_i / index_(i-1)),  w_i = 2^(-age_i / H)

with H = max(T / 3, 4 record spacings) (T: Perp's TWAP interval). About 2H / (ln 2 x spacing)
increments enter (14 at T = 900 s and a record a minute): on random walks its relative error is
0.17 against 0.76 for one sample (tests/unit/test_index_volatility.py). sigma_departure is that one
sample, the index's log departure x from its TWAP: for a Brownian index, index - TWAP over the last
T s has standard deviation sigma x sqrt(T / 3), so sigma_departure = |x| x sqrt(pi / 2) / sqrt(T / 3)
(E|X| = sd x sqrt(2 / pi)). The history is the floor: a volatile index that happens to sit at its
TWAP no longer reads as calm (the single sample's errors on the low side are gone). The departure
stays the jump detector: an index that has just jumped (or trended) far from its TWAP reads as
volatile at once, before the history's weighted average has caught up (on a chain read every 10
minutes, H = 2,400 s: a fresh jump J gives sigma_history about 0.017 J per sqrt(s), sigma_departure
up to 0.072 J). The max keeps the sample's errors on the high side: a large one-off departure still
charges, on purpose. A calm index keeps p ~ 0 (the rule then costs nothing); an index that has just
jumped by the stress move (5%) has p of about 0.8 over an hour's hold. Without three recorded increments (a keeper just started, `keeper stress`) sigma is the
departure's alone. Measured (docs/decisions-log.md, 2026-11-30): the history alone, in place of the departure, cut
sizes less after jumps and lost $135 (median) on funding_regime_volatile, seeds 4-6; the max is the
departure's results within $4 on every scenario.

Adds (strategies/scale_in.py) are charged consistently: the exit pays the stressed close of the WHOLE
position, so an add is charged p x (extra(position + add) - extra(position)), extra = stressed close
cost - normal close cost, both on the same stressed states with the same p (add_exit_stress_rule):
the open's charge plus the adds' is the charge of the grown position held as one.

A hard cap on the stressed exit relative to the expected net was tried first and rejected: on this
devnet the stressed cost depends on the size alone, so it cut the trades whose edge the model
under-forecasts most (docs/decisions-log.md, issue 10). exit_weight 0 turns the rule off. Floats: sizing only; every
amount stays an exact quote.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Protocol, TypeVar
from dataclasses import dataclass
from fractions import Fraction

from keeper.errors import SkipOpportunity
from keeper.stress import StressParams
from keeper.quotes import DEFAULT_MAX_TICK_CROSSED_WITHIN_BLOCK, BasisTradeQuote, quote_basis_trade
from keeper.types import (
    ONE_X18,
    Direction,
    MarketView,
    PerpMarketState,
    PnlEstimate,
    Position,
    SpotVenue,
    Unavailable,
    V2PairState,
)
from keeper.venues.perp_v2_math import PerpPriceBand
from keeper.venues.uniswap_v3_libraries import MAX_SQRT_RATIO, MIN_SQRT_RATIO
from keeper.venues.uniswap_v3_math import QuoteOutOfRange, V3PoolState, compute_v3_swap

Q96 = 1 << 96
_MOVE_AMOUNT_RAW = 1 << 200  # exact input far beyond any pool: the price limit stops the move


class ExitStressRefused(SkipOpportunity):
    """A size whose close after the stressed move cannot be quoted exactly (refused to be safe)."""


@dataclass(frozen=True)
class StressedExitState:
    """One stressed state: the view with the perp vAMM and the spot venue's pool moved, and the
    band a close there sees; `unreachable` says why it could not be built exactly."""

    label: str
    view: MarketView | None
    price_band: PerpPriceBand | None
    unreachable: str | None = None


@dataclass(frozen=True)
class ExitStressCheck:
    normal_exit_cost_usd: float
    stressed_exit_cost_usd: float  # the worse stressed state's fees + impact
    worst_label: str

    @property
    def extra_usd(self) -> float:
        return max(0.0, self.stressed_exit_cost_usd - self.normal_exit_cost_usd)


# ------------------------------------------------------------------------------ moving the pools
def move_v3_pool(pool: V3PoolState, target_sqrt_price_x96: int) -> V3PoolState:
    """The pool after arbitrage moved its price to target (through its ticks, liquidity updated).
    Raises QuoteOutOfRange when the read tick window does not reach the target."""
    target = min(MAX_SQRT_RATIO - 1, max(MIN_SQRT_RATIO + 1, target_sqrt_price_x96))
    if target == pool.sqrt_price_x96:
        return pool
    zero_for_one = target < pool.sqrt_price_x96
    swap = compute_v3_swap(pool, zero_for_one, _MOVE_AMOUNT_RAW, target)
    return pool.after(swap)


def move_v2_pair(pair: V2PairState, price_factor: Fraction) -> V2PairState:
    """The pair after arbitrage moved the spot price (USDC per spot) by price_factor along x*y=k."""
    k = pair.reserve_spot_raw * pair.reserve_usdc_raw
    # new price p' = usdc'/spot' = p x factor with spot' x usdc' = k: spot' = sqrt(k / p')
    spot = math.isqrt(k * pair.reserve_spot_raw * price_factor.denominator
                      // (pair.reserve_usdc_raw * price_factor.numerator))
    spot = max(1, spot)
    return dataclasses.replace(pair, reserve_spot_raw=spot, reserve_usdc_raw=k // spot)


def _scaled_sqrt(sqrt_price_x96: int, price_factor: Fraction) -> int:
    return math.isqrt(sqrt_price_x96 * sqrt_price_x96 * price_factor.numerator // price_factor.denominator)


def _factor(x: float) -> Fraction:
    return Fraction(x).limit_denominator(10**12)


def stressed_exit_states(view: MarketView, venue: SpotVenue, index_move: float) -> list[StressedExitState]:
    """The two far stressed states (index -/+ index_move, vAMM at the band edge beyond it)."""
    perp = view.perp
    if isinstance(perp, Unavailable):
        return [StressedExitState("perp unavailable", None, None, perp.reason)]
    spot_state = view.spot_v2 if venue == "uniswap_v2" else view.spot_v3
    if isinstance(spot_state, Unavailable):
        return [StressedExitState(f"{venue} unavailable", None, None, spot_state.reason)]
    band = perp.max_price_spread_ratio_ppm / 1e6
    max_ticks = perp.max_tick_crossed_within_block or DEFAULT_MAX_TICK_CROSSED_WITHIN_BLOCK
    states = []
    for sign in (-1, 1):
        label = f"index {sign * index_move:+.1%}, vAMM at {'lower' if sign < 0 else 'upper'} band edge"
        index_factor = _factor(1 + sign * index_move)
        target_price = Fraction(perp.index_price_x18, ONE_X18) * index_factor * _factor(1 + sign * band)
        try:
            pool = move_v3_pool(perp.pool, math.isqrt(int(target_price * (1 << 192))))
            moved_perp = dataclasses.replace(perp, pool=pool, index_price_x18=int(perp.index_price_x18 * index_factor),
                                             band_last_updated_tick=None, band_last_updated_timestamp_s=None)
            if isinstance(spot_state, V2PairState):
                moved = dataclasses.replace(view, perp=moved_perp, spot_v2=move_v2_pair(spot_state, index_factor))
            else:
                # the pool's price is token1 per token0: it moves with spot when spot is token0
                factor = index_factor if view.spot_is_token0 else 1 / index_factor
                moved = dataclasses.replace(view, perp=moved_perp,
                                            spot_v3=move_v3_pool(spot_state, _scaled_sqrt(spot_state.sqrt_price_x96, factor)))
        except QuoteOutOfRange as exc:
            states.append(StressedExitState(label, None, None,
                                            f"the read tick window does not reach the stressed price ({exc})"))
            continue
        states.append(StressedExitState(label, moved, PerpPriceBand.refreshed(pool.tick, max_ticks)))
    return states


# ------------------------------------------------------------------------------ the rule
def _held(entry: BasisTradeQuote) -> Position:
    """The position an open leaves (as strategies/pnl.py's estimate_open builds it)."""
    return Position(market=entry.market, direction=entry.direction, spot_venue=entry.spot_venue,
                    perp_base_x18=entry.predicted.perp_base_x18, spot_raw=entry.predicted.spot_raw,
                    entry_block=0, entry_timestamp_s=0, entry_basis_bps=entry.mid_basis_bps,
                    net_quote_x18=entry.predicted.net_quote_x18)


def exit_cost_usd(quote: BasisTradeQuote) -> float:
    return quote.fees_usd + quote.impact_usd


def check_exit_stress(states: list[StressedExitState], entry: BasisTradeQuote,
                      normal_exit: BasisTradeQuote) -> ExitStressCheck:
    """Quote closing the position `entry` opens on every stressed state; raises ExitStressRefused
    when a state cannot be quoted exactly (conservative) or the close would be partial."""
    return check_position_exit_stress(states, _held(entry), normal_exit)


def check_position_exit_stress(states: list[StressedExitState], held: Position,
                               normal_exit: BasisTradeQuote) -> ExitStressCheck:
    """Quote closing `held` on every stressed state (normal_exit: its close on the current state);
    raises ExitStressRefused when a state cannot be quoted exactly or the close would be partial."""
    view_name, direction, venue = held.market, held.direction, held.spot_venue
    worst, worst_label = -math.inf, ""
    for state in states:
        if state.view is None:
            raise ExitStressRefused(f"{view_name}: stressed exit ({state.label}) not quotable, size refused to be "
                                    f"safe: {state.unreachable}")
        try:
            stressed = quote_basis_trade(state.view, "close", direction, venue, 0, held, price_band=state.price_band)
        except SkipOpportunity as exc:
            raise ExitStressRefused(f"{view_name}: stressed exit ({state.label}) would fail: {exc}") from exc
        if stressed.perp.is_partial_close:
            raise ExitStressRefused(f"{view_name}: stressed exit ({state.label}) could not close "
                                    f"{abs(held.perp_base_x18) / ONE_X18:g} base in one block")
        cost = exit_cost_usd(stressed)
        if cost > worst:
            worst, worst_label = cost, state.label
    return ExitStressCheck(exit_cost_usd(normal_exit), worst, worst_label)


def stress_move_probability(perp: PerpMarketState, index_move: float, hold_s: float,
                            sigma_per_sqrt_s: float | None = None) -> float:
    """The chance of an index move of at least index_move (either way) within hold_s, for a random
    walk whose volatility is the larger of sigma_per_sqrt_s (the recorded history's estimate, None:
    none) and the one read from the index's log departure from its TWAP (module notes)."""
    if index_move <= 0 or hold_s <= 0:
        return 0.0
    departure = departure_sigma_per_sqrt_s(perp)
    sigma = departure if sigma_per_sqrt_s is None else max(sigma_per_sqrt_s, departure)
    spread = sigma * math.sqrt(hold_s)
    return 0.0 if spread <= 0 else math.erfc(index_move / (spread * math.sqrt(2)))


def departure_sigma_per_sqrt_s(perp: PerpMarketState) -> float:
    """One sample's volatility: |ln(index / TWAP)| x sqrt(pi / 2) / sqrt(T / 3) (0 when unreadable)."""
    if perp.index_twap_x18 <= 0 or perp.index_price_x18 <= 0 or perp.twap_interval_s <= 0:
        return 0.0
    departure = abs(math.log(perp.index_price_x18 / perp.index_twap_x18))
    return departure * math.sqrt(math.pi / 2) / math.sqrt(perp.twap_interval_s / 3)


class _Evaluation(Protocol):  # strategies/pnl.py's OpenEvaluation, as far as this rule reads it
    entry: BasisTradeQuote
    exit: BasisTradeQuote
    estimate: PnlEstimate


E = TypeVar("E", bound=_Evaluation)
MIN_PROBABILITY = 1e-4  # below it the stressed exit is not quoted at all


def exit_stress_probability(view: MarketView, stress: StressParams | None) -> float:
    """p of the rule (module notes): 0 when the rule is off, the perp unreadable or p negligible."""
    perp = view.perp
    if stress is None or stress.exit_weight <= 0 or isinstance(perp, Unavailable):
        return 0.0
    probability = min(1.0, stress.exit_weight * stress_move_probability(
        perp, stress.index_move, stress.hold_s, stress.index_sigma(view.name)))
    return 0.0 if probability < MIN_PROBABILITY else probability


def _charged(evaluation: E, charge_usd: float) -> E:
    estimate = dataclasses.replace(evaluation.estimate, price_impact_usd=evaluation.estimate.price_impact_usd
                                   + charge_usd)
    return dataclasses.replace(evaluation, estimate=estimate)  # type: ignore[type-var]


def exit_stress_rule(view: MarketView, venue: SpotVenue, stress: StressParams | None) -> Callable[[E], E]:
    """The step a sizing search applies to each evaluated size: its estimate charged p x the
    stressed exit's extra cost (module notes); the identity when the rule is off or p is negligible.
    The stressed states are built once per market and venue."""
    probability = exit_stress_probability(view, stress)
    if probability <= 0 or stress is None:
        return lambda evaluation: evaluation
    states = stressed_exit_states(view, venue, stress.index_move)

    def apply(evaluation: E) -> E:
        check = check_exit_stress(states, evaluation.entry, evaluation.exit)
        return _charged(evaluation, probability * check.extra_usd)

    return apply


def grown_position(position: Position, resize: BasisTradeQuote) -> Position:
    """The position after an add (a resize quoted on it): both legs grown by the resize's fills."""
    return dataclasses.replace(position, perp_base_x18=position.perp_base_x18 + resize.predicted.perp_base_x18,
                               spot_raw=position.spot_raw + resize.predicted.spot_raw)


def add_exit_stress_rule(view: MarketView, position: Position, stress: StressParams | None,
                         close_now: BasisTradeQuote) -> Callable[[E], E]:
    """The rule for an add to `position` (close_now: its close on the current state): the exit pays
    the stressed close of the WHOLE position, so the add is charged the rule's charge for the
    position after the add minus the charge the position already carries,

        p x (extra(position + add) - extra(position)),  extra = stressed close cost - normal close cost

    (both on the same stressed states, with the same p; at least 0: closing more never costs less).
    The open's charge plus the adds' is then the charge of the grown position held as one.
    The identity when the rule is off or p is negligible; a position whose own stressed close
    cannot be quoted refuses every add (the grown one cannot be quoted either)."""
    probability = exit_stress_probability(view, stress)
    if probability <= 0 or stress is None:
        return lambda evaluation: evaluation
    states = stressed_exit_states(view, position.spot_venue, stress.index_move)
    carried: list[float] = []  # extra(position), quoted on the first add evaluated

    def apply(evaluation: E) -> E:
        if not carried:
            carried.append(check_position_exit_stress(states, position, close_now).extra_usd)
        grown = check_position_exit_stress(states, grown_position(position, evaluation.entry), evaluation.exit)
        return _charged(evaluation, probability * max(0.0, grown.extra_usd - carried[0]))

    return apply


def quote_exit_stress_of_open(view: MarketView, direction: Direction, venue: SpotVenue, perp_base_x18: int,
                              index_move: float) -> ExitStressCheck | str:
    """For `keeper stress`: the normal and stressed close of the position an open of perp_base_x18
    would leave, or why it cannot be quoted."""
    try:
        entry = quote_basis_trade(view, "open", direction, venue, perp_base_x18)
        held = _held(entry)
        normal = quote_basis_trade(view, "close", direction, venue, 0, held)
        return check_exit_stress(stressed_exit_states(view, venue, index_move), entry, normal)
    except SkipOpportunity as exc:
        return str(exc)
