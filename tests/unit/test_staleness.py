"""Staleness checks that can fire: the snapshot against the node's head (risk at decision time),
the intent's expiry against the head (planning), the newest block against the wall clock."""

from __future__ import annotations

import pytest

from keeper.config import KeeperConfig, RiskConfig
from keeper.plan import IntentExpired, Planner
from keeper.risk import snapshot_stale_reason
from keeper.types import Direction, Intent, PnlEstimate

from keeper.risk import GWEI, assess_risk

from .test_risk import signal, snapshot


def assess(risk: RiskConfig, now_s: float):  # type: ignore[no-untyped-def]
    return assess_risk(snapshot(), [signal()], {}, risk, head_block=100, gas_price_wei=GWEI, realized_today_usd=0.0,
                       kill_switch=False, now_s=now_s)


def test_given_the_head_moved_past_the_snapshot_then_it_is_stale() -> None:
    assert snapshot_stale_reason(100, 103, 3) is None
    assert "4 blocks old" in (snapshot_stale_reason(100, 104, 3) or "")


def test_given_the_block_is_older_than_max_block_age_by_the_wall_clock_then_no_new_positions() -> None:
    risk = RiskConfig(max_block_age_s=60)
    # snapshot() is block 100 at t=1000
    assert assess(risk, 1_030.0).can_open("ETH") is None
    assert "by the wall clock" in (assess(risk, 1_090.0).can_open("ETH") or "")


def test_given_max_block_age_off_then_a_pinned_devnet_clock_does_not_fire() -> None:
    assert assess(RiskConfig(max_block_age_s=0), 10.0**10).can_open("ETH") is None


def test_given_the_head_passed_the_intents_last_block_then_planning_refuses_it() -> None:
    planner = Planner(KeeperConfig(), "0x" + "11" * 20, rpc=None)
    intent = Intent("s", "open", "ETH", Direction.SHORT_PERP, "uniswap_v2", 10**18, "why",
                    PnlEstimate(0, 0, 0, 0, 0, 0), created_block=100, valid_until_block=102)
    with pytest.raises(IntentExpired, match="head now 103"):
        planner.plan(intent, snapshot(), None, head_block=103)  # the snapshot itself is block 100
