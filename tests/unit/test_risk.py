
from keeper.config import RiskConfig
from keeper.risk import GWEI, assess_risk
from keeper.signals import Signal
from keeper.types import (
    Direction,
    MarketSnapshot,
    MarketView,
    OracleState,
    PerpAccountState,
    Position,
    Unavailable,
    V2PairState,
)

from .test_signals import perp


def snapshot(oracle_updated_at: int = 990, account: PerpAccountState | None = None) -> MarketSnapshot:
    view = MarketView("ETH", 18, True, perp(3000, 3000, 3000), V2PairState("0x" + "22" * 20, 10**21, 3 * 10**9),
                      Unavailable("none"), OracleState(3000 * 10**8, 8, oracle_updated_at))
    return MarketSnapshot(100, 1000, 10**9, {"ETH": view}, account, 2)


def signal(index: float = 3000.0, spot: float = 3000.0) -> Signal:
    return Signal("ETH", "uniswap_v2", 100, spot, 3000.0, index, 0.0, 0.0, 0.0, 0.0, 0.0, None)


def position() -> Position:
    return Position("ETH", Direction.SHORT_PERP, "uniswap_v2", -10**18, 10**18, 90, 900, 10.0, 0)


def assess(snap: MarketSnapshot, signals=None, positions=None, **kw):  # type: ignore[no-untyped-def]
    args = dict(head_block=100, gas_price_wei=GWEI, realized_today_usd=0.0, kill_switch=False)
    args.update(kw)
    return assess_risk(snap, signals or [signal()], positions or {}, kw.pop("risk", RiskConfig()), **args)


def test_given_a_healthy_market_then_opening_is_allowed() -> None:
    assert assess(snapshot()).can_open("ETH") is None


def test_given_a_stale_oracle_then_the_market_is_blocked_with_its_age() -> None:
    view = assess(snapshot(oracle_updated_at=1000 - 4000))
    assert "4000 s old" in (view.can_open("ETH") or "")


def test_given_index_far_from_spot_then_the_market_is_blocked() -> None:
    view = assess(snapshot(), signals=[signal(index=3000.0, spot=3100.0)])
    assert "bps apart" in (view.can_open("ETH") or "")


def test_given_gas_above_cap_or_daily_loss_or_old_snapshot_then_no_new_positions() -> None:
    assert "gas price" in (assess(snapshot(), gas_price_wei=60 * GWEI).can_open("ETH") or "")
    assert "daily loss" in (assess(snapshot(), realized_today_usd=-2500.0).can_open("ETH") or "")
    assert "blocks old" in (assess(snapshot(), head_block=110).can_open("ETH") or "")


def test_given_low_margin_with_a_position_then_unwind_everything() -> None:
    account = PerpAccountState("0x" + "33" * 20, 10 * 10**18, 0, 100 * 10**18, 0, {})
    view = assess(snapshot(account=account), positions={"ETH": position()})
    assert view.unwind_all and "margin ratio 0.1000" in view.unwind_all


def test_given_the_kill_switch_then_its_action_decides() -> None:
    assert assess(snapshot(), kill_switch=True).unwind_all == "kill switch: unwind everything"
    frozen = assess_risk(snapshot(), [signal()], {}, RiskConfig().model_copy(update={"kill_switch_action": "freeze"}),
                         head_block=100, gas_price_wei=GWEI, realized_today_usd=0.0, kill_switch=True)
    assert frozen.freeze and frozen.can_open("ETH") and frozen.frozen_margin is None


def test_given_freeze_with_margin_below_the_guard_then_nothing_is_sent_but_the_alarm_names_it() -> None:
    account = PerpAccountState("0x" + "33" * 20, 10 * 10**18, 0, 100 * 10**18, 0, {})
    frozen = assess_risk(snapshot(account=account), [signal()], {"ETH": position()},
                         RiskConfig().model_copy(update={"kill_switch_action": "freeze"}), head_block=100,
                         gas_price_wei=GWEI, realized_today_usd=0.0, kill_switch=True)
    assert frozen.freeze == "kill switch: freeze" and frozen.unwind_all is None  # freeze wins: no transaction
    assert frozen.frozen_margin and "margin ratio 0.1000 below guard" in frozen.frozen_margin


def test_given_an_oracle_outage_then_the_market_stays_blocked_for_one_twap_interval() -> None:
    from keeper.risk import OracleRecovery

    recovery = OracleRecovery(max_oracle_age_s=1800)
    stale = snapshot(oracle_updated_at=1000 - 4000)  # 4000 s old at t=1000
    recovery.observe(stale)
    fresh = snapshot(oracle_updated_at=1000)
    view = assess_risk(fresh, [signal()], {}, RiskConfig(), head_block=100, gas_price_wei=GWEI,
                       realized_today_usd=0.0, kill_switch=False, settling_until_s=recovery.observe(fresh))
    assert "recovered from an outage" in (view.can_open("ETH") or "")  # until t = 1000 + 900
    later = MarketSnapshot(101, 1000 + 901, 10**9, fresh.markets, None, 2)
    view = assess_risk(later, [signal()], {}, RiskConfig(), head_block=101, gas_price_wei=GWEI,
                       realized_today_usd=0.0, kill_switch=False, settling_until_s=recovery.observe(later))
    assert view.can_open("ETH") is None
