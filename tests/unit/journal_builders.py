"""Builders for journal tests: an intent, fills, a plan, an included outcome, one whole trade
(decision, send, outcome). Shared by the journal's tests, the backtest
books', the reorg booking's, the migrations' and the crash-safety writer subprocesses."""

from __future__ import annotations

from pathlib import Path

from keeper.journal import Journal
from keeper.pnl_split import TradeFees
from keeper.types import Direction, Intent, Outcome, PnlEstimate, PredictedFills, TxPlan

REPO = Path(__file__).resolve().parents[2]
E18 = 10**18
HUGE = 2**200
INT256_MIN = -(2**255)
ETH_PRICE_X18 = 3_000 * E18
EXECUTOR = "0x00000000000000000000000000000000000000e7"


def make_intent(kind: str = "open", market: str = "ETH", direction: Direction = Direction.SHORT_PERP,
                perp_base_x18: int = E18, block: int = 100) -> Intent:
    return Intent(strategy="carry", kind=kind, market=market, direction=direction, spot_venue="uniswap_v3",
                  perp_base_x18=perp_base_x18, reason=f"{kind}: basis 42.5 bps, z 2.1",
                  expected=PnlEstimate(12.5, 3.25, 1.5, 0.75, 0.5, 0.125), created_block=block,
                  valid_until_block=block + 3)


def make_fills(perp_base_x18: int = -E18, net_quote_x18: int = 5 * E18, spot_raw: int | None = None,
               usdc_raw: int = -2_995_000_000) -> PredictedFills:
    spot = -perp_base_x18 if spot_raw is None else spot_raw
    perp_quote = net_quote_x18 - usdc_raw * 10**12
    return PredictedFills(perp_base_x18=perp_base_x18, perp_quote_x18=perp_quote, spot_raw=spot, usdc_raw=usdc_raw,
                          residual_base_x18=perp_base_x18 + spot, net_quote_x18=net_quote_x18)


def make_plan(intent: Intent, predicted: PredictedFills | None = None, min_net_quote_x18: int = 0) -> TxPlan:
    return TxPlan(intent=intent, to=EXECUTOR, calldata=bytes.fromhex("deadbeef") + bytes(64), value_wei=0,
                  predicted=predicted or make_fills(), perp_opposite_amount_bound_x18=2_990 * E18,
                  spot_limit_raw=2_999_000_000, max_residual_base_x18=10**12, min_net_quote_x18=min_net_quote_x18,
                  deadline_s=1_700_000_600, gas_limit=1_200_000, gas_cost_wei=1_200_000 * 10**9 * 30,
                  gas_cost_usd=0.108, expected_net_usd=15.0)


def included(plan: TxPlan, fills: PredictedFills, block: int, fee_paid_wei: int = 10**15,
             tx_hash: str = "0x" + "11" * 32) -> Outcome:
    return Outcome(plan, "included", tx_hash, block, 900_000, fee_paid_wei, fills, f"included in block {block}")


def trade(journal: Journal, kind: str, fills: PredictedFills, block: int, after_x18: int | None, *,
          fees: TradeFees = TradeFees(), settled_funding_x18: int = 0, fee_paid_wei: int = 10**15,
          eth_price_x18: int = ETH_PRICE_X18, market: str = "ETH", basis_bps: float | None = 42.5,
          direction: Direction = Direction.SHORT_PERP) -> tuple[int, int]:
    """Decide, send and settle one included trade; (decision id, tx id)."""
    intent = make_intent(kind, market=market, perp_base_x18=abs(fills.perp_base_x18) or E18, block=block,
                         direction=direction)
    decision_id = journal.record_decision(intent, block=block, timestamp_s=1_700_000_000 + block, basis_bps=basis_bps,
                                          inputs={"basis_bps": basis_bps, "z": 2.1})
    tx_hash = "0x" + f"{decision_id:064x}"
    tx_id = journal.record_tx_sent(decision_id, make_plan(intent, fills), tx_hash=tx_hash, nonce=decision_id,
                                   sent_block=block, eth_price_x18=eth_price_x18)
    journal.record_tx_outcome(tx_id, included(make_plan(intent, fills), fills, block + 1, fee_paid_wei, tx_hash),
                              block_timestamp_s=1_700_000_001 + block, position_base_after_x18=after_x18, fees=fees,
                              settled_funding_x18=settled_funding_x18)
    return decision_id, tx_id
