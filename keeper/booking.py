"""An outcome into the journal, with the fees and funding its receipt showed."""

from __future__ import annotations

from typing import Any

from keeper.pnl_split import TradeFees, compute_spot_fee_x18
from keeper.plan import eth_price_x18
from keeper.types import MarketSnapshot, Outcome
from keeper.venues.registry import spot_adapter
from keeper.venues.uniswap_v2_adapter import V2_FEE_PIPS


def book_outcome(journal: Any, decision_id: int, outcome: Outcome, snapshot: MarketSnapshot,
                 tx_id: int | None) -> None:
    """`tx_id`: the transaction row recorded when it was signed (None: nothing was signed, or an
    executor that records nothing before the outcome)."""
    fees = None
    intent = outcome.plan.intent
    if outcome.status == "included" and outcome.fills is not None:
        view = snapshot.markets[intent.market]
        venue_fee_pips = spot_adapter(intent.spot_venue).fee_pips(view)
        fee_pips = V2_FEE_PIPS if venue_fee_pips is None else venue_fee_pips  # unreadable: the V2 fee
        fees = TradeFees(perp_fee_x18=outcome.perp_fee_x18,
                         spot_fee_x18=compute_spot_fee_x18(outcome.fills.spot_raw, outcome.fills.usdc_raw, fee_pips))
    if tx_id is None:
        journal.record_outcome(
            decision_id, outcome, nonce=outcome.nonce, sent_block=snapshot.block_number,
            block_timestamp_s=outcome.block_timestamp_s, position_base_after_x18=outcome.position_base_after_x18,
            fees=fees, settled_funding_x18=outcome.settled_funding_x18,
            eth_price_x18=eth_price_x18(snapshot), attempt_hashes=outcome.attempt_hashes)
        return
    journal.record_tx_outcome(
        tx_id, outcome, block_timestamp_s=outcome.block_timestamp_s,
        position_base_after_x18=outcome.position_base_after_x18, fees=fees,
        settled_funding_x18=outcome.settled_funding_x18, attempt_hashes=outcome.attempt_hashes)
