"""On the devnet, the gas price a trade is planned at is the one the sender pays."""

from __future__ import annotations

from eth_account import Account

from keeper.gas_price import PRIORITY_FEE_WEI

from .test_execution_pipeline import intent, live  # noqa: F401 - the fixture

GWEI = 10**9


def test_the_planned_gas_price_of_a_trade_is_the_one_it_pays(live) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    devnet, _, live_executor, collector, planner, _ = live
    other = Account.create().address
    devnet.rpc.call("anvil_setBalance", [other, hex(10**18)])
    devnet.rpc.call("anvil_impersonateAccount", [other])
    for _ in range(12):  # the chain's recent blocks tip 2 gwei, 2,000x the old constant
        tx_hash = devnet.rpc.call("eth_sendTransaction", [{"from": other, "to": other, "value": "0x0",
                                                           "gas": hex(21_000), "maxPriorityFeePerGas": hex(2 * GWEI),
                                                           "maxFeePerGas": hex(100 * GWEI)}])
        if devnet.rpc.call("eth_getTransactionReceipt", [tx_hash]) is None:
            devnet.rpc.call("evm_mine")
        assert devnet.rpc.call("eth_getTransactionReceipt", [tx_hash]) is not None
    devnet.rpc.call("anvil_stopImpersonatingAccount", [other])
    snap = collector.fetch_snapshot()
    plan = planner.plan(intent("open", snap.block_number), snap, None)
    tip = plan.gas_price_wei - snap.base_fee_wei
    assert tip == 2 * GWEI != PRIORITY_FEE_WEI
    assert plan.gas_cost_wei == plan.gas_limit * plan.gas_price_wei + planner.last_l1_fee_wei
    opened = live_executor.execute(plan)
    assert opened.status == "included", opened.detail
    block = devnet.rpc.call("eth_getBlockByNumber", [hex(opened.block_number), False])
    base_paid = int(block["baseFeePerGas"], 16)
    assert opened.effective_gas_price_wei - base_paid == tip  # the tip: exactly as predicted
    # the price: as predicted, up to the base fee's own move from the snapshot's block to the next (<= 12.5%)
    assert abs(opened.effective_gas_price_wei - plan.gas_price_wei) == abs(base_paid - snap.base_fee_wei)
    assert abs(base_paid - snap.base_fee_wei) <= snap.base_fee_wei // 8 + 1
    assert planner.tips.learn(opened.effective_gas_price_wei, opened.block_number) == tip


def test_the_gate_prices_a_trade_with_the_units_its_market_last_used(live) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _, _, _, collector, planner, _ = live
    snap = collector.fetch_snapshot()
    typical = planner.plan(intent("open", snap.block_number), snap, None)
    learned = planner.plan(intent("open", snap.block_number), snap, None, gas_units=1_550_000)
    assert typical.gas_limit != 1_550_000 and learned.gas_limit == 1_550_000
    assert learned.gas_cost_wei == 1_550_000 * learned.gas_price_wei + planner.last_l1_fee_wei
    assert learned.gas_cost_usd > typical.gas_cost_usd  # the receipt's units cost more than the table's here
