"""Plan: an Intent becomes a TxPlan, exact to the wei, or a skip with its numbers.

1. re-quote both legs on the snapshot (keeper/quotes.py) and derive the executor's bounds
   (perp oppositeAmountBound, spot min-out / max-in, residual, min net quote, deadline);
2. the gas-aware profitability gate (opens and resizes; closes always go: they reduce risk):
   gas cost = gas units x (base fee + the tip the sender would pay now, keeper/gas_price.py) + the L1 data fee on OP-stack chains, converted to USD
   through the ETH index; the intent's expected net PnL, with this transaction's gas instead of the
   strategy's estimate of it (an open keeps the estimate of its later close), must clear `costs.min_profit_usd` and `costs.gas_cost_multiple` x the gas cost.
"""

from __future__ import annotations

from typing import Any

from keeper.bounds_guard import check_protective_bounds
from keeper.chain.fees import GAS_PRICE_ORACLE, fetch_l1_data_fee_wei
from keeper.chain.rpc import JsonRpc
from keeper.config import KeeperConfig
from keeper.errors import SkipOpportunity
from keeper.gas_price import PRIORITY_FEE_WEI, TipSource, build_fee_policy  # noqa: F401 - PRIORITY_FEE_WEI re-exported
from keeper.quote_bounds import BasisTradeBounds, compute_bounds
from keeper.quotes import BasisTradeQuote, quote_basis_trade
from keeper.types import Intent, MarketSnapshot, PerpMarketState, Position, TxPlan
from keeper.venues import executor as ex
from keeper.venues.gas import TYPICAL_GAS_UNITS as GAS_UNITS  # noqa: F401 - main's name, re-exported
from keeper.venues.gas import typical_gas_units
from keeper.venues.registry import leg_adapter

RISK_STRATEGY = "risk"  # the strategy name of the risk stage's own intents (unwind, reduce)



class BelowProfitBar(SkipOpportunity):
    """Expected net PnL after gas does not clear the configured bar."""


class IntentExpired(SkipOpportunity):
    pass


class LegsNotAtomic(SkipOpportunity):
    """A leg's venue does not settle inside the executor's one transaction: the trade could be left one-legged."""


def check_legs_atomic(intent: Intent) -> None:
    """Every leg of the trade settles in the executor's one transaction (its adapter says so)."""
    for leg in intent.legs:
        if not leg_adapter(leg).capabilities.same_transaction:
            raise LegsNotAtomic(f"{intent.market} {intent.kind}: the {leg.venue_kind} leg on {leg.venue} does not settle "
                                f"in the executor's transaction")


def trade_call(quote: BasisTradeQuote, bounds: BasisTradeBounds, deadline_s: int,
               deposit_usdc_raw: int = 0) -> tuple[str, tuple[Any, ...]]:
    """The executor function and its arguments (ABI order) that run a quoted trade in its bounds."""
    perp_leg, spot_leg = quote.perp, quote.spot
    spot = ex.spot_order(spot_leg.venue, spot_leg.is_buy, spot_leg.is_exact_input, spot_leg.amount_raw,
                         bounds.spot_limit_raw)
    limits = ex.trade_bounds(deadline_s, bounds.max_residual_base_x18, bounds.min_net_quote_x18)
    if perp_leg.is_close:
        return "closeBasis", (ex.perp_close_order(perp_leg.base_token, bounds.perp_opposite_amount_bound_x18), spot, limits)
    order = ex.perp_order(perp_leg.base_token, perp_leg.is_base_to_quote, perp_leg.is_exact_input,
                          perp_leg.amount_x18, bounds.perp_opposite_amount_bound_x18)
    return ("openBasis" if quote.kind == "open" else "resizeBasis"), (deposit_usdc_raw, order, spot, limits)


def eth_price_x18(snapshot: MarketSnapshot) -> int | None:
    """USD per ETH (18 decimals) from the ETH market's index, None when it is not readable."""
    view = snapshot.markets.get("ETH")
    return view.perp.index_price_x18 if view is not None and isinstance(view.perp, PerpMarketState) else None


def eth_usd(snapshot: MarketSnapshot) -> float:
    price = eth_price_x18(snapshot)
    if price is None:
        raise SkipOpportunity("no ETH price in the snapshot to value gas (the ETH market must be readable)")
    return price / 10**18


