"""A long perp's unwind buys its spot back with the executor's USDC. When that USDC is gone (here
the admin withdrew it), the close is not sent to revert: it is skipped with the shortfall, and an
error-level `unwind.wallet_short` names it; once USDC is back, the same unwind goes through."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from keeper.devnet.txs import DevSender, codec
from keeper.types import Direction
from tests.e2e.live_keeper import open_eth_on_a_premium_shock, start_live_keeper


def test_an_unwind_the_wallet_cannot_pay_is_an_alarm_and_goes_through_once_usdc_is_back(tmp_path: Path) -> None:
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH"]}, "strategies": {"enabled": ["basis_convergence"]}})
    try:
        driver = open_eth_on_a_premium_shock(world, runtime, rpc, steps=45, premium=-0.03)
        held = runtime.journal.open_positions()["ETH"]
        assert held.direction is Direction.LONG_PERP and held.spot_raw < 0  # the spot was sold
        # Given the executor's USDC withdrawn by its admin, and the kill switch pulled (unwind)
        executor, usdc = runtime.executor_address, world.manifest.contracts["USDC"]
        sender = DevSender(rpc)
        admin, treasury = (sender.read(executor, codec("BasisExecutor"), name) for name in ("admin", "treasury"))
        balance = sender.read(usdc, codec("MintableERC20"), "balanceOf", executor)
        sender.call_fn(admin, executor, codec("BasisExecutor"), "withdrawToken", usdc, balance)
        runtime.kill_flag.set()
        nonce = rpc.call("eth_getTransactionCount", [runtime.owner, "latest"])
        # When the keeper ticks
        driver.step()
        with capture_logs() as logs:
            report = runtime.engine.tick()
        # Then nothing was sent, the position is held, and the skip and an error-level alarm name the shortfall
        assert report is not None and not report.outcomes
        assert any("executor USDC 0.00 <" in s and "close needs" in s for s in report.skips), report.skips
        alarms = [e for e in logs if e["event"] == "unwind.wallet_short"]
        assert len(alarms) == 1 and alarms[0]["log_level"] == "error" and alarms[0]["market"] == "ETH"
        assert alarms[0]["wallet_usdc_raw"] == 0 and alarms[0]["shortfall_usdc_raw"] == alarms[0]["needed_usdc_raw"] > 0
        assert [e["sent"] for e in logs if e["event"] == "tick"] == [0]
        assert rpc.call("eth_getTransactionCount", [runtime.owner, "latest"]) == nonce
        assert runtime.journal.open_positions()["ETH"].perp_base_x18 == held.perp_base_x18
        # When the treasury sends the USDC back, the same unwind is included
        sender.call_fn(treasury, usdc, codec("MintableERC20"), "transfer", executor, balance)
        driver.step()
        with capture_logs() as logs:
            report = runtime.engine.tick()
        assert report is not None and [o.status for o in report.outcomes] == ["included"], report.skips
        assert [e["sent"] for e in logs if e["event"] == "tick"] == [1]
        assert "ETH" not in runtime.journal.open_positions()
    finally:
        runtime.close()
        world.stop()
