import urllib.request

from keeper.devnet.node import free_port
from keeper.metrics import KeeperMetrics


def test_given_metrics_served_when_scraped_then_values_and_labels_are_exposed() -> None:
    metrics = KeeperMetrics()
    port = free_port()
    metrics.serve(port)
    metrics.basis_bps.labels("ETH", "uniswap_v3").set(12.5)
    metrics.tx_outcomes.labels("included").inc()
    metrics.tick_seconds.observe(0.02)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'keeper_basis_bps{market="ETH",venue="uniswap_v3"} 12.5' in body
    assert 'keeper_tx_outcomes_total{status="included"} 1.0' in body
    assert "keeper_tick_seconds_bucket" in body


def test_given_port_zero_then_nothing_is_served() -> None:
    KeeperMetrics().serve(0)  # no server, no error


def test_a_bound_port_is_held_until_served_and_freed_by_close() -> None:
    import socket

    import pytest

    port = free_port()
    metrics = KeeperMetrics()
    metrics.bind(port)  # at start: taken, not served yet
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port))  # no other process can take it before the keeper serves
    metrics.block_number.set(7)
    metrics.serve(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "keeper_block_number 7.0" in body
    metrics.close()
    metrics.close()  # idempotent
    with socket.socket() as other:
        # SO_REUSEADDR: the served request's connection may linger in TIME_WAIT on this port (flaky
        # without it); a listener still bound there would make the bind fail all the same
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))  # free again