class Planner:
    def __init__(self, config: KeeperConfig, executor_address: str, rpc: JsonRpc | None = None) -> None:
        self.config = config
        self.executor = executor_address
        self.rpc = rpc
        self._l1_oracle = bool(rpc and rpc.get_code(GAS_PRICE_ORACLE))
        self.last_l1_fee_wei = 0  # the L1 data fee of the last planned transaction (the cost model's estimate)
        self.tips = TipSource(rpc, build_fee_policy(config) if rpc is not None else None)  # the sender's tip

    def l1_fee_wei(self, calldata: bytes) -> int:
        """The OP-stack L1 data fee of a transaction carrying `calldata` (0 on other chains)."""
        return fetch_l1_data_fee_wei(self.rpc, calldata) if self._l1_oracle and self.rpc else 0

    def quote(self, intent: Intent, snapshot: MarketSnapshot, position: Position | None) -> BasisTradeQuote:
        view = snapshot.markets[intent.market]
        if intent.kind == "close":
            if position is None:
                raise SkipOpportunity(f"close {intent.market}: no open position")
            return quote_basis_trade(view, "close", position.direction, position.spot_venue, 0, position)
        return quote_basis_trade(view, intent.kind, intent.direction, intent.spot_venue, intent.perp_base_x18, position)

    def plan(self, intent: Intent, snapshot: MarketSnapshot, position: Position | None,
             head_block: int | None = None, gas_units: int | None = None) -> TxPlan:
        """`head_block`: the node's head now (the intent expires against it, not against the
        snapshot it came from); None: the snapshot's block. `gas_units`: what the chain used for
        this market's last trade of this kind, else the largest over markets (the units the
        strategy's estimate used: Engine.gas_units_for); None: the gas table's typical units
        (keeper/venues/gas.py)."""
        now = snapshot.block_number if head_block is None else head_block
        if now > intent.valid_until_block:
            raise IntentExpired(f"intent from block {intent.created_block} valid until {intent.valid_until_block}, "
                                f"head now {now}")
        cfg = self.config
        check_legs_atomic(intent)
        quote = self.quote(intent, snapshot, position)
        bounds = compute_bounds(quote, cfg.execution.slippage_bps)
        check_protective_bounds(quote, bounds)
        deadline_s = snapshot.block_timestamp + cfg.execution.deadline_s
        function, args = trade_call(quote, bounds, deadline_s, intent.deposit_usdc_raw)
        calldata = ex.EXECUTOR.encode(function, *args)
        gas_units = gas_units or typical_gas_units(intent.kind)
        gas_price_wei = snapshot.base_fee_wei + self.tips.tip_wei(now, fresh=True)
        l1_fee_wei = self.l1_fee_wei(calldata)
        gas_cost_wei = gas_units * gas_price_wei + l1_fee_wei
        gas_cost_usd = gas_cost_wei / 10**18 * eth_usd(snapshot)
        self.last_l1_fee_wei = l1_fee_wei
        # this transaction's gas replaces the strategy's estimate of it; the later close's stays
        expected_net_usd = intent.expected.net_usd + intent.expected.gas_usd - intent.expected.close_gas_usd - gas_cost_usd
        if intent.kind != "close" and intent.strategy != RISK_STRATEGY:  # risk's reduces always go
            bar = cfg.costs.min_profit_usd
            multiple = cfg.costs.gas_cost_multiple
            before_gas = expected_net_usd + gas_cost_usd
            if expected_net_usd < bar or before_gas < multiple * gas_cost_usd:
                raise BelowProfitBar(
                    f"expected net {expected_net_usd:.4f} USD after gas {gas_cost_usd:.4f} USD "
                    f"({gas_units} gas x {gas_price_wei / 1e9:.4f} gwei + L1 {l1_fee_wei} wei); bar: net >= "
                    f"{bar} USD and before-gas {before_gas:.4f} >= {multiple} x gas")
        return TxPlan(
            intent=intent, to=self.executor, calldata=calldata, value_wei=0, predicted=quote.predicted,
            perp_opposite_amount_bound_x18=bounds.perp_opposite_amount_bound_x18, spot_limit_raw=bounds.spot_limit_raw,
            max_residual_base_x18=bounds.max_residual_base_x18, min_net_quote_x18=bounds.min_net_quote_x18,
            deadline_s=deadline_s, gas_limit=gas_units, gas_cost_wei=gas_cost_wei, gas_cost_usd=gas_cost_usd,
            expected_net_usd=expected_net_usd, gas_price_wei=gas_price_wei)
