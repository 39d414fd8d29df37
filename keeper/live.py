"""`keeper run` on a terminal: a live panel instead of a wall of log lines.

Per market: the tradable basis the Signal carries (per spot venue), funding APR, basis z-score,
the position and its unrealised PnL; the account's margin ratio; the last decisions and
transactions; how heads arrive (pushed over ws, or polled). The logs still go out whole, as JSON
lines, to the file named in the panel (monitoring.log_file). Off a terminal, or with
monitoring.live_panel = "off", nothing changes: log lines on stderr, as before.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from keeper.config import KeeperConfig
from keeper.errors import ConfigError
from keeper.logs import configure_logging
from keeper.signals import Signal
from keeper.types import MarketSnapshot, PerpAccountState, Position

# Events shown in the panel's "recent" list, with the fields that say what happened.
RECENT_EVENTS: dict[str, tuple[str, ...]] = {
    "decision.intent": ("market", "kind", "direction", "expected_net_usd"),
    "tx.planned": ("market", "kind", "expected_net_usd"),
    "decision.skipped": ("market", "kind", "stage", "reason"),
    "decision.frozen": ("reason",),
    "tx.sent": ("tx_hash", "nonce"),
    "tx.outcome": ("market", "kind", "status", "tx_hash"),
    "tx.simulation_reverted": ("label", "reason"),
    "tx.replaced": ("tx_hash", "nonce"),
    "tx.reorged": ("tx_hash", "block"),
    "strategy.failed": ("strategy", "error"),
    "strategy.disabled": ("strategy", "reason"),
    "heads.ws_down": ("reason", "retry_in_s"),
    "heads.ws_subscribed": ("reconnects",),
    "heads.missed": ("first", "last", "blocks", "covered_by_polling"),
    "rpc.failover": ("from_url", "to_url"),
    "rpc.demoted": ("url", "reason"),
    "rpc.restored": ("url",),
    "tick.skipped": ("reason",),
    "kill_switch.signal": ("action",),
    "kill_switch.pulled": ("markets", "source"),
    "kill_switch.released": ("path",),
    "warm_start.progress": ("read", "planned", "seconds"),  # the start-up's past blocks (keeper/warm_start.py)
    "warm_start.done": ("read", "seconds"),
    "warm_start.partial": ("read", "first_unreadable", "seconds"),
    "warm_start.failed": ("error",),
}
# Any other event at warning or above is an incident the panel shows too, with these fields if it has them.
INCIDENT_FIELDS = ("market", "kind", "unknown", "reason", "error", "tx_hash")
INCIDENT_METHODS = frozenset({"warning", "warn", "error", "exception", "critical", "fatal"})
RECENT_LINES = 8


@dataclass
class MarketRow:
    market: str
    basis_bps: dict[str, float]  # per spot venue, as the Signal carries it
    funding_apr: float | None
    zscore: float | None
    position_base: float
    upnl_usd: float | None


@dataclass
class LiveState:
    """What the panel shows; updated by the block loop (after each tick) and by the log tap."""

    log_file: Path
    mode: str = "starting"
    chain_id: int | None = None
    block: int | None = None
    heads: str = "-"
    tick_ms: float | None = None
    ticks: int = 0
    margin_ratio: float | None = None
    free_collateral_usd: float | None = None
    rows: list[MarketRow] = field(default_factory=list)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_LINES))
    last_decision: dict[str, str] = field(default_factory=dict)  # market -> "strategy: reason" (skip or intent)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ feeding it
    def tap(self, _logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor: remembers the events worth showing (those of RECENT_EVENTS, and
        any other at warning or above), passes every event on."""
        name = event.get("event")
        if name == "keeper.started":
            with self.lock:
                self.mode, self.chain_id = str(event.get("mode")), event.get("chain_id")
        if name in ("decision.skip", "decision.intent") and event.get("market"):
            with self.lock:
                self.last_decision[str(event["market"])] = f"#{event.get('block')} {event.get('strategy')}: {event.get('reason')}"
        keys = RECENT_EVENTS.get(str(name), INCIDENT_FIELDS if method in INCIDENT_METHODS else None)
        if keys is not None:
            stamp = time.strftime("%H:%M:%S")
            details = " ".join(f"{k}={_short(event[k])}" for k in keys if event.get(k) is not None)
            block = event.get("block")
            where = f"#{block} " if block is not None else ""
            with self.lock:
                self.recent.appendleft(f"{stamp} {where}{name} {details}")
        return event

    def observe_tick(self, snapshot: MarketSnapshot, signals: tuple[Signal, ...], positions: Mapping[str, Position],
                     tick_ms: float, heads: str) -> None:
        rows = compute_rows(snapshot, signals, positions)
        account = snapshot.account
        with self.lock:
            self.block, self.tick_ms, self.heads, self.rows = snapshot.block_number, tick_ms, heads, rows
            self.ticks += 1
            if isinstance(account, PerpAccountState):
                self.margin_ratio = account.margin_ratio
                self.free_collateral_usd = account.free_collateral_raw / 10**6

    # ------------------------------------------------------------------ drawing it
    def __rich__(self) -> Panel:
        with self.lock:
            return self._render()

    def _render(self) -> Panel:
        head = Text.assemble(
            ("mode ", "dim"), (self.mode, "bold"), ("  chain ", "dim"), (str(self.chain_id or "-"),),
            ("  block ", "dim"), (str(self.block or "-"), "bold"), ("  heads ", "dim"), (self.heads,),
            ("  tick ", "dim"), ("-" if self.tick_ms is None else f"{self.tick_ms:.1f} ms",),
            ("  ticks ", "dim"), (str(self.ticks),))
        venues = sorted({v for r in self.rows for v in r.basis_bps})
        table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
        table.add_column("market")
        for venue in venues:
            table.add_column(f"basis {venue.replace('uniswap_', '')} bps", justify="right")
        for title in ("funding APR", "z", "position", "uPnL $"):
            table.add_column(title, justify="right")
        for r in self.rows:
            basis = [_signed(r.basis_bps.get(v), "+.1f") for v in venues]
            table.add_row(r.market, *basis, _signed(r.funding_apr, "+.2%"), _signed(r.zscore, "+.2f"),
                          "-" if r.position_base == 0 else f"{r.position_base:+.4f}", _signed(r.upnl_usd, "+,.2f"))
        decisions = Text("\n".join(f"{market:<6} {line}" for market, line in sorted(self.last_decision.items()))
                         or "(none yet)", overflow="ellipsis", no_wrap=True)
        margin = "- (no position)" if self.margin_ratio is None else f"{self.margin_ratio:.3f}"
        free = "-" if self.free_collateral_usd is None else f"{self.free_collateral_usd:,.0f}"
        account = Text.assemble(("margin ratio ", "dim"), (margin, "bold"), ("  free collateral $", "dim"), (free,))
        recent = Text("\n".join(self.recent) if self.recent else "(no decision or transaction yet)", overflow="ellipsis",
                      no_wrap=True)
        footer = Text.assemble(("logs: ", "dim"), (str(self.log_file),), ("  Ctrl-C stops after the tick in flight", "dim"))
        body = Group(head, Text(""), table, Text(""), account, Text(""),
                     Text("last decision per market (when its reason last changed)", style="bold"), decisions, Text(""),
                     Text("last intents, transactions and incidents", style="bold"), recent, Text(""), footer)
        return Panel(body, title="basis-keeper", title_align="left")


