"""Pushed heads from a real anvil over WebSocket: subscription, fallback to polling while the node
is gone, reconnect with backoff, and the blocks the push missed meanwhile, logged."""

from __future__ import annotations

import threading
import time

from structlog.testing import capture_logs

from keeper.chain.heads import Backoff, HeadFeed, ws_url_for
from keeper.chain.rpc import JsonRpc
from keeper.devnet.node import AnvilNode, free_port


def wait_until(condition, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_heads_are_pushed_then_polled_while_the_node_is_gone_and_the_gap_is_logged_on_reconnect() -> None:
    port = free_port()
    node = AnvilNode(port=port)
    rpc = node.start()
    http = JsonRpc(node.rpc_url, timeout_s=2.0)
    feed = HeadFeed(http.block_number, ws_url_for(node.rpc_url), poll_interval_s=0.05,
                    backoff=Backoff(initial_s=3.0, max_s=3.0, jitter=0.0))
    stop = threading.Event()
    try:
        with capture_logs() as logs:
            feed.start()
            assert feed.wait_connected(10.0)
            # given a live subscription: the first head is read, the next mined block is pushed
            assert feed.wait_newer(-1, stop).number == 0  # type: ignore[union-attr]
            rpc.call("evm_mine", [])
            head = feed.wait_newer(0, stop)
            assert head is not None and head.number == 1 and head.source == "ws"
            # when the node goes away, the feed falls back to polling (which fails, and says so)
            node.stop()
            assert wait_until(lambda: not feed.ws_live)
            assert feed.mode == "poll"
            # and a node comes back on the same port, 10 blocks ahead, before the feed reconnects
            node = AnvilNode(port=port)
            rpc = node.start()
            rpc.call("anvil_mine", [hex(10)])
            assert wait_until(lambda: feed.ws_live, 15.0)
            rpc.call("evm_mine", [])
            head = feed.wait_newer(10, stop)
        # then the next pushed head arrives, and the blocks not pushed are counted and logged
        assert head is not None and head.number == 11
        events = [e["event"] for e in logs]
        assert "heads.ws_down" in events and events.count("heads.ws_subscribed") == 2
        missed = [e for e in logs if e["event"] == "heads.missed"]
        assert missed and missed[0]["first"] == 2 and missed[0]["last"] == 10 and missed[0]["blocks"] == 9
        assert feed.reconnects == 1 and feed.missed_blocks == 9
    finally:
        feed.stop()
        node.stop()
