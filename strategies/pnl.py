"""The one expected-PnL model both strategies use, and the size search built on it (pure).

Expected net PnL of opening a basis position of B base in `direction` and holding it for the
expected holding time T (at most the cost model's horizon), in USD (floats: decisions only; every amount is quoted exactly in ints first):

    net = convergence + funding - fees - price impact - gas - cost of capital

    convergence = s x B x spot_mid x (entry_basis_bps - exit_basis_bps) / 10_000
                  s = +1 for SHORT_PERP (earns when the basis falls), -1 for LONG_PERP;
                  entry_basis_bps = (vAMM mid / spot mid - 1) x 10_000 of the entry quote (the
                  prices the trade actually starts from); exit_basis_bps = the basis expected at
                  exit (basis convergence: the recent mean; None = no convergence assumed: 0)
    funding     = s x B x index_twap x funding_fraction
                  (Perp v2 pays premium x time / 1 day on the size; funding_fraction is the
                  strategy's forecast over the expected holding time T: the current rate decaying
                  toward the rate of the basis centre with the basis's fitted half-life,
                  StrategyContext.funding_forecast_s)
    fees        = entry fees (Perp's exchange fee + the spot pool's fee) + exit fees
    price impact= entry impact + exit impact, each leg against its pre-trade mid, fee excluded
    gas         = (gas_open + gas_close) x gas price + 2 x L1 data fee, in USD via the ETH price
    capital     = (B x spot_mid + B x perp_mid / leverage) x APR x T / 1 year
                  (the spot notional is locked either way: bought spot, or for LONG_PERP the USDC
                  from the sale that must buy the spot back; the perp margin at the allowed leverage)

Entry fees and impact come from quote_basis_trade's exact quote of the open. The exit is quoted as
the close of that same position on the CURRENT state (the pools as they are now, not after our
entry): the assumption is that arbitrage restores the pools before we exit, so the exit pays its
own impact afresh rather than getting our entry's impact back; its mid prices are replaced by the
expected exit basis through the convergence term.

Sizing: expected net PnL over B is concave-ish (edge linear in B, impact ~B^2, gas fixed), so
`search_size` (strategies/size_search.py) evaluates a geometric grid over [min size, the risk
cap] and refines around the best point with parabolic interpolation (golden-section steps as the
fallback), every evaluation quoting entry and exit exactly; at most `max_evaluations` sizes (2
quotes each). `edge_slope_bound` bounds how fast the net can grow with size; when that is
negative, the search proves most sizes worse than the smallest without quoting them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init
from keeper.quotes import BasisTradeQuote, quote_basis_trade, round_perp_base_to_spot_units, spot_scale_to_x18
from keeper.signals import spot_price
from keeper.stress import PerpLeg, max_stressed_size_base
from keeper.types import (
    ONE_X18,
    Q192,
    Direction,
    MarketView,
    PerpAccountState,
    PnlEstimate,
    Position,
    SpotVenue,
    Unavailable,
)
from keeper.venues.perp_v2_math import PerpPriceBand
from keeper.venues.registry import spot_adapter
from strategies.base import CostModel, RiskLimits
from strategies.exit_stress import exit_stress_rule
from strategies.size_search import Dominance, SizeSearch, search_size

# ------------------------------------------------------------------------------ the model
def direction_sign(direction: Direction) -> int:
    """+1 when the position earns from a falling basis and positive funding (SHORT_PERP)."""
    return -direction.perp_sign


def combine_pnl(
    *,
    direction: Direction,
    base: float,
    spot_mid_usd: float,
    perp_mid_usd: float,
    index_price_usd: float,
    entry_basis_bps: float,
    exit_basis_bps: float | None,
    funding_fraction: float,
    fees_usd: float,
    impact_usd: float,
    costs: CostModel,
    leverage: float,
    hold_s: float | None = None,
) -> PnlEstimate:
    """The model's arithmetic (module notes), from quoted fees and impact; base in whole tokens."""
    sign = direction_sign(direction)
    convergence = 0.0 if exit_basis_bps is None else sign * base * spot_mid_usd * (entry_basis_bps - exit_basis_bps) / 1e4
    funding = sign * base * index_price_usd * funding_fraction
    capital_usd = base * spot_mid_usd + base * perp_mid_usd / leverage
    return PnlEstimate(
        convergence_usd=convergence,
        funding_usd=funding,
        fees_usd=fees_usd,
        price_impact_usd=impact_usd,
        gas_usd=costs.open_gas_usd + costs.close_gas_usd,
        capital_cost_usd=costs.capital_cost_usd(capital_usd, hold_s),
        close_gas_usd=costs.close_gas_usd,
    )


