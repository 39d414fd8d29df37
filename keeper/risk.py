"""Risk guards: pure checks on one snapshot, applied by the engine before and after strategies.

Outcomes, from mildest to strongest:
- a market is blocked for new positions (stale oracle, index/spot divergence, perp unavailable);
- no new positions anywhere (gas price above the cap, daily loss limit hit, stale snapshot, a block
  older than `max_block_age_s` by the wall clock);
- unwind everything (margin ratio below its guard, kill switch set to unwind); the kill switch
  naming markets (keeper/kill_switch.py) unwinds or freezes those markets only;
- freeze: no transactions at all (kill switch set to freeze), the margin guard's unwind included:
  a margin ratio below the guard while frozen is an alarm (`frozen_margin`), not a trade.
Closing is always allowed unless frozen: a guard never traps a position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from keeper.config import RiskConfig
from keeper.signals import Signal
from keeper.types import ONE_X18, Intent, MarketSnapshot, PerpAccountState, PerpMarketState, Position, Unavailable

GWEI = 10**9


@dataclass(frozen=True)
class RiskView:
    blocked_markets: Mapping[str, str] = field(default_factory=dict)  # market -> reason
    no_new_positions: str | None = None
    unwind_all: str | None = None
    freeze: str | None = None
    frozen_margin: str | None = None  # frozen while the margin ratio is below the guard: what the guard would do
    unwind_markets: Mapping[str, str] = field(default_factory=dict)  # the kill switch names them (unwind)
    frozen_markets: Mapping[str, str] = field(default_factory=dict)  # the kill switch names them (freeze)

    def can_open(self, market: str) -> str | None:
        """None when opening in `market` is allowed, else the reason it is not."""
        return (self.freeze or self.unwind_all or self.no_new_positions or self.unwind_markets.get(market)
                or self.frozen_markets.get(market) or self.blocked_markets.get(market))


def assess_risk(
    snapshot: MarketSnapshot,
    signals: list[Signal],
    positions: Mapping[str, Position],
    risk: RiskConfig,
    *,
    head_block: int,
    gas_price_wei: int,
    realized_today_usd: float,
    kill_switch: bool | frozenset[str],
    settling_until_s: Mapping[str, int] | None = None,
    now_s: float | None = None,
) -> RiskView:
    """`settling_until_s`: market -> timestamp until which its TWAP-based signals are still
    settling after an oracle outage (see OracleRecovery); no new positions there before it.
    `head_block`: the node's head when the risk is assessed; `now_s`: the wall clock (the block
    age check is off when None or `risk.max_block_age_s` is 0). `kill_switch`: keeper/kill_switch.py's
    state (True: every market; a set: those markets only)."""
    only = kill_switch if isinstance(kill_switch, frozenset) else frozenset()
    kill_all = bool(kill_switch) and not only
    account = snapshot.account
    below_guard = None
    if isinstance(account, PerpAccountState) and positions:
        ratio = account.margin_ratio
        if ratio is not None and ratio < risk.min_margin_ratio:
            below_guard = f"margin ratio {ratio:.4f} below guard {risk.min_margin_ratio}"
    if kill_all and risk.kill_switch_action == "freeze":
        return RiskView(freeze="kill switch: freeze", frozen_margin=below_guard and (
            f"{below_guard}: the guard would unwind everything, but the kill switch freezes every transaction"))
    unwind = "kill switch: unwind everything" if kill_all else below_guard
    by_market = {m: f"kill switch: {risk.kill_switch_action} {m}" for m in sorted(only)}
    unwind_markets = by_market if risk.kill_switch_action == "unwind" else {}
    frozen_markets = by_market if risk.kill_switch_action == "freeze" else {}
    frozen_held = sorted(m for m in frozen_markets if m in positions)
    frozen_margin = (f"{below_guard}: the guard unwinds every market but {', '.join(frozen_held)}, which the kill "
                     "switch freezes") if below_guard and frozen_held else None
    no_new = snapshot_stale_reason(snapshot.block_number, head_block, risk.max_snapshot_age_blocks)
    block_age_s = None if now_s is None or not risk.max_block_age_s else now_s - snapshot.block_timestamp
    if no_new:
        pass
    elif block_age_s is not None and block_age_s > risk.max_block_age_s:
        no_new = (f"block {snapshot.block_number} is {block_age_s:.0f} s old by the wall clock "
                  f"(max {risk.max_block_age_s}): the node is behind")
    elif gas_price_wei > risk.max_gas_price_gwei * GWEI:
        no_new = f"gas price {gas_price_wei / GWEI:.3f} gwei above cap {risk.max_gas_price_gwei}"
    elif realized_today_usd <= -risk.daily_loss_limit_usd:
        no_new = f"daily loss {realized_today_usd:.2f} USD hit the limit {risk.daily_loss_limit_usd}"
    blocked: dict[str, str] = {}
    for name, view in snapshot.markets.items():
        if isinstance(view.perp, Unavailable):
            blocked[name] = f"perp unavailable: {view.perp.reason}"
            continue
        if isinstance(view.oracle, Unavailable):
            blocked[name] = f"oracle unavailable: {view.oracle.reason}"
            continue
        age = view.oracle.age_s(snapshot.block_timestamp)
        if age > risk.max_oracle_age_s:
            blocked[name] = f"oracle answer {age} s old (max {risk.max_oracle_age_s})"
            continue
        until = (settling_until_s or {}).get(name)
        if until is not None and snapshot.block_timestamp < until:
            blocked[name] = (f"oracle recovered from an outage: TWAP-based funding and mark settle until "
                             f"t={until} ({until - snapshot.block_timestamp} s left)")
            continue
    for s in signals:
        divergence_bps = abs(s.index_price_usd / s.spot_price_usd - 1) * 1e4
        if s.market not in blocked and divergence_bps > risk.max_index_spot_divergence_bps:
            blocked[s.market] = (f"index {s.index_price_usd:.4f} vs {s.spot_venue} spot {s.spot_price_usd:.4f}: "
                                 f"{divergence_bps:.1f} bps apart (max {risk.max_index_spot_divergence_bps})")
    return RiskView(blocked_markets=blocked, no_new_positions=no_new, unwind_all=unwind, frozen_margin=frozen_margin,
                    unwind_markets=unwind_markets, frozen_markets=frozen_markets)


def snapshot_stale_reason(snapshot_block: int, head_block: int, max_age_blocks: int) -> str | None:
    """Why a snapshot is too old against the node's head, or None."""
    if head_block - snapshot_block > max_age_blocks:
        return (f"snapshot at block {snapshot_block} is {head_block - snapshot_block} blocks old, behind the head "
                f"{head_block} (max {max_age_blocks})")
    return None


