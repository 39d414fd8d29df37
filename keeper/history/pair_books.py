"""The backtest's pair trades: the paper fill of a pair plan (keeper/pairs_plan.py) for the pair
desk (keeper/pairs_desk.py), which books it in the pairs journal exactly as it books a receipt.

A pair plan fills at its predicted fills (the exact pair quote on the recorded snapshot, as for
basis trades), in the block it was planned on. Its costs, as the live desk reads them from the
receipt: Perp's fee of both legs (from the quote), the funding both legs settle (accrued block by
block from the recorded funding premium by the paper account, books.py) and the gas: the pair gas
table's typical row (the plan's gas units) at the recorded base fee plus the tip, plus the
recorded L1 data fee on OP-stack chains (as basis trades pay it).
"""

from __future__ import annotations

from typing import Any

from keeper.chain.tx_types import TxOutcome
from keeper.pairs_types import PairPosition
from keeper.types import MarketSnapshot
from keeper.venues.executor import PairFills


def paper_pair_fill(plan: Any, snapshot: MarketSnapshot, settled_funding_x18: int, l1_fee_wei: int,
                    number: int) -> tuple[TxOutcome, PairFills, int, int]:
    """(the transaction's outcome, its fills, Perp's fee of both legs, the funding settled)."""
    quote = plan.quote
    fee_paid_wei = plan.gas_units * plan.gas_price_wei + l1_fee_wei
    outcome = TxOutcome(f"paper-pair-{snapshot.block_number}-{number}", 0, "included", snapshot.block_number, None,
                        plan.gas_units, plan.gas_price_wei, fee_paid_wei, (), 0)
    return outcome, quote.predicted, quote.leg_a.fee_x18 + quote.leg_b.fee_x18, settled_funding_x18


def pair_legs(position: PairPosition | None) -> dict[str, int]:
    """The open pair's legs as market -> signed base (x18), for the paper account's funding."""
    if position is None:
        return {}
    return {position.market_a: position.base_x18_a, position.market_b: position.base_x18_b}
