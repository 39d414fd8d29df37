"""The tip the keeper predicts (keeper/gas_price.py) is the sender's fee policy's tip."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from keeper.chain.fees import FeePolicy
from keeper.chain.rpc import Rider
from keeper.config import KeeperConfig
from keeper.engine import Engine
from keeper.errors import RpcError
from keeper.gas_price import PRIORITY_FEE_WEI, TipSource, build_fee_policy
from keeper.metrics import KeeperMetrics
from keeper.plan import Planner

from .test_risk import snapshot

GWEI = 10**9


class FeeRpc:
    """Answers eth_feeHistory with the given rewards (ratio 0: an empty block) and blocks' base fees."""

    def __init__(self, rewards_wei: list[int], ratios: list[float], base_fee_wei: int = GWEI) -> None:
        self.rewards_wei, self.ratios, self.base_fee_wei = rewards_wei, ratios, base_fee_wei
        self.calls: list[str] = []
        self.riders: list[Rider] = []
        self.head = 1  # the newest block eth_feeHistory covers
        self.fail = False

    def ride(self, method: str, params: list[Any]) -> Rider:
        self.riders.append(Rider(method, params))
        return self.riders[-1]

    def read(self) -> None:
        """A round trip of the tick's own (the snapshot's): the riders go with it."""
        for rider in self.riders:
            rider.answer({"result": self.call(rider.method, rider.params)} if not self.fail else
                         {"error": {"code": -32005, "message": "rate limited"}})
        self.riders.clear()

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.calls.append(method)
        if self.fail:
            raise RpcError("eth_feeHistory", -32005, "rate limited")
        if method == "eth_feeHistory":
            return {"oldestBlock": hex(self.head - len(self.ratios) + 1),
                    "baseFeePerGas": [hex(self.base_fee_wei)] * (len(self.ratios) + 1),
                    "gasUsedRatio": self.ratios, "reward": [[hex(r)] for r in self.rewards_wei]}
        if method == "eth_getBlockByNumber":
            return {"number": params[0] if params else "0x0", "baseFeePerGas": hex(self.base_fee_wei)}
        raise AssertionError(method)

    def get_code(self, address: str, block: str = "latest") -> bytes:
        return b""


POLICY = FeePolicy(max_fee_per_gas_cap_wei=100 * GWEI)


def test_given_fee_history_then_the_tip_is_the_policys_median_of_non_empty_blocks() -> None:
    rpc = FeeRpc([2 * GWEI, GWEI, 0, 3 * GWEI], [0.5, 0.4, 0.0, 0.6])  # the empty block's 0 is not counted
    assert TipSource(rpc, POLICY).tip_wei(10) == 2 * GWEI  # type: ignore[arg-type]


def test_given_only_empty_blocks_then_the_tip_is_the_policys_minimum() -> None:
    rpc = FeeRpc([0, 0], [0.0, 0.0])
    assert TipSource(rpc, POLICY).tip_wei(10) == POLICY.min_priority_fee_wei  # type: ignore[arg-type]


def test_given_no_rpc_then_the_tip_is_the_constant() -> None:
    assert TipSource(None, None).tip_wei(10) == PRIORITY_FEE_WEI


def test_the_fee_history_is_read_once_per_refresh_blocks_or_once_in_a_block_when_fresh() -> None:
    rpc = FeeRpc([GWEI], [0.5])
    tips = TipSource(rpc, POLICY, refresh_blocks=10)  # type: ignore[arg-type]
    for block in range(100, 110):
        tips.tip_wei(block)
    assert rpc.calls.count("eth_feeHistory") == 1
    tips.tip_wei(110)
    assert rpc.calls.count("eth_feeHistory") == 2
    tips.tip_wei(111, fresh=True)
    tips.tip_wei(111, fresh=True)
    assert rpc.calls.count("eth_feeHistory") == 3


def test_the_fee_history_rides_with_the_ticks_reads_and_costs_no_round_trip_of_its_own() -> None:
    rpc = FeeRpc([GWEI], [0.5])
    tips = TipSource(rpc, POLICY, refresh_blocks=10)  # type: ignore[arg-type]
    direct = 0
    for block in range(100, 130):
        rpc.head = block
        rpc.read()  # the tick's snapshot, with the reading queued by the tick before
        calls = len(rpc.calls)
        rpc.rewards_wei = [block * GWEI]  # the chain's tips move every block
        tips.tip_wei(block)
        expected_wei = (block - 1) * GWEI if block > 100 else 100 * GWEI  # what rode in / the first reading
        assert tips.tip_wei(block, fresh=True) == expected_wei
        direct += len(rpc.calls) - calls
    assert direct == 1  # the first tick only: nothing had ridden yet
    assert rpc.calls.count("eth_feeHistory") == 30 and tips.source == "fee_history"


