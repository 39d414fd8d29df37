"""EIP-1559 pricing from fee history, the max-fee cap, replacement bumps, the L1 data fee call."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode, encode

from keeper.chain.fees import (
    GAS_PRICE_ORACLE,
    Eip1559Fees,
    FeeCapExceeded,
    FeeHistory,
    FeePolicy,
    build_fee_history,
    compute_bumped_wei,
    compute_fees,
    compute_priority_fee_wei,
    compute_replacement_fees,
    fetch_l1_data_fee_wei,
)
from keeper.errors import ConfigError, SkipOpportunity

GWEI = 10**9


def history(pending_base_wei: int, rewards_wei: list[int], ratios: list[float] | None = None) -> FeeHistory:
    ratios = ratios if ratios is not None else [0.5] * len(rewards_wei)
    return FeeHistory(100, tuple([pending_base_wei] * len(rewards_wei)) + (pending_base_wei,),
                      tuple(ratios), tuple(rewards_wei))


def test_fee_history_reply_is_parsed_with_the_pending_base_fee_last() -> None:
    # Given an eth_feeHistory reply as anvil gives it for 2 blocks at one percentile
    reply = {"baseFeePerGas": ["0x8", "0x8", "0x7"], "gasUsedRatio": [0.00077, 0.0],
             "oldestBlock": "0x9c", "reward": [["0x3b9aca00"], ["0x0"]]}
    parsed = build_fee_history(reply)
    assert parsed.oldest_block == 156
    assert parsed.pending_base_fee_per_gas_wei == 7
    assert parsed.rewards_wei == (GWEI, 0)
    assert parsed.gas_used_ratios == (0.00077, 0.0)


def test_fees_are_twice_the_pending_base_fee_plus_the_median_tip() -> None:
    policy = FeePolicy(max_fee_per_gas_cap_wei=1_000 * GWEI, min_priority_fee_wei=0)
    fees = compute_fees(history(30 * GWEI, [1 * GWEI, 3 * GWEI, 2 * GWEI]), policy)
    assert fees == Eip1559Fees(max_fee_per_gas_wei=62 * GWEI, max_priority_fee_per_gas_wei=2 * GWEI)


def test_empty_blocks_do_not_drag_the_tip_to_zero_and_the_floor_applies() -> None:
    policy = FeePolicy(max_fee_per_gas_cap_wei=1_000 * GWEI, min_priority_fee_wei=GWEI // 10)
    # Empty blocks report a reward of 0: ignored
    assert compute_priority_fee_wei(history(1, [0, 5 * GWEI, 0], [0.0, 0.4, 0.0]), policy) == 5 * GWEI
    # Only empty blocks: the floor
    assert compute_priority_fee_wei(history(1, [0, 0], [0.0, 0.0]), policy) == GWEI // 10
    # A tiny observed tip is raised to the floor
    assert compute_priority_fee_wei(history(1, [7], [0.9]), policy) == GWEI // 10


def test_fees_above_the_cap_are_refused_as_a_skipped_opportunity() -> None:
    # Given base 95 gwei + tip 10 gwei = 105 gwei needed, and a cap of 100 gwei
    policy = FeePolicy(max_fee_per_gas_cap_wei=100 * GWEI, min_priority_fee_wei=0)
    with pytest.raises(FeeCapExceeded) as raised:
        compute_fees(history(95 * GWEI, [10 * GWEI]), policy)
    assert isinstance(raised.value, SkipOpportunity)
    assert raised.value.needed_wei == 105 * GWEI and raised.value.cap_wei == 100 * GWEI


def test_headroom_is_clipped_to_the_cap_when_inclusion_itself_fits() -> None:
    # 60 + 2 gwei needed fits under the 100 gwei cap; 2 * 60 + 2 of headroom does not
    policy = FeePolicy(max_fee_per_gas_cap_wei=100 * GWEI, min_priority_fee_wei=0)
    assert compute_fees(history(60 * GWEI, [2 * GWEI]), policy) == Eip1559Fees(100 * GWEI, 2 * GWEI)


@pytest.mark.parametrize(("value", "bumped"), [(0, 1), (1, 2), (8, 9), (100, 113), (10**9, 1_125_000_000)])
def test_bump_is_at_least_12_5_percent_rounded_up(value: int, bumped: int) -> None:
    assert compute_bumped_wei(value, 1_250) == bumped
    assert compute_bumped_wei(value, 1_250) * 8 >= value * 9


def test_replacement_bumps_both_fees_when_the_market_is_flat() -> None:
    policy = FeePolicy(max_fee_per_gas_cap_wei=1_000 * GWEI)
    previous = Eip1559Fees(40 * GWEI, 2 * GWEI)
    fees = compute_replacement_fees(previous, market=Eip1559Fees(30 * GWEI, 1 * GWEI), policy=policy)
    assert fees == Eip1559Fees(45 * GWEI, 2_250_000_000)


def test_replacement_follows_the_market_when_it_moved_further() -> None:
    policy = FeePolicy(max_fee_per_gas_cap_wei=1_000 * GWEI)
    fees = compute_replacement_fees(Eip1559Fees(40 * GWEI, 2 * GWEI), Eip1559Fees(200 * GWEI, 5 * GWEI), policy)
    assert fees == Eip1559Fees(200 * GWEI, 5 * GWEI)


def test_replacement_above_the_cap_is_refused() -> None:
    policy = FeePolicy(max_fee_per_gas_cap_wei=44 * GWEI)
    with pytest.raises(FeeCapExceeded):
        compute_replacement_fees(Eip1559Fees(40 * GWEI, 2 * GWEI), Eip1559Fees(30 * GWEI, 1 * GWEI), policy)


@pytest.mark.parametrize("bad", [
    dict(max_fee_per_gas_cap_wei=0),
    dict(max_fee_per_gas_cap_wei=1, replacement_bump_bps=1_000),
    dict(max_fee_per_gas_cap_wei=1, reward_percentile=101),
    dict(max_fee_per_gas_cap_wei=1, base_fee_multiplier_pct=99),
    dict(max_fee_per_gas_cap_wei=1, history_blocks=0),
])
def test_fee_policy_rejects_values_nodes_or_math_cannot_use(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FeePolicy(**bad)


class FakeRpc:
    """Just what fetch_l1_data_fee_wei uses."""

    def __init__(self, code: bytes, fee_wei: int) -> None:
        self.code = code
        self.fee_wei = fee_wei
        self.calls: list[tuple[str, bytes]] = []

    def get_code(self, address: str) -> bytes:
        assert address == GAS_PRICE_ORACLE
        return self.code

    def eth_call(self, to: str, data: bytes) -> bytes:
        self.calls.append((to, data))
        return encode(["uint256"], [self.fee_wei])


def test_l1_data_fee_is_zero_without_the_oracle_and_asked_for_with_it() -> None:
    signed = bytes.fromhex("02f86c827a69") + b"\x11" * 100
    without = FakeRpc(b"", 0)
    assert fetch_l1_data_fee_wei(without, signed) == 0  # type: ignore[arg-type]
    assert without.calls == []
    # With code there: getL1Fee(bytes) (selector 0x49948e0e) is called with the signed bytes
    with_oracle = FakeRpc(b"\x60\x00", 123_456_789)
    assert fetch_l1_data_fee_wei(with_oracle, signed) == 123_456_789  # type: ignore[arg-type]
    ((to, data),) = with_oracle.calls
    assert to == GAS_PRICE_ORACLE
    assert data[:4] == bytes.fromhex("49948e0e")
    assert decode(["bytes"], data[4:]) == (signed,)
