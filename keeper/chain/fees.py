"""EIP-1559 fees: read `eth_feeHistory` (fetch_*), price from it (compute_*, pure), refuse above a cap.

- Base fee: the pending block's, i.e. the extra last entry `eth_feeHistory` returns.
- Priority fee (tip): the median, over the recent non-empty blocks, of the policy's reward
  percentile; never below `min_priority_fee_wei` (empty blocks report a reward of 0).
- Max fee: base * `base_fee_multiplier_pct` / 100 + tip (200%: still valid after six full
  blocks), clipped to the cap. The cap refuses only when what inclusion needs now
  (base + tip) is above it: then `FeeCapExceeded`, a SkipOpportunity.
- Replacement: both max fee and tip bumped by at least `replacement_bump_bps` (nodes refuse a
  same-nonce replacement below 10-12.5%) and never below the current market price.

On OP-stack chains a transaction also pays an L1 data fee; `fetch_l1_data_fee_wei` asks the
GasPriceOracle predeploy and returns 0 where it has no code (plain L1s, our devnet).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from keeper.chain.rpc import JsonRpc
from keeper.errors import ConfigError, SkipOpportunity

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
GET_L1_FEE_SELECTOR = keccak(text="getL1Fee(bytes)")[:4]
BPS = 10_000
MIN_REPLACEMENT_BUMP_BPS = 1_250  # 12.5%: the strictest common node rule (geth's default is 10%)


class FeeCapExceeded(SkipOpportunity):
    """Inclusion would need more per gas than the configured cap allows."""

    def __init__(self, what: str, needed_wei: int, cap_wei: int) -> None:
        super().__init__(f"{what} needs {needed_wei} wei/gas, above the cap of {cap_wei} wei/gas")
        self.needed_wei = needed_wei
        self.cap_wei = cap_wei


@dataclass(frozen=True)
class FeePolicy:
    max_fee_per_gas_cap_wei: int
    reward_percentile: float = 50.0
    history_blocks: int = 10
    base_fee_multiplier_pct: int = 200
    min_priority_fee_wei: int = 1_000_000  # 0.001 gwei
    replacement_bump_bps: int = MIN_REPLACEMENT_BUMP_BPS

    def __post_init__(self) -> None:
        if self.max_fee_per_gas_cap_wei <= 0:
            raise ConfigError(f"max_fee_per_gas_cap_wei must be > 0, got {self.max_fee_per_gas_cap_wei}")
        if not 0 <= self.reward_percentile <= 100:
            raise ConfigError(f"reward_percentile must be within 0..100, got {self.reward_percentile}")
        if not 1 <= self.history_blocks <= 1024:
            raise ConfigError(f"history_blocks must be within 1..1024, got {self.history_blocks}")
        if self.base_fee_multiplier_pct < 100:
            raise ConfigError(f"base_fee_multiplier_pct must be >= 100, got {self.base_fee_multiplier_pct}")
        if self.min_priority_fee_wei < 0:
            raise ConfigError(f"min_priority_fee_wei must be >= 0, got {self.min_priority_fee_wei}")
        if self.replacement_bump_bps < MIN_REPLACEMENT_BUMP_BPS:
            raise ConfigError(
                f"replacement_bump_bps must be >= {MIN_REPLACEMENT_BUMP_BPS} (nodes refuse smaller bumps), "
                f"got {self.replacement_bump_bps}"
            )


@dataclass(frozen=True)
class FeeHistory:
    """`eth_feeHistory` at one reward percentile. `base_fees_per_gas_wei` has one entry more than
    the blocks: the last is the base fee of the next (pending) block."""

    oldest_block: int
    base_fees_per_gas_wei: tuple[int, ...]
    gas_used_ratios: tuple[float, ...]
    rewards_wei: tuple[int, ...]

    @property
    def pending_base_fee_per_gas_wei(self) -> int:
        return self.base_fees_per_gas_wei[-1]


@dataclass(frozen=True)
class Eip1559Fees:
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int


# ------------------------------------------------------------------------------------ fetch
def fetch_fee_history(rpc: JsonRpc, block_count: int, reward_percentile: float) -> FeeHistory:
    return build_fee_history(rpc.call(*build_fee_history_request(block_count, reward_percentile)))


def build_fee_history_request(block_count: int, reward_percentile: float) -> tuple[str, list[Any]]:
    """The (method, params) of an `eth_feeHistory` call, e.g. to put in a batch."""
    return "eth_feeHistory", [hex(block_count), "latest", [reward_percentile]]


def build_fee_history(reply: dict[str, Any]) -> FeeHistory:
    """From an `eth_feeHistory` reply asked for one percentile."""
    return FeeHistory(
        oldest_block=int(reply["oldestBlock"], 16),
        base_fees_per_gas_wei=tuple(int(fee, 16) for fee in reply["baseFeePerGas"]),
        gas_used_ratios=tuple(float(ratio) for ratio in reply["gasUsedRatio"]),
        rewards_wei=tuple(int(block[0], 16) if block else 0 for block in reply.get("reward") or []),
    )


def fetch_fees(rpc: JsonRpc, policy: FeePolicy) -> Eip1559Fees:
    return compute_fees(fetch_fee_history(rpc, policy.history_blocks, policy.reward_percentile), policy)


def fetch_l1_data_fee_wei(rpc: JsonRpc, signed_tx_bytes: bytes) -> int:
    """The L1 data fee an OP-stack chain charges for this transaction, from the GasPriceOracle
    predeploy; 0 where that address has no code."""
    if not rpc.get_code(GAS_PRICE_ORACLE):
        return 0
    reply = rpc.eth_call(GAS_PRICE_ORACLE, build_get_l1_fee_calldata(signed_tx_bytes))
    (fee_wei,) = decode(["uint256"], reply)
    return int(fee_wei)


def build_get_l1_fee_calldata(signed_tx_bytes: bytes) -> bytes:
    return GET_L1_FEE_SELECTOR + encode(["bytes"], [signed_tx_bytes])


# ------------------------------------------------------------------------------------ compute
def compute_priority_fee_wei(history: FeeHistory, policy: FeePolicy) -> int:
    paid = [reward for reward, ratio in zip(history.rewards_wei, history.gas_used_ratios) if ratio > 0]
    observed = statistics.median_high(paid) if paid else 0
    return max(observed, policy.min_priority_fee_wei)


def compute_fees(history: FeeHistory, policy: FeePolicy) -> Eip1559Fees:
    base_wei = history.pending_base_fee_per_gas_wei
    tip_wei = compute_priority_fee_wei(history, policy)
    needed_wei = base_wei + tip_wei
    if needed_wei > policy.max_fee_per_gas_cap_wei:
        raise FeeCapExceeded("inclusion in the next block", needed_wei, policy.max_fee_per_gas_cap_wei)
    with_headroom_wei = _ceil_div(base_wei * policy.base_fee_multiplier_pct, 100) + tip_wei
    return Eip1559Fees(min(with_headroom_wei, policy.max_fee_per_gas_cap_wei), tip_wei)


def compute_bumped_wei(value_wei: int, bump_bps: int) -> int:
    """`value_wei` raised by at least `bump_bps`, rounded up, and by at least 1 wei."""
    return max(_ceil_div(value_wei * (BPS + bump_bps), BPS), value_wei + 1)


def compute_replacement_fees(previous: Eip1559Fees, market: Eip1559Fees, policy: FeePolicy) -> Eip1559Fees:
    """Fees for a same-nonce replacement: each at least the bumped previous value and at least
    the market's. Raises FeeCapExceeded when the max fee would pass the cap."""
    tip_wei = max(compute_bumped_wei(previous.max_priority_fee_per_gas_wei, policy.replacement_bump_bps),
                  market.max_priority_fee_per_gas_wei)
    max_fee_wei = max(compute_bumped_wei(previous.max_fee_per_gas_wei, policy.replacement_bump_bps),
                      market.max_fee_per_gas_wei, tip_wei)
    if max_fee_wei > policy.max_fee_per_gas_cap_wei:
        raise FeeCapExceeded("a fee-bumped replacement", max_fee_wei, policy.max_fee_per_gas_cap_wei)
    return Eip1559Fees(max_fee_wei, tip_wei)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
