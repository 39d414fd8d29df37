"""Exact quote of one basis trade, both legs, as the BasisExecutor will fill it (pure).

A basis trade is a Perp v2 leg and a Uniswap spot leg against USDC in one executor call
(contracts/src/interfaces/IBasisExecutor.sol). `quote_basis_trade` replays both legs on one
snapshot's state with the exact integer math in keeper/venues/*_math.py and returns what the
executor's `Fills` will report (`predicted`), to the wei, if the chain is as in the snapshot:

- open SHORT_PERP: short exactly B base (openPosition B2Q, exact input) and BUY exactly B of spot
  with USDC (exact output). B is rounded DOWN to a whole raw spot unit (10**(18 - decimals)) so the
  residual is exactly 0 (WBTC: 8 decimals).
- open LONG_PERP: long exactly B base (Q2B, exact output) and SELL exactly B of spot for USDC
  (exact input).
- close: ClearingHouse.closePosition of the whole position (limited to Perp's per-block tick band,
  so a large close can fill partially) and the position's spot reversed: SHORT_PERP sells
  `position.spot_raw` (exact input), LONG_PERP buys `-position.spot_raw` back (exact output). On a
  partial close the spot leg is cut to the base the perp leg filled, rounded down to a raw unit.
- resize: `perp_base_x18` is the SIGNED change of the position's size in `direction` (the
  position's direction): > 0 grows it (legs as an open in `direction`), < 0 shrinks it (legs as an
  open in the opposite direction). A resize never flips a position: shrink at most its size.

Signs follow the executor: positive = the executor gained. residual = perp base change + spot
change x 10**(18 - decimals); net quote = perp quote change (Perp's fee included) + USDC change x
10**12. Fees and price impact are also given in USD (floats, for ranking only): the impact of a
leg is what it paid beyond the leg's pre-trade mid price, its fee excluded.

Perp's tick band (EX_OPLAS, and the close's price limit) needs two values the snapshot does not
hold: Exchange.getMaxTickCrossedWithinBlock(baseToken) (a view) and the tick Exchange last
recorded, `_lastUpdatedTickMap[baseToken]`, which has no getter: eth_getStorageAt(Exchange,
keccak256(abi.encode(baseToken, 208))), an int24, with `_lastTickUpdatedTimestampMap[baseToken]` at
mapping slot 214 (Curie 2.8.4's layout, checked on the devnet). `price_band_for_trade_at` turns
them into the band the next trade sees (re-centred on the pool's tick by the first trade 15 s or
more after the last refresh). The snapshot reads all three at its block (keeper/collect.py) and
`snapshot_price_band` applies them for a trade one second later; without them the band is assumed
refreshed at the snapshot's vAMM tick; `price_band` overrides both.
The band only decides whether the perp leg reverts (EX_OPLAS) and where a close stops; a fill that
stays inside it is the same whatever the band.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from keeper.frozen import quick_init
from keeper.types import (
    BASIS_PERP_VENUE,
    ONE_X18,
    Q192,
    USDC_DECIMALS,
    Direction,
    IntentKind,
    MarketView,
    PerpMarketState,
    Position,
    PredictedFills,
    SpotVenue,
    Unavailable,
    perp_price_from_sqrt_x96,
)
from keeper.venues.adapter import QuoteUnavailable
from keeper.venues.perp_v2_math import PerpPriceBand, PerpQuote
from keeper.venues.registry import perp_adapter, spot_adapter

USDC_SCALE_TO_X18 = 10 ** (18 - USDC_DECIMALS)
BPS_DENOMINATOR = 10_000
PPM = 1_000_000
# The devnet's Exchange.setMaxTickCrossedWithinBlock (keeper/devnet/deploy.py); read the real one
# per market with Exchange.getMaxTickCrossedWithinBlock(baseToken).
DEFAULT_MAX_TICK_CROSSED_WITHIN_BLOCK = 1000
PRICE_LIMIT_INTERVAL_S = 15  # Exchange._PRICE_LIMIT_INTERVAL
PERP_LEG_VENUE = perp_adapter(BASIS_PERP_VENUE)  # a basis trade's perp leg

# The perp legs already quoted on the last few perp states, by what decides them: a state is
# immutable, so its quote of one trade is the same each time, and a tick quotes the same perp
# trade many times over (each spot venue's size search, each open's exit, the planner's quote of
# the intent). Held by identity with the state itself (so an id is never reused while held); a
# quote that raises is not kept (it raises again).
_PERP_STATES_KEPT = 4
_perp_legs: dict[int, tuple[PerpMarketState, PerpPriceBand, dict[tuple[object, ...], PerpLegQuote]]] = {}


_perp_legs_lock = threading.Lock()


def _perp_state_memo(perp: PerpMarketState) -> tuple[PerpMarketState, PerpPriceBand, dict[tuple[object, ...], PerpLegQuote]]:
    """(the state, the band a trade on it sees, its perp legs quoted so far)."""
    memo = _perp_legs.get(id(perp))
    if memo is not None and memo[0] is perp:
        return memo
    with _perp_legs_lock:
        while len(_perp_legs) >= _PERP_STATES_KEPT:
            del _perp_legs[next(iter(_perp_legs))]
        memo = _perp_legs[id(perp)] = (perp, snapshot_price_band(perp), {})
    return memo


# ------------------------------------------------------------------------------ results
@quick_init
@dataclass(frozen=True)
class PerpLegQuote:
    """The perp leg: the order's parameters and what Perp will do (18 decimals)."""

    base_token: str
    is_close: bool  # closePosition (the whole position) rather than openPosition
    is_base_to_quote: bool
    is_exact_input: bool
    amount_x18: int  # openPosition's amount (base when is_base_to_quote == is_exact_input); close: |position|
    base_delta_x18: int  # signed taker position change
    quote_delta_x18: int  # signed quote change, Perp's fee included
    exchanged_notional_x18: int  # signed, before the fee
    fee_x18: int
    is_partial_close: bool
    sqrt_price_after_x96: int
    tick_after: int
    mid_price_x18: int  # vAMM price before the trade, as Perp rounds it
    mid_price_usd: float
    fee_usd: float
    impact_usd: float