class OracleRecovery:
    """Remembers oracle outages: after a market's oracle was stale, its index TWAP (and with it
    Perp's funding premium and mark) lags the fresh answer for one TWAP interval, so funding and
    basis read there are artefacts of the jump, not opportunities."""

    def __init__(self, max_oracle_age_s: int) -> None:
        self.max_oracle_age_s = max_oracle_age_s
        self.settling_until_s: dict[str, int] = {}

    def observe(self, snapshot: MarketSnapshot) -> Mapping[str, int]:
        for name, view in snapshot.markets.items():
            if isinstance(view.oracle, Unavailable) or not isinstance(view.perp, PerpMarketState):
                continue
            if view.oracle.age_s(snapshot.block_timestamp) > self.max_oracle_age_s:
                self.settling_until_s[name] = snapshot.block_timestamp + view.perp.twap_interval_s
        return self.settling_until_s


class ExitMark(NamedTuple):
    """The last exit in a market: when, which side, and the tradable basis it exited at (on the
    exit's spot venue; None when unknown)."""

    timestamp_s: int
    direction: str
    spot_venue: str | None = None
    basis_bps: float | None = None


def cooldown_reason(market: str, direction: str, last_exit: tuple[int, str] | ExitMark | None, now_s: int,
                    cooldown_s: int, *, moved_bps: float | None = None,
                    round_trip_bps: float | None = None) -> str | None:
    """Why a new `direction` position in `market` must wait after the last exit there, given as
    (timestamp, direction) (None: it may open). A close followed by a reopen of the same side soon
    after pays two transactions' fees and impact for nothing; the other side is a new trade on a
    new signal (a premium that flipped) and is not held back. Nor is a reopen on a NEW departure:
    when the basis has moved away from where the keeper exited, in the direction the new position
    earns from, by at least the new trade's round-trip cost (moved_bps >= round_trip_bps, both in
    bps of its notional), the move since the exit alone pays the round trip: not churn."""
    if last_exit is None or last_exit[1] != direction or now_s >= last_exit[0] + cooldown_s:
        return None
    if moved_bps is not None and round_trip_bps is not None and moved_bps >= round_trip_bps > 0:
        return None
    moved = "" if moved_bps is None or round_trip_bps is None else \
        f"; the basis moved {moved_bps:.1f} bps since the exit < round trip {round_trip_bps:.1f} bps"
    return (f"cooldown: exited {direction} {market} at t={last_exit[0]}, no new {direction} for {cooldown_s} s "
            f"({last_exit[0] + cooldown_s - now_s} s left{moved})")


def departure_since_exit(last_exit: tuple[int, str] | ExitMark | None, open_intent: Intent,
                         signals: Mapping[tuple[str, str], Signal]) -> tuple[float, float] | None:
    """(moved_bps, round_trip_bps) for a reopen after `last_exit`: how far the tradable basis on the
    exit's venue has moved since the exit in the direction the new position earns from (> 0: a new
    departure), and the open's expected round-trip cost (both legs' fees, impact and gas of open
    and close) in bps of its notional. None when the exit's basis or a price is unknown."""
    if not isinstance(last_exit, ExitMark) or last_exit.basis_bps is None or last_exit.spot_venue is None:
        return None
    now = signals.get((open_intent.market, last_exit.spot_venue))
    priced = signals.get((open_intent.market, open_intent.spot_venue))
    if now is None or priced is None or open_intent.perp_base_x18 <= 0 or priced.spot_price_usd <= 0:
        return None
    notional_usd = open_intent.perp_base_x18 / ONE_X18 * priced.spot_price_usd
    cost = open_intent.expected
    round_trip_bps = (cost.fees_usd + cost.price_impact_usd + cost.gas_usd) / notional_usd * 1e4
    moved_bps = (now.basis_bps - last_exit.basis_bps) * -open_intent.direction.perp_sign
    return moved_bps, round_trip_bps