@quick_init
@dataclass(frozen=True)
class OpenEvaluation:
    """One size, quoted exactly: the open, its expected exit, and the expected PnL."""

    perp_base_x18: int
    entry: BasisTradeQuote
    exit: BasisTradeQuote
    estimate: PnlEstimate
    notional_usd: float  # B x spot mid

    @property
    def net_usd(self) -> float:
        return self.estimate.net_usd


def estimate_open(
    view: MarketView,
    direction: Direction,
    venue: SpotVenue,
    perp_base_x18: int,
    costs: CostModel,
    *,
    funding_fraction: float,
    exit_basis_bps: float | None,
    leverage: float,
    hold_s: float | None = None,
    price_band: PerpPriceBand | None = None,
) -> OpenEvaluation:
    """Quote the open and its exit exactly and apply the model. Raises SkipOpportunity when a
    leg cannot be quoted (a contract would revert, a read is missing) or when the exit could not
    close the whole position in one block (Perp's tick band would make it partial)."""
    perp = view.perp
    if isinstance(perp, Unavailable):
        raise SkipOpportunity(f"{view.name}: perp unavailable: {perp.reason}")
    entry = quote_basis_trade(view, "open", direction, venue, perp_base_x18, price_band=price_band)
    held = Position(market=view.name, direction=direction, spot_venue=venue,
                    perp_base_x18=entry.predicted.perp_base_x18, spot_raw=entry.predicted.spot_raw,
                    entry_block=0, entry_timestamp_s=0, entry_basis_bps=entry.mid_basis_bps,
                    net_quote_x18=entry.predicted.net_quote_x18)
    exit_quote = quote_basis_trade(view, "close", direction, venue, 0, held, price_band=price_band)
    if exit_quote.perp.is_partial_close:
        raise SkipOpportunity(f"{view.name}: a position of {entry.base_abs_x18 / ONE_X18:g} base could not be "
                              f"closed in one block (Perp's tick band)")
    base = entry.base_abs_x18 / ONE_X18
    estimate = combine_pnl(
        direction=direction, base=base, spot_mid_usd=entry.spot_mid_price_usd, perp_mid_usd=entry.perp_mid_price_usd,
        index_price_usd=perp.index_twap_x18 / ONE_X18, entry_basis_bps=entry.mid_basis_bps,
        exit_basis_bps=exit_basis_bps, funding_fraction=funding_fraction,
        fees_usd=entry.fees_usd + exit_quote.fees_usd, impact_usd=entry.impact_usd + exit_quote.impact_usd,
        costs=costs, leverage=leverage, hold_s=hold_s,
    )
    return OpenEvaluation(entry.base_abs_x18, entry, exit_quote, estimate, base * entry.spot_mid_price_usd)


