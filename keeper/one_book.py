"""One book across strategies and markets (pure): hand-overs between strategies, the margin
ladder's intent, and the gas the chain used, for the engine.

- Hand-over: a strategy wants out of a position (not for the margin guard) that another enabled
  strategy would hold by its own rule (`would_hold(ctx, position) -> reason | None`): the position
  changes strategy in the books instead of a close and a reopen, which would pay two transactions'
  fees and impact for nothing.
- Margin ladder: keeper/margin_ladder.py's step as the risk stage's resize intent (a reduce that
  carries the top-up deposit).
- Gas: the units of each kind of trade the chain used last, replacing the cost model's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keeper.config import RiskConfig
from keeper.margin_ladder import LadderStep, plan_ladder_step
from keeper.plan import RISK_STRATEGY
from keeper.types import Intent, MarketSnapshot, PerpAccountState, PnlEstimate, Position
from strategies.base import StrategyContext


def find_hand_over(close: Intent, context: StrategyContext, strategies: Sequence[Any]) -> tuple[str, str] | None:
    """(strategy to hand `close`'s position to, reason) or None."""
    position = context.positions.get(close.market)
    if position is None or close.strategy == RISK_STRATEGY or "margin guard" in close.reason:
        return None
    for strategy in strategies:
        would_hold = getattr(strategy, "would_hold", None)
        if strategy.name == close.strategy or would_hold is None:
            continue
        why = would_hold(context, position)
        if why is not None:
            return strategy.name, f"from {close.strategy} ({close.reason}) to {strategy.name}: {why}"
    return None


def ladder_intent(snapshot: MarketSnapshot, positions: Mapping[str, Position], wallet_usdc_raw: int, risk: RiskConfig,
                  ttl_blocks: int) -> tuple[Intent, LadderStep] | None:
    """The margin ladder's reduce (with its top-up deposit) for this tick and the step it carries
    out (its ratios, for the log), or None."""
    account = snapshot.account
    if not isinstance(account, PerpAccountState) or not positions:
        return None
    units = {name: 10 ** (18 - view.spot_token_decimals) for name, view in snapshot.markets.items()}
    step = plan_ladder_step(account, positions, wallet_usdc_raw, topup_ratio=risk.margin_topup_ratio,
                            min_ratio=risk.min_margin_ratio, reduce_fraction=risk.margin_reduce_fraction,
                            min_unit_x18=units)
    if step is None:
        return None
    position = positions[step.market]
    return Intent(strategy=RISK_STRATEGY, kind="resize", market=step.market, direction=position.direction,
                  spot_venue=position.spot_venue, perp_base_x18=-step.reduce_base_x18, reason=step.reason,
                  expected=PnlEstimate(0, 0, 0, 0, 0, 0), created_block=snapshot.block_number,
                  valid_until_block=snapshot.block_number + ttl_blocks, deposit_usdc_raw=step.deposit_usdc_raw), step


def chain_gas_units(gas_used: Mapping[tuple[str, str], int], market: str | None = None) -> dict[str, int]:
    """CostModel gas-unit overrides from (market, kind) -> gas the chain used last: per kind, the
    market's own when it has one (`market` given; pools and ticks crossed differ: 0.75M against
    1.19M for a close on the devnet), else the largest over markets; a close is costed like an open
    until one has been seen (it moves the same legs back)."""
    units = {}
    for kind in ("open", "close", "resize"):
        own = gas_used.get((market, kind)) if market is not None else None
        seen = [gas for (_, k), gas in gas_used.items() if k == kind]
        if own is not None:
            units[f"gas_units_{kind}"] = own
        elif seen:
            units[f"gas_units_{kind}"] = max(seen)
    if "gas_units_open" in units and "gas_units_close" not in units:
        units["gas_units_close"] = units["gas_units_open"]
    return units
