"""The Grafana dashboard only charts metrics the keeper exports, and covers what the README says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from keeper.metrics import KeeperMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana-dashboard.json"


def exported_names() -> set[str]:
    names = set()
    for family in KeeperMetrics().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # histograms and counters also export these series once observed
    return names | {f"{n}_bucket" for n in names} | {f"{n}_total" for n in names}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    doc = json.loads(DASHBOARD.read_text())
    queried = {name for panel in doc["panels"] for target in panel["targets"]
               for name in re.findall(r"\bkeeper_[a-z_]+", target["expr"])}
    assert queried and queried <= exported_names(), queried - exported_names()


def test_the_dashboard_covers_basis_funding_positions_pnl_margin_latency_and_rpc_errors() -> None:
    exprs = " ".join(t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"])
    for metric in ("keeper_basis_bps", "keeper_funding_apr_ratio", "keeper_position_base", "keeper_pnl_usd",
                   "keeper_margin_ratio", "keeper_tick_seconds_bucket", "keeper_rpc_errors_total"):
        assert metric in exprs
