"""Plan a pair trade: a PairIntent becomes the executor call, exact to the wei, or a skip.

1. re-quote both legs on the snapshot (keeper/quotes_pair.py, the Perp math): the predicted
   PairFills; an open needs both markets flat, a close takes the pair's positions;
2. the bounds from the quote at execution.slippage_bps (each leg's Perp bound, the net-exposure
   bound), refused when they protect nothing (keeper/bounds_guard.py);
3. the profit gate for opens as keeper/plan.py applies it to basis trades: the expected net with
   this transaction's gas instead of the strategy's estimate must clear costs.min_profit_usd and
   costs.gas_cost_multiple x the gas cost. Closes always go (they reduce risk).
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.bounds_guard import check_protective_pair_bounds
from keeper.config import KeeperConfig
from keeper.errors import SkipOpportunity
from keeper.pairs_types import PairIntent, PairPosition
from keeper.plan import PRIORITY_FEE_WEI, BelowProfitBar, IntentExpired, eth_usd
from keeper.quotes_pair import PairTradeBounds, PairTradeQuote, build_pair_call, compute_pair_bounds, quote_pair_trade
from keeper.types import MarketSnapshot
from keeper.venues import executor as ex
from keeper.venues.gas import pair_typical_gas_units


@dataclass(frozen=True)
class PairTxPlan:
    intent: PairIntent
    to: str
    function: str
    calldata: bytes
    quote: PairTradeQuote
    bounds: PairTradeBounds
    deadline_s: int
    gas_units: int
    gas_cost_usd: float
    expected_net_usd: float
    gas_price_wei: int = 0  # predicted per gas: the snapshot's base fee + the sender's tip

    def bounds_dict(self) -> dict[str, int]:
        b = self.bounds
        return {"opposite_amount_bound_x18_a": b.opposite_amount_bound_x18_a,
                "opposite_amount_bound_x18_b": b.opposite_amount_bound_x18_b,
                "max_net_exposure_quote_x18": b.max_net_exposure_quote_x18, "hedge_ratio_x18": self.quote.hedge_ratio_x18,
                "deadline_s": self.deadline_s}


def quote_pair_intent(intent: PairIntent, snapshot: MarketSnapshot, position: PairPosition | None) -> PairTradeQuote:
    view_a, view_b = snapshot.markets[intent.market_a], snapshot.markets[intent.market_b]
    if intent.kind == "close":
        if position is None:
            raise SkipOpportunity(f"close {intent.market_a}/{intent.market_b}: no open pair")
        return quote_pair_trade(view_a, view_b, "close", position_x18_a=position.base_x18_a,
                                position_x18_b=position.base_x18_b, hedge_ratio_x18=position.hedge_ratio_x18)
    return quote_pair_trade(view_a, view_b, "open", intent.base_change_x18_a, intent.base_change_x18_b,
                            hedge_ratio_x18=intent.hedge_ratio_x18)


def plan_pair(config: KeeperConfig, executor: str, intent: PairIntent, snapshot: MarketSnapshot,
              position: PairPosition | None, head_block: int | None = None,
              slippage_bps: int | None = None, tip_wei: int = PRIORITY_FEE_WEI) -> PairTxPlan:
    """The pair's TxPlan; raises SkipOpportunity (BelowProfitBar, IntentExpired, UnprotectiveBounds,
    the Perp math's refusals) with its numbers. `slippage_bps` overrides execution.slippage_bps;
    `tip_wei`: the tip the sender would pay (keeper/gas_price.py), added to the snapshot's base fee."""
    now = snapshot.block_number if head_block is None else head_block
    if now > intent.valid_until_block:
        raise IntentExpired(f"pair intent from block {intent.created_block} valid until {intent.valid_until_block}, "
                            f"head now {now}")
    quote = quote_pair_intent(intent, snapshot, position)
    bounds = compute_pair_bounds(quote, config.execution.slippage_bps if slippage_bps is None else slippage_bps)
    check_protective_pair_bounds(quote, bounds)
    deadline_s = snapshot.block_timestamp + config.execution.deadline_s
    function, args = build_pair_call(quote, bounds, deadline_s)
    calldata = ex.EXECUTOR.encode(function, *args)
    gas_price_wei = snapshot.base_fee_wei + tip_wei
    gas_units = pair_typical_gas_units(intent.kind)
    gas_cost_usd = gas_units * gas_price_wei / 10**18 * eth_usd(snapshot)
    e = intent.expected
    expected_net_usd = e.net_usd + e.gas_usd - e.close_gas_usd - gas_cost_usd
    if intent.kind == "open":
        bar, multiple = config.costs.min_profit_usd, config.costs.gas_cost_multiple
        before_gas = expected_net_usd + gas_cost_usd
        if expected_net_usd < bar or before_gas < multiple * gas_cost_usd:
            raise BelowProfitBar(f"pair expected net {expected_net_usd:.4f} USD after gas {gas_cost_usd:.4f} USD; bar: "
                                 f"net >= {bar} USD and before-gas {before_gas:.4f} >= {multiple} x gas")
    return PairTxPlan(intent, executor, function, calldata, quote, bounds, deadline_s, gas_units, gas_cost_usd,
                      expected_net_usd, gas_price_wei)
