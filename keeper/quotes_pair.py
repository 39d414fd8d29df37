"""Exact quote of one pair trade: two Perp v2 legs on two markets in one executor call (pure).

The pair (IPairExecutor, contracts/src/interfaces/IPairExecutor.sol) is long one market and short
another, e.g. long vETH / short vBTC, both legs through the ClearingHouse in ONE transaction.
`quote_pair_trade` replays both legs on one snapshot's vAMM states through the perp venue's adapter
(`PAIR_LEG_VENUE`, Perp v2: keeper/venues/perp_v2_adapter.py's quote_open / quote_close, the exact
Perp math the basis trades' perp leg uses; keeper/quotes.py's leg builder) and returns the executor's
`PairFills` (`predicted`), to the wei, if the chain is as in the snapshot. The two markets are two
separate vAMM pools, so leg A's fill does not move leg B's price.

- open / resize: each leg is a SIGNED change of that market's taker position: > 0 buys exactly that
  base (Q2B, exact output: the bound is the max quote in), < 0 sells exactly that base (B2Q, exact
  input: the bound is the min quote out). Open needs both markets flat, resize both open.
- close: ClearingHouse.closePosition of each whole position (limited to Perp's tick band, so a
  large close can fill partially; the leftover shows in the net exposure).

Net exposure (the executor's third bound, in USD with 18 decimals): each leg's position after the
trade valued at that leg's own average fill price, fee included, rounded toward zero like Solidity:
exposure = position_after x |quote| // |base|; net = exposure A + exposure B x hedge_ratio // 1e18.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from keeper.quote_bounds import perp_leg_bound
from keeper.quotes import BPS_DENOMINATOR, PerpLegQuote, QuoteUnavailable, assumed_price_band, perp_leg_quote
from keeper.types import ONE_X18, MarketView, PerpMarketState, PerpVenue, Unavailable
from keeper.venues import executor as ex
from keeper.venues.executor import PairFills
from keeper.venues.perp_v2_math import PerpPriceBand
from keeper.venues.registry import perp_adapter

PairKind = Literal["open", "resize", "close"]
PAIR_PERP_VENUE: PerpVenue = "perp_v2"  # both legs of a pair trade (the executor's openPair / closePair)
PAIR_LEG_VENUE = perp_adapter(PAIR_PERP_VENUE)


@dataclass(frozen=True)
class PairTradeQuote:
    kind: PairKind
    market_a: str
    market_b: str
    leg_a: PerpLegQuote
    leg_b: PerpLegQuote
    hedge_ratio_x18: int  # beta x 1e18: the weight of leg B's exposure
    predicted: PairFills
    price_band_a: PerpPriceBand
    price_band_b: PerpPriceBand


@dataclass(frozen=True)
class PairTradeBounds:
    opposite_amount_bound_x18_a: int
    opposite_amount_bound_x18_b: int
    max_net_exposure_quote_x18: int
    slippage_bps: int


def div_toward_zero(numerator: int, denominator: int) -> int:
    """Solidity's int256 division (truncates toward zero; Python's // floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def exposure_quote_x18(leg: PerpLegQuote, position_after_x18: int) -> int:
    """The position after, valued at the leg's average fill price (fee included)."""
    if leg.base_delta_x18 == 0:
        raise QuoteUnavailable(f"{leg.base_token}: the leg fills zero base (the executor reverts LegNotFilled)")
    return div_toward_zero(position_after_x18 * abs(leg.quote_delta_x18), abs(leg.base_delta_x18))


def net_exposure_quote_x18(exposure_a_x18: int, exposure_b_x18: int, hedge_ratio_x18: int) -> int:
    return exposure_a_x18 + div_toward_zero(exposure_b_x18 * hedge_ratio_x18, ONE_X18)


def _perp_state(view: MarketView) -> PerpMarketState:
    state = PAIR_LEG_VENUE.state(view)
    if isinstance(state, Unavailable):
        raise QuoteUnavailable(f"{view.name}: perp unavailable: {state.reason}")
    return state


def _quote_leg(view: MarketView, kind: PairKind, base_change_x18: int, position_x18: int,
               band: PerpPriceBand | None) -> tuple[PerpLegQuote, PerpPriceBand]:
    perp = _perp_state(view)
    band = band if band is not None else assumed_price_band(perp)
    if kind == "close":
        if position_x18 == 0:
            raise ValueError(f"{view.name}: a close needs a position")
        q = PAIR_LEG_VENUE.quote_close(perp, position_x18, band)
        return perp_leg_quote(perp, q, True, position_x18 > 0, position_x18 > 0, abs(position_x18)), band
    if base_change_x18 == 0:
        raise ValueError(f"{view.name}: a pair leg needs a non-zero base change")
    if kind == "open" and position_x18 != 0:
        raise ValueError(f"{view.name}: an open needs a flat market, position is {position_x18}")
    if kind == "resize" and position_x18 == 0:
        raise ValueError(f"{view.name}: a resize needs a position")
    is_short = base_change_x18 < 0  # sell exact base in (B2Q); buy exact base out (Q2B)
    q = PAIR_LEG_VENUE.quote_open(perp, is_short, abs(base_change_x18), band)
    return perp_leg_quote(perp, q, False, is_short, is_short, abs(base_change_x18)), band


