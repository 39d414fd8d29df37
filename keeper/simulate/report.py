"""The simulation report: report.json (every number; exact amounts as decimal strings) and
report.html, one self-contained page (inline CSS and SVG, no script, no external asset)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keeper.trade_legs import describe_legs
from keeper.types import SPOT_VENUES

ONE_X18 = 10**18
_FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def usd(amount_x18: int) -> float:
    """USD x18 -> float USD (for display and charts; the exact value stays in the _x18 fields)."""
    return amount_x18 / ONE_X18


def write_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    html_path = out_dir / "report.html"
    json_path.write_text(json.dumps(report, indent=1, allow_nan=False, default=_json_default) + "\n")
    html_path.write_text(render_html(report))
    return [json_path, html_path]


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


# ------------------------------------------------------------------------------ SVG charts
def _nice_step(span: float, count: int) -> float:
    raw = span / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.4g}k"
    if magnitude >= 100 or value == 0:
        return f"{value:.0f}"
    return f"{value:.4g}"


def line_chart(title: str, x: Sequence[float], series: Sequence[tuple[str, Sequence[float | None], str, bool]],
               *, unit: str = "", bands: Sequence[tuple[float, float, str]] = (),
               hlines: Sequence[tuple[float, str, str]] = (), width: int = 820, height: int = 230) -> str:
    """An inline SVG line chart. series: (label, values (None = gap), colour, dashed). bands:
    shaded x ranges (start, end, label); hlines: horizontal reference lines (y, label, colour)."""
    left, right, top, bottom = 64, 12, 44, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, ys, _, _ in series for v in ys if v is not None and math.isfinite(v)]
    values += [y for y, _, _ in hlines]
    # presentation attributes, not page CSS: the SVG reads the same copied out of the page
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}" '
             f'font-family="{_FONT}" font-size="11">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
             f'<text x="{left}" y="14" font-size="13" font-weight="600" fill="#222">'
             f'{html.escape(title)}{html.escape(f" ({unit})" if unit else "")}</text>']
    if not values or not x:
        parts.append(f'<text x="{left + 10}" y="{top + 30}" fill="#888">no data</text></svg>')
        return "".join(parts)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - (abs(lo) * 0.01 or 1), hi + (abs(hi) * 0.01 or 1)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    x_lo, x_hi = min(x), max(x)
    if x_hi == x_lo:
        x_hi = x_lo + 1

    def px(xv: float) -> float:
        return left + (xv - x_lo) / (x_hi - x_lo) * plot_w

    def py(yv: float) -> float:
        return top + (hi - yv) / (hi - lo) * plot_h

    for start, end, label in bands:
        x0, x1 = px(max(start, x_lo)), px(min(end, x_hi))
        if x1 > x0:
            parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{plot_h}" fill="#f2f2f2"/>')
            if x1 - x0 >= 8 * len(label):
                parts.append(f'<text x="{x0 + 3:.1f}" y="{top + 11}" fill="#888" font-size="10">{html.escape(label)}</text>')
    step = _nice_step(hi - lo, 4)
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        y = py(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" fill="#555" font-size="10" text-anchor="end">{_fmt(tick)}</text>')
        tick += step
    x_step = _nice_step(x_hi - x_lo, 8)
    xt = math.ceil(x_lo / x_step) * x_step
    while xt <= x_hi:
        parts.append(f'<text x="{px(xt):.1f}" y="{height - 8}" fill="#555" font-size="10" text-anchor="middle">{_fmt(xt)}</text>')
        xt += x_step
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>')
    for y, label, colour in hlines:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="{colour}" '
                     f'stroke-dasharray="6 4" stroke-width="1.2"/>'
                     f'<text x="{left + plot_w - 4}" y="{py(y) - 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="{colour}">{html.escape(label)}</text>')
    legend_x, legend_y = float(left), 30  # one row under the title, wrapping when full
    for label, ys, colour, dashed in series:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        segment: list[str] = []
        for xv, yv in zip(x, ys):
            if yv is None or not math.isfinite(yv):
                if len(segment) > 1:
                    parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
                segment = []
                continue
            segment.append(f"{px(xv):.1f},{py(yv):.1f}")
        if len(segment) > 1:
            parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
        elif len(segment) == 1:
            cx, cy = segment[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
        step = 30 + len(label) * 6.6
        if legend_x + step > width and legend_x > left:
            legend_x, legend_y = float(left), legend_y + 12
        parts.append(f'<line x1="{legend_x:.1f}" x2="{legend_x + 16:.1f}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/>'
                     f'<text x="{legend_x + 20:.1f}" y="{legend_y}" fill="#333">{html.escape(label)}</text>')
        legend_x += step
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------ the page
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:880px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:18px 0 6px} table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f5f5f5} td.l,th.l{text-align:left}
.ok{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600} .muted{fill:#888;color:#777;font-size:11px}
svg.chart{display:block;margin:6px 0 14px;background:#fff} .title{font-size:13px;font-weight:600;fill:#222}
.axis{font-size:10px;fill:#555} .legend{font-size:11px;fill:#333} .grid{stroke:#eee} .frame{fill:none;stroke:#bbb}
.band{fill:#f2f2f2} code{background:#f5f5f5;padding:0 3px} .note{color:#555;font-size:13px}
"""


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _check(ok: bool) -> str:
    return '<span class="ok">yes</span>' if ok else '<span class="bad">NO</span>'


