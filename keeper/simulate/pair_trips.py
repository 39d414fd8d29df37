"""The keeper's pair trades in a simulation report, and in the hindsight optimum.

The pair desk's books (keeper/pairs_journal.py) give each pair's realised PnL split; the report
adds them to the keeper's PnL (the balance identity then still holds: a pair's split is what its
trades moved in the executor's Perp account, less the owner's gas), lists them as round trips
(`"pair": true`), and checks the gas the pair transactions paid.

The optimum searches basis round trips per market (keeper/simulate/optimum.py); it has no pair
candidates of its own. So that it stays an upper bound of a keeper that also trades pairs, each of
the keeper's pair trips with a positive realised PnL enters it at that PnL (the trips were carried
out on this chain: feasible), ADDED to the per-market optima. That is a relaxation (a pair holds
both markets, which the basis optima may use in the same blocks), flagged in the optimum's notes
and `account_caps_relaxed`; the optimum is then >= the keeper's basis trips + its pair trips.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from keeper.pairs_journal import PairJournal, pair_split, pairs_pnl
from keeper.pnl_split import PnlSplit
from keeper.simulate.optimum import OptimalTrip, OptimumResult

ONE_X18 = 10**18
PAIR_NOTE = ("the keeper's pair trips (positive ones) enter at their realised PnL, added to the per-market basis "
             "optima: a relaxation (the optimum searches no pair trades of its own)")


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
    """The report's rows for the keeper's pairs and the optimum's trips for the profitable ones."""

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
                     "perp_base": _entry_base_a(opening, r) / ONE_X18, "closed": closed, "close_reason": r["close_reason"],
                     "expected_net_usd": opening["expected_net_usd"] if opening else None,
                     "realised_net_usd": split.total_x18 / ONE_X18, "pnl": split.to_json_dict(),
                     "trades": [{k: t[k] for k in ("kind", "block", "status", "tx_hash", "predicted", "fills", "bounds",
                                                   "reason")} for t in trades if t["pair_id"] == r["id"]]})
        if split.total_x18 > 0:
            trips.append(OptimalTrip(f"{r['market_a']}/{r['market_b']}", None, None, entry, exit_, r["entry_block"],
                                     r["closed_block"] or r["entry_block"], int(r["base_x18_a"]), "keeper_pair", split))
    return rows, trips


def _entry_base_a(opening: dict[str, Any] | None, row: dict[str, Any]) -> int:
    """Leg A's size as the open filled (predicted = filled, checked on chain), else as held."""
    if opening and opening.get("fills"):
        return int(json.loads(opening["fills"])["perp_base_x18_a"])
    return int(row["base_x18_a"])


def with_pair_trips(optimum: OptimumResult, trips: Sequence[OptimalTrip]) -> OptimumResult:
    if not trips:
        return optimum
    by_market = dict(optimum.by_market_x18)
    for t in trips:
        by_market[t.market] = by_market.get(t.market, 0) + t.split.total_x18
    return replace(optimum, trips=optimum.trips + tuple(trips), by_market_x18=by_market, account_caps_relaxed=True,
                   notes=optimum.notes + (PAIR_NOTE,))