def quote_pair_trade(
    view_a: MarketView,
    view_b: MarketView,
    kind: PairKind,
    base_change_x18_a: int = 0,
    base_change_x18_b: int = 0,
    *,
    position_x18_a: int = 0,
    position_x18_b: int = 0,
    hedge_ratio_x18: int = ONE_X18,
    price_band_a: PerpPriceBand | None = None,
    price_band_b: PerpPriceBand | None = None,
) -> PairTradeQuote:
    """Both legs of one pair trade on the snapshot's state; see the module notes. Raises
    QuoteUnavailable, or the Perp math's SkipOpportunity errors when Perp would revert."""
    if view_a.name == view_b.name:
        raise ValueError(f"a pair needs two markets, got {view_a.name} twice")
    if hedge_ratio_x18 < 0:
        raise ValueError(f"hedge_ratio_x18 must be >= 0, got {hedge_ratio_x18}")
    leg_a, band_a = _quote_leg(view_a, kind, base_change_x18_a, position_x18_a, price_band_a)
    leg_b, band_b = _quote_leg(view_b, kind, base_change_x18_b, position_x18_b, price_band_b)
    after_a = position_x18_a + leg_a.base_delta_x18
    after_b = position_x18_b + leg_b.base_delta_x18
    net = net_exposure_quote_x18(exposure_quote_x18(leg_a, after_a), exposure_quote_x18(leg_b, after_b),
                                 hedge_ratio_x18)
    predicted = PairFills(leg_a.base_delta_x18, leg_a.quote_delta_x18, after_a,
                          leg_b.base_delta_x18, leg_b.quote_delta_x18, after_b, net)
    return PairTradeQuote(kind, view_a.name, view_b.name, leg_a, leg_b, hedge_ratio_x18, predicted, band_a, band_b)


def compute_pair_bounds(quote: PairTradeQuote, slippage_bps: int) -> PairTradeBounds:
    """The executor bounds of `quote`, moved against us by slippage_bps (0 <= bps < 10_000): each
    leg's oppositeAmountBound18 as for a basis trade's perp leg (keeper/quote_bounds.py perp_leg_bound),
    and the max net exposure = |predicted net| + slippage_bps of the gross exposure after the trade
    (|exposure A| + beta x |exposure B|), rounded up. With 0 bps every bound equals the prediction,
    so any wei of difference reverts."""
    if not 0 <= slippage_bps < BPS_DENOMINATOR:
        raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps}")
    bound_a, _ = perp_leg_bound(quote.leg_a, slippage_bps)
    bound_b, _ = perp_leg_bound(quote.leg_b, slippage_bps)
    p = quote.predicted
    gross = (abs(exposure_quote_x18(quote.leg_a, p.position_base_x18_after_a))
             + abs(exposure_quote_x18(quote.leg_b, p.position_base_x18_after_b)) * quote.hedge_ratio_x18 // ONE_X18)
    slack = -(-gross * slippage_bps // BPS_DENOMINATOR)
    return PairTradeBounds(bound_a, bound_b, abs(p.net_exposure_quote_x18) + slack, slippage_bps)


def build_pair_call(quote: PairTradeQuote, bounds: PairTradeBounds, deadline_s: int,
                    deposit_usdc_raw: int = 0) -> tuple[str, tuple[Any, ...]]:
    """(function name, arguments) of the executor call that runs the quoted pair trade."""
    limits = ex.pair_bounds(deadline_s, quote.hedge_ratio_x18, bounds.max_net_exposure_quote_x18)
    a, b = quote.leg_a, quote.leg_b
    if quote.kind == "close":
        return "closePair", (ex.perp_close_order(a.base_token, bounds.opposite_amount_bound_x18_a),
                             ex.perp_close_order(b.base_token, bounds.opposite_amount_bound_x18_b), limits)
    order_a = ex.perp_order(a.base_token, a.is_base_to_quote, a.is_exact_input, a.amount_x18,
                            bounds.opposite_amount_bound_x18_a)
    order_b = ex.perp_order(b.base_token, b.is_base_to_quote, b.is_exact_input, b.amount_x18,
                            bounds.opposite_amount_bound_x18_b)
    return ("openPair" if quote.kind == "open" else "resizePair"), (deposit_usdc_raw, order_a, order_b, limits)
