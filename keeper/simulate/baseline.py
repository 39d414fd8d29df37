"""The baseline: a threshold bot of the common kind, paper-traded on the same snapshots; and the
loop every paper bot shares (`run_paper_bot`; the carry-only bot is keeper/simulate/carry.py).

Policy, per market, on one spot venue (Uniswap V3 by default), with a fixed size:
- flat: open when |spread| >= open_spread_bps (1%), short perp when the perp is rich, long perp
  when it is cheap. spread = (vAMM mid / spot mid - 1) x 10_000, what a trade would start from;
- open: close when the spread, seen from the position (positive = still in its favour), is at or
  below close_spread_bps (-0.1%: it crossed through zero);
- whatever is open at the last snapshot is closed there ("end of run");
- it obeys the keeper's limits (paper.AccountLimits: notional caps, collateral, the executor's spot
  inventory and USDC): its size is cut to what they allow at each open.
Fees, price impact, funding and gas are ignored in its decisions, but its PnL counts all of them
honestly: every trade is an exact quote on the snapshot (keeper/simulate/paper.py), funding
accrues while it holds, gas is charged per trade. The trades are paper trades: they never reach
the chain and do not move later snapshots. A trade that cannot be quoted (the pool cannot fill
it, Perp would refuse it) is not made, and the bot tries again at the next snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keeper.pnl_split import ZERO_PNL, PnlSplit, TradeFees, compute_pnl_split, sum_pnl
from keeper.simulate.paper import (
    UNLIMITED,
    AccountLimits,
    PaperFill,
    PathPoint,
    Quoter,
    compute_funding_paid_x18,
    compute_paper_gas_x18,
    directed_spread_bps,
    fixed_size_x18,
)
from keeper.types import Direction


@dataclass(frozen=True)
class ThresholdPolicy:
    open_spread_bps: float = 100.0
    close_spread_bps: float = -10.0
    notional_usd: float = 25_000.0
    spot_venue: str = "uniswap_v3"

    def __post_init__(self) -> None:
        if self.open_spread_bps <= 0 or self.close_spread_bps >= self.open_spread_bps:
            raise ValueError(f"need open_spread_bps > 0 and close_spread_bps < open_spread_bps "
                             f"(got {self.open_spread_bps}, {self.close_spread_bps})")
        if self.notional_usd <= 0:
            raise ValueError(f"notional_usd must be > 0, got {self.notional_usd}")


@dataclass(frozen=True)
class PaperTrade:
    """One paper round trip: entry and exit point indices, and its PnL split."""

    market: str
    direction: Direction
    spot_venue: str
    entry_index: int
    exit_index: int
    entry_block: int
    exit_block: int
    perp_base_x18: int  # signed, as held
    entry_spread_bps: float | None
    exit_spread_bps: float | None
    exit_reason: str
    split: PnlSplit

    def as_json(self) -> dict[str, object]:
        return {"market": self.market, "direction": self.direction.value, "spot_venue": self.spot_venue,
                "entry_index": self.entry_index, "exit_index": self.exit_index, "entry_block": self.entry_block,
                "exit_block": self.exit_block, "perp_base_x18": str(self.perp_base_x18),
                "entry_spread_bps": self.entry_spread_bps, "exit_spread_bps": self.exit_spread_bps,
                "exit_reason": self.exit_reason, "pnl": self.split.to_json_dict()}


@dataclass(frozen=True)
class PaperResult:
    trades: tuple[PaperTrade, ...]
    equity_x18: tuple[int, ...]  # per point: realized + open marked by an exact close quote
    position_base_x18: Mapping[str, tuple[int, ...]]  # per market, per point (after that point's decision)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> PnlSplit:
        return sum_pnl(t.split for t in self.trades) if self.trades else ZERO_PNL


NO_FILL = PaperFill(0, 0, 0, TradeFees())


@dataclass
class _Open:
    direction: Direction
    entry: int
    fill: PaperFill
    funding_paid_x18: int = 0
    gas_x18: int = 0


def _round_trip(open_: _Open, close: PaperFill, close_gas_x18: int) -> PnlSplit:
    return compute_pnl_split([open_.fill.net_quote_x18, close.net_quote_x18], [open_.fill.fees, close.fees],
                             open_.funding_paid_x18, [open_.gas_x18, close_gas_x18])


class PaperRules(Protocol):
    """A paper bot's decisions at one point: which side to open (None: stay flat), and why to
    close what it holds (None: keep it)."""

    spot_venue: str

    def open_side(self, point: PathPoint) -> Direction | None: ...

    def close_reason(self, point: PathPoint, held: Direction) -> str | None: ...


class ThresholdRules:
    def __init__(self, policy: ThresholdPolicy) -> None:
        self.policy = policy
        self.spot_venue = policy.spot_venue

    def open_side(self, point: PathPoint) -> Direction | None:
        spread = point.spread_bps.get(self.spot_venue)
        if spread is None or abs(spread) < self.policy.open_spread_bps:
            return None
        return Direction.SHORT_PERP if spread > 0 else Direction.LONG_PERP

    def close_reason(self, point: PathPoint, held: Direction) -> str | None:
        spread = point.spread_bps.get(self.spot_venue)
        if spread is not None and directed_spread_bps(spread, held) <= self.policy.close_spread_bps:
            return "spread crossed the close threshold"
        return None


def run_threshold_baseline(points: Mapping[str, Sequence[PathPoint]], quoter: Quoter,
                           policy: ThresholdPolicy = ThresholdPolicy(), limits: AccountLimits = UNLIMITED) -> PaperResult:
    """Paper-trade the threshold policy over every market's points, within `limits`."""
    return run_paper_bot(points, quoter, ThresholdRules(policy), policy.notional_usd, limits)


