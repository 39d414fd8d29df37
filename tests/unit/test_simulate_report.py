"""The report: a self-contained HTML page with inline SVG charts and a JSON twin; the balance-change
arithmetic it checks the keeper's PnL split against."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from keeper.simulate.ledger import KeeperBalances, compute_balance_change
from keeper.simulate.report import line_chart, render_html, write_report

E18 = 10**18


def sample(step: int, phase: str, total: float, position: float, spot: float | None = 3_000.0) -> dict[str, Any]:
    market = {"index_usd": 3_000.0, "mark_usd": 3_010.0, "perp_mid_usd": 3_012.0, "spot_v3_usd": spot,
              "spot_v2_usd": spot, "basis_bps": None if spot is None else 33.3, "spread_bps": 40.0,
              "funding_rate_per_hour": 0.0001, "oracle_age_s": 10, "keeper_position_base": position,
              "keeper_notional_usd": abs(position) * 3_000, "baseline_position_base": 0.0}
    pnl = {"funding_usd": 1.0, "convergence_usd": total + 3, "fees_usd": 3.0, "gas_usd": 1.0, "total_usd": total}
    return {"step": step, "phase": phase, "block": 100 + step, "timestamp": 1_000 + step, "base_fee_gwei": 0.1,
            "ticked": True, "markets": {"ETH": market},
            "keeper": {"block_after": 101 + step, "margin_ratio": 0.5 if position else None, "account_value_usd": 1e5,
                       "outcomes": [], "skips": 0, "pnl": pnl, "equity_usd": total},
            "baseline_equity_usd": -total}


def report(name: str = "mispricing") -> dict[str, Any]:
    samples = [sample(-1, "warmup", 0, 0), sample(0, "warmup", 0, 0), sample(1, "scenario", 5, -2),
               sample(2, "scenario", 9, -2, spot=None), sample(3, "wind_down", 12, 0)]
    split = {"funding_usd": 1.0, "convergence_usd": 15.0, "fees_usd": 3.0, "gas_usd": 1.0, "total_usd": 12.0}
    return {
        "scenario": {"name": name, "description": "a <b>test</b>", "warmup_steps": 2, "activity": {},
                     "events": [{"kind": "premium_shock", "at_step": 1, "premium": 0.02, "markets": None}]},
        "markets": ["ETH"],
        "keeper": {"pnl": split, "trades": [{"step": 1, "block": 101, "market": "ETH", "kind": "open",
                                             "direction": "short_perp", "status": "included", "perp_base": -2.0,
                                             "net_quote_usd": 20.0, "gas_used": 1_000_000}],
                   "transactions": 1, "included": 1,
                   "round_trips": [{"market": "ETH", "direction": "short_perp", "entry_block": 101, "exit_block": 104,
                                    "perp_base": -2.0, "expected_net_usd": 31.5, "realised_net_usd": 12.0,
                                    "close_reason": "converged"}]},
        "baseline": {"paper": True, "policy": {"open_spread_bps": 100.0, "close_spread_bps": -10.0,
                                               "notional_usd": 100_000.0, "spot_venue": "uniswap_v3"},
                     "pnl": {**split, "total_usd": -12.0}, "trades": [], "notes": []},
        "carry_only": {"paper": True, "policy": {"entry_apr": 0.2, "exit_apr": 0.05}, "pnl": {**split, "total_usd": -3.0},
                       "trades": [], "notes": []},
        "optimum": {"paper": True, "pnl": {**split, "total_usd": 40.0}, "trips": [
            {"market": "ETH", "direction": "short_perp", "spot_venue": "uniswap_v3", "entry_block": 101, "exit_block": 103,
             "source": "grid", "pnl": {"total_x18": str(40 * E18)}}]},
        "comparison": {"keeper_usd": 12.0, "baseline_usd": -12.0, "carry_only_usd": -3.0, "optimum_usd": 40.0,
                       "capture": 0.3, "optimum_dominates": True, "violations": [], "keeper_beats_baseline": True},
        "consistency": {"positions_closed": True, "split_sum_x18": "12", "balance_change_x18": "12",
                        "split_equals_balance_change": True, "gas_wei_from_outcomes": "5", "gas_wei_owner_spent": "5",
                        "gas_wei_equal": True, "definition": "balance change = ..."},
        "limits": {"min_margin_ratio": 0.15, "max_notional_usd_per_market": 1e5, "max_notional_usd_total": 2.5e5,
                   "lowest_margin_ratio": 0.5, "highest_notional_usd": 6_000.0, "highest_total_notional_usd": 6_000.0,
                   "liquidations": []},
        "samples": samples,
    }


def test_html_is_self_contained_with_inline_svg_charts() -> None:
    # Given a report, when rendered, then the page has charts and no external asset or script
    page = render_html(report())
    assert page.count("<svg") >= 7  # PnL, split, base fee, and four per market
    for external in ("<script", "<link", " src=", "url(", "@import"):
        assert external not in page
    assert re.findall(r"https?://[^\"' )]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    for label in ("Keeper (live on the fork)", "threshold bot (paper)", "Carry-only bot (paper)",
                  "Hindsight optimum (paper)", "paper trades", "expected at entry vs realised", "31.50"):
        assert label in page
    assert "a &lt;b&gt;test&lt;/b&gt;" in page  # text is escaped
    assert "hindsight optimum 40" in page


def test_html_marks_a_failed_consistency_check() -> None:
    data = report()
    data["consistency"]["split_equals_balance_change"] = False
    page = render_html(data)
    assert '<span class="bad">NO</span>' in page


def test_write_report_writes_json_and_html(tmp_path: Path) -> None:
    paths = write_report(report("calm"), tmp_path / "out")
    assert [p.name for p in paths] == ["report.json", "report.html"]
    loaded = json.loads(paths[0].read_text())
    assert loaded["comparison"]["keeper_usd"] == 12.0
    assert paths[1].read_text().startswith("<!doctype html>")


def test_line_chart_breaks_lines_at_gaps_and_survives_flat_and_empty_series() -> None:
    gappy = line_chart("t", [1, 2, 3, 4, 5], [("a", [1.0, 2.0, None, 3.0, 4.0], "#000", False)])
    assert gappy.count("<polyline") == 2
    flat = line_chart("flat", [1, 2, 3], [("a", [5.0, 5.0, 5.0], "#000", True)])
    assert "<polyline" in flat and "stroke-dasharray" in flat
    assert "no data" in line_chart("empty", [], [("a", [], "#000", False)])
    banded = line_chart("b", [0, 1, 2], [("a", [0.0, 1.0, 2.0], "#000", False)], bands=[(0, 1, "warm-up")],
                        hlines=[(1.5, "bound", "#0a0")])
    assert 'fill="#f2f2f2"' in banded and "bound" in banded


def balances(wallet: int, vault: int, owed: int, funding: int, spot: int, eth: int, unrealized: int = 0) -> KeeperBalances:
    return KeeperBalances(block=1, wallet_usdc_raw=wallet, vault_balance_raw=vault, owed_realized_pnl_x18=owed,
                          unrealized_pnl_x18=unrealized, pending_funding_x18=funding, spot_raw={"ETH": spot},
                          owner_eth_wei=eth)


def test_balance_change_of_a_closed_position_is_exact_and_price_free() -> None:
    # Given a round trip that left the spot inventory where it was: USDC -100.000001, Perp
    # realized +130.5 (a wei more), funding owed 0.25, owner spent 7 wei of gas
    start = balances(wallet=400_000_000_000, vault=100_000_000_000, owed=0, funding=0, spot=5 * E18, eth=10**18)
    end = balances(wallet=400_000_000_000 - 100_000_001, vault=100_000_000_000, owed=130_500_000_000_000_000_001,
                   funding=250_000_000_000_000_000, spot=5 * E18, eth=10**18 - 7)
    for price in (1, 3_000 * E18, 10**30):
        change = compute_balance_change(start, end, {"ETH": price}, {"ETH": 18})
        assert change.spot_flat
        assert change.total_x18 == -100_000_001 * 10**12 + 130_500_000_000_000_000_001 - 250_000_000_000_000_000
        assert change.gas_wei == 7


def test_balance_change_of_an_open_position_values_the_spot_held() -> None:
    start = balances(wallet=10**12, vault=0, owed=0, funding=0, spot=0, eth=0)
    end = balances(wallet=10**12 - 3_000_000_000, vault=0, owed=0, funding=0, spot=E18, eth=0, unrealized=-5 * E18)
    change = compute_balance_change(start, end, {"ETH": 3_010 * E18}, {"ETH": 18})
    assert not change.spot_flat
    assert change.spot_x18 == 3_010 * E18
    assert change.total_x18 == -3_000 * E18 + 3_010 * E18 - 5 * E18
