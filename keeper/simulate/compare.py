"""The keeper next to its yardsticks, on the run's recorded snapshots.

- the keeper's round trips, from the journal: the expected net PnL its plan logged at entry next
  to the realised one;
- the threshold bot (keeper/simulate/baseline.py) and the carry-only bot (keeper/simulate/carry.py),
  paper-traded within the keeper's limits;
- the hindsight optimum (keeper/simulate/optimum.py), with the keeper's trips and the bots' sizes
  among its candidates, and the check that it is >= the keeper and >= each bot: a violation is a
  defect of the yardstick, named with the trades involved.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from keeper.config import KeeperConfig
from keeper.journal import Journal
from keeper.logs import get_logger
from keeper.plan import RISK_STRATEGY
from keeper.pnl_split import PnlSplit
from keeper.simulate.baseline import PaperResult, ThresholdPolicy, run_threshold_baseline
from keeper.simulate.carry import CarryPolicy, run_carry_bot
from keeper.simulate.optimum import KnownTrip, OptimalTrip, OptimumResult, run_optimum
from keeper.simulate.pair_trips import with_pair_optimum
from keeper.simulate.paper import AccountLimits, PathPoint, Quoter
from keeper.types import MarketSnapshot, PerpAccountState

log = get_logger("keeper.simulate")
ONE_X18 = 10**18
USDC_DECIMALS = 6


def usd(amount_x18: int) -> float:
    return amount_x18 / ONE_X18


def account_limits(settings: KeeperConfig, snapshot: MarketSnapshot, spot_tokens: Mapping[str, str],
                   spot_decimals: Mapping[str, int], usdc: str | None) -> AccountLimits:
    """The keeper's limits (risk.*) on the account as it stood at `snapshot` (the run's first)."""
    risk = settings.risk
    caps = [risk.max_notional_usd_per_market, risk.max_notional_usd_total]
    account = snapshot.account
    if isinstance(account, PerpAccountState):
        caps.append(account.free_collateral_raw / 10**USDC_DECIMALS * risk.max_leverage)
        caps.append(account.account_value_x18 / ONE_X18 / risk.min_margin_ratio)
    wallet = snapshot.wallet_raw
    return AccountLimits(
        max_notional_usd=min(caps), max_total_notional_usd=risk.max_notional_usd_total,
        spot_inventory_raw={m: wallet.get(token, 0) for m, token in spot_tokens.items()} if wallet else None,
        spot_decimals=dict(spot_decimals),
        usdc_wallet_usd=wallet[usdc] / 10**USDC_DECIMALS if wallet and usdc in wallet else None)


def keeper_round_trips(journal: Journal, outcomes: Sequence[Mapping[str, Any]],
                       blocks: Sequence[int]) -> tuple[list[dict[str, Any]], list[KnownTrip]]:
    """The keeper's positions as round trips: for the report (expected at entry vs realised) and
    as the optimum's known trips (snapshot indices: the tick that sent the opening / closing trade)."""

    def tick_index(block: int, market: str, kind: str | None = None) -> int:
        for o in outcomes:
            if o["block"] == block and o["market"] == market and (kind is None or o["kind"] == kind):
                return int(o["index"])
        return max(0, bisect.bisect_left(blocks, block) - 1)  # the last snapshot before the block

    rows: list[dict[str, Any]] = []
    known: list[KnownTrip] = []
    for record in journal.positions():
        p = record.position
        opening = next((o for o in outcomes if o["block"] == p.entry_block and o["market"] == p.market
                        and o["status"] == "included"), None)
        closing = next((o for o in outcomes if record.closed_block is not None and o["block"] == record.closed_block
                        and o["market"] == p.market and o["kind"] == "close" and o["status"] == "included"), None)
        entry = tick_index(p.entry_block, p.market)
        closed = record.status == "closed" and record.closed_block is not None
        exit_ = tick_index(record.closed_block, p.market) if closed else len(blocks) - 1  # type: ignore[arg-type]
        exit_ = max(exit_, min(entry + 1, len(blocks) - 1))  # opened and closed by the same tick: one step
        base = int(opening["perp_base_x18"]) if opening and opening.get("perp_base_x18") else p.perp_base_x18
        rows.append({"market": p.market, "direction": p.direction.value, "spot_venue": p.spot_venue,
                     "entry_block": p.entry_block, "exit_block": record.closed_block, "entry_index": entry,
                     "exit_index": exit_, "perp_base": base / ONE_X18, "closed": closed,
                     "close_reason": record.close_reason,
                     "closed_by_strategy": closing.get("strategy") if closing else None,
                     "expected_net_usd": _expected_usd(outcomes, opening, record.closed_block),
                     "realised_net_usd": usd(record.pnl.total_x18), "pnl": record.pnl.to_json_dict(),
                     "entry_legs": opening.get("legs", []) if opening else [],
                     "exit_legs": closing.get("legs", []) if closing else []})
        if exit_ > entry:
            known.append(KnownTrip(p.market, entry, exit_, record.pnl, "keeper", base, p.direction, p.spot_venue))
    return rows, known


def _expected_usd(outcomes: Sequence[Mapping[str, Any]], opening: Mapping[str, Any] | None,
                  closed_block: int | None) -> float | None:
    """What the keeper expected of a round trip when it made it: the opening's expected net plus
    that of every strategy's add to the position (an included resize of the same market before the
    close; the margin ladder's reduces expect nothing)."""
    if opening is None or opening.get("expected_net_usd") is None:
        return None
    adds = [o["expected_net_usd"] for o in outcomes
            if o["market"] == opening["market"] and o["kind"] == "resize" and o["status"] == "included"
            and o["strategy"] != RISK_STRATEGY and o["block"] > opening["block"]
            and (closed_block is None or o["block"] < closed_block) and o.get("expected_net_usd") is not None]
    return float(opening["expected_net_usd"]) + sum(adds)