def compute_rows(snapshot: MarketSnapshot, signals: tuple[Signal, ...], positions: Mapping[str, Position]) -> list[MarketRow]:
    """One row per market, from the tick's own snapshot and signals (no extra reads)."""
    by_market: dict[str, list[Signal]] = {}
    for s in signals:
        by_market.setdefault(s.market, []).append(s)
    rows = []
    for market in sorted(set(snapshot.markets) | set(positions)):
        found = by_market.get(market, [])
        position = positions.get(market)
        zscores = [s.basis_zscore for s in found if s.basis_zscore is not None]
        rows.append(MarketRow(
            market=market, basis_bps={s.spot_venue: s.basis_bps for s in found},
            funding_apr=found[0].funding_apr if found else None,
            zscore=max(zscores, key=abs) if zscores else None,
            position_base=0.0 if position is None else position.perp_base_x18 / 10**18,
            upnl_usd=None if position is None else estimate_upnl_usd(position, snapshot, found)))
    return rows


def estimate_upnl_usd(position: Position, snapshot: MarketSnapshot, signals: list[Signal]) -> float | None:
    """What closing both legs at today's mark and spot would leave, before exit fees and impact:
    net quote so far + perp base x mark + spot held x spot - funding paid. Display only (float)."""
    signal = next((s for s in signals if s.spot_venue == position.spot_venue), None)
    view = snapshot.markets.get(position.market)
    if signal is None or view is None:
        return None
    spot_units = position.spot_raw / 10**view.spot_token_decimals
    return (position.net_quote_x18 / 10**18 + position.perp_base_x18 / 10**18 * signal.mark_price_usd
            + spot_units * signal.spot_price_usd - position.funding_paid_x18 / 10**18)


def _signed(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _short(value: Any) -> str:
    text = str(value)
    if text.startswith("0x") and len(text) > 14:
        return text[:10] + "…"
    return text if len(text) <= 90 else text[:89] + "…"


class LiveView:
    """The panel on the terminal, with the logs redirected to a file while it shows."""

    def __init__(self, state: LiveState, console: Console, log_stream: IO[str]) -> None:
        self.state = state
        self._log_stream = log_stream
        self._live = Live(state, console=console, refresh_per_second=4, transient=False)
        self._started = False

    def start(self) -> LiveView:
        """Draw the panel (the block loop calls this once start-up checks have passed, so that a
        start-up error is one line, not an empty panel)."""
        if not self._started:
            self._started = True
            self._live.start()
        return self

    def stop(self) -> None:
        if self._started:
            self._live.stop()
            self._live.console.print(f"stopped after {self.state.ticks} ticks; the whole log is in {self.state.log_file}",
                                     highlight=False)
        self._log_stream.close()


def start_live_view(config: KeeperConfig, console: Console | None = None) -> LiveView | None:
    """On a terminal (and unless monitoring.live_panel = "off"): logs to the file now, and the
    panel, drawn once the block loop starts. Otherwise: configure logging as usual (lines on
    stderr) and return None."""
    console = console or Console()
    monitoring = config.monitoring
    on_terminal = sys.stdout.isatty() and sys.stderr.isatty()
    if monitoring.live_panel == "off" or not on_terminal:
        fmt = monitoring.log_format
        configure_logging(monitoring.log_level, json_lines=None if fmt == "auto" else fmt == "json")
        return None
    path = monitoring.log_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"monitoring.log_file {path}: cannot write it ({exc.strerror or exc})") from exc
    state = LiveState(log_file=path)
    configure_logging(monitoring.log_level, json_lines=True, stream=stream, tap=state.tap)
    return LiveView(state, console, stream)