@quick_init
@dataclass(frozen=True)
class SpotLegQuote:
    """The spot leg against USDC on one venue (raw token units)."""

    venue: SpotVenue
    is_buy: bool  # USDC in, spot out
    is_exact_input: bool
    amount_raw: int  # the exact side: input (exact input) or output (exact output)
    spot_delta_raw: int  # signed, executor's view
    usdc_delta_raw: int  # signed, executor's view
    pool_fee_raw: int  # the pool's fee, in the input token (V2: the 0.3% of the input, rounded down)
    pool_fee_in_usdc: bool  # is the input (and so the fee) USDC?
    mid_price_usd: float  # USDC per spot token before the trade
    fee_usd: float
    impact_usd: float


@quick_init
@dataclass(frozen=True)
class BasisTradeQuote:
    market: str
    kind: IntentKind
    direction: Direction  # the position's direction (resize: see the module notes)
    spot_venue: SpotVenue
    spot_decimals: int
    perp: PerpLegQuote
    spot: SpotLegQuote
    predicted: PredictedFills
    price_band: PerpPriceBand  # the band the perp leg was checked (and a close limited) against

    @property
    def fees_usd(self) -> float:
        return self.perp.fee_usd + self.spot.fee_usd

    @property
    def impact_usd(self) -> float:
        return self.perp.impact_usd + self.spot.impact_usd

    @property
    def perp_mid_price_usd(self) -> float:
        return self.perp.mid_price_usd

    @property
    def spot_mid_price_usd(self) -> float:
        return self.spot.mid_price_usd

    @property
    def mid_basis_bps(self) -> float:
        """(vAMM mid / spot mid - 1) x 10_000 before the trade: the basis this trade sees."""
        return (self.perp.mid_price_usd / self.spot.mid_price_usd - 1) * 1e4

    @property
    def base_abs_x18(self) -> int:
        return abs(self.predicted.perp_base_x18)