def render_html(report: Mapping[str, Any]) -> str:
    esc = html.escape
    scenario, run = report.get("scenario", {}), report.get("run", {})
    samples: list[Mapping[str, Any]] = report.get("samples", [])
    markets: list[str] = report.get("markets", [])
    x = [float(s["step"]) for s in samples]
    bands = _phase_bands(samples)
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>keeper simulate: {esc(scenario.get('name', ''))}"
           f"</title><style>{_CSS}</style></head><body>",
           f"<h1>Simulation: {esc(scenario.get('name', ''))}</h1>",
           f"<p class=note>{esc(scenario.get('description', ''))}</p>"]
    if run:
        out.append(f"<p class=note>Fork of <code>{esc(str(run.get('origin_url')))}</code> (chain {run.get('origin_chain_id')}, "
                   f"{esc(str(run.get('world')))}) at block {run.get('fork_block')}; {run.get('steps')} scenario steps after "
                   f"{scenario.get('warmup_steps')} warm-up steps, then wind-down; seed {run.get('seed')}; "
                   f"{run.get('wall_s')} s. Executor <code>{esc(str(run.get('executor')))}</code>.</p>")
    # ---- comparison
    comparison = report.get("comparison", {})
    out.append("<h2>Keeper vs reference bots vs hindsight optimum</h2>")
    out.append("<table><tr><th class=l></th><th>funding</th><th>convergence</th><th>fees</th><th>gas</th>"
               "<th>total (USD)</th><th>round trips</th></tr>")
    for label, key, trades in (("Keeper (live on the fork)", "keeper", len(report.get("keeper", {}).get("round_trips", []))),
                               ("Threshold bot (paper)", "baseline", len(report.get("baseline", {}).get("trades", []))),
                               ("Carry-only bot (paper)", "carry_only", len(report.get("carry_only", {}).get("trades", []))),
                               ("Hindsight optimum (paper)", "optimum", len(report.get("optimum", {}).get("trips", [])))):
        pnl = report.get(key, {}).get("pnl", {})
        out.append(f"<tr><td class=l>{esc(label)}</td><td>{_money(pnl.get('funding_usd'))}</td>"
                   f"<td>{_money(pnl.get('convergence_usd'))}</td><td>{_money(pnl.get('fees_usd'))}</td>"
                   f"<td>{_money(pnl.get('gas_usd'))}</td><td><b>{_money(pnl.get('total_usd'))}</b></td><td>{trades}</td></tr>")
    out.append("</table>")
    capture = comparison.get("capture")
    out.append(f"<p>Optimum &ge; keeper and &ge; both bots: {_check(bool(comparison.get('optimum_dominates')))}"
               f"{'' if capture is None else f'; capture (keeper / optimum) {capture:.0%}'}.</p>")
    for line in comparison.get("violations", []):
        out.append(f"<p class=bad>DEFECT: {esc(line)}</p>")
    policy = report.get("baseline", {}).get("policy", {})
    carry = report.get("carry_only", {}).get("policy", {})
    out.append(
        "<p class=note>total = funding + convergence - fees - gas (convergence is trading PnL before fees). "
        f"<b>Threshold bot</b>: opens at |spread| &ge; {policy.get('open_spread_bps', 100) / 100:g}% (vAMM mid vs "
        f"{esc(str(policy.get('spot_venue', 'uniswap_v3')))} mid), closes when the spread has crossed to "
        f"{policy.get('close_spread_bps', -10) / 100:g}% against its entry side, ${policy.get('notional_usd', 0):,.0f} "
        "per market cut to the keeper's limits, fees ignored in its decisions. <b>Carry-only bot</b>: holds the side "
        f"that receives funding while the funding APR is &ge; {carry.get('entry_apr', 0):.0%} (closes below "
        f"{carry.get('exit_apr', 0):.0%}), same size rule. <b>Hindsight optimum</b>: per market the best set of "
        "non-overlapping round trips (both directions, both spot venues, a size grid up to the keeper's caps, the "
        "bots' sizes, and the keeper's own round trips at their realised PnL), by dynamic programming. All three are "
        "<b>paper trades</b>: exact quotes (<code>keeper.quotes.quote_basis_trade</code>) on the snapshots the keeper's "
        "ticks read, with fees, price impact, funding and gas counted, but never sent: they do not move the chain, "
        "while the keeper's real trades do.</p>")
    trips = report.get("keeper", {}).get("round_trips", [])
    out.append("<h3>Keeper round trips: expected at entry vs realised</h3>")
    if trips:
        out.append("<table><tr><th class=l>market</th><th class=l>direction</th><th>entry block</th><th>exit block</th>"
                   "<th>perp base</th><th>expected net at entry</th><th>realised net</th><th class=l>exit</th>"
                   "<th class=l>entry legs</th><th class=l>exit legs</th></tr>")
        for t in trips:
            out.append(f"<tr><td class=l>{esc(t['market'])}</td><td class=l>{esc(t['direction'])}</td>"
                       f"<td>{t['entry_block']}</td><td>{t.get('exit_block') or 'open'}</td><td>{t['perp_base']:+.6g}</td>"
                       f"<td>{_money(t.get('expected_net_usd'))}</td><td>{_money(t.get('realised_net_usd'))}</td>"
                       f"<td class=l>{esc(str(t.get('close_reason') or '-'))}</td>"
                       f"<td class=l>{esc(describe_legs(t.get('entry_legs', [])))}</td>"
                       f"<td class=l>{esc(describe_legs(t.get('exit_legs', [])))}</td></tr>")
        out.append("</table><p class=note>Expected: the plan's expected net PnL over the holding horizon, logged at "
                   "entry (<code>tx.planned</code>); realised: the journal's, after the close.</p>")
    else:
        out.append("<p class=note>none</p>")
    # ---- consistency and limits
    c = report.get("consistency", {})
    if c:
        out.append("<h2>Consistency</h2><table>")
        out.append(f"<tr><td class=l>every position closed after wind-down</td><td>{_check(bool(c.get('positions_closed')))}</td></tr>")
        out.append(f"<tr><td class=l>journal split: funding + convergence - fees - gas (USD x1e18)</td><td>{esc(str(c.get('split_sum_x18')))}</td></tr>")
        out.append(f"<tr><td class=l>balance change: executor value change - gas (USD x1e18)</td><td>{esc(str(c.get('balance_change_x18')))}</td></tr>")
        out.append(f"<tr><td class=l>equal, to the wei</td><td>{_check(bool(c.get('split_equals_balance_change')))}</td></tr>")
        out.append(f"<tr><td class=l>gas: sum of the keeper's fees (wei) = the owner's ETH spent</td>"
                   f"<td>{esc(str(c.get('gas_wei_from_outcomes')))} / {esc(str(c.get('gas_wei_owner_spent')))} "
                   f"{_check(bool(c.get('gas_wei_equal')))}</td></tr></table>")
        out.append(f"<p class=note>{esc(str(c.get('definition', '')))}</p>")
    lim = report.get("limits", {})
    if lim:
        lowest = lim.get("lowest_margin_ratio")
        out.append("<h2>Limits</h2><table>")
        out.append(f"<tr><td class=l>lowest margin ratio while holding (guard {lim.get('min_margin_ratio')})</td>"
                   f"<td>{'-' if lowest is None else f'{lowest:.4f}'}</td></tr>")
        out.append(f"<tr><td class=l>highest notional in one market (limit ${lim.get('max_notional_usd_per_market', 0):,.0f})</td>"
                   f"<td>${lim.get('highest_notional_usd', 0):,.0f}</td></tr>")
        out.append(f"<tr><td class=l>highest total notional (limit ${lim.get('max_notional_usd_total', 0):,.0f})</td>"
                   f"<td>${lim.get('highest_total_notional_usd', 0):,.0f}</td></tr>")
        out.append(f"<tr><td class=l>liquidations of the executor</td><td>{len(lim.get('liquidations', []))}</td></tr></table>")
    # ---- events
    events = scenario.get("events", [])
    if events:
        out.append("<h2>Scenario events</h2><ul>")
        for e in events:
            out.append(f"<li><code>{esc(json.dumps({k: v for k, v in e.items() if v is not None}))}</code></li>")
        out.append("</ul>")
    # ---- charts
    out.append("<h2>PnL</h2>")
    pnl_series = [
        ("keeper", [s["keeper"].get("marked_usd", s["keeper"]["equity_usd"]) for s in samples], PALETTE[0], False),
        ("threshold bot (paper)", [s.get("baseline_equity_usd") for s in samples], PALETTE[1], False),
        ("carry-only bot (paper)", [s.get("carry_equity_usd") for s in samples], PALETTE[4], False),
    ]
    bound = report.get("optimum", {}).get("pnl", {}).get("total_usd")
    out.append(line_chart("Cumulative PnL", x, pnl_series, unit="USD", bands=bands,
                          hlines=[(bound, f"hindsight optimum {bound:,.0f}", PALETTE[2])] if bound is not None else ()))
    out.append("<p class=note>Each line: realized PnL plus any open position marked to market by an exact close "
               "quote on the snapshot (exit fees, price impact and gas included). For the keeper: its journal PnL "
               "to date plus the close of what it holds after each tick; equal to its PnL split once flat.</p>")
    split_series = [
        ("funding", [s["keeper"]["pnl"]["funding_usd"] for s in samples], PALETTE[2], False),
        ("convergence", [s["keeper"]["pnl"]["convergence_usd"] for s in samples], PALETTE[4], False),
        ("- fees", [-s["keeper"]["pnl"]["fees_usd"] for s in samples], PALETTE[3], False),
        ("- gas", [-s["keeper"]["pnl"]["gas_usd"] for s in samples], PALETTE[5], False),
        ("total", [s["keeper"]["pnl"]["total_usd"] for s in samples], PALETTE[0], False),
    ]
    out.append(line_chart("Keeper PnL split (journal)", x, split_series, unit="USD", bands=bands))
    out.append("<p class=note>From the journal: closed positions as realized, an open one to date (the trades' "
               "cash flows so far, funding settled and pending, gas), not marked to market: while a position is "
               "open its convergence shows the spread captured at entry.</p>")
    out.append(line_chart("Base fee", x, [("base fee", [s["base_fee_gwei"] for s in samples], PALETTE[8], False)],
                          unit="gwei", bands=bands))
    for market in markets:
        ms = [s["markets"].get(market, {}) for s in samples]
        out.append(f"<h2>{esc(market)}</h2>")
        out.append(line_chart(f"{market} prices", x, [
            ("index", [m.get("index_usd") for m in ms], PALETTE[8], False),
            *[(f"spot {venue}", [spot_usd(m, venue) for m in ms], PALETTE[(0, 7, 5, 6)[i % 4]], i > 0)
              for i, venue in enumerate(SPOT_VENUES)],
            ("mark", [m.get("mark_usd") for m in ms], PALETTE[1], False),
            ("perp vAMM", [m.get("perp_mid_usd") for m in ms], PALETTE[3], True)], unit="USD", bands=bands))
        out.append(line_chart(f"{market} basis", x, [
            ("mark vs spot V3", [m.get("basis_bps") for m in ms], PALETTE[1], False),
            ("vAMM vs spot V3", [m.get("spread_bps") for m in ms], PALETTE[3], True)], unit="bps", bands=bands,
            hlines=[(0.0, "0", "#999")]))
        out.append(line_chart(f"{market} funding rate", x, [
            ("longs pay shorts", [None if m.get("funding_rate_per_hour") is None else m["funding_rate_per_hour"] * 100
                                  for m in ms], PALETTE[2], False)], unit="% per hour", bands=bands,
            hlines=[(0.0, "0", "#999")]))
        out.append(line_chart(f"{market} position (base, signed)", x, [
            ("keeper", [m.get("keeper_position_base") for m in ms], PALETTE[0], False),
            ("threshold bot (paper)", [m.get("baseline_position_base") for m in ms], PALETTE[1], True),
            ("carry-only bot (paper)", [m.get("carry_position_base") for m in ms], PALETTE[4], True)], bands=bands))
    # ---- trades
    trades = report.get("keeper", {}).get("trades", [])
    out.append("<h2>Keeper transactions</h2>")
    if trades:
        out.append("<table><tr><th>step</th><th>block</th><th class=l>market</th><th class=l>kind</th>"
                   "<th class=l>direction</th><th class=l>status</th><th>perp base</th><th>net quote USD</th><th>gas</th>"
                   "<th class=l>legs: venue market side size (quote)</th></tr>")
        for t in trades:
            base = "-" if t.get("perp_base") is None else f"{t['perp_base']:+.6g}"
            out.append(f"<tr><td>{t['step']}</td><td>{t.get('block') or '-'}</td><td class=l>{esc(t['market'])}</td>"
                       f"<td class=l>{esc(t['kind'])}</td><td class=l>{esc(t['direction'])}</td>"
                       f"<td class=l>{esc(t['status'])}</td><td>{base}</td><td>{_money(t.get('net_quote_usd'))}</td>"
                       f"<td>{t.get('gas_used', 0):,}</td><td class=l>{esc(describe_legs(t.get('legs', [])))}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class=note>The keeper sent no transaction.</p>")
    for title, rows in (("Threshold bot paper trades", report.get("baseline", {}).get("trades", [])),
                        ("Carry-only bot paper trades", report.get("carry_only", {}).get("trades", [])),
                        ("Hindsight optimum round trips", report.get("optimum", {}).get("trips", []))):
        out.append(f"<h3>{title}</h3>")
        if not rows:
            out.append("<p class=note>none</p>")
            continue
        out.append("<table><tr><th class=l>market</th><th class=l>direction</th><th class=l>venue</th><th>entry block</th>"
                   "<th>exit block</th><th>entry spread bps</th><th>exit spread bps</th><th>total USD</th></tr>")
        for t in rows:
            out.append(f"<tr><td class=l>{esc(t['market'])}</td><td class=l>{esc(str(t['direction']))}</td>"
                       f"<td class=l>{esc(str(t['spot_venue']))}</td><td>{t['entry_block']}</td><td>{t['exit_block']}</td>"
                       f"<td>{_bps(t.get('entry_spread_bps'))}</td><td>{_bps(t.get('exit_spread_bps'))}</td>"
                       f"<td>{_money(int(t['pnl']['total_x18']) / ONE_X18)}</td></tr>")
        out.append("</table>")
    out.append("<p class=note>x axis: scenario step (warm-up steps are 0 and below; shaded: warm-up and wind-down). "
               "Generated by <code>keeper simulate</code>; all numbers are in report.json.</p></body></html>")
    return "\n".join(out)


# Samples recorded before the per-venue prices (and keeper/history's) carry these keys instead.
_SPOT_KEYS_BEFORE_LEGS = {"uniswap_v3": "spot_v3_usd", "uniswap_v2": "spot_v2_usd"}


def spot_usd(market_sample: Mapping[str, Any], venue: str) -> float | None:
    """A sample's spot price on `venue` (USD per spot token), None when not read."""
    by_venue = market_sample.get("spot_usd")
    if isinstance(by_venue, Mapping):
        return by_venue.get(venue)
    key = _SPOT_KEYS_BEFORE_LEGS.get(venue)
    return market_sample.get(key) if key else None


def _bps(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _phase_bands(samples: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, str]]:
    bands = []
    for phase, label in (("warmup", "warm-up"), ("wind_down", "wind-down")):
        steps = [float(s["step"]) for s in samples if s.get("phase") == phase]
        if steps:
            bands.append((min(steps) - 0.5, max(steps) + 0.5, label))
    return bands