def estimate_close(view: MarketView, position: Position, costs: CostModel,
                   price_band: PerpPriceBand | None = None) -> tuple[BasisTradeQuote, PnlEstimate]:
    """Quote closing `position` now. The estimate is the position's round trip if closed now:
    convergence = the trading PnL at mid prices (the earlier net quote + this close's net quote,
    with this close's fees and impact added back), funding = minus what the position paid, fees
    and impact = this close's, gas = the close's; no capital cost (it frees capital). The entry's
    gas is sunk and not counted."""
    quote = quote_basis_trade(view, "close", position.direction, position.spot_venue, 0, position,
                              price_band=price_band)
    round_trip_usd = (position.net_quote_x18 + quote.predicted.net_quote_x18) / ONE_X18
    return quote, PnlEstimate(
        convergence_usd=round_trip_usd + quote.fees_usd + quote.impact_usd,
        funding_usd=-position.funding_paid_x18 / ONE_X18,
        fees_usd=quote.fees_usd,
        price_impact_usd=quote.impact_usd,
        gas_usd=costs.close_gas_usd,
        capital_cost_usd=0.0,
    )


# ------------------------------------------------------------------------------ sizing
@dataclass(frozen=True)
class SizeCap:
    max_perp_base_x18: int
    binding: str  # which limit binds, with its numbers


def spot_fee_fraction(view: MarketView, venue: str) -> float:
    """The spot venue's fee per unit of notional, as its adapter reads it (Uniswap V2: 0.3%; V3:
    the pool's tier); 0.3% when the venue is not readable in this snapshot."""
    fee_pips = spot_adapter(venue).fee_pips(view)
    return 0.003 if fee_pips is None else fee_pips / 1e6


def round_trip_fee_fraction(view: MarketView, venue: str) -> float:
    """Perp's exchange fee and the spot venue's, on the way in and out, per unit of notional: what
    any size of a basis trade pays before its impact (0 when the perp cannot be read)."""
    perp = view.perp
    perp_fee = 0.0 if isinstance(perp, Unavailable) else perp.exchange_fee_ratio_ppm / 1e6
    return 2 * (perp_fee + spot_fee_fraction(view, venue))


def mid_prices_usd(view: MarketView, venue: SpotVenue) -> tuple[float, float] | Unavailable:
    """(vAMM mid, spot mid) in USD, floats for sizing."""
    perp = view.perp
    if isinstance(perp, Unavailable):
        return perp
    spot = spot_price(view, venue)
    if isinstance(spot, Unavailable):
        return spot
    return perp.pool.sqrt_price_x96 ** 2 / Q192, spot


USDC_SPEND_SHARE = 0.95  # of the executor's USDC a spot buy may plan to use


