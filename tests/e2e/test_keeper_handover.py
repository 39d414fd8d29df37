"""One book: a position changes strategy without a round trip. basis_convergence opens on a premium
shock; as the tradable basis converges, funding (a TWAP premium) still pays the short side, so
funding_carry takes the position over in the books instead of a close and a reopen; the chain's
position is untouched by the hand-over and funding_carry closes it later."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from keeper.devnet.activity import ActivityConfig, MarketActivity
from tests.e2e.live_keeper import start_live_keeper


def test_a_converged_position_that_still_earns_funding_is_handed_over_not_closed(tmp_path: Path) -> None:
    world, runtime, rpc = start_live_keeper(tmp_path, {
        "markets": {"enabled": ["ETH"]}, "strategies": {"enabled": ["basis_convergence", "funding_carry"]}})
    try:
        driver = MarketActivity(rpc, world.manifest, ActivityConfig(seed=3, step_s=60, premium_vol_daily=0.002,
                                                                   index_vol_daily=0.01, premium_half_life_s=300))
        owners_seen: list[dict[str, str]] = []
        sent: list[tuple[str, str]] = []
        for step in range(70):
            if step == 28:
                driver.shock_premium("ETH", 0.03)
            driver.step()
            report = runtime.engine.tick()
            if report is not None:
                sent += [(o.plan.intent.kind, o.plan.intent.strategy) for o in report.outcomes if o.status == "included"]
            owners_seen.append(runtime.journal.position_owners())
            if owners_seen[-1].get("ETH") == "funding_carry":
                break
        # Then basis_convergence opened it, and funding_carry holds it now, with no trade in between
        assert sent[:1] == [("open", "basis_convergence")], sent
        assert {"ETH": "basis_convergence"} in owners_seen
        assert owners_seen[-1] == {"ETH": "funding_carry"}, owners_seen[-3:]
        assert sent == [("open", "basis_convergence")], sent  # no close, no reopen
        held = runtime.journal.open_positions()["ETH"]
        records = runtime.journal.positions()
        assert len(records) == 1 and records[0].status == "open"  # the same position, never closed
        with sqlite3.connect(runtime.journal.path) as db:  # the hand-over is a decision of its own, on that position
            handovers = db.execute("SELECT strategy, position_id, reason FROM decisions WHERE reason LIKE 'hand-over:%'").fetchall()
        assert [(h[0], h[1]) for h in handovers] == [("funding_carry", records[0].id)]
        assert "from basis_convergence" in handovers[0][2]
        assert held.perp_base_x18 < 0  # still the short perp the open made
    finally:
        runtime.close()
        world.stop()
