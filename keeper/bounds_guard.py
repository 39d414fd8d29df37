"""The planner's last look at a trade's bounds: refuse bounds that protect nothing (pure).

compute_bounds (keeper/quote_bounds.py) moves each bound off the predicted fill by the configured
slippage; this checks the result independently, so that a bug or a degenerate quote cannot send a
trade whose bounds would let anything through: a perp oppositeAmountBound of 1 wei against a fill
of thousands, a zero minimum out, a maximum in of 2**256 - 1, a residual bound as large as the
trade. Each bound must lie within MAX_BOUND_SLACK_BPS of the fill it bounds (the largest slippage
the config accepts), two raw units of rounding aside; a minimum must be non-zero.
"""

from __future__ import annotations

from keeper.errors import SkipOpportunity
from keeper.quote_bounds import BasisTradeBounds, perp_closed_ratio_ppm
from keeper.quotes import BPS_DENOMINATOR, PPM, BasisTradeQuote, PerpLegQuote
from keeper.quotes_pair import PairTradeBounds, PairTradeQuote, exposure_quote_x18

MAX_BOUND_SLACK_BPS = 1_000  # = the maximum of execution.slippage_bps
ROUNDING_UNITS = 2  # compute_bounds rounds toward safety; a partial close's bound is scaled twice


class UnprotectiveBounds(SkipOpportunity):
    """A bound of the planned trade would not bound anything; nothing is sent."""


def _check(what: str, bound: int, fill: int, is_max: bool) -> None:
    if is_max:
        limit = -(-fill * (BPS_DENOMINATOR + MAX_BOUND_SLACK_BPS) // BPS_DENOMINATOR) + ROUNDING_UNITS
        if bound > limit:
            raise UnprotectiveBounds(f"{what}: maximum {bound} is more than {MAX_BOUND_SLACK_BPS} bps above the fill {fill}")
        return
    limit = fill * (BPS_DENOMINATOR - MAX_BOUND_SLACK_BPS) // BPS_DENOMINATOR - ROUNDING_UNITS
    if bound <= 0 or bound < limit:
        raise UnprotectiveBounds(f"{what}: minimum {bound} is zero or more than {MAX_BOUND_SLACK_BPS} bps below "
                                 f"the fill {fill}")


def _check_perp_leg(market: str, p: PerpLegQuote, opposite_amount_bound_x18: int) -> None:
    # Perp's _checkSlippage: B2Q exact in = min quote, B2Q exact out = max base, Q2B exact in = min
    # base, Q2B exact out = max quote; on a partial close Perp scales the bound by closedRatio.
    perp_bound = opposite_amount_bound_x18
    if p.is_partial_close:
        perp_bound = perp_bound * perp_closed_ratio_ppm(p) // PPM
    is_max = not p.is_exact_input
    fill = abs(p.quote_delta_x18) if p.is_base_to_quote == p.is_exact_input else abs(p.base_delta_x18)
    _check(f"{market} perp oppositeAmountBound", perp_bound, fill, is_max)


def check_protective_bounds(quote: BasisTradeQuote, bounds: BasisTradeBounds) -> None:
    """Raise UnprotectiveBounds unless every bound of the trade protects against its fill."""
    p, s = quote.perp, quote.spot
    base_abs = abs(p.base_delta_x18)
    _check_perp_leg(quote.market, p, bounds.perp_opposite_amount_bound_x18)
    if s.amount_raw != 0:
        spot_abs, usdc_abs = abs(s.spot_delta_raw), abs(s.usdc_delta_raw)
        if s.is_exact_input:
            _check(f"{quote.market} spot min out", bounds.spot_limit_raw, spot_abs if s.is_buy else usdc_abs, False)
        else:
            _check(f"{quote.market} spot max in", bounds.spot_limit_raw, usdc_abs if s.is_buy else spot_abs, True)
    # An open or resize is hedged by construction; a close may legitimately unwind a perp with less spot.
    if quote.kind != "close" and base_abs != 0 and bounds.max_residual_base_x18 >= base_abs:
        raise UnprotectiveBounds(f"{quote.market} residual: bound {bounds.max_residual_base_x18} is as large as the "
                                 f"perp leg {base_abs}: it would not require a hedge")


def check_protective_pair_bounds(quote: PairTradeQuote, bounds: PairTradeBounds) -> None:
    """Raise UnprotectiveBounds unless both legs' perp bounds protect against their fills and the
    net-exposure bound of an open or resize is smaller than the pair's gross exposure after it (a
    bound that large would let one leg go unhedged)."""
    _check_perp_leg(quote.market_a, quote.leg_a, bounds.opposite_amount_bound_x18_a)
    _check_perp_leg(quote.market_b, quote.leg_b, bounds.opposite_amount_bound_x18_b)
    if quote.kind == "close":
        return
    p = quote.predicted
    gross = (abs(exposure_quote_x18(quote.leg_a, p.position_base_x18_after_a))
             + abs(exposure_quote_x18(quote.leg_b, p.position_base_x18_after_b)) * quote.hedge_ratio_x18 // 10**18)
    if bounds.max_net_exposure_quote_x18 >= gross:
        raise UnprotectiveBounds(f"{quote.market_a}/{quote.market_b} net exposure: bound "
                                 f"{bounds.max_net_exposure_quote_x18} is as large as the gross exposure {gross}: "
                                 f"it would not require a hedge")
