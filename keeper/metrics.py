"""Prometheus metrics on 127.0.0.1:<monitoring.metrics_port>/metrics (off when the port is 0).

Names carry units; labels are bounded (markets, venues, statuses), never addresses or hashes.
"""

from __future__ import annotations

import math
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from keeper.errors import ConfigError
from keeper.pnl_split import ONE_X18, PnlSplit


class KeeperMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.block_number = Gauge("keeper_block_number", "Block of the latest snapshot", registry=r)
        self.basis_bps = Gauge("keeper_basis_bps", "Perp mark vs spot, bps", ["market", "venue"], registry=r)
        self.basis_zscore = Gauge("keeper_basis_zscore", "Basis z-score vs recent history", ["market", "venue"], registry=r)
        self.funding_apr = Gauge("keeper_funding_apr_ratio", "Funding APR (positive: longs pay)", ["market"], registry=r)
        self.carry_apr = Gauge("keeper_carry_apr_ratio", "Funding carry APR by direction", ["market", "direction"], registry=r)
        self.position_base = Gauge("keeper_position_base", "Perp position, base units (negative: short)", ["market"], registry=r)
        self.pnl_usd = Gauge("keeper_pnl_usd", "Realized PnL by component (fees and gas negative; the sum is the total)",
                             ["component"], registry=r)
        self.margin_ratio = Gauge("keeper_margin_ratio", "Executor account value / position value (NaN: no position)",
                                  registry=r)
        self.margin_ratio.set(math.nan)
        self.tick_seconds = Histogram("keeper_tick_seconds", "Tick latency: snapshot to outcome",
                                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.snapshot_seconds = Histogram("keeper_snapshot_seconds", "Snapshot read latency",
                                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1), registry=r)
        self.rpc_errors = Counter("keeper_rpc_errors_total", "RPC errors (transient)", registry=r)
        self.tx_outcomes = Counter("keeper_tx_outcomes_total", "Transaction outcomes", ["status"], registry=r)
        self.decisions = Counter("keeper_decisions_total", "Strategy decisions", ["strategy", "kind", "result"], registry=r)
        self.skips = Counter("keeper_skips_total", "Opportunities skipped, by stage", ["stage"], registry=r)
        self.tick_errors = Counter("keeper_tick_errors_total", "Exceptions caught at the engine's boundary, by group",
                                   ["group"], registry=r)
        self.quarantined = Gauge("keeper_quarantined_markets", "Markets quarantined (not traded)", registry=r)
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None

    def publish_pnl(self, realized: PnlSplit) -> None:
        """keeper_pnl_usd{component}: realized funding and convergence, fees and gas as negatives,
        so that sum(keeper_pnl_usd) is the realized total."""
        for component, value_x18 in (("funding", realized.funding_x18), ("convergence", realized.convergence_x18),
                                     ("fees", -realized.fees_x18), ("gas", -realized.gas_x18)):
            self.pnl_usd.labels(component).set(value_x18 / ONE_X18)

    def publish_margin_ratio(self, margin_ratio: float | None) -> None:
        """NaN with no position (no ratio): never a 0 that reads as 'liquidatable', never a stale value."""
        self.margin_ratio.set(math.nan if margin_ratio is None else margin_ratio)

    def bind(self, port: int) -> None:
        """Takes 127.0.0.1:port for the metrics server now (0: off), before anything is sent, so
        that no other process can take it between the check and serving; `serve` then answers on
        it. A port another process holds is a ConfigError naming monitoring.metrics_port."""
        if port and self._server is None:
            try:
                self._server = make_server("127.0.0.1", port, make_wsgi_app(self.registry), _Server,
                                           handler_class=_QuietHandler)
            except OSError as exc:
                raise _port_error(port, exc) from exc

    def serve(self, port: int) -> None:
        """Answers scrapes on the bound port (binding it first if `bind` was not called)."""
        self.bind(port)
        if self._server is not None and self._serving is None:
            self._serving = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
            self._serving.start()

    def close(self) -> None:
        """Stops serving and frees the port (a keeper that failed to start, or stopped)."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._serving is not None:
            server.shutdown()  # returns once serve_forever has (only call it when serving: it waits for that)
            self._serving = None
        server.server_close()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds the keeper's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (the keeper's log is its structured events)."""


def _port_error(port: int, exc: OSError) -> ConfigError:
    return ConfigError(f"monitoring.metrics_port: cannot serve metrics on 127.0.0.1:{port} ({exc.strerror or exc}; "
                       "another keeper or process may hold it: pick another port, or 0 for none)")
