"""The backtest's report: the simulation's report (keeper/simulate/report.py: report.json and one
self-contained report.html, inline SVG) built from a backtest run, with the threshold bot and the
hindsight yardstick paper-traded on the same recorded snapshots.

A month of blocks stays quick to open: the charts and the yardsticks use at most
backtest.MAX_SAMPLES snapshots, evenly spaced (every k-th block), while the keeper's books and
trades cover every block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keeper.history.backtest import BacktestRun
from keeper.signals import spot_price
from keeper.simulate.baseline import ThresholdPolicy, run_threshold_baseline
from keeper.simulate.hindsight import run_hindsight
from keeper.simulate.paper import SnapshotQuoter, path_points
from keeper.simulate.report import render_html, usd, write_report
from keeper.types import MarketView, PerpAccountState, PerpMarketState, Unavailable

ONE_X18 = 10**18
IMPACT_NOTE = ("The keeper's own impact on later blocks is not modelled: its trades fill at exact quotes on the "
               "recorded pool state, and the next recorded block is the origin's, without them. "
               "`keeper simulate --replay` runs the keeper on a fork, where its trades meet the real flow.")


def _split_usd(split: Any) -> dict[str, float]:
    return {"funding_usd": usd(split.funding_x18), "convergence_usd": usd(split.convergence_x18),
            "fees_usd": usd(split.fees_x18), "gas_usd": usd(split.gas_x18), "total_usd": usd(split.total_x18)}


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


def build_report(run: BacktestRun, history: Path) -> dict[str, Any]:
    assert run.journal is not None
    snapshots = [s for s, _ in run.samples]
    policy = ThresholdPolicy(notional_usd=run.config.risk.max_notional_usd_per_market)
    points = {m: path_points(snapshots, m, [0] * len(snapshots)) for m in run.markets}
    quoter = SnapshotQuoter(snapshots)
    baseline = run_threshold_baseline(points, quoter, policy)
    hindsight = run_hindsight(points, quoter, policy.notional_usd)
    pnl = run.journal.pnl_summary().total
    samples = []
    for k, (snapshot, state) in enumerate(run.samples):
        account = snapshot.account if isinstance(snapshot.account, PerpAccountState) else None
        samples.append({
            "step": snapshot.block_number, "phase": "backtest", "block": snapshot.block_number,
            "timestamp": snapshot.block_timestamp, "base_fee_gwei": snapshot.base_fee_wei / 1e9, "ticked": True,
            "markets": {m: _market_sample(v, snapshot.block_timestamp, state["positions"].get(m, 0))
                        | {"baseline_position_base": baseline.position_base_x18[m][k] / ONE_X18}
                        for m, v in snapshot.markets.items() if m in run.markets},
            "keeper": {"margin_ratio": account.margin_ratio if account else None, "outcomes": [], "skips": 0,
                       "pnl": _split_usd(state["pnl"]), "equity_usd": usd(state["pnl"].total_x18)},
            "baseline_equity_usd": usd(baseline.equity_x18[k])})
    trades = [{"step": o.plan.intent.created_block, "block": o.block_number or o.plan.intent.created_block,
               "market": o.plan.intent.market, "kind": o.plan.intent.kind, "direction": o.plan.intent.direction.value,
               "spot_venue": o.plan.intent.spot_venue, "strategy": o.plan.intent.strategy, "status": o.status,
               "gas_used": o.gas_used, "perp_base": o.fills.perp_base_x18 / ONE_X18 if o.fills else None,
               "net_quote_usd": usd(o.fills.net_quote_x18) if o.fills else None,
               "expected_net_usd": o.plan.expected_net_usd, "detail": o.detail[:300]} for o in run.outcomes]
    margins = [s["keeper"]["margin_ratio"] for s in samples if s["keeper"]["margin_ratio"] is not None]
    stride = max(1, run.blocks // max(1, len(run.samples)))
    return {
        "scenario": {"name": f"backtest of {history.name}", "warmup_steps": 0, "events": [],
                     "description": (f"Recorded blocks {run.first_block}-{run.last_block} ({run.blocks} blocks), "
                                     f"mode {run.mode}, strategies {run.config.strategies.enabled}. " + IMPACT_NOTE)},
        "backtest": {"history": str(history), "mode": run.mode, "first_block": run.first_block,
                     "last_block": run.last_block, "blocks": run.blocks, "replay_s": round(run.replay_s, 3),
                     "blocks_per_s": round(run.blocks_per_s, 1), "strategies": run.config.strategies.enabled,
                     "skips": run.skips, "open_at_end": run.open_at_end, "impact_modelled": False,
                     "impact_note": IMPACT_NOTE, "samples": len(samples), "sample_every_blocks": stride,
                     "yardsticks_on": f"{len(snapshots)} sampled snapshots (every {stride} blocks)"},
        "markets": run.markets,
        "keeper": {"pnl": pnl.to_json_dict() | _split_usd(pnl), "trades": trades, "transactions": len(trades),
                   "included": sum(1 for t in trades if t["status"] == "included")},
        "baseline": {"paper": True, "policy": policy.__dict__,
                     "pnl": baseline.total.to_json_dict() | _split_usd(baseline.total),
                     "trades": [t.as_json() for t in baseline.trades], "notes": list(baseline.notes[:50])},
        "hindsight": {"paper": True, "notional_usd": hindsight.notional_usd,
                      "pnl": hindsight.total.to_json_dict() | _split_usd(hindsight.total),
                      "trades": {m: (t.as_json() if t else None) for m, t in hindsight.trades.items()}},
        "comparison": {"keeper_usd": usd(pnl.total_x18), "baseline_usd": usd(baseline.total.total_x18),
                       "hindsight_usd": usd(hindsight.total.total_x18),
                       "keeper_beats_baseline": pnl.total_x18 > baseline.total.total_x18},
        "limits": {"min_margin_ratio": run.config.risk.min_margin_ratio,
                   "max_notional_usd_per_market": run.config.risk.max_notional_usd_per_market,
                   "max_notional_usd_total": run.config.risk.max_notional_usd_total,
                   "lowest_margin_ratio": min(margins) if margins else None,
                   "highest_notional_usd": max((m["keeper_notional_usd"] for s in samples for m in s["markets"].values()),
                                               default=0.0),
                   "highest_total_notional_usd": max((sum(m["keeper_notional_usd"] for m in s["markets"].values())
                                                      for s in samples), default=0.0), "liquidations": []},
        "samples": samples,
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The `--json` summary."""
    b, c = report["backtest"], report["comparison"]
    return {"blocks": b["blocks"], "blocks_per_s": b["blocks_per_s"], "first_block": b["first_block"],
            "last_block": b["last_block"], "keeper_usd": round(c["keeper_usd"], 6),
            "optimum_usd": round(c["hindsight_usd"], 6), "baseline_usd": round(c["baseline_usd"], 6),
            "trades": report["keeper"]["included"] or len(report["keeper"]["trades"]), "mode": b["mode"],
            "open_at_end": b["open_at_end"]}


def write_backtest_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    paths = write_report(report, out_dir)
    html_path = paths[1]
    page = html_path.read_text()
    page = (page.replace("<h1>Simulation:", "<h1>Backtest:")
            .replace("Keeper (live on the fork)", "Keeper (backtest: paper fills on recorded blocks)")
            .replace("x axis: scenario step (warm-up steps are 0 and below; shaded: warm-up and wind-down). "
                     "Generated by <code>keeper simulate</code>",
                     f"x axis: block number (the charts show every {report['backtest']['sample_every_blocks']}-th "
                     "block). Generated by <code>keeper backtest</code>"))
    html_path.write_text(page)
    return paths
