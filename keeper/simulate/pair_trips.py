"""The keeper's pair trades in a simulation report, and in the hindsight optimum.

The pair desk's books (keeper/pairs_journal.py) give each pair's realised PnL split; the report
adds them to the keeper's PnL (the balance identity then still holds: a pair's split is what its
trades moved in the executor's Perp account, less the owner's gas), lists them as round trips
(`"pair": true`), and checks the gas the pair transactions paid.

The optimum searches basis round trips per market (keeper/simulate/optimum.py). When the run
could trade pairs (pairs_spread enabled, or the keeper holds pair trips), the pair optimum
(keeper/simulate/pair_optimum.py: a grid of pair round trips priced with exact pair quotes, and the
keeper's own pair trips at their realised PnL, feasible since they were carried out on this chain)
is ADDED to the per-market basis optima. That is a relaxation (a pair holds both markets, which
the basis optima may use in the same blocks), flagged in the optimum's notes and
`account_caps_relaxed`; the sum is >= the keeper's basis trips + its pair trips. Runs without
pairs are unchanged.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from keeper.pairs_journal import PairJournal, pair_split, pairs_pnl
from keeper.pnl_split import PnlSplit
from keeper.config import KeeperConfig
from keeper.simulate.optimum import OptimalTrip, OptimumResult
from keeper.simulate.pair_optimum import optimise_pairs
from keeper.simulate.paper import AccountLimits, PathPoint
from keeper.types import MarketSnapshot
from strategies.pairs_spread import PairsSpread

ONE_X18 = 10**18
PAIR_NOTE = ("the keeper's pair trips (positive ones) enter at their realised PnL, added to the per-market basis "
             "optima: a relaxation")


def _book(journal: Any) -> PairJournal:
    book = PairJournal.__new__(PairJournal)  # reads only
    book.journal = journal
    return book


def pair_pnl(journal: Any) -> PnlSplit:
    return pairs_pnl(journal)


def pair_fee_paid_wei(journal: Any) -> int:
    return sum(int(t["fee_paid_wei"] or 0) for t in _book(journal).trades())


def pair_transactions(journal: Any) -> list[dict[str, Any]]:
    """Every pair transaction the keeper planned, as the report lists them (sent or not)."""
    return [{k: t[k] for k in ("kind", "block", "status", "tx_hash", "gas_used", "predicted", "fills", "bounds", "detail")}
            for t in _book(journal).trades()]


def pair_round_trips(journal: Any, blocks: Sequence[int]) -> tuple[list[dict[str, Any]], list[OptimalTrip]]:
    """The report's rows for the keeper's pairs and the optimum's known trips (each at its realised PnL)."""

    def index(block: int) -> int:
        return max(0, bisect.bisect_left(blocks, block) - 1) if blocks else 0

    book = _book(journal)
    trades = book.trades()
    rows, trips = [], []
    for r in book.rows():
        split = pair_split(r)
        opening = next((t for t in trades if t["pair_id"] == r["id"] and t["kind"] == "open"), None)
        entry = index(r["entry_block"])
        closed = r["status"] == "closed" and r["closed_block"] is not None
        exit_ = index(r["closed_block"]) if closed else max(len(blocks) - 1, 0)
        exit_ = max(exit_, entry + 1)
        rows.append({"pair": True, "market": f"{r['market_a']}/{r['market_b']}", "direction": r["side"],
                     "spot_venue": None, "entry_block": r["entry_block"], "exit_block": r["closed_block"],
                     "entry_index": entry, "exit_index": exit_, "entry_beta": r["entry_beta"], "entry_z": r["entry_z"],
                     "hedge_ratio_x18": r["hedge_ratio_x18"],
                     "perp_base": _entry_base_a(opening, r) / ONE_X18, "closed": closed, "close_reason": r["close_reason"],
                     "expected_net_usd": opening["expected_net_usd"] if opening else None,
                     "realised_net_usd": split.total_x18 / ONE_X18, "pnl": split.to_json_dict(),
                     "trades": [{k: t[k] for k in ("kind", "block", "status", "tx_hash", "predicted", "fills", "bounds",
                                                   "reason")} for t in trades if t["pair_id"] == r["id"]]})
        if exit_ < len(blocks):
            trips.append(OptimalTrip(f"{r['market_a']}/{r['market_b']}", None, None, entry, exit_, r["entry_block"],
                                     r["closed_block"] or r["entry_block"], int(r["base_x18_a"]), "keeper_pair", split))
    return rows, trips


def _entry_base_a(opening: dict[str, Any] | None, row: dict[str, Any]) -> int:
    """Leg A's size as the open filled (predicted = filled, checked on chain), else as held."""
    if opening and opening.get("fills"):
        return int(json.loads(opening["fills"])["perp_base_x18_a"])
    return int(row["base_x18_a"])


def with_pair_optimum(optimum: OptimumResult, settings: KeeperConfig, points: Mapping[str, Sequence[PathPoint]],
                      snapshots: Sequence[MarketSnapshot] | None, limits: AccountLimits, keeper_trips: Sequence[OptimalTrip],
                      keeper_rows: Sequence[Mapping[str, Any]] = ()) -> OptimumResult:
    """The basis optimum plus the pair optimum (keeper/simulate/pair_optimum.py) when the run could
    trade pairs (pairs_spread enabled, or the keeper holds pair trips); unchanged otherwise."""
    enabled = PairsSpread.name in settings.strategies.enabled
    if not enabled and not keeper_trips:
        return optimum
    params = PairsSpread.from_params(settings.strategies.params.get(PairsSpread.name, {})).params
    a, b = params.market_a, params.market_b
    pa, pb = points.get(a, ()), points.get(b, ())
    if snapshots is None or len(pa) != len(snapshots) or len(pb) != len(snapshots):
        return with_pair_trips(optimum, [t for t in keeper_trips if t.split.total_x18 > 0])  # no path: the trips alone
    rows = [r for r in keeper_rows if r.get("pair")]
    betas = {ONE_X18} | {int(r["hedge_ratio_x18"]) for r in rows}
    notionals = [abs(r["perp_base"]) * pa[r["entry_index"]].perp_mid_usd for r in rows if r.get("perp_base")]
    trips, priced = optimise_pairs(snapshots, pa, pb, a, b, limits, sorted(betas), notionals, keeper_trips)
    note = (f"pair optimum: {priced} pair candidates (exact pair quotes) and the keeper's pair trips, added to the "
            "per-market basis optima: a relaxation")
    return with_pair_trips(optimum, trips, note)


def with_pair_trips(optimum: OptimumResult, trips: Sequence[OptimalTrip], note: str = PAIR_NOTE) -> OptimumResult:
    if not trips:
        return optimum
    by_market = dict(optimum.by_market_x18)
    for t in trips:
        by_market[t.market] = by_market.get(t.market, 0) + t.split.total_x18
    return replace(optimum, trips=optimum.trips + tuple(trips), by_market_x18=by_market, account_caps_relaxed=True,
                   notes=optimum.notes + (note,))
