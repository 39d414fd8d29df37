"""Re-hedge: when the books and the chain disagree, the chain wins, and a hedge that has drifted
past the tolerance is unwound to flat on both legs in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from keeper.devnet.activity import MarketActivity
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World
from keeper.runtime import Runtime
from tests.e2e.live_keeper import open_eth_on_a_premium_shock, start_live_keeper


@pytest.fixture()
def keeper_with_a_position(tmp_path: Path) -> Iterator[tuple[World, Runtime, MarketActivity]]:
    world, runtime, rpc = start_live_keeper(tmp_path, {"strategies": {"enabled": ["basis_convergence"]}})
    driver = open_eth_on_a_premium_shock(world, runtime, rpc)
    assert "ETH" in runtime.journal.open_positions(), "setup: the keeper should have opened ETH"
    # Only the strategy that opened it manages it (funding_carry may not close it, nor the reverse).
    assert runtime.journal.position_owners() == {"ETH": "basis_convergence"}
    yield world, runtime, driver
    runtime.close()
    world.stop()


def chain_perp(world: World, runtime: Runtime) -> int:
    return DevSender(runtime.rpc).read(world.manifest.contracts["AccountBalance"], codec("AccountBalance"),
                                       "getTakerPositionSize", runtime.executor_address,
                                       world.manifest.market("ETH").base_token)


def set_journal(runtime: Runtime, **values: int) -> None:
    with sqlite3.connect(runtime.journal.path) as db:
        for column, value in values.items():
            db.execute(f"UPDATE positions SET {column} = ? WHERE status = 'open' AND market = 'ETH'", (str(value),))


def test_books_that_disagree_with_the_chain_take_the_chain_size(keeper_with_a_position) -> None:  # type: ignore[no-untyped-def]
    world, runtime, driver = keeper_with_a_position
    held = runtime.journal.open_positions()["ETH"]
    set_journal(runtime, perp_base_x18=held.perp_base_x18 // 2)  # the books lost half the perp
    driver.step()
    runtime.engine.tick()
    fixed = runtime.journal.open_positions()["ETH"]
    assert fixed.perp_base_x18 == chain_perp(world, runtime) == held.perp_base_x18
    assert any(d.field == "perp_base_x18" for d in runtime.journal.reconcile_log())


def test_a_hedge_drifted_past_tolerance_is_unwound_flat(keeper_with_a_position) -> None:  # type: ignore[no-untyped-def]
    world, runtime, driver = keeper_with_a_position
    held = runtime.journal.open_positions()["ETH"]
    set_journal(runtime, spot_raw=held.spot_raw * 9 // 10)  # 10% of the spot leg gone from the books
    driver.step()
    report = runtime.engine.tick()
    assert report is not None
    closes = [o for o in report.outcomes if o.plan.intent.kind == "close"]
    assert closes and closes[0].status == "included" and "re-hedge" in closes[0].plan.intent.reason
    assert closes[0].fills == closes[0].plan.predicted
    assert chain_perp(world, runtime) == 0 and runtime.journal.open_positions() == {}
