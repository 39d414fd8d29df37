"""Exact Perpetual Protocol v2 (Curie 2.8.4) trade quotes, in ints, to the wei.

A Perp market is a Uniswap V3 pool of vBase (token0) / vQuote (token1). Perp does not let the
pool's fee stand: it charges its own exchange fee ratio (MarketRegistry feeRatio) in quote.
`Exchange._swap` therefore
  1. scales the trader's amount so that the pool's fee is undone (SwapMath.calcScaledAmountForSwaps),
  2. replays the swap (OrderBook.replaySwap) to add up the exchange fee step by step: for
     base->quote from each step's quote output at the exchange ratio (rounded up), for
     quote->base as the V3 fee of a swap run with the exchange ratio as its fee,
  3. runs the real pool swap with the scaled amount (UniswapV3Broker.swap),
  4. takes the pool fee back out of the pool's base (short) or quote (long) amount, and
     requires the replay and the pool to end on the same tick (EX_TKMM).
The trader's taker position then changes by (exchangedPositionSize, exchangedPositionNotional
- fee); ClearingHouse.openPosition returns the absolute values of those two numbers.

Not modelled here (they make the transaction revert, never change its amounts): the price band
against the index (EX_OPB), free collateral, the market being paused or closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init
from keeper.venues.uniswap_v3_libraries import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick, mul_div, mul_div_rounding_up
from keeper.venues.uniswap_v3_math import V3PoolState, V3SwapQuote, compute_v3_swap, with_exact_output_fee

ONE_HUNDRED_PERCENT_PPM = 1_000_000
DUST_RAW = 10  # UniswapV3Broker: an exact-output swap may miss the asked amount by less than this


class PerpSwapReverted(SkipOpportunity):
    """ClearingHouse / Exchange would revert this trade; `reason` is the contract's code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"Perp v2 trade would revert: {reason}{f' ({detail})' if detail else ''}")
        self.reason = reason


@dataclass(frozen=True)
class PerpPriceBand:
    """Exchange's per-block tick band: a trade may not end more than max_tick_crossed_within_block
    ticks from last_updated_tick (EX_OPLAS), and closePosition limits its price to the band's edge.

    settleFunding, which ClearingHouse runs before every trade, sets last_updated_tick to the
    pool's current tick when 15 s or more passed since the market's last refresh; for a keeper
    trading once per block after a quiet spell that is `refreshed(pool.tick, ...)`.
    """

    last_updated_tick: int
    max_tick_crossed_within_block: int

    @classmethod
    def refreshed(cls, pool_tick: int, max_tick_crossed_within_block: int) -> PerpPriceBand:
        return cls(pool_tick, max_tick_crossed_within_block)

    def contains(self, tick: int) -> bool:
        delta = self.max_tick_crossed_within_block
        return self.last_updated_tick - delta <= tick <= self.last_updated_tick + delta

    def closing_sqrt_price_limit_x96(self, is_base_to_quote: bool, sqrt_price_limit_x96: int) -> int:
        """Exchange._getSqrtPriceLimitForClosingPosition for a closing trade in this direction
        (base->quote closes a long and moves the price down): the band edge it moves toward, or
        the caller's limit when that is tighter. (The contract's own flag is the position's
        side, `takerPositionSize < 0`, the opposite of the trade's.)"""
        delta = self.max_tick_crossed_within_block
        edge = self.last_updated_tick - delta if is_base_to_quote else self.last_updated_tick + delta
        edge = MAX_TICK - 1 if edge > MAX_TICK else MIN_TICK + 1 if edge < MIN_TICK else edge
        edge_sqrt_price = get_sqrt_ratio_at_tick(edge)
        if sqrt_price_limit_x96 == 0:
            return edge_sqrt_price
        if is_base_to_quote:
            return max(edge_sqrt_price, sqrt_price_limit_x96)
        return min(edge_sqrt_price, sqrt_price_limit_x96)


@quick_init
@dataclass(frozen=True)
class PerpQuote:
    """One Perp v2 trade. Amounts in raw 18-decimal units of vBase / vQuote.

    base_delta_raw is the taker position change (exchangedPositionSize: + long, - short);
    quote_delta_raw the taker quote balance change after the fee (exchangedPositionNotional -
    fee: negative when buying base). ClearingHouse.openPosition / closePosition return
    (|base_delta_raw|, |quote_delta_raw|); the PositionChanged event carries base_delta_raw,
    exchanged_notional_raw (before the fee) and fee_quote_raw.
    """

    base_delta_raw: int
    quote_delta_raw: int
    exchanged_notional_raw: int
    fee_quote_raw: int
    insurance_fund_fee_quote_raw: int
    sqrt_price_after_x96: int
    tick_after: int
    liquidity_after: int  # the pool's active liquidity after the trade
    is_partial_close: bool = False

    def pool_after(self, pool: V3PoolState) -> V3PoolState:
        """The vAMM pool once this trade has happened (pool: the state it was quoted on)."""
        return pool.moved_to(self.sqrt_price_after_x96, self.tick_after, self.liquidity_after)

    @property
    def base_abs_raw(self) -> int:
        return abs(self.base_delta_raw)

    @property
    def quote_abs_raw(self) -> int:
        return abs(self.quote_delta_raw)


