"""Prometheus metrics on 127.0.0.1:<monitoring.metrics_port>/metrics (off when the port is 0).

Names carry units; labels are bounded (markets, venues, statuses), never addresses or hashes.
"""

from __future__ import annotations

import math
import socket

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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

    def publish_pnl(self, realized: PnlSplit) -> None:
        """keeper_pnl_usd{component}: realized funding and convergence, fees and gas as negatives,
        so that sum(keeper_pnl_usd) is the realized total."""
        for component, value_x18 in (("funding", realized.funding_x18), ("convergence", realized.convergence_x18),
                                     ("fees", -realized.fees_x18), ("gas", -realized.gas_x18)):
            self.pnl_usd.labels(component).set(value_x18 / ONE_X18)

    def publish_margin_ratio(self, margin_ratio: float | None) -> None:
        """NaN with no position (no ratio): never a 0 that reads as 'liquidatable', never a stale value."""
        self.margin_ratio.set(math.nan if margin_ratio is None else margin_ratio)

    def serve(self, port: int) -> None:
        if port:
            try:
                start_http_server(port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                raise _port_error(port, exc) from exc


def check_metrics_port(port: int) -> None:
    """At start, before anything is sent: monitoring.metrics_port must be free on 127.0.0.1 (0: off)."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the metrics server binds it
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise _port_error(port, exc) from exc


def _port_error(port: int, exc: OSError) -> ConfigError:
    return ConfigError(f"monitoring.metrics_port: cannot serve metrics on 127.0.0.1:{port} ({exc.strerror or exc}; "
                       "another keeper or process may hold it: pick another port, or 0 for none)")