# ------------------------------------------------------------------------------ quoting
def spot_scale_to_x18(spot_decimals: int) -> int:
    if not 0 <= spot_decimals <= 18:
        raise ValueError(f"spot token decimals must be in [0, 18], got {spot_decimals}")
    return 10 ** (18 - spot_decimals)


def round_perp_base_to_spot_units(perp_base_x18: int, spot_decimals: int) -> int:
    """The largest size <= perp_base_x18 that is a whole number of raw spot units."""
    scale = spot_scale_to_x18(spot_decimals)
    return perp_base_x18 // scale * scale


def assumed_price_band(perp: PerpMarketState,
                       max_tick_crossed_within_block: int = DEFAULT_MAX_TICK_CROSSED_WITHIN_BLOCK) -> PerpPriceBand:
    """The band as settleFunding leaves it when 15 s passed since its last refresh (see module notes)."""
    return PerpPriceBand.refreshed(perp.pool.tick, max_tick_crossed_within_block)


def snapshot_price_band(perp: PerpMarketState) -> PerpPriceBand:
    """The band a trade in the block after the snapshot sees, from the band read with the snapshot
    (pinned to its block); assumed refreshed at the pool's tick when the snapshot did not read it."""
    if (perp.band_last_updated_tick is None or perp.band_last_updated_timestamp_s is None
            or perp.max_tick_crossed_within_block is None or perp.snapshot_timestamp_s is None):
        return assumed_price_band(perp)
    return price_band_for_trade_at(perp.band_last_updated_tick, perp.band_last_updated_timestamp_s,
                                   perp.max_tick_crossed_within_block, perp.pool.tick, perp.snapshot_timestamp_s + 1)


def price_band_for_trade_at(last_updated_tick: int, last_tick_updated_timestamp_s: int,
                            max_tick_crossed_within_block: int, pool_tick: int, trade_timestamp_s: int) -> PerpPriceBand:
    """The band a trade in a block at trade_timestamp_s sees, from Exchange's stored values:
    settleFunding re-centres it on the pool's tick when PRICE_LIMIT_INTERVAL_S passed since the last
    refresh, else it stays where it was (Exchange.settleFunding, Curie 2.8.4)."""
    if trade_timestamp_s >= last_tick_updated_timestamp_s + PRICE_LIMIT_INTERVAL_S:
        return PerpPriceBand.refreshed(pool_tick, max_tick_crossed_within_block)
    return PerpPriceBand(last_updated_tick, max_tick_crossed_within_block)


