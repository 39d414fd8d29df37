"""The backtest's report: the simulation's report (keeper/simulate/report.py: report.json and one
self-contained report.html, inline SVG) built from a backtest run, with the threshold bot, the
carry-only bot and the hindsight optimum (keeper/simulate/compare.py) paper-traded on the same
recorded snapshots, the optimum having the keeper's own round trips among its candidates.

A month of blocks stays quick to open: the charts and the yardsticks use at most about
backtest.MAX_SAMPLES snapshots, evenly spaced (every k-th block) plus the block of every keeper
trade, while the keeper's books and trades cover every block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keeper.history.backtest import BacktestRun
from keeper.plan import PRIORITY_FEE_WEI
from keeper.signals import spot_price
from keeper.simulate.compare import account_limits, compare, keeper_round_trips, yardsticks_json
from keeper.simulate.pair_trips import pair_pnl, pair_round_trips, pair_transactions
from keeper.simulate.paper import SnapshotQuoter, compute_close_value_x18, path_points
from keeper.simulate.recorder import split_usd
from keeper.simulate.report import usd, write_report
from keeper.types import MarketView, PerpAccountState, PerpMarketState, Unavailable

ONE_X18 = 10**18
IMPACT_NOTE = ("The keeper's own impact on later blocks is not modelled: its trades fill at exact quotes on the "
               "recorded pool state, and the next recorded block is the origin's, without them. "
               "`keeper simulate --replay` runs the keeper on a fork, where its trades meet the real flow.")


def _market_sample(view: MarketView, block_ts: int, position_x18: int) -> dict[str, Any]:
    perp = view.perp if isinstance(view.perp, PerpMarketState) else None
    v3, v2 = spot_price(view, "uniswap_v3"), spot_price(view, "uniswap_v2")
    v3_usd = None if isinstance(v3, Unavailable) else v3
    index = perp.index_price_x18 / ONE_X18 if perp else None
    mark = perp.mark_price_x18 / ONE_X18 if perp else None
    mid = perp.pool.sqrt_price_x96 ** 2 / 2**192 if perp else None
    return {"index_usd": index, "mark_usd": mark, "perp_mid_usd": mid, "spot_v3_usd": v3_usd,
            "spot_v2_usd": None if isinstance(v2, Unavailable) else v2,
            "basis_bps": (mark / v3_usd - 1) * 1e4 if mark and v3_usd else None,
            "spread_bps": (mid / v3_usd - 1) * 1e4 if mid and v3_usd else None,
            "funding_rate_per_hour": perp.funding_rate_per_s * 3600 if perp else None,
            "oracle_age_s": None if isinstance(view.oracle, Unavailable) else view.oracle.age_s(block_ts),
            "keeper_position_base": position_x18 / ONE_X18,
            "keeper_notional_usd": abs(position_x18 / ONE_X18) * index if index else 0.0}


def _outcomes(run: BacktestRun, blocks: list[int]) -> list[dict[str, Any]]:
    rows = []
    for o in run.outcomes:
        intent, block = o.plan.intent, o.block_number or o.plan.intent.created_block
        rows.append({"step": block, "index": blocks.index(block) if block in blocks else None, "block": block,
                     "market": intent.market, "kind": intent.kind, "direction": intent.direction.value,
                     "spot_venue": intent.spot_venue, "strategy": intent.strategy, "status": o.status,
                     "gas_used": o.gas_used, "tx_hash": o.tx_hash,
                     "perp_base": o.fills.perp_base_x18 / ONE_X18 if o.fills else None,
                     "net_quote_usd": usd(o.fills.net_quote_x18) if o.fills else None,
                     "perp_base_x18": str(o.fills.perp_base_x18) if o.fills else None,
                     "expected_net_usd": o.plan.expected_net_usd, "detail": o.detail[:300]})
    return rows


def build_report(run: BacktestRun, history: Path) -> dict[str, Any]:
    assert run.journal is not None and run.samples
    settings = run.config
    snapshots = [s for s, _ in run.samples]
    blocks = [s.block_number for s in snapshots]
    tips = [PRIORITY_FEE_WEI] * len(snapshots)  # what the planner and the paper books add to the base fee
    points = {m: path_points(snapshots, m, tips) for m in run.markets}
    sources = run.meta["sources"]
    caps = account_limits(settings, snapshots[0], {m["name"]: m["spot_token"] for m in sources["markets"]},
                          {m["name"]: m["spot_token_decimals"] for m in sources["markets"]},
                          sources["markets"][0]["usdc"] if sources["markets"] else None)
    pnl = run.journal.pnl_summary().total + pair_pnl(run.journal)  # pair trades: keeper/simulate/pair_trips.py
    outcomes = _outcomes(run, blocks)
    trips, known = keeper_round_trips(run.journal, outcomes, blocks)
    pair_rows, pair_trips = pair_round_trips(run.journal, blocks)
    trips += pair_rows
    pair_txs = pair_transactions(run.journal)
    baseline, carry, optimum, comparison = compare(settings, points, SnapshotQuoter(snapshots), caps, pnl, trips, known,
                                                   pair_trips)
    samples = []
    for k, (snapshot, state) in enumerate(run.samples):
        account = snapshot.account if isinstance(snapshot.account, PerpAccountState) else None
        positions = state["positions"]
        marked = state["pnl"].total_x18 + compute_close_value_x18(snapshot, positions.values(), PRIORITY_FEE_WEI)
        markets = {}
        for m, view in snapshot.markets.items():
            if m in run.markets:
                held = positions.get(m)
                markets[m] = _market_sample(view, snapshot.block_timestamp, held.perp_base_x18 if held else 0) | {
                    "baseline_position_base": baseline.position_base_x18[m][k] / ONE_X18,
                    "carry_position_base": carry.position_base_x18[m][k] / ONE_X18}
        samples.append({
            "step": snapshot.block_number, "phase": "backtest", "block": snapshot.block_number,
            "timestamp": snapshot.block_timestamp, "base_fee_gwei": snapshot.base_fee_wei / 1e9, "ticked": True,
            "markets": markets,
            "keeper": {"margin_ratio": account.margin_ratio if account else None, "outcomes": [], "skips": 0,
                       "pnl": split_usd(state["pnl"]), "equity_usd": usd(state["pnl"].total_x18),
                       "marked_usd": usd(marked)},
            "baseline_equity_usd": usd(baseline.equity_x18[k]), "carry_equity_usd": usd(carry.equity_x18[k])})
    margins = [s["keeper"]["margin_ratio"] for s in samples if s["keeper"]["margin_ratio"] is not None]
    stride = max(1, run.blocks // max(1, len(run.samples)))
    risk = settings.risk
    return {
        "scenario": {"name": f"backtest of {history.name}", "warmup_steps": 0, "events": [],
                     "description": (f"Recorded blocks {run.first_block}-{run.last_block} ({run.blocks} blocks), "
                                     f"mode {run.mode}, strategies {settings.strategies.enabled}. " + IMPACT_NOTE)},
        "backtest": {"history": str(history), "mode": run.mode, "first_block": run.first_block,
                     "last_block": run.last_block, "blocks": run.blocks, "replay_s": round(run.replay_s, 3),
                     "blocks_per_s": round(run.blocks_per_s, 1), "processes": run.processes,
                     "strategies": settings.strategies.enabled,
                     "skips": run.skips, "open_at_end": run.open_at_end, "impact_modelled": False,
                     "impact_note": IMPACT_NOTE, "samples": len(samples), "sample_every_blocks": stride,
                     "yardsticks_on": f"{len(snapshots)} snapshots: every {stride}-th block and every keeper trade's"},
        "markets": run.markets,
        "keeper": {"pnl": pnl.to_json_dict() | split_usd(pnl), "trades": outcomes, "transactions": len(outcomes),
                   "round_trips": trips, "included": sum(1 for t in outcomes if t["status"] == "included"),
                   "pair_transactions": pair_txs, "pair_pnl_usd": usd(pair_pnl(run.journal).total_x18),
                   "pair_included": sum(1 for t in pair_txs if t["status"] == "included"),
                   "pair_outcomes": run.pair_outcomes},
        **yardsticks_json(settings, caps, baseline, carry, optimum),
        "comparison": comparison,
        "limits": {"min_margin_ratio": risk.min_margin_ratio, "max_notional_usd_per_market": risk.max_notional_usd_per_market,
                   "max_notional_usd_total": risk.max_notional_usd_total,
                   "lowest_margin_ratio": min(margins) if margins else None,
                   "highest_notional_usd": max((m["keeper_notional_usd"] for s in samples for m in s["markets"].values()),
                                               default=0.0),
                   "highest_total_notional_usd": max((sum(m["keeper_notional_usd"] for m in s["markets"].values())
                                                      for s in samples), default=0.0), "liquidations": []},
        "samples": samples,
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The `--json` summary (trades: basis and pair transactions; pair_trades, pair_usd: the pairs' alone)."""
    b, c = report["backtest"], report["comparison"]
    pairs = report["keeper"]["pair_included"] if b["mode"] != "dry_run" else len(report["keeper"]["pair_outcomes"])
    return {"blocks": b["blocks"], "blocks_per_s": b["blocks_per_s"], "processes": b["processes"],
            "first_block": b["first_block"],
            "last_block": b["last_block"], "keeper_usd": round(c["keeper_usd"], 6),
            "optimum_usd": round(c["optimum_usd"], 6), "baseline_usd": round(c["baseline_usd"], 6),
            "carry_only_usd": round(c["carry_only_usd"], 6), "optimum_dominates": c["optimum_dominates"],
            "trades": pairs + (report["keeper"]["included"] if b["mode"] != "dry_run" else len(report["keeper"]["trades"])),
            "pair_trades": pairs,
            "pair_usd": round(report["keeper"]["pair_pnl_usd"], 6),
            "mode": b["mode"], "open_at_end": b["open_at_end"]}


def write_backtest_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    paths = write_report(report, out_dir)
    html_path = paths[1]
    page = html_path.read_text()
    page = (page.replace("<h1>Simulation:", "<h1>Backtest:")
            .replace("Keeper (live on the fork)", "Keeper (backtest: paper fills on recorded blocks)")
            .replace("x axis: scenario step (warm-up steps are 0 and below; shaded: warm-up and wind-down). "
                     "Generated by <code>keeper simulate</code>",
                     f"x axis: block number (the charts show every {report['backtest']['sample_every_blocks']}-th "
                     "block and every keeper trade's). Generated by <code>keeper backtest</code>"))
    html_path.write_text(page)
    return paths
