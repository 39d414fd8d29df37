"""The kill switch file naming a market unwinds that market's position alone, on chain, and no
position opens there afterwards; naming another market leaves it be."""

from __future__ import annotations

from pathlib import Path

from keeper.devnet.txs import codec
from keeper.margin_ladder import buyback_reserve_raw
from tests.e2e.live_keeper import open_eth_on_a_premium_shock, start_live_keeper


def test_a_kill_file_naming_a_market_unwinds_that_market_only(tmp_path: Path) -> None:
    kill = tmp_path / "KILL"
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH", "BTC"]}, "strategies": {"enabled": ["basis_convergence"]},
        "risk": {"kill_switch_file": kill}})
    try:
        driver = open_eth_on_a_premium_shock(world, runtime, rpc, steps=45)
        assert "ETH" in runtime.journal.open_positions()
        # Given the file naming BTC: the ETH position is not touched
        kill.write_text("BTC\n")
        driver.step()
        report = runtime.engine.tick()
        assert report is not None and not [o for o in report.outcomes if o.plan.intent.market == "ETH"]
        assert "ETH" in runtime.journal.open_positions()
        # When it names ETH, the ETH position is unwound by the risk stage, on chain
        kill.write_text("eth")
        driver.step()
        report = runtime.engine.tick()
        assert report is not None
        closes = [o for o in report.outcomes if o.plan.intent.kind == "close"]
        assert [(o.plan.intent.market, o.plan.intent.strategy, o.status) for o in closes] == [("ETH", "risk", "included")]
        assert closes[0].plan.intent.reason == "kill switch: unwind ETH"
        assert "ETH" not in runtime.journal.open_positions()
        base = world.manifest.market("ETH").base_token
        size = driver.tx.read(world.manifest.contracts["AccountBalance"], codec("AccountBalance"),
                              "getTakerPositionSize", runtime.executor_address, base)
        assert size == 0
        # and while the file names it, nothing opens there, however rich the perp
        for _ in range(3):
            driver.shock_premium("ETH", 0.03)
            driver.step()
            report = runtime.engine.tick()
            assert report is not None and not report.outcomes
            # the strategies do not even look at ETH (a cooldown would have them look and be refused); BTC trades on
            assert not any(s.startswith("basis_convergence ETH") for s in report.skips), report.skips
            assert any(s.startswith("basis_convergence BTC") for s in report.skips), report.skips
        assert "ETH" not in runtime.journal.open_positions()
    finally:
        runtime.close()
        world.stop()


def test_a_frozen_long_perp_still_holds_its_buy_back_usdc_and_its_notional(tmp_path: Path) -> None:
    kill = tmp_path / "KILL"
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH", "BTC"]}, "strategies": {"enabled": ["basis_convergence"]},
        "risk": {"kill_switch_file": kill, "kill_switch_action": "freeze"}})
    try:
        driver = open_eth_on_a_premium_shock(world, runtime, rpc, steps=45, premium=-0.03)
        held = runtime.journal.open_positions()["ETH"]
        assert held.spot_raw < 0  # a long perp: its close buys the spot back
        # Given ETH frozen by the kill switch (the strategies and the ladder do not trade it)
        kill.write_text("ETH")
        engine, contexts = runtime.engine, []
        build = engine.strategy_context
        engine.strategy_context = lambda *a, **k: contexts.append(build(*a, **k)) or contexts[-1]  # type: ignore[method-assign]
        driver.step()
        report = engine.tick()
        assert report is not None and not report.outcomes and contexts
        # Then BTC's limits still see ETH: its buy-back USDC is not spare, its notional counts
        snapshot = report.snapshot
        usdc = world.manifest.contracts["USDC"]
        wallet = snapshot.wallet_raw[usdc]
        reserve = buyback_reserve_raw(snapshot.markets, {"ETH": held})
        limits = contexts[-1].limits
        assert reserve and limits.usdc_wallet_usd == max(0, wallet - reserve) / 10**6
        assert limits.remaining_total_notional_usd < runtime.config.risk.max_notional_usd_total - 1_000
        assert "ETH" not in contexts[-1].positions  # while the strategies do not see it
    finally:
        runtime.close()
        world.stop()