def quote_basis_trade(
    view: MarketView,
    kind: Literal["open", "close", "resize"],
    direction: Direction,
    spot_venue: SpotVenue,
    perp_base_x18: int,
    position: Position | None = None,
    *,
    price_band: PerpPriceBand | None = None,
) -> BasisTradeQuote:
    """Both legs of one executor trade on `view`'s state; see the module notes for the semantics.

    open: perp_base_x18 > 0, rounded down to whole spot units. close: needs `position`;
    perp_base_x18 is 0 or the position's whole size. resize: perp_base_x18 signed (+ grow,
    - shrink) and `position` optional (when given, the shrink is checked against it).
    Raises QuoteUnavailable, or the math modules' SkipOpportunity errors when a contract would
    revert (V3SwapReverted, QuoteOutOfRange, PerpSwapReverted, V2InsufficientLiquidity)."""
    perp = view.perp
    if isinstance(perp, Unavailable):
        raise QuoteUnavailable(f"{view.name}: perp unavailable: {perp.reason}")
    _, snapshot_band, perp_legs = _perp_state_memo(perp)
    band = price_band if price_band is not None else snapshot_band
    scale = spot_scale_to_x18(view.spot_token_decimals)

    if kind == "close":
        if position is None:
            raise ValueError("a close needs the position")
        _check_position(position, view.name, direction, spot_venue)
        if perp_base_x18 not in (0, abs(position.perp_base_x18)):
            raise ValueError(f"a close trades the whole position ({abs(position.perp_base_x18)}), got {perp_base_x18}")
        key = (True, position.perp_base_x18, band)
        perp_leg = perp_legs.get(key)
        if perp_leg is None:
            perp_quote = PERP_LEG_VENUE.quote_close(perp, position.perp_base_x18, band)
            perp_leg = perp_legs[key] = perp_leg_quote(perp, perp_quote, True, position.perp_base_x18 > 0,
                                                       position.perp_base_x18 > 0, abs(position.perp_base_x18))
        spot_raw = abs(position.spot_raw)
        if perp_leg.is_partial_close:
            filled_raw = abs(perp_leg.base_delta_x18)
            spot_raw = min(spot_raw, filled_raw // scale)
            if spot_raw == 0:
                raise QuoteUnavailable(f"{view.name}: the close would fill {filled_raw} base x 1e-18 "
                                       f"before Perp's tick band, under one raw unit of spot")
        # closing a short perp sells the spot bought; closing a long perp buys the spot sold back
        spot_leg = _spot_leg(view, spot_venue, is_buy=direction is Direction.LONG_PERP, amount_raw=spot_raw)
    elif kind in ("open", "resize"):
        trade_direction = direction
        if kind == "open":
            if perp_base_x18 <= 0:
                raise ValueError(f"an open needs perp_base_x18 > 0, got {perp_base_x18}")
        else:
            if perp_base_x18 == 0:
                raise ValueError("a resize needs a non-zero perp_base_x18")
            if position is not None:
                _check_position(position, view.name, direction, spot_venue)
                if perp_base_x18 < 0 and (-perp_base_x18 > abs(position.perp_base_x18)
                                          or -perp_base_x18 // scale > abs(position.spot_raw)):
                    raise ValueError(f"a resize may not flip the position: shrink {-perp_base_x18} > size "
                                     f"{abs(position.perp_base_x18)} (close it, then open)")
            if perp_base_x18 < 0:
                trade_direction = _opposite(direction)
        size_x18 = round_perp_base_to_spot_units(abs(perp_base_x18), view.spot_token_decimals)
        if size_x18 == 0:
            raise ValueError(f"perp size {abs(perp_base_x18)} is under one raw unit of the spot token "
                             f"({scale} x 1e-18 base)")
        is_short = trade_direction is Direction.SHORT_PERP
        # short: B2Q exact input (exact base in); long: Q2B exact output (exact base out)
        key = (False, is_short, size_x18, band)
        perp_leg = perp_legs.get(key)
        if perp_leg is None:
            perp_quote = PERP_LEG_VENUE.quote_open(perp, is_short, size_x18, band)
            perp_leg = perp_legs[key] = perp_leg_quote(perp, perp_quote, False, is_short, is_short, size_x18)
        spot_leg = _spot_leg(view, spot_venue, is_buy=is_short, amount_raw=size_x18 // scale)
    else:
        raise ValueError(f"unknown trade kind {kind!r} (open, close or resize)")

    predicted = PredictedFills(
        perp_base_x18=perp_leg.base_delta_x18,
        perp_quote_x18=perp_leg.quote_delta_x18,
        spot_raw=spot_leg.spot_delta_raw,
        usdc_raw=spot_leg.usdc_delta_raw,
        residual_base_x18=perp_leg.base_delta_x18 + spot_leg.spot_delta_raw * scale,
        net_quote_x18=perp_leg.quote_delta_x18 + spot_leg.usdc_delta_raw * USDC_SCALE_TO_X18,
    )
    return BasisTradeQuote(view.name, kind, direction, spot_venue, view.spot_token_decimals, perp_leg, spot_leg,
                           predicted, band)


def _opposite(direction: Direction) -> Direction:
    return Direction.LONG_PERP if direction is Direction.SHORT_PERP else Direction.SHORT_PERP


def _check_position(position: Position, market: str, direction: Direction, spot_venue: SpotVenue) -> None:
    if position.market != market:
        raise ValueError(f"position is in market {position.market}, not {market}")
    if position.direction is not direction:
        raise ValueError(f"position is {position.direction.value}, not {direction.value}")
    if position.spot_venue != spot_venue:
        raise ValueError(f"position's spot leg is on {position.spot_venue}, not {spot_venue}")
    if position.perp_base_x18 == 0 or (position.perp_base_x18 > 0) != (direction is Direction.LONG_PERP):
        raise ValueError(f"position size {position.perp_base_x18} does not match {direction.value}")
    if position.spot_raw == 0 or (position.spot_raw > 0) != (direction is Direction.SHORT_PERP):
        raise ValueError(f"position spot {position.spot_raw} does not match {direction.value}")


def perp_leg_quote(perp: PerpMarketState, q: PerpQuote, is_close: bool, is_base_to_quote: bool, is_exact_input: bool,
                   amount_x18: int) -> PerpLegQuote:
    """The perp leg of a trade from its exact Perp quote (also the pair trade's legs, keeper/quotes_pair.py)."""
    sqrt_price = perp.pool.sqrt_price_x96
    mid_usd = sqrt_price * sqrt_price / Q192  # vBase and vUSD both have 18 decimals
    mid_x18 = perp_price_from_sqrt_x96(sqrt_price)
    base_usd_at_mid = abs(q.base_delta_raw) / ONE_X18 * mid_usd
    notional_usd = abs(q.exchanged_notional_raw) / ONE_X18
    # selling base: got less quote than base x mid; buying base: paid more
    impact_usd = base_usd_at_mid - notional_usd if q.base_delta_raw < 0 else notional_usd - base_usd_at_mid
    return PerpLegQuote(
        base_token=perp.base_token, is_close=is_close, is_base_to_quote=is_base_to_quote,
        is_exact_input=is_exact_input, amount_x18=amount_x18, base_delta_x18=q.base_delta_raw,
        quote_delta_x18=q.quote_delta_raw, exchanged_notional_x18=q.exchanged_notional_raw,
        fee_x18=q.fee_quote_raw, is_partial_close=q.is_partial_close, sqrt_price_after_x96=q.sqrt_price_after_x96,
        tick_after=q.tick_after, mid_price_x18=mid_x18, mid_price_usd=mid_usd, fee_usd=q.fee_quote_raw / ONE_X18,
        impact_usd=impact_usd,
    )


def _spot_leg(view: MarketView, venue: SpotVenue, is_buy: bool, amount_raw: int) -> SpotLegQuote:
    """A buy is exact output (spot out), a sell exact input (spot in): the spot side is exact.
    The venue's adapter (keeper/venues/registry.py) quotes the swap."""
    if amount_raw <= 0:
        raise ValueError(f"spot amount must be positive, got {amount_raw}")
    swap = spot_adapter(venue).quote_swap(view, is_buy, amount_raw)
    decimals = view.spot_token_decimals
    mid_usd, usdc_raw, fee_raw = swap.mid_price_usd, swap.usdc_raw, swap.fee_raw
    spot_units = amount_raw / 10**decimals
    usdc_usd = usdc_raw / 10**USDC_DECIMALS
    fee_usd = fee_raw / 10**USDC_DECIMALS if is_buy else fee_raw / 10**decimals * mid_usd
    # a buy paid usdc for spot worth spot x mid; a sell got usdc for spot worth spot x mid
    beyond_mid_usd = usdc_usd - spot_units * mid_usd if is_buy else spot_units * mid_usd - usdc_usd
    return SpotLegQuote(
        venue=venue, is_buy=is_buy, is_exact_input=not is_buy, amount_raw=amount_raw,
        spot_delta_raw=amount_raw if is_buy else -amount_raw, usdc_delta_raw=-usdc_raw if is_buy else usdc_raw,
        pool_fee_raw=fee_raw, pool_fee_in_usdc=is_buy, mid_price_usd=mid_usd, fee_usd=fee_usd,
        impact_usd=beyond_mid_usd - fee_usd,
    )