def test_given_a_riding_reading_that_failed_then_the_tip_is_read_when_due() -> None:
    rpc = FeeRpc([GWEI], [0.5])
    tips = TipSource(rpc, POLICY, refresh_blocks=2)  # type: ignore[arg-type]
    assert tips.tip_wei(1) == GWEI
    rpc.fail = True
    rpc.read()
    rpc.fail = False
    rpc.head, rpc.rewards_wei = 3, [3 * GWEI]
    assert tips.tip_wei(3) == 3 * GWEI  # the rider's error is logged; due, so read directly


def test_given_a_failed_refresh_then_the_last_tip_stays_and_without_one_it_raises() -> None:
    rpc = FeeRpc([GWEI], [0.5])
    tips = TipSource(rpc, POLICY, refresh_blocks=1)  # type: ignore[arg-type]
    assert tips.tip_wei(1) == GWEI
    rpc.fail = True
    assert tips.tip_wei(2) == GWEI
    with pytest.raises(RpcError):
        TipSource(rpc, POLICY).tip_wei(1)  # type: ignore[arg-type]


def test_an_included_receipt_teaches_the_tip_it_paid() -> None:
    rpc = FeeRpc([GWEI], [0.5], base_fee_wei=7 * GWEI)
    tips = TipSource(rpc, POLICY)  # type: ignore[arg-type]
    assert tips.learn(7 * GWEI + 3 * GWEI // 2, 42) == 3 * GWEI // 2
    assert tips.tip_wei(43) == 3 * GWEI // 2 and tips.source == "receipt"
    assert "eth_feeHistory" not in rpc.calls  # learnt at block 42: no reading before block 52


def test_the_cost_model_prices_gas_at_the_base_fee_plus_the_policys_tip() -> None:
    config = KeeperConfig()
    rpc = FeeRpc([GWEI, GWEI, 2 * GWEI], [0.5, 0.5, 0.5])
    planner = Planner(config, "0x" + "11" * 20, rpc=rpc)  # type: ignore[arg-type]
    assert planner.tips.policy == build_fee_policy(config)
    engine = Engine(config=config, collector=SimpleNamespace(sources=SimpleNamespace(markets=[])), strategies=[],
                    planner=planner, executor=SimpleNamespace(mode="dry_run"), journal=None,
                    metrics=KeeperMetrics(), kill_switch=lambda: False)
    snap = snapshot()
    costs = engine.strategy_context(snap, [], {}).costs
    assert costs.gas_price_wei == snap.base_fee_wei + GWEI  # not + 0.001 gwei
    assert costs.tx_cost_usd(1_000_000) == pytest.approx(1_000_000 * 2 * GWEI / 10**18 * 3000)


def test_each_market_is_costed_with_the_gas_its_own_trades_used_else_the_largest_over_markets() -> None:
    config = KeeperConfig()
    planner = Planner(config, "0x" + "11" * 20, rpc=FeeRpc([GWEI], [0.5]))  # type: ignore[arg-type]
    engine = Engine(config=config, collector=SimpleNamespace(sources=SimpleNamespace(markets=[])), strategies=[],
                    planner=planner, executor=SimpleNamespace(mode="dry_run"), journal=None,
                    metrics=KeeperMetrics(), kill_switch=lambda: False)
    engine.gas_used.update({("ETH", "open"): 1_550_000, ("ETH", "close"): 750_000, ("BTC", "open"): 1_090_000,
                            ("BTC", "close"): 1_190_000})
    ctx = engine.strategy_context(snapshot(), [], {})
    assert (ctx.costs.gas_units_open, ctx.costs.gas_units_close) == (1_550_000, 1_190_000)  # the largest seen
    assert (ctx.costs_for("ETH").gas_units_open, ctx.costs_for("ETH").gas_units_close) == (1_550_000, 750_000)
    assert (ctx.costs_for("BTC").gas_units_open, ctx.costs_for("BTC").gas_units_close) == (1_090_000, 1_190_000)
    assert ctx.costs_for("SOL") is ctx.costs  # no trade of its own yet
    assert ctx.costs_for("ETH").gas_price_wei == ctx.costs.gas_price_wei
    # the planner's gate prices the transaction it sends with the same units (Engine.gas_units_for)
    assert engine.gas_units_for("ETH")["gas_units_close"] == 750_000
    assert engine.gas_units_for("SOL") == {"gas_units_open": 1_550_000, "gas_units_close": 1_190_000}
    assert "gas_units_resize" not in engine.gas_units_for("SOL")  # never seen: the planner's typical units
    engine.gas_used.clear()
    engine.gas_used[("BTC", "open")] = 1_090_000  # one market's open only: its close is costed like its open
    ctx = engine.strategy_context(snapshot(), [], {})
    assert ctx.costs.gas_units_close == 1_090_000 and ctx.market_costs == {}