def _trade_names(result: PaperResult, count: int = 3) -> str:
    best = sorted(result.trades, key=lambda t: -t.split.total_x18)[:count]
    return "; ".join(f"{t.market} {t.direction.value} {t.spot_venue} blocks {t.entry_block}-{t.exit_block} "
                     f"${usd(t.split.total_x18):,.2f}" for t in best) or "no trade"


def dominance(optimum: PnlSplit, keeper: PnlSplit, keeper_trips: Sequence[Mapping[str, Any]],
              bots: Mapping[str, PaperResult]) -> list[str]:
    """A line per yardstick the optimum does not dominate, naming the trades (empty: it dominates)."""
    lines = []
    if optimum.total_x18 < keeper.total_x18:
        trips = "; ".join(f"{t['market']} {t['direction']} blocks {t['entry_block']}-{t['exit_block']} "
                          f"${t['realised_net_usd']:,.2f}" for t in keeper_trips) or "no round trip"
        lines.append(f"optimum ${usd(optimum.total_x18):,.2f} < keeper ${usd(keeper.total_x18):,.2f} "
                     f"(keeper trips: {trips})")
    for name, result in bots.items():
        if optimum.total_x18 < result.total.total_x18:
            lines.append(f"optimum ${usd(optimum.total_x18):,.2f} < {name} ${usd(result.total.total_x18):,.2f} "
                         f"({name} trades: {_trade_names(result)})")
    return lines


def compare(settings: KeeperConfig, points: Mapping[str, Sequence[PathPoint]], quoter: Quoter, limits: AccountLimits,
            keeper_pnl: PnlSplit, keeper_trips: Sequence[Mapping[str, Any]], known: Sequence[KnownTrip],
            pair_trips: Sequence[OptimalTrip] = ()) -> tuple[PaperResult, PaperResult, OptimumResult, dict[str, Any]]:
    """The bots, the optimum and the comparison block of the report. They trade the keeper's
    markets (`markets.enabled`), not every market the path holds."""
    points = {market: path for market, path in points.items() if market in settings.markets.enabled}
    notional = settings.risk.max_notional_usd_per_market
    baseline = run_threshold_baseline(points, quoter, ThresholdPolicy(notional_usd=notional), limits)
    carry = run_carry_bot(points, quoter, CarryPolicy(notional_usd=notional), limits)
    sizes: dict[str, list[int]] = {}
    for result in (baseline, carry):
        for t in result.trades:
            sizes.setdefault(t.market, []).append(abs(t.perp_base_x18))
    optimum = with_pair_optimum(run_optimum(points, quoter, limits, sizes, known), settings, points,  # pairs: pair_trips.py
                                getattr(quoter, "snapshots", None), limits, pair_trips, keeper_trips)
    violations = dominance(optimum.total, keeper_pnl, keeper_trips, {"threshold bot": baseline, "carry-only bot": carry})
    for line in violations:
        log.error("simulate.optimum_violation", defect=line)
    comparison = {
        "keeper_usd": usd(keeper_pnl.total_x18), "baseline_usd": usd(baseline.total.total_x18),
        "carry_only_usd": usd(carry.total.total_x18), "optimum_usd": usd(optimum.total.total_x18),
        "capture": (keeper_pnl.total_x18 / optimum.total.total_x18) if optimum.total.total_x18 > 0 else None,
        "keeper_beats_baseline": keeper_pnl.total_x18 > baseline.total.total_x18,
        "optimum_dominates": not violations, "violations": violations,
        "optimum_account_caps_relaxed": optimum.account_caps_relaxed,
    }
    return baseline, carry, optimum, comparison


def yardsticks_json(settings: KeeperConfig, caps: AccountLimits, baseline: PaperResult, carry: PaperResult,
                    optimum: OptimumResult) -> dict[str, Any]:
    """The report's paper_limits, baseline, carry_only and optimum entries (a simulation's and a
    backtest's alike): exact amounts as decimal strings, USD floats beside them."""

    def pnl(split: PnlSplit) -> dict[str, Any]:
        return split.to_json_dict() | {"funding_usd": usd(split.funding_x18), "convergence_usd": usd(split.convergence_x18),
                                       "fees_usd": usd(split.fees_x18), "gas_usd": usd(split.gas_x18),
                                       "total_usd": usd(split.total_x18)}

    notional = settings.risk.max_notional_usd_per_market
    return {
        "paper_limits": {"max_notional_usd": caps.max_notional_usd, "max_total_notional_usd": caps.max_total_notional_usd,
                         "spot_inventory_raw": {m: str(v) for m, v in (caps.spot_inventory_raw or {}).items()},
                         "usdc_wallet_usd": caps.usdc_wallet_usd},
        "baseline": {"paper": True, "policy": ThresholdPolicy(notional_usd=notional).__dict__, "pnl": pnl(baseline.total),
                     "trades": [t.as_json() for t in baseline.trades], "notes": list(baseline.notes[:50])},
        "carry_only": {"paper": True, "policy": CarryPolicy(notional_usd=notional).__dict__, "pnl": pnl(carry.total),
                       "trades": [t.as_json() for t in carry.trades], "notes": list(carry.notes[:50])},
        "optimum": {"paper": True, "pnl": pnl(optimum.total),
                    "by_market_usd": {m: usd(v) for m, v in optimum.by_market_x18.items()},
                    "candidates": optimum.candidates, "quotes": optimum.quotes,
                    "account_caps_relaxed": optimum.account_caps_relaxed, "notes": list(optimum.notes),
                    "trips": [t.as_json() for t in optimum.trips]},
    }
