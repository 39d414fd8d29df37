"""The executor's bounds of a quoted basis trade (pure): each bound moved off the exact quote's
predicted fill (keeper/quotes.py) by `execution.slippage_bps`, against us, and rounded so that the
quoted fills always pass (down for minimums, up for maximums). With 0 bps every bound equals the
prediction, so any wei of difference reverts. keeper/bounds_guard.py checks that the bounds still
bound something; the pair trade's perp legs use `perp_leg_bound` too (keeper/quotes_pair.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.quotes import BPS_DENOMINATOR, PPM, USDC_SCALE_TO_X18, BasisTradeQuote, PerpLegQuote


@dataclass(frozen=True)
class BasisTradeBounds:
    """The executor's bounds for a quoted trade, each moved against us by slippage_bps and
    rounded so that the quoted fills always pass (down for minimums, up for maximums)."""

    perp_opposite_amount_bound_x18: int  # PerpOrder / PerpCloseOrder.oppositeAmountBound18 (> 0)
    spot_limit_raw: int  # SpotOrder.limitRaw: min out (exact input) or max in (exact output)
    max_residual_base_x18: int  # TradeBounds.maxResidualBase18 (0 when the legs match exactly)
    min_net_quote_x18: int  # TradeBounds.minNetQuote18 for this trade alone
    slippage_bps: int


def _less(amount: int, slippage_bps: int) -> int:
    return amount * (BPS_DENOMINATOR - slippage_bps) // BPS_DENOMINATOR


def _more(amount: int, slippage_bps: int) -> int:
    return -(-amount * (BPS_DENOMINATOR + slippage_bps) // BPS_DENOMINATOR)


def perp_closed_ratio_ppm(perp: PerpLegQuote) -> int:
    """Exchange's closedRatio of a partial close: base filled / position size, ppm, rounded down."""
    return abs(perp.base_delta_x18) * PPM // perp.amount_x18


def _perp_bound_for_fill(perp: PerpLegQuote, bound_on_fill: int, is_max: bool) -> int:
    """oppositeAmountBound18 that holds the filled amount to bound_on_fill. On a partial close
    Perp checks the fill against bound x closedRatio / 1e6 (rounded down), so the bound is
    scaled back up to the whole position: rounded up for a maximum, down for a minimum."""
    if not perp.is_partial_close:
        return bound_on_fill
    ratio_ppm = perp_closed_ratio_ppm(perp)
    if ratio_ppm == 0:  # Perp's bound becomes 0 and its check is skipped
        return bound_on_fill
    if is_max:
        return -(-bound_on_fill * PPM // ratio_ppm)
    return max(1, bound_on_fill * PPM // ratio_ppm)


def perp_leg_bound(p: PerpLegQuote, slippage_bps: int) -> tuple[int, int]:
    """(oppositeAmountBound18, the leg's signed quote at that bound) of one perp leg moved against
    us by slippage_bps: selling base exact in = min quote out, buying base exact out = max quote in
    (also the other two Perp combinations); never 0; for a partial close, scaled to the whole
    position as Perp scales it back by closedRatio. The quote is the predicted one when the quote
    side is the exact one."""
    base_abs, quote_abs = abs(p.base_delta_x18), abs(p.quote_delta_x18)
    if p.is_base_to_quote:
        if p.is_exact_input:  # min quote out
            min_quote = max(1, _less(quote_abs, slippage_bps))
            return _perp_bound_for_fill(p, min_quote, is_max=False), min_quote
        # max base in; the quote out is exact
        return _perp_bound_for_fill(p, _more(base_abs, slippage_bps), is_max=True), p.quote_delta_x18
    if p.is_exact_input:  # min base out; the quote in is exact
        return _perp_bound_for_fill(p, max(1, _less(base_abs, slippage_bps)), is_max=False), p.quote_delta_x18
    max_quote = _more(quote_abs, slippage_bps)  # max quote in
    return _perp_bound_for_fill(p, max_quote, is_max=True), -max_quote


def compute_bounds(quote: BasisTradeQuote, slippage_bps: int) -> BasisTradeBounds:
    """The executor bounds of `quote`, moved against us by slippage_bps (0 <= bps < 10_000):

    - perp oppositeAmountBound18 (Perp's _checkSlippage): selling base exact in = min quote out,
      buying base exact out = max quote in (also the other two Perp combinations); never 0; for
      a partial close, scaled to the whole position as Perp scales it back by closedRatio;
    - spot limitRaw: min out for an exact input, max in for an exact output;
    - max residual: |predicted residual| moved out by slippage (0 when the legs match exactly);
    - min net quote: the trade's net quote with each leg at its bound (the perp quote at its bound,
      or as quoted when that side is exact; the USDC side at the spot limit, or as quoted when
      exact). With 0 bps every bound equals the prediction, so any wei of difference reverts.
    This is the trade's own bound; a close's profit bound over the round trip subtracts the
    position's earlier net quote (IBasisExecutor notice) and is the planner's to apply."""
    if not 0 <= slippage_bps < BPS_DENOMINATOR:
        raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps}")
    s, fills = quote.spot, quote.predicted
    perp_bound, worst_perp_quote = perp_leg_bound(quote.perp, slippage_bps)

    usdc_abs, spot_abs = abs(fills.usdc_raw), abs(fills.spot_raw)
    if s.is_exact_input:
        out = spot_abs if s.is_buy else usdc_abs
        spot_limit = _less(out, slippage_bps)
        worst_usdc = -usdc_abs if s.is_buy else spot_limit  # a buy's USDC in is the exact side
    else:
        paid_in = usdc_abs if s.is_buy else spot_abs
        spot_limit = _more(paid_in, slippage_bps)
        worst_usdc = -spot_limit if s.is_buy else usdc_abs  # a sell's USDC out is the exact side

    return BasisTradeBounds(
        perp_opposite_amount_bound_x18=perp_bound,
        spot_limit_raw=spot_limit,
        max_residual_base_x18=_more(abs(fills.residual_base_x18), slippage_bps),
        min_net_quote_x18=worst_perp_quote + worst_usdc * USDC_SCALE_TO_X18,
        slippage_bps=slippage_bps,
    )