# ------------------------------------------------------------------------------ fee scaling
def scale_amount_by_fee_ratio(amount_raw: int, fee_ratio_ppm: int, scale_up: bool) -> int:
    """SwapMath.calcAmountScaledByFeeRatio: amount / (1 - fee) rounded up, or amount * (1 - fee)
    rounded down."""
    kept_ppm = ONE_HUNDRED_PERCENT_PPM - fee_ratio_ppm
    if scale_up:
        return mul_div_rounding_up(amount_raw, ONE_HUNDRED_PERCENT_PPM, kept_ppm)
    return mul_div(amount_raw, kept_ppm, ONE_HUNDRED_PERCENT_PPM)


def replace_fee_ratio(amount_raw: int, uniswap_fee_ratio_ppm: int, exchange_fee_ratio_ppm: int) -> int:
    """SwapMath.calcAmountWithFeeRatioReplaced (replacing Uniswap's): amount * (1 - exchange fee)
    / (1 - uniswap fee), rounded up."""
    return mul_div_rounding_up(amount_raw, ONE_HUNDRED_PERCENT_PPM - exchange_fee_ratio_ppm,
                               ONE_HUNDRED_PERCENT_PPM - uniswap_fee_ratio_ppm)


def scaled_pool_amount(is_base_to_quote: bool, is_exact_input: bool, amount_raw: int,
                       exchange_fee_ratio_ppm: int, uniswap_fee_ratio_ppm: int) -> int:
    """The amount Exchange hands to the pool (calcScaledAmountForSwaps, first result)."""
    if is_base_to_quote:
        ratio = uniswap_fee_ratio_ppm if is_exact_input else exchange_fee_ratio_ppm
        return scale_amount_by_fee_ratio(amount_raw, ratio, True)
    if is_exact_input:
        return replace_fee_ratio(amount_raw, uniswap_fee_ratio_ppm, exchange_fee_ratio_ppm)
    return amount_raw


# ------------------------------------------------------------------------------ quotes
def quote_perp_open(
    pool: V3PoolState,
    exchange_fee_ratio_ppm: int,
    is_base_to_quote: bool,
    is_exact_input: bool,
    amount_raw: int,
    sqrt_price_limit_x96: int = 0,
    *,
    insurance_fund_fee_ratio_ppm: int = 0,
    price_band: PerpPriceBand | None = None,
) -> PerpQuote:
    """ClearingHouse.openPosition: is_base_to_quote = short, amount_raw in base when
    is_base_to_quote == is_exact_input, else in quote. The fee ratios are the trader's, as
    MarketRegistry.getMarketInfoByTrader gives them (fee discounts included); pool.fee_pips is
    the market's Uniswap fee ratio (the vAMM pool's fee). With price_band, a trade ending
    outside it raises (EX_OPLAS)."""
    quote = _exchange_swap(pool, exchange_fee_ratio_ppm, insurance_fund_fee_ratio_ppm, is_base_to_quote,
                           is_exact_input, amount_raw, sqrt_price_limit_x96)
    if price_band is not None and not price_band.contains(quote.tick_after):
        raise PerpSwapReverted("EX_OPLAS", f"tick after {quote.tick_after}, band {price_band}")
    return quote


def quote_perp_close(
    pool: V3PoolState,
    exchange_fee_ratio_ppm: int,
    position_size_raw: int,
    price_band: PerpPriceBand,
    sqrt_price_limit_x96: int = 0,
    *,
    insurance_fund_fee_ratio_ppm: int = 0,
) -> PerpQuote:
    """ClearingHouse.closePosition of a taker position of position_size_raw base (signed, as
    AccountBalance.getTakerPositionSize reports it: under 10 wei it reads 0, and the close
    reverts CH_PSZ). A long sells exactly its size (base->quote, exact input), a short buys its
    size back (quote->base, exact output), with the price limited to the band's edge, so a
    large close can be partial (is_partial_close). A long's close that stops exactly on a
    lower edge which is also an initialized tick (or a bitmap word's first tick) leaves the
    pool's tick one below the band and reverts EX_OPLAS, as on chain; a limit one tick inside
    the edge avoids it."""
    if position_size_raw == 0:
        raise PerpSwapReverted("CH_PSZ", "no position to close")
    is_base_to_quote = position_size_raw > 0
    size_raw = abs(position_size_raw)
    limit = price_band.closing_sqrt_price_limit_x96(is_base_to_quote, sqrt_price_limit_x96)
    quote = _exchange_swap(pool, exchange_fee_ratio_ppm, insurance_fund_fee_ratio_ppm, is_base_to_quote,
                           is_base_to_quote, size_raw, limit)
    if not price_band.contains(quote.tick_after):
        raise PerpSwapReverted("EX_OPLAS", f"tick after {quote.tick_after}, band {price_band}")
    if quote.base_abs_raw >= size_raw:
        return quote
    return PerpQuote(quote.base_delta_raw, quote.quote_delta_raw, quote.exchanged_notional_raw, quote.fee_quote_raw,
                     quote.insurance_fund_fee_quote_raw, quote.sqrt_price_after_x96, quote.tick_after,
                     quote.liquidity_after, is_partial_close=True)