def compute_size_cap(view: MarketView, direction: Direction, venue: SpotVenue, limits: RiskLimits,
                     account: PerpAccountState | None, legs: Sequence[PerpLeg] = ()) -> SizeCap | Unavailable:
    """The largest perp size the risk limits allow for a new position, rounded down to whole spot
    units: notional (at the higher of the two mids) under the per-market cap, the remaining total
    budget, free collateral x max leverage and, with an account, the ACCOUNT-level leverage
    ((total abs position value + notional) / account value <= max_leverage, across all markets)
    and the stressed margin ratio (keeper/stress.py: with `legs`, the account's open perp legs,
    the worst margin ratio over the shock grid stays >= min_margin_ratio); a LONG_PERP open also
    sells no more spot than the inventory."""
    mids = mid_prices_usd(view, venue)
    if isinstance(mids, Unavailable):
        return mids
    price = max(mids)
    caps_usd = [
        (limits.max_notional_usd_per_market, f"max notional per market ${limits.max_notional_usd_per_market:,.0f}"),
        (limits.remaining_total_notional_usd, f"remaining total notional ${limits.remaining_total_notional_usd:,.0f}"),
        (limits.free_collateral_usd * limits.max_leverage,
         f"free collateral ${limits.free_collateral_usd:,.0f} x leverage {limits.max_leverage:g}"),
    ]
    if direction is Direction.SHORT_PERP and limits.usdc_wallet_usd is not None:
        # The spot leg buys with the executor's USDC; keep room for the pool fee and price impact.
        caps_usd.append((limits.usdc_wallet_usd * USDC_SPEND_SHARE,
                         f"executor USDC ${limits.usdc_wallet_usd:,.0f} x {USDC_SPEND_SHARE:g}"))
    if account is not None and limits.min_margin_ratio > 0:
        value_usd = account.account_value_x18 / ONE_X18
        held_usd = account.total_abs_position_value_x18 / ONE_X18
        room = value_usd / limits.min_margin_ratio - held_usd
        caps_usd.append((max(0.0, room), f"margin ratio >= {limits.min_margin_ratio:g} after the trade"))
        caps_usd.append((max(0.0, limits.max_leverage * value_usd - held_usd),
                         f"account leverage {limits.max_leverage:g}: held ${held_usd:,.0f} of account value ${value_usd:,.0f}"))
        if limits.stress is not None:
            stressed = stress_cap_usd(view, direction, account, legs, limits)
            if stressed is not None:
                caps_usd.append(stressed)
    cap_usd, binding = min(caps_usd, key=lambda c: c[0])
    cap_x18 = int(cap_usd / price * ONE_X18) if cap_usd > 0 else 0
    if direction is Direction.LONG_PERP and limits.spot_inventory_raw is not None:
        inventory_x18 = limits.spot_inventory_raw.get(view.name, 0) * spot_scale_to_x18(view.spot_token_decimals)
        if inventory_x18 < cap_x18:
            cap_x18, binding = inventory_x18, f"spot inventory {inventory_x18 / ONE_X18:g}"
    return SizeCap(round_perp_base_to_spot_units(cap_x18, view.spot_token_decimals), binding)


def stress_cap_usd(view: MarketView, direction: Direction, account: PerpAccountState, legs: Sequence[PerpLeg],
                   limits: RiskLimits) -> tuple[float, str] | None:
    """The notional cap from stress sizing (keeper/stress.py), with the shock that binds."""
    perp = view.perp
    if isinstance(perp, Unavailable) or limits.stress is None:
        return None
    mark, index = perp.mark_price_x18 / ONE_X18, perp.index_price_x18 / ONE_X18
    new_leg = PerpLeg(view.name, float(direction.perp_sign), mark, index, perp.max_price_spread_ratio_ppm / 1e6)
    fee_ratio = perp.exchange_fee_ratio_ppm / 1e6
    base, shock = max_stressed_size_base(account.account_value_x18 / ONE_X18, legs, new_leg, fee_ratio,
                                         limits.stress, limits.min_margin_ratio)
    if shock is None:
        return None
    return base * mark, f"stressed margin ratio >= {limits.min_margin_ratio:g} under {shock.label}"


def optimise_open(
    view: MarketView,
    direction: Direction,
    venue: SpotVenue,
    costs: CostModel,
    limits: RiskLimits,
    account: PerpAccountState | None,
    *,
    funding_fraction: float,
    exit_basis_bps: float | None,
    min_notional_usd: float,
    max_evaluations: int = 10,
    hold_s: float | None = None,
    legs: Sequence[PerpLeg] = (),
    min_profit_usd: float | None = None,
) -> tuple[SizeSearch, SizeCap] | Unavailable:
    """The size with the best expected net PnL for a new position under the risk limits. With
    min_profit_usd (the caller's bar), a search whose answer is provably the smallest size and
    below the bar quotes only the sizes it cannot rule out (search_size, edge_slope_bound)."""
    cap = compute_size_cap(view, direction, venue, limits, account, legs)
    if isinstance(cap, Unavailable):
        return cap
    mids = mid_prices_usd(view, venue)
    assert not isinstance(mids, Unavailable)
    low_x18 = int(min_notional_usd / min(mids) * ONE_X18)
    step_x18 = spot_scale_to_x18(view.spot_token_decimals)
    exit_rule = exit_stress_rule(view, venue, limits.stress)  # strategies/exit_stress.py

    def evaluate(size_x18: int) -> OpenEvaluation:
        return exit_rule(estimate_open(view, direction, venue, size_x18, costs, funding_fraction=funding_fraction,
                                       exit_basis_bps=exit_basis_bps, leverage=limits.max_leverage, hold_s=hold_s))

    dominated = None
    if min_profit_usd is not None:
        slope = edge_slope_bound(view, direction, venue, costs, funding_fraction=funding_fraction,
                                 exit_basis_bps=exit_basis_bps, leverage=limits.max_leverage, hold_s=hold_s)
        if slope is not None and slope < 0:
            dominated = _dominated_by_slope(slope, max(mids))
    return search_size(evaluate, low_x18, cap.max_perp_base_x18, step_x18, max_evaluations, dominated=dominated,
                       answer_below_usd=-math.inf if min_profit_usd is None else min_profit_usd), cap


