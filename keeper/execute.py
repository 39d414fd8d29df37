"""Execute: turn a TxPlan into an Outcome. Two executors, no `if dry_run` branches elsewhere:

- LiveExecutor signs and sends through keeper/chain/sender.TxSender (simulate first; a plan that
  fails simulation is never sent), then reads the executor's Fills event from the receipt;
- DryRunExecutor holds no key at all: it runs the same calldata as an eth_call from the owner's
  address and reports the fills the chain would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import OnSigned, SimulationReverted, TxOutcome, TxRequest
from keeper.errors import RpcError, SkipOpportunity, TransientError
from keeper.logs import get_logger
from keeper.types import Outcome, TradeLeg, TxPlan
from keeper.venues.adapter import ReceiptFacts
from keeper.venues.executor import EXECUTOR, decode_fills_return, fills_from_receipt
from keeper.venues.registry import leg_adapter

log = get_logger("keeper.execute")
_FUNCTION_OF_KIND = {"open": "openBasis", "resize": "resizeBasis", "close": "closeBasis"}


class Executor(Protocol):
    mode: str

    def execute(self, plan: TxPlan, on_signed: OnSigned | None = None) -> Outcome: ...


class LiveExecutor:
    mode = "live"

    def __init__(self, sender: TxSender, rpc: JsonRpc, venue_emitters: Mapping[str, str]) -> None:
        """`venue_emitters`: by venue name, the contract whose events its adapter decodes from a
        receipt (Perp v2: the ClearingHouse; a perp venue must be named, a spot venue need not)."""
        self.sender = sender
        self.rpc = rpc
        self.venue_emitters = dict(venue_emitters)

    def execute(self, plan: TxPlan, on_signed: OnSigned | None = None) -> Outcome:
        """Send and wait. `on_signed(entry)` sees each signed transaction before it is broadcast.
        A TransientError (RPC trouble, not settled in time) leaves the transaction tracked by the
        sender: `settle` it later (see keeper/inflight.py)."""
        intent = plan.intent
        request = TxRequest(to=plan.to, data=plan.calldata, value_wei=plan.value_wei,
                            label=f"{intent.kind} {intent.market} {intent.direction.value}", errors_abi=EXECUTOR,
                            valid_until_block=intent.valid_until_block)
        try:
            result = self.sender.send(request, on_signed)
        except SimulationReverted as exc:
            return Outcome(plan, "simulation_reverted", None, None, 0, 0, None, exc.reason)
        except SkipOpportunity as exc:  # fee cap, node refused the broadcast
            return Outcome(plan, "dropped", None, None, 0, 0, None, str(exc))
        return self.outcome_of(plan, result)

    def outcome_of(self, plan: TxPlan, result: TxOutcome) -> Outcome:
        """A settled transaction as the journal books it: the fills from its receipt's Fills event,
        the venues' fees and settled funding from the events each leg's adapter decodes."""
        fills = position_after = block_ts = None
        perp_fee = settled = 0
        if result.status == "included":
            receipt = self.rpc.call("eth_getTransactionReceipt", [result.tx_hash])
            if receipt is None:  # a reorg between settling and reading: the next poll decides
                raise TransientError(f"tx {result.tx_hash}: receipt gone after it settled (reorg?)")
            found = fills_from_receipt(receipt, plan.to)
            if found:
                _, fills, position_after = found
            perp_fee, settled = legs_receipt_facts(plan.intent.legs, receipt, self.venue_emitters, plan.to)
            block = self.rpc.call("eth_getBlockByNumber", [hex(result.block_number or 0), False]) or {}
            block_ts = int(block.get("timestamp", "0x0"), 16)
        detail = result.revert_reason or f"{result.status} in block {result.block_number}"
        return Outcome(plan, result.status, result.tx_hash, result.block_number, result.gas_used,
                       result.fee_paid_wei, fills, detail, nonce=result.nonce, block_timestamp_s=block_ts,
                       position_base_after_x18=position_after, perp_fee_x18=perp_fee, settled_funding_x18=settled,
                       attempt_hashes=result.attempt_hashes, effective_gas_price_wei=result.effective_gas_price_wei)


def legs_receipt_facts(legs: tuple[TradeLeg, ...], receipt: dict[str, Any], venue_emitters: Mapping[str, str],
                       trader: str) -> tuple[int, int]:
    """(perp legs' fee x18, settled funding x18) of a trade's receipt, each venue's events decoded
    by its adapter once (two legs on one venue share its events: a venue's facts cover all its
    markets in the transaction). A spot venue's fee is its quote's, booked from the fills."""
    perp_fee_x18 = settled_x18 = 0
    for leg in {leg.venue: leg for leg in legs}.values():
        facts: ReceiptFacts = leg_adapter(leg).receipt_facts(receipt, venue_emitters.get(leg.venue, ""), trader)
        if leg.venue_kind == "perp":
            perp_fee_x18 += facts.fee_x18
        settled_x18 += facts.settled_funding_x18
    return perp_fee_x18, settled_x18


class DryRunExecutor:
    """Simulates every open with eth_call from the executor's owner; sends nothing, signs nothing.

    A close or resize acts on a position this dry run only imagines (its books are virtual, the
    chain never held it): an eth_call of it would revert (Perp: no position) or act on whatever
    the executor really holds. Its would-be fills are the plan's exact quote instead (the same
    quote a live plan's fills are tested equal to), said so in the outcome."""

    mode = "dry_run"

    def __init__(self, rpc: JsonRpc, owner: str) -> None:
        self.rpc = rpc
        self.owner = owner

    def execute(self, plan: TxPlan, on_signed: OnSigned | None = None) -> Outcome:
        if plan.intent.kind != "open":
            fills = plan.predicted
            return Outcome(plan, "dry_run", None, None, 0, 0, fills,
                           f"would {plan.intent.kind} {plan.intent.market} (a position of this dry run only: priced by "
                           f"the exact quote, not eth_call): perp base {fills.perp_base_x18}, spot {fills.spot_raw}, "
                           f"net quote {fills.net_quote_x18}")
        function = _FUNCTION_OF_KIND[plan.intent.kind]
        call = {"from": self.owner, "to": plan.to, "data": "0x" + plan.calldata.hex()}
        try:
            data = bytes.fromhex(self.rpc.call("eth_call", [call, "latest"])[2:])
        except TransientError:
            raise
        except RpcError as exc:
            raw = exc.data if isinstance(exc.data, str) and exc.data.startswith("0x") else ""
            reason = EXECUTOR.describe_revert(bytes.fromhex(raw[2:])) if len(raw) > 2 else exc.rpc_message
            return Outcome(plan, "simulation_reverted", None, None, 0, 0, None, reason)
        fills = decode_fills_return(function, data)
        return Outcome(plan, "dry_run", None, None, 0, 0, fills,
                       f"would {plan.intent.kind} {plan.intent.market}: perp base {fills.perp_base_x18}, "
                       f"spot {fills.spot_raw}, net quote {fills.net_quote_x18}")