def _exchange_swap(
    pool: V3PoolState,
    exchange_fee_ratio_ppm: int,
    insurance_fund_fee_ratio_ppm: int,
    is_base_to_quote: bool,
    is_exact_input: bool,
    amount_raw: int,
    sqrt_price_limit_x96: int,
) -> PerpQuote:
    """Exchange._swap after the funding settlement: replay for the fee, pool swap, scaling back."""
    if amount_raw <= 0:
        raise ValueError(f"amount_raw must be positive, got {amount_raw}")
    if not 0 <= exchange_fee_ratio_ppm < ONE_HUNDRED_PERCENT_PPM:
        raise ValueError(f"exchange_fee_ratio_ppm must be in [0, 1e6), got {exchange_fee_ratio_ppm}")
    uniswap_fee = pool.fee_pips
    pool_amount = scaled_pool_amount(is_base_to_quote, is_exact_input, amount_raw, exchange_fee_ratio_ppm, uniswap_fee)
    replay_amount = pool_amount if is_base_to_quote else amount_raw
    signed = 1 if is_exact_input else -1

    # OrderBook.replaySwap: the same loop, run with the fee ratio that yields Perp's fee.
    replay = compute_v3_swap(pool, is_base_to_quote, signed * replay_amount, sqrt_price_limit_x96,
                             fee_pips=uniswap_fee if is_base_to_quote else exchange_fee_ratio_ppm)
    fee, insurance_fund_fee = _replay_fees(replay, is_base_to_quote, exchange_fee_ratio_ppm,
                                           insurance_fund_fee_ratio_ppm)

    # The pool's own swap. Base->quote replays with the pool's amount and fee: the same swap. An
    # exact-output quote->base replays the same output (pool_amount == amount_raw) with another
    # fee: the same path, only the fees differ (with_exact_output_fee).
    if is_base_to_quote:
        swap = replay
    elif not is_exact_input:
        swap = with_exact_output_fee(replay, uniswap_fee)
    else:
        swap = compute_v3_swap(pool, is_base_to_quote, signed * pool_amount, sqrt_price_limit_x96)
    if swap.amount0_delta_raw * swap.amount1_delta_raw >= 0:
        # ClearingHouse's swap callback: one side paid in, the other out, or nothing at all.
        raise PerpSwapReverted("CH_F0S", f"pool deltas {swap.amount0_delta_raw}, {swap.amount1_delta_raw}")
    base_raw, quote_raw = abs(swap.amount0_delta_raw), abs(swap.amount1_delta_raw)
    if not is_exact_input and sqrt_price_limit_x96 == 0:
        exact_raw = quote_raw if is_base_to_quote else base_raw
        if abs(exact_raw - pool_amount) >= DUST_RAW:
            raise PerpSwapReverted("UB_UOA", f"pool gave {exact_raw}, asked {pool_amount}")
        if is_base_to_quote:
            quote_raw = pool_amount
        else:
            base_raw = pool_amount
    if swap.tick_after != replay.tick_after:
        raise PerpSwapReverted("EX_TKMM", f"pool tick {swap.tick_after}, replay tick {replay.tick_after}")

    if is_base_to_quote:
        # short: the pool took its fee in base; the fee is already inside the quote received
        size = -scale_amount_by_fee_ratio(base_raw, uniswap_fee, False)
        notional = quote_raw
    else:
        size = base_raw
        if is_exact_input and quote_raw == pool_amount:
            notional = -(amount_raw - fee)
        else:
            notional = -scale_amount_by_fee_ratio(quote_raw, uniswap_fee, False)
    return PerpQuote(size, notional - fee, notional, fee, insurance_fund_fee, swap.sqrt_price_after_x96, swap.tick_after,
                     swap.liquidity_after)


def _replay_fees(replay: V3SwapQuote, is_base_to_quote: bool, exchange_fee_ratio_ppm: int,
                 insurance_fund_fee_ratio_ppm: int) -> tuple[int, int]:
    """Perp's fee and the insurance fund's share, summed per step over steps with liquidity."""
    fee = insurance_fund_fee = 0
    for step in replay.steps:
        if step.liquidity == 0:
            continue
        if is_base_to_quote:
            step_fee = mul_div_rounding_up(step.amount_out_raw, exchange_fee_ratio_ppm, ONE_HUNDRED_PERCENT_PPM)
        else:
            step_fee = step.fee_amount_raw
        fee += step_fee
        insurance_fund_fee += mul_div_rounding_up(step_fee, insurance_fund_fee_ratio_ppm, ONE_HUNDRED_PERCENT_PPM)
    return fee, insurance_fund_fee