def run_paper_bot(points: Mapping[str, Sequence[PathPoint]], quoter: Quoter, rules: PaperRules, notional_usd: float,
                  limits: AccountLimits = UNLIMITED) -> PaperResult:
    """Paper-trade `rules` over every market's points (all markets have the same points): a fixed
    size (notional_usd at the first point's index), cut to what `limits` allow at each open; an
    open whose size the limits cut to nothing is not made."""
    trades: list[PaperTrade] = []
    notes: list[str] = []
    n = len(next(iter(points.values()))) if points else 0
    equity = [0] * n
    positions: dict[str, tuple[int, ...]] = {}
    venue = rules.spot_venue
    for market, path in sorted(points.items()):
        size_x18 = fixed_size_x18(notional_usd, path[0].index_price_x18) if path else 0
        held: _Open | None = None
        realized_x18 = 0
        sizes = []
        for k, point in enumerate(path):
            if held is not None and k > 0:
                prev = path[k - 1]
                held.funding_paid_x18 += compute_funding_paid_x18(held.fill.perp_base_x18, prev.funding_premium_x18,
                                                                  point.timestamp_s - prev.timestamp_s)
            spread = point.spread_bps.get(venue)
            last = k == n - 1
            side = rules.open_side(point) if held is None and not last else None
            if side is not None:
                size = limits.capped_size_x18(point, market, side, venue, size_x18)
                fill = quoter.open(k, market, side, venue, size) if size > 0 else "the limits allow no size"
                if isinstance(fill, str):
                    notes.append(f"{market} block {point.block}: open {side.value} not quotable: {fill}")
                else:
                    held = _Open(side, k, fill, gas_x18=compute_paper_gas_x18(point, "open"))
            elif held is not None:
                reason = rules.close_reason(point, held.direction)
                if reason is not None or last:
                    fill = quoter.close(k, market, held.direction, venue, held.fill.perp_base_x18, held.fill.spot_raw)
                    if isinstance(fill, str):
                        notes.append(f"{market} block {point.block}: close not quotable: {fill}")
                    else:
                        split = _round_trip(held, fill, compute_paper_gas_x18(point, "close"))
                        entry_point = path[held.entry]
                        trades.append(PaperTrade(
                            market, held.direction, venue, held.entry, k, entry_point.block, point.block,
                            held.fill.perp_base_x18, entry_point.spread_bps.get(venue), spread,
                            reason or "end of run", split))
                        realized_x18 += split.total_x18
                        held = None
            # mark to market: realized + the open position closed now, by an exact quote
            marked = realized_x18
            if held is not None:
                fill = quoter.close(k, market, held.direction, venue, held.fill.perp_base_x18, held.fill.spot_raw)
                if isinstance(fill, str):  # unquotable now: the open leg alone (its cost so far)
                    marked += _round_trip(held, NO_FILL, 0).total_x18
                else:
                    marked += _round_trip(held, fill, compute_paper_gas_x18(point, "close")).total_x18
            equity[k] += marked
            sizes.append(held.fill.perp_base_x18 if held is not None else 0)
        if held is not None:
            notes.append(f"{market}: position still open at the end (its close could not be quoted); not counted")
        positions[market] = tuple(sizes)
    return PaperResult(tuple(trades), tuple(equity), positions, tuple(notes))
