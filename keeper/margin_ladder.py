"""The margin ladder: what the keeper does as the Perp account's margin ratio falls (pure).

    ratio >= risk.margin_topup_ratio            nothing
    min_margin_ratio <= ratio < topup ratio     top up, then reduce: one resize of the largest
                                                position that deposits the executor's idle USDC
                                                (as much as restoring the top-up ratio needs) into
                                                Perp and sheds risk.margin_reduce_fraction of it;
                                                when the deposit alone restores the ratio, the
                                                resize sheds only 0.1% of the position
    ratio < min_margin_ratio                    unwind everything (keeper/risk.py)

Each step is returned with its numbers for the `margin.ladder` log event.

The executor's USDC is not all spare: closing a long-perp position buys its spot back with it
(the USDC its open received). `buyback_reserve_raw` keeps that much out of the ladder's top-ups and
out of what short-perp opens may spend, so the guard's unwind of a long perp can always pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keeper.signals import spot_price
from keeper.types import ONE_X18, USDC_DECIMALS, MarketView, PerpAccountState, PerpMarketState, Position, Unavailable

USDC_SPARE_SHARE = 0.9  # of the executor's USDC the ladder may move into Perp
BUYBACK_MARGIN_BPS = 300  # over the value of a long perp's sold spot: the pool fee (<= 1%) and the buy's impact
MIN_SHED_DIVISOR = 1000  # the smallest reduce (the one that only carries a top-up): 0.1% of the position


def buyback_reserve_raw(markets: Mapping[str, MarketView], positions: Mapping[str, Position]) -> int | None:
    """USDC (raw, rounded up) that closing the long-perp positions needs to buy their spot back: the
    sold spot at the index (the spot venue's mid when the perp cannot be read), plus
    BUYBACK_MARGIN_BPS; None when neither price can be read (then nothing is spare)."""
    reserve = 0
    for position in positions.values():
        if position.spot_raw >= 0:
            continue
        view = markets.get(position.market)
        price_x18 = None if view is None else _price_x18(view, position.spot_venue)
        if view is None or price_x18 is None:
            return None
        value_x18 = -position.spot_raw * 10 ** (18 - view.spot_token_decimals) * price_x18 // ONE_X18
        with_margin_x18 = -(-value_x18 * (10_000 + BUYBACK_MARGIN_BPS) // 10_000)
        reserve += -(-with_margin_x18 // 10 ** (18 - USDC_DECIMALS))
    return reserve


def _price_x18(view: MarketView, venue: str) -> int | None:
    if isinstance(view.perp, PerpMarketState):
        return view.perp.index_price_x18
    mid = spot_price(view, venue)
    return None if isinstance(mid, Unavailable) else int(mid * ONE_X18)


@dataclass(frozen=True)
class LadderStep:
    market: str
    deposit_usdc_raw: int
    reduce_base_x18: int  # > 0: how much of the position to shed
    margin_ratio: float
    margin_ratio_after_deposit: float
    reason: str


def plan_ladder_step(account: PerpAccountState, positions: Mapping[str, Position], wallet_usdc_raw: int,
                     *, topup_ratio: float, min_ratio: float, reduce_fraction: float,
                     min_unit_x18: Mapping[str, int]) -> LadderStep | None:
    """The ladder's step for this tick, or None (ratio at or above topup_ratio, below min_ratio
    where risk unwinds instead, or nothing held). min_unit_x18: per market the smallest size a
    trade can move (a whole raw spot unit)."""
    ratio = account.margin_ratio
    if ratio is None or ratio >= topup_ratio or ratio < min_ratio or not positions:
        return None
    value_usd = account.account_value_x18 / ONE_X18
    held_usd = account.total_abs_position_value_x18 / ONE_X18
    needed_usd = max(0.0, topup_ratio * held_usd - value_usd)
    spare_usd = wallet_usdc_raw * USDC_SPARE_SHARE / 10**USDC_DECIMALS
    deposit_usd = min(needed_usd * 1.05, spare_usd)
    deposit_raw = int(deposit_usd * 10**USDC_DECIMALS)
    after = (value_usd + deposit_raw / 10**USDC_DECIMALS) / held_usd
    market, position = max(positions.items(), key=lambda kv: abs(kv[1].perp_base_x18))
    unit = max(1, min_unit_x18.get(market, 1))
    if after >= topup_ratio:
        reduce_x18 = max(unit, abs(position.perp_base_x18) // MIN_SHED_DIVISOR // unit * unit)
        what = (f"top up ${deposit_raw / 10**USDC_DECIMALS:,.2f} restores {after:.4f} >= {topup_ratio:.4f}; "
                f"the reduce carrying it sheds 1/{MIN_SHED_DIVISOR} of {market}")
    else:
        reduce_x18 = max(unit, int(abs(position.perp_base_x18) * reduce_fraction) // unit * unit)
        what = (f"top up ${deposit_raw / 10**USDC_DECIMALS:,.2f} (of ${spare_usd:,.2f} spare) gives {after:.4f} < "
                f"{topup_ratio:.4f}: reduce {market} by {reduce_x18 / ONE_X18:.6g} base ({reduce_fraction:.0%})")
    reduce_x18 = min(reduce_x18, abs(position.perp_base_x18))
    reason = (f"margin ladder: ratio {ratio:.4f} < top-up {topup_ratio:.4f} (guard {min_ratio:.4f}); account value "
              f"${value_usd:,.2f}, positions ${held_usd:,.2f}, needs ${needed_usd:,.2f}; {what}")
    return LadderStep(market, deposit_raw, reduce_x18, ratio, after, reason)
