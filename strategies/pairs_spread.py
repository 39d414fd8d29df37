"""pairs_spread: long one Perp v2 market and short another when their spread is far from its mean.

spread = log A - beta x log B on the vAMMs' tradable prices (not the mark), beta, mean and scale
from a rolling regression over `window_s` seconds (strategies/pairs_math.py). Entries at
|z| >= entry_z, in both directions: z > 0 (A rich against B) shorts A and buys B (short spread);
z < 0 buys A and shorts B (long spread). With `enter_on_turn` (the default) the entry waits for the
spread to stop widening (the last sample not further from the mean by more than one scale), measured
on the relation BEFORE the run (the regression through the last sample whose own rolling |z| was
below entry_z: a rolling window absorbs a run while it goes, so its z shrinks and its correlation
falls although the spread still widens); that relation must have the correlation (min_correlation),
the rolling one only stays above break_correlation, and it is the position's entry model (hedge
ratio, mean, scale). Without it, the entry is at the first sample past entry_z, on the rolling fit.
Sized beta-neutral (B's notional = beta x A's) at the size of leg A, between `notional_usd` and
the largest the caps allow (per-market and total notional, account leverage, `max_notional_usd`
when set, and the stress-margin rule of the basis trades: the account's margin ratio above
risk.min_margin_ratio with each leg shocked on its own), that maximises the expected net PnL
(convergence to the exit band + funding - both legs' fees and price impact from the exact quote of
the open at that size, the same again for the close - gas of the open and the close - the cost of
the margin), as the basis strategies size (strategies/size_search.py); that net must be positive,
and the planner then applies costs.min_profit_usd and the gas multiple.

Exits, in this order: the margin guard (risk); the thesis broken, on the ROLLING regression: the
correlation over the window fell below `break_correlation`, beta moved more than `max_beta_drift`
(relative) from its value at entry, or the rolling z is past `stop_z` against the position;
reversion, on the position's OWN model (the legs are hedged at the entry beta, so the position
earns on log A - beta_entry log B, measured against the mean and scale at entry): that z back
inside +-exit_z; the edge spent: the remaining convergence to the exit band plus funding minus the
margin's capital cost over the rest of `hold_s` is <= 0 (the close's cost is not in it: it is paid
now or later); the holding time past `max_hold_s`. The kill switch and the risk stage's unwind
close the pair in the desk (keeper/pairs_desk.py).

Pure: no web3, no I/O. The basis pipeline's `decide(ctx)` returns a Skip per market (a pair is not
a basis Intent); the pair desk calls `decide_pair(pctx)` with the price history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.errors import SkipOpportunity
from keeper.pairs_types import PairIntent, PairPosition, PairSide, SpreadFit
from keeper.quotes import QuoteUnavailable
from keeper.quotes_pair import PairTradeQuote, quote_pair_trade
from keeper.stress import PerpLeg, legs_from_snapshot
from keeper.venues.gas import pair_upper_gas_units
from keeper.types import ONE_X18, Intent, PerpAccountState, PerpMarketState, PnlEstimate, perp_price_from_sqrt_x96
from strategies.base import Skip, StrategyBase, StrategyContext, parse_params, require_param
from strategies.size_search import search_size
from strategies.pairs_math import (
    beta_neutral_sizes_x18,
    excursion_fit,
    fit_spread,
    max_pair_scale_usd,
    still_widening,
)

PAIR_GAS_OPEN = pair_upper_gas_units("open")
PAIR_GAS_CLOSE = pair_upper_gas_units("close")


@dataclass(frozen=True)
class PairsSpreadParams:
    market_a: str = "ETH"
    market_b: str = "BTC"
    window_s: float = 3600.0  # seconds of history behind the regression
    min_samples: int = 20
    entry_z: float = 2.0
    exit_z: float = 0.5
    stop_z: float = 6.0  # the rolling z this far past its mean against the position: broken (and no entry)
    min_correlation: float = 0.8  # no entry below
    break_correlation: float = 0.5  # exit below (thesis broken)
    max_beta_drift: float = 0.5  # exit when |beta - beta at entry| > this x |beta at entry|
    notional_usd: float = 10_000.0  # leg A's smallest notional: the size search's low end; B's is beta x A's
    max_notional_usd: float = 0.0  # leg A's largest (0: the risk caps and the stress rule only)
    hold_s: float = 3600.0  # expected holding time (funding and capital cost)
    max_hold_s: float = 21_600.0
    valid_for_blocks: int = 2
    enter_on_turn: bool = True  # enter once the spread stopped widening, on the relation before the run

    def __post_init__(self) -> None:
        require_param(self.market_a != self.market_b, "market_b", self.market_b, "a market other than market_a")
        for name in ("window_s", "entry_z", "notional_usd", "hold_s", "max_hold_s", "stop_z"):
            require_param(getattr(self, name) > 0, name, getattr(self, name), "> 0")
        require_param(self.max_notional_usd >= 0, "max_notional_usd", self.max_notional_usd, ">= 0 (0: no cap of its own)")
        require_param(self.min_samples >= 3, "min_samples", self.min_samples, ">= 3")
        require_param(0 <= self.exit_z < self.entry_z < self.stop_z, "exit_z", self.exit_z,
                      ">= 0 and exit_z < entry_z < stop_z")
        require_param(-1 <= self.break_correlation <= self.min_correlation <= 1, "break_correlation",
                      self.break_correlation, "in [-1, min_correlation] with min_correlation <= 1")
        require_param(self.max_beta_drift > 0, "max_beta_drift", self.max_beta_drift, "> 0")
        require_param(self.valid_for_blocks >= 1, "valid_for_blocks", self.valid_for_blocks, ">= 1")


@dataclass(frozen=True)
class PairContext:
    """One tick for the pair: the strategy context and the price history (times in seconds, log
    of the vAMM prices, oldest first, the current block's last), and the pair held, if any."""

    ctx: StrategyContext
    times_s: Sequence[float]
    log_a: Sequence[float]
    log_b: Sequence[float]
    position: PairPosition | None = None


@dataclass(frozen=True)
class LegCosts:
    fees_usd: float
    impact_usd: float


@dataclass(frozen=True)
class PairEvaluation:
    """One size of the pair, quoted exactly, with its expected PnL (what the size search ranks)."""

    notional_usd: float  # leg A's
    base_a: int
    base_b: int
    estimate: PnlEstimate
    terms: str

    @property
    def net_usd(self) -> float:
        return self.estimate.net_usd


def pair_funding_usd(perp_a: PerpMarketState, perp_b: PerpMarketState, side: PairSide, notional_a_usd: float,
                     notional_b_usd: float, seconds: float) -> float:
    """Funding the pair receives (> 0) or pays over `seconds` at the current rates: long spread is
    long A and short B (longs pay funding_rate_per_s x notional)."""
    sign_a = 1 if side == "long_spread" else -1
    return -sign_a * (perp_a.funding_rate_per_s * notional_a_usd - perp_b.funding_rate_per_s * notional_b_usd) * seconds


def quote_costs(quote: PairTradeQuote) -> LegCosts:
    return LegCosts(quote.leg_a.fee_usd + quote.leg_b.fee_usd, quote.leg_a.impact_usd + quote.leg_b.impact_usd)


class PairsSpread(StrategyBase):
    name: ClassVar[str] = "pairs_spread"

    def __init__(self, params: PairsSpreadParams | None = None) -> None:
        self.params = params or PairsSpreadParams()
        self.valid_for_blocks = self.params.valid_for_blocks

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PairsSpread:
        return cls(parse_params(cls.name, PairsSpreadParams, params))

    # ------------------------------------------------------------------ the basis pipeline
    def decide(self, ctx: StrategyContext) -> list[Intent | Skip]:
        """A pair is two perp legs, not a basis Intent: one Skip per market (the desk trades pairs)."""
        return [self.skip(m, "pairs_spread trades pairs through the pair desk (decide_pair), not basis intents")
                for m in sorted(ctx.snapshot.markets)]

    # ------------------------------------------------------------------ the pair
    def pair_label(self) -> str:
        return f"{self.params.market_a}/{self.params.market_b}"

    def fit(self, pctx: PairContext) -> SpreadFit | None:
        p = self.params
        return fit_spread(pctx.times_s, pctx.log_a, pctx.log_b, float(pctx.ctx.snapshot.block_timestamp),
                          p.window_s, p.min_samples)

    def decide_pair(self, pctx: PairContext) -> PairIntent | Skip:
        views = self._views(pctx.ctx)
        if isinstance(views, Skip):
            return views
        if pctx.position is not None:
            return self.decide_pair_exit(pctx, pctx.position)
        return self.decide_pair_entry(pctx)

    def _views(self, ctx: StrategyContext) -> tuple[Any, Any] | Skip:
        p = self.params
        va, vb = ctx.snapshot.markets.get(p.market_a), ctx.snapshot.markets.get(p.market_b)
        if va is None or vb is None:
            return self.skip(self.pair_label(), "a pair market is not in the snapshot")
        for v in (va, vb):
            if not isinstance(v.perp, PerpMarketState):
                return self.skip(self.pair_label(), f"{v.name}: perp unavailable")
        return va, vb

    def decide_pair_entry(self, pctx: PairContext) -> PairIntent | Skip:
        ctx, p, label = pctx.ctx, self.params, self.pair_label()
        guard = self.margin_guard(ctx)
        if guard:
            return self.skip(label, f"no new pair: {guard}")
        held = [m for m in (p.market_a, p.market_b) if m in ctx.positions]
        if held:
            return self.skip(label, f"{', '.join(held)} holds a basis position: one position per market")
        fit = self.fit(pctx)
        if fit is None:
            return self.skip(label, f"no regression yet ({len(pctx.times_s)} samples, need {p.min_samples} "
                                    f"in {p.window_s:.0f} s with moving prices)")
        numbers = f"z {fit.z:+.2f}, beta {fit.beta:.3f}, corr {fit.correlation:.3f}, scale {fit.scale:.5f}"
        # on the turn, the thesis is the relation before the run (below); the rolling window, which the
        # run itself decorrelates, must only stay above the exit's break_correlation
        need = p.break_correlation if p.enter_on_turn else p.min_correlation
        if fit.correlation < need or fit.beta <= 0:
            return self.skip(label, f"no thesis: {numbers} (need corr >= {need}, beta > 0)")
        if abs(fit.z) < p.entry_z:
            return self.skip(label, f"|z| < entry {p.entry_z}: {numbers}")
        if abs(fit.z) >= p.stop_z:
            return self.skip(label, f"|z| >= stop {p.stop_z}: past the stop, no entry; {numbers}")
        if p.enter_on_turn:
            found = self._relation_at_turn(pctx, fit, numbers)
            if isinstance(found, Skip):
                return found
            fit, numbers = found
        side: PairSide = "short_spread" if fit.z > 0 else "long_spread"
        try:
            return self._entry_intent(ctx, fit, side, numbers)
        except (SkipOpportunity, QuoteUnavailable, ValueError) as exc:
            return self.skip(label, f"{side} not quotable: {exc}")

    def _relation_at_turn(self, pctx: PairContext, rolling: SpreadFit, numbers: str) -> tuple[SpreadFit, str] | Skip:
        """enter_on_turn: the entry model is the relation before the excursion (excursion_fit), its
        correlation must hold the thesis, and the spread must have stopped widening on it."""
        p, label = self.params, self.pair_label()
        found = excursion_fit(pctx.times_s, pctx.log_a, pctx.log_b, p.window_s, p.min_samples, p.entry_z)
        if found is None:
            return self.skip(label, f"no relation before the excursion (the window holds the run only); {numbers}")
        relation, start = found
        numbers = (f"{numbers}; before the run (sample {start} on): z {relation.z:+.2f}, beta {relation.beta:.3f}, "
                   f"corr {relation.correlation:.3f}, scale {relation.scale:.5f}")
        if relation.correlation < p.min_correlation or relation.beta <= 0 or (relation.z > 0) != (rolling.z > 0):
            return self.skip(label, f"no thesis before the run: {numbers} (need corr >= {p.min_correlation}, beta > 0)")
        widening = still_widening(relation, pctx.log_a, pctx.log_b)
        if widening is not None:
            return self.skip(label, f"spread still widening ({widening:+.1f} scale in the last sample): {numbers}")
        return relation, numbers

    def _entry_intent(self, ctx: StrategyContext, fit: SpreadFit, side: PairSide, numbers: str) -> PairIntent | Skip:
        """The open at the size of the best expected net (exact quotes) between notional_usd and
        the caps (strategies/size_search.py), or why not."""
        p, label = self.params, self.pair_label()
        va, vb = ctx.snapshot.markets[p.market_a], ctx.snapshot.markets[p.market_b]
        perp_a, perp_b = va.perp, vb.perp
        assert isinstance(perp_a, PerpMarketState) and isinstance(perp_b, PerpMarketState)
        top, cap_reason = self._size_usd(ctx, fit.beta, side, perp_a, perp_b)
        if top < 1:
            return self.skip(label, f"{side}: no size ({cap_reason}); {numbers}")
        low = min(p.notional_usd, top)
        search = search_size(lambda usd: self._evaluate(ctx, fit, side, usd), int(low), int(top), 1)
        best = search.best
        if best is None:
            raise SkipOpportunity(search.first_failure or "no size could be quoted")
        sizes = (f"the best expected net of {search.evaluations} sizes from ${low:,.0f} to ${top:,.0f}, "
                 f"{cap_reason} at the top")
        if best.net_usd <= 0:
            return self.skip(label, f"{side} ${best.notional_usd:,.0f}: expected net {best.net_usd:+,.2f} <= 0 "
                                    f"({best.terms}; {sizes}); {numbers}")
        reason = (f"{side} {label}: {numbers}, |z| >= {p.entry_z}; A ${best.notional_usd:,.0f} / B "
                  f"${best.notional_usd * fit.beta:,.0f} ({sizes}); expected net {best.net_usd:+,.2f} = {best.terms}")
        return PairIntent(self.name, "open", p.market_a, p.market_b, side, best.base_a, best.base_b,
                          int(fit.beta * ONE_X18), reason, best.estimate, ctx.block_number,
                          ctx.block_number + self.valid_for_blocks, fit)

    def _evaluate(self, ctx: StrategyContext, fit: SpreadFit, side: PairSide, notional: float) -> PairEvaluation:
        """One size of leg A (USD), quoted exactly: the beta-neutral legs and the expected PnL of the
        round trip (convergence to the exit band + funding - the open's fees and impact twice, for
        the close too - gas of both - the margin's capital cost). Raises SkipOpportunity."""
        p = self.params
        va, vb = ctx.snapshot.markets[p.market_a], ctx.snapshot.markets[p.market_b]
        perp_a, perp_b = va.perp, vb.perp
        assert isinstance(perp_a, PerpMarketState) and isinstance(perp_b, PerpMarketState)
        beta_x18 = int(fit.beta * ONE_X18)
        base_a, base_b = beta_neutral_sizes_x18(notional, perp_price_from_sqrt_x96(perp_a.pool.sqrt_price_x96),
                                                perp_price_from_sqrt_x96(perp_b.pool.sqrt_price_x96), beta_x18,
                                                side == "long_spread")
        try:
            quote = quote_pair_trade(va, vb, "open", base_a, base_b, hedge_ratio_x18=beta_x18)
        except ValueError as exc:
            raise SkipOpportunity(str(exc)) from exc
        open_costs = quote_costs(quote)
        notional_b = notional * fit.beta
        convergence = notional * max(0.0, abs(fit.spread - fit.mean) - p.exit_z * fit.scale)
        funding = pair_funding_usd(perp_a, perp_b, side, notional, notional_b, p.hold_s)
        costs = ctx.costs
        gas_open = costs.tx_cost_usd(PAIR_GAS_OPEN)
        gas_close = costs.tx_cost_usd(PAIR_GAS_CLOSE)
        capital = costs.capital_cost_usd((notional + notional_b) / ctx.limits.max_leverage, p.hold_s)
        expected = PnlEstimate(convergence_usd=convergence, funding_usd=funding, fees_usd=2 * open_costs.fees_usd,
                               price_impact_usd=2 * open_costs.impact_usd, gas_usd=gas_open + gas_close,
                               capital_cost_usd=capital, close_gas_usd=gas_close)
        terms = (f"convergence {convergence:+,.2f} + funding {funding:+,.2f} - fees {expected.fees_usd:,.2f} - impact "
                 f"{expected.price_impact_usd:,.2f} - gas {expected.gas_usd:,.2f} - capital {capital:,.2f}")
        return PairEvaluation(notional, base_a, base_b, expected, terms)

    def _size_usd(self, ctx: StrategyContext, beta: float, side: PairSide, perp_a: PerpMarketState,
                  perp_b: PerpMarketState) -> tuple[float, str]:
        """Leg A's largest notional at the vAMM price: the smallest of the per-market caps (B's is
        beta x A's), the remaining total, the account's leverage, the stress-margin rule and
        max_notional_usd (when set), each on notional at the mark; and which binds."""
        p, lim = self.params, ctx.limits
        account = ctx.snapshot.account
        caps = {"market cap A": lim.max_notional_usd_per_market,
                "market cap B": lim.max_notional_usd_per_market / beta,
                "total cap": lim.remaining_total_notional_usd / (1 + beta)}
        if p.max_notional_usd > 0:
            caps["max_notional_usd"] = p.max_notional_usd
        legs = legs_from_snapshot(ctx.snapshot)
        if isinstance(account, PerpAccountState):
            value = account.account_value_x18 / ONE_X18
            held = sum(abs(leg.size_base) * leg.mark_usd for leg in legs)
            caps["leverage"] = max(0.0, value * lim.max_leverage - held) / (1 + beta)
            if lim.stress is not None:
                sign = 1.0 if side == "long_spread" else -1.0
                mark_a, mark_b = perp_a.mark_price_x18 / ONE_X18, perp_b.mark_price_x18 / ONE_X18
                unit_a = PerpLeg(p.market_a, sign / mark_a, mark_a, perp_a.index_price_x18 / ONE_X18,
                                 perp_a.max_price_spread_ratio_ppm / 1e6)
                unit_b = PerpLeg(p.market_b, -sign * beta / mark_b, mark_b, perp_b.index_price_x18 / ONE_X18,
                                 perp_b.max_price_spread_ratio_ppm / 1e6)
                fee = max(perp_a.exchange_fee_ratio_ppm, perp_b.exchange_fee_ratio_ppm) / 1e6
                caps["stress"], _ = max_pair_scale_usd(value, legs, unit_a, unit_b, fee, lim.stress, lim.min_margin_ratio)
        else:
            caps["no account"] = 0.0
        binding = min(caps, key=lambda k: caps[k])
        # the caps are on notional at the mark; the size is leg A's notional at the vAMM (the legs'
        # base = notional / vAMM price): scaled down where a mark is above its vAMM, every cap holds
        scale = min(1.0, perp_price_from_sqrt_x96(perp_a.pool.sqrt_price_x96) / perp_a.mark_price_x18,
                    perp_price_from_sqrt_x96(perp_b.pool.sqrt_price_x96) / perp_b.mark_price_x18)
        at_vamm = f" (x{scale:.4f}: the marks above the vAMMs)" if scale < 1 else ""
        return max(0.0, caps[binding] * scale), f"{binding} binds{at_vamm}"

    # ------------------------------------------------------------------ exits
    def decide_pair_exit(self, pctx: PairContext, position: PairPosition) -> PairIntent | Skip:
        ctx, p, label = pctx.ctx, self.params, self.pair_label()
        guard = self.margin_guard(ctx)
        if guard:
            return self._close(ctx, position, f"risk: {guard}")
        fit = self.fit(pctx)
        held_s = ctx.snapshot.block_timestamp - position.entry_timestamp_s
        if fit is None:
            if held_s >= p.max_hold_s:
                return self._close(ctx, position, f"held {held_s} s >= max {p.max_hold_s:.0f} s")
            return self.skip(label, "hold: no regression this tick")
        z = position.z_at_entry_model(pctx.log_a[-1], pctx.log_b[-1])
        numbers = (f"z {z:+.2f} on the entry model (rolling {fit.z:+.2f}), beta {fit.beta:.3f} "
                   f"(entry {position.entry_beta:.3f}), corr {fit.correlation:.3f}")
        broken = self.thesis_broken(fit, position)
        if broken:
            return self._close(ctx, position, f"thesis broken: {broken}; {numbers}")
        reverted = (z >= -p.exit_z) if position.side == "long_spread" else (z <= p.exit_z)
        if reverted:
            return self._close(ctx, position, f"reverted: z {z:+.2f} inside +-{p.exit_z}; {numbers}")
        edge = self.remaining_edge(ctx, z, position, held_s)
        if edge is not None:
            return self._close(ctx, position, f"edge spent: {edge}; {numbers}")
        if held_s >= p.max_hold_s:
            return self._close(ctx, position, f"held {held_s} s >= max {p.max_hold_s:.0f} s; {numbers}")
        return self.skip(label, f"hold {position.side}: {numbers}")

    def thesis_broken(self, fit: SpreadFit, position: PairPosition) -> str | None:
        """Why the pair's statistics no longer support the position (None: they do)."""
        p = self.params
        if fit.correlation < p.break_correlation:
            return f"correlation {fit.correlation:.3f} < {p.break_correlation}"
        drift = abs(fit.beta - position.entry_beta) / max(abs(position.entry_beta), 1e-9)
        if drift > p.max_beta_drift:
            return f"beta moved {drift:.0%} from {position.entry_beta:.3f} to {fit.beta:.3f} (> {p.max_beta_drift:.0%})"
        adverse = fit.z if position.side == "short_spread" else -fit.z
        if adverse >= p.stop_z:
            return f"spread {fit.z:+.2f} sigma past its mean against the position (stop {p.stop_z})"
        return None

    def remaining_edge(self, ctx: StrategyContext, z: float, position: PairPosition, held_s: float) -> str | None:
        """Why the pair's expected remaining edge is spent (None: it is not): the rest of the
        convergence (from z, on the position's entry model, to the exit band, on leg A's notional
        at the vAMM price) plus funding minus the margin's capital cost over the rest of the
        expected hold (hold_s - held_s) is <= 0. The cost of closing is not in the comparison:
        closing now or at the exit band pays the same close, so it cancels (as for the basis trades)."""
        p = self.params
        perp_a = ctx.snapshot.markets[position.market_a].perp
        perp_b = ctx.snapshot.markets[position.market_b].perp
        if not isinstance(perp_a, PerpMarketState) or not isinstance(perp_b, PerpMarketState):
            return None
        notional_a = abs(position.base_x18_a) * perp_price_from_sqrt_x96(perp_a.pool.sqrt_price_x96) / ONE_X18**2
        rest_s = max(0.0, p.hold_s - held_s)
        convergence = notional_a * max(0.0, abs(z) - p.exit_z) * position.entry_scale
        funding = pair_funding_usd(perp_a, perp_b, position.side, notional_a, notional_a * position.entry_beta, rest_s)
        capital = ctx.costs.capital_cost_usd(notional_a * (1 + position.entry_beta) / ctx.limits.max_leverage, rest_s)
        edge = convergence + funding - capital
        if edge <= 0:
            return (f"remaining edge {edge:+,.2f} USD = convergence {convergence:+,.2f} + funding {funding:+,.2f} "
                    f"- capital {capital:,.2f} over the {rest_s:.0f} s left of hold_s")
        return None

    def _close(self, ctx: StrategyContext, position: PairPosition, reason: str) -> PairIntent:
        return PairIntent(self.name, "close", position.market_a, position.market_b, position.side, 0, 0,
                          position.hedge_ratio_x18, reason, PnlEstimate(0, 0, 0, 0, 0, 0), ctx.block_number,
                          ctx.block_number + self.valid_for_blocks)
