"""The priority fee (tip) the keeper predicts it will pay: what the sender's fee policy tips now.

The sender (keeper/chain/sender.py, keeper/chain/fees.py) tips the median of the recent blocks'
reward percentile, never below the policy's `min_priority_fee_wei`. The cost model, the planner's
profit gate and the pair planner price gas at the snapshot's base fee + this tip, so that what a
strategy predicts a trade costs is what the chain will charge it:

- `TipSource.tip_wei(block)`: the tip from the same `eth_feeHistory` and policy the sender uses.
  The reading rides (keeper/chain/rpc.py `JsonRpc.ride`) with the next tick's reads, in the same
  batch as the snapshot's first round trip, so it costs no round trip of its own: each call takes
  the answer of the reading queued by the call before and queues the next. Only when no fresh
  enough answer came (`TIP_REFRESH_BLOCKS` blocks old, or, with `fresh=True` when a trade is about
  to be planned, older than the block) is `eth_feeHistory` read in a round trip of its own. A dry
  run (no key) reads it too.
- `learn(...)`: each included keeper transaction's tip (its receipt's effectiveGasPrice minus its
  block's base fee) is the newest evidence of what the chain charges; it replaces the cached tip.
- Without an RPC (backtests of recorded history, which hold no fee history) the tip is the
  constant `PRIORITY_FEE_WEI`, the policy's minimum.

An RPC error while refreshing keeps the last known tip (logged); with none known yet it propagates
to the engine's error boundary (a transient error skips the tick).
"""

from __future__ import annotations

from keeper.chain.fees import (FeePolicy, build_fee_history, build_fee_history_request, compute_priority_fee_wei,
                               fetch_fee_history)
from keeper.chain.rpc import JsonRpc, Rider
from keeper.config import KeeperConfig
from keeper.errors import RpcError, TransientError
from keeper.logs import get_logger
from keeper.types import Outcome

log = get_logger("keeper.gas_price")
GWEI = 10**9
PRIORITY_FEE_WEI = 10**6  # 0.001 gwei: the policy's minimum tip; the tip without fee history
TIP_REFRESH_BLOCKS = 10  # a reading this many blocks old is refreshed in a round trip of its own


def build_fee_policy(config: KeeperConfig) -> FeePolicy:
    """The fee policy of the keeper's sender (and so of its predictions)."""
    return FeePolicy(max_fee_per_gas_cap_wei=int(config.execution.max_fee_per_gas_gwei * GWEI))


class TipSource:
    def __init__(self, rpc: JsonRpc | None, policy: FeePolicy | None,
                 refresh_blocks: int = TIP_REFRESH_BLOCKS) -> None:
        self.rpc = rpc
        self.policy = policy
        self.refresh_blocks = refresh_blocks
        self.cached_wei = policy.min_priority_fee_wei if policy is not None else PRIORITY_FEE_WEI
        self.source = "constant"  # constant | fee_history | receipt
        self._at_block: int | None = None
        self._rider: Rider | None = None  # the reading riding with the next round trip

    @property
    def live(self) -> bool:
        return self.rpc is not None and self.policy is not None

    def tip_wei(self, block: int, fresh: bool = False) -> int:
        """The tip the sender would pay at `block`, from the reading that rode with the reads since
        the last call; read on its own only when the newest is `refresh_blocks` old (`fresh`:
        older than `block`). Queues the next reading to ride."""
        if not self.live:
            return self.cached_wei
        self._take_rider(block)
        age = None if self._at_block is None else block - self._at_block
        if age is None or age >= self.refresh_blocks or (fresh and age > 0):
            self._refresh(block)
        if self._rider is None:
            assert self.rpc is not None and self.policy is not None
            self._rider = self.rpc.ride(*build_fee_history_request(self.policy.history_blocks,
                                                                    self.policy.reward_percentile))
        return self.cached_wei

    def _take_rider(self, block: int) -> None:
        """Take the answer of the queued reading, if it has ridden: the tip at the newest block it
        covers, unless a newer reading or receipt came since."""
        rider = self._rider
        if rider is None or not rider.done:
            return
        self._rider = None
        if rider.error is not None:
            log.warning("gas.tip_refresh_failed", block=block, tip_wei=self.cached_wei, reason=str(rider.error))
            return
        assert self.policy is not None
        history = build_fee_history(rider.result)
        newest = history.oldest_block + len(history.gas_used_ratios) - 1
        if self._at_block is not None and newest < self._at_block:
            return  # a receipt (or a direct reading) since is newer evidence
        self.cached_wei = compute_priority_fee_wei(history, self.policy)
        self.source = "fee_history"
        self._at_block = newest

    def _refresh(self, block: int) -> None:
        assert self.rpc is not None and self.policy is not None
        try:
            history = fetch_fee_history(self.rpc, self.policy.history_blocks, self.policy.reward_percentile)
        except (RpcError, TransientError) as exc:
            if self._at_block is None:
                raise
            log.warning("gas.tip_refresh_failed", block=block, tip_wei=self.cached_wei, reason=str(exc))
            return
        self.cached_wei = compute_priority_fee_wei(history, self.policy)
        self.source = "fee_history"
        self._at_block = block

    def learn(self, effective_gas_price_wei: int, block_number: int) -> int | None:
        """Take the tip an included keeper transaction paid (its effectiveGasPrice minus its
        block's base fee) as the current tip. Returns it; None when it could not be read."""
        if not self.live or effective_gas_price_wei <= 0:
            return None
        assert self.rpc is not None and self.policy is not None
        try:
            block = self.rpc.call("eth_getBlockByNumber", [hex(block_number), False]) or {}
        except (RpcError, TransientError) as exc:
            log.warning("gas.tip_learn_failed", block=block_number, reason=str(exc))
            return None
        if "baseFeePerGas" not in block:
            return None
        paid_wei = effective_gas_price_wei - int(block["baseFeePerGas"], 16)
        self.cached_wei = max(paid_wei, self.policy.min_priority_fee_wei)
        self.source = "receipt"
        self._at_block = block_number
        return paid_wei


def gas_prediction(outcome: Outcome) -> dict[str, int]:
    """Prediction against outcome for a trade's log event: gas price and gas cost, predicted by the
    planner and paid on chain (the paid fields only once the transaction is included)."""
    plan = outcome.plan
    fields = {"gas_price_predicted_wei": plan.gas_price_wei, "gas_cost_predicted_wei": plan.gas_cost_wei}
    if outcome.status == "included":
        fields |= {"gas_price_paid_wei": outcome.effective_gas_price_wei, "gas_cost_paid_wei": outcome.fee_paid_wei}
    return fields
