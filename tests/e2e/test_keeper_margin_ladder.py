"""The margin ladder on the chain: when the margin ratio falls under the top-up ratio (but above the
guard) the keeper moves the executor's idle USDC into Perp as collateral, carried by a small reduce
of the position, and logs the step with its numbers; nothing is unwound."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from keeper.devnet.txs import DevSender, codec
from tests.e2e.live_keeper import open_eth_on_a_premium_shock, start_live_keeper


def test_below_the_topup_ratio_the_keeper_tops_up_collateral_and_sheds_a_little(tmp_path: Path) -> None:
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH"]}, "strategies": {"enabled": ["basis_convergence"]}})
    try:
        driver = open_eth_on_a_premium_shock(world, runtime, rpc, steps=45)
        held = runtime.journal.open_positions()["ETH"]
        # Given the position open, and collateral withdrawn by the executor's admin until the margin ratio is
        # 0.20: under the top-up ratio (0.25), above the guard (0.15)
        account = runtime.engine.collector.fetch_snapshot().account
        assert account is not None and not isinstance(account, str)
        value, exposure = account.account_value_x18, account.total_abs_position_value_x18
        withdraw_raw = (value - exposure * 20 // 100) // 10**12
        executor, vault = runtime.executor_address, world.manifest.contracts["Vault"]
        sender = DevSender(rpc)
        admin = sender.read(executor, codec("BasisExecutor"), "admin")
        sender.call_fn(admin, executor, codec("BasisExecutor"), "withdrawCollateral", withdraw_raw)
        collateral_before = sender.read(vault, codec("Vault"), "getBalance", executor)
        # When the keeper ticks
        driver.step()
        with capture_logs() as logs:
            report = runtime.engine.tick()
        # Then the risk stage's resize was included: it deposited USDC into Perp and shed 0.1%
        assert report is not None
        resizes = [o for o in report.outcomes if o.plan.intent.kind == "resize"]
        assert resizes, report.skips
        ladder = resizes[0]
        intent = ladder.plan.intent
        assert ladder.status == "included" and intent.strategy == "risk" and intent.reason.startswith("margin ladder:")
        assert "< top-up 0.2500 (guard 0.1500)" in intent.reason and intent.deposit_usdc_raw > 0
        assert ladder.fills == ladder.plan.predicted
        collateral_after = sender.read(vault, codec("Vault"), "getBalance", executor)
        assert collateral_after - collateral_before >= intent.deposit_usdc_raw - 10**6  # fees and funding settled aside
        after = runtime.journal.open_positions()["ETH"]
        assert abs(after.perp_base_x18) == abs(held.perp_base_x18) + intent.perp_base_x18 > 0
        assert -intent.perp_base_x18 <= abs(held.perp_base_x18) // 1000
        ratio = runtime.engine.collector.fetch_snapshot().account.margin_ratio  # type: ignore[union-attr]
        assert ratio is not None and ratio >= 0.25
        # and the step was logged with its numbers: the ratio it acted on and the one the deposit gives
        [step] = [e for e in logs if e["event"] == "margin.ladder"]
        assert step["market"] == "ETH" and step["deposit_usdc_raw"] == intent.deposit_usdc_raw
        assert 0.19 < step["margin_ratio"] < 0.21 and step["ratio_after_deposit"] >= 0.25
        assert step["reduce_base_x18"] == -intent.perp_base_x18 > 0
    finally:
        runtime.close()
        world.stop()