# Slack of the slope bound: the exact quotes round by a few raw units per swap step (USDC: 1e-6
# USD each), and the model's floats by ~1e-16 of the notional; both far inside these.
SLOPE_SLACK_USD = 1e-3
SLOPE_SLACK_PER_NOTIONAL = 1e-7


def edge_slope_bound(view: MarketView, direction: Direction, venue: SpotVenue, costs: CostModel, *,
                     funding_fraction: float, exit_basis_bps: float | None, leverage: float,
                     hold_s: float | None) -> float | None:
    """An upper bound of how fast estimate_open's net grows with size, USD per whole base token:
    net(b) - net(a) <= slope x (b - a) (up to rounding) for sizes a < b quoted on this view.

    Convergence, funding and capital are linear in the size (their per-token rates from the
    same mids, index and costs combine_pnl uses). Fees plus impact of the four legs (entry and
    exit, perp and spot) are each a leg's cost beyond its mid, which grows at least at the leg's
    fee rate times its mid: an AMM's marginal price moves against the trade (a buy pays at least
    the mid plus the fee, a sale gets at most the mid less the fee; Perp's exchange fee on the
    notional likewise). So the slope is at most the linear rates minus 2 x (perp mid x exchange
    fee + spot mid x spot fee). None when a mid or a fee is not readable."""
    perp = view.perp
    mids = mid_prices_usd(view, venue)
    spot_fee_pips = spot_adapter(venue).fee_pips(view)
    if isinstance(perp, Unavailable) or isinstance(mids, Unavailable) or spot_fee_pips is None:
        return None
    perp_mid, spot_mid = mids
    sign = direction_sign(direction)
    entry_basis_bps = (perp_mid / spot_mid - 1) * 1e4
    convergence = 0.0 if exit_basis_bps is None else sign * spot_mid * (entry_basis_bps - exit_basis_bps) / 1e4
    funding = sign * perp.index_twap_x18 / ONE_X18 * funding_fraction
    capital = costs.capital_cost_usd(spot_mid + perp_mid / leverage, hold_s)
    fee_floor = 2 * (perp_mid * perp.exchange_fee_ratio_ppm / 1e6 + spot_mid * spot_fee_pips / 1e6)
    return convergence + funding - capital - fee_floor


def _dominated_by_slope(slope: float, price_usd: float) -> Dominance:
    """search_size's proof from a negative slope bound: net(size) <= net(low) + slope x (size -
    low) + slack < net(low)."""
    def dominated(size_x18: int, low_x18: int) -> bool:
        slack = SLOPE_SLACK_USD + SLOPE_SLACK_PER_NOTIONAL * (size_x18 + low_x18) / ONE_X18 * price_usd
        return slope * (size_x18 - low_x18) / ONE_X18 + slack < 0
    return dominated


def describe_size(evaluation: OpenEvaluation) -> str:
    return f"{evaluation.perp_base_x18 / ONE_X18:.6g} base (${evaluation.notional_usd:,.0f})"
