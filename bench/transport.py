"""Transport cost: web3.py's HTTPProvider (keeper.chain.rpc.JsonRpc, what the keeper runs) against
a hand-written requests client (the keeper's former transport, kept here as the yardstick), on the
same node, interleaved.

Per round trip (eth_blockNumber), and per 10-market snapshot (the two big Multicall3 eth_calls);
then the cost per trading tick: the snapshot plus the other round trips a trading tick makes up
to its send (access list, fees, nonce, send). The keeper keeps a hand-written path only where
web3.py costs more than 1 ms per tick.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import requests

from bench.results import record
from bench.snapshot import markets_for
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.world import prebuilt_state, start_world

SAMPLES = 400
SNAPSHOTS = 200
OTHER_ROUND_TRIPS_PER_TRADING_TICK = 4  # eth_createAccessList, fee batch, nonce, eth_sendRawTransaction


class HandWrittenRpc(JsonRpc):
    """JsonRpc with the round trip done by hand: requests.Session.post and response.json()."""

    def _post(self, payload: Any) -> Any:
        self.stats.round_trips += 1
        response = self._session.post(self.url, json=payload, timeout=self.timeout_s)
        response.raise_for_status()
        return response.json()


def _paired_ms(a, b, samples: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Medians of a and b, and the median of the paired differences a - b; the order alternates
    every sample so that neither side always runs on a warmer node or a quieter machine."""
    times_a, times_b, diffs = [], [], []
    for i in range(samples):
        pair = {}
        for name, fn in (("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a)):
            t0 = time.perf_counter()
            fn()
            pair[name] = time.perf_counter() - t0
        times_a.append(pair["a"])
        times_b.append(pair["b"])
        diffs.append(pair["a"] - pair["b"])
    return statistics.median(times_a) * 1000, statistics.median(times_b) * 1000, statistics.median(diffs) * 1000


def main() -> None:
    print("== transport: web3.py HTTPProvider vs hand-written JSON-RPC client ==")
    world = start_world(load_state=prebuilt_state(markets_for(10)))
    try:
        url = world.node.rpc_url
        clients = {"web3": JsonRpc(url), "raw": HandWrittenRpc(url)}
        call_ms = _paired_ms(clients["web3"].block_number, clients["raw"].block_number, SAMPLES)
        collectors = {}
        for name, client in clients.items():
            collector = SnapshotCollector(client, Sources.from_manifest(world.manifest), account=world.manifest.accounts.keeper)
            collector.prepare()
            collector.fetch_snapshot()
            collectors[name] = collector
        snap_ms = _paired_ms(collectors["web3"].fetch_snapshot, collectors["raw"].fetch_snapshot, SNAPSHOTS)
        per_tick = snap_ms[2] + OTHER_ROUND_TRIPS_PER_TRADING_TICK * call_ms[2]
        record("transport_web3_call_ms", call_ms[0])
        record("transport_raw_call_ms", call_ms[1])
        record("transport_web3_snapshot_m10_ms", snap_ms[0])
        record("transport_raw_snapshot_m10_ms", snap_ms[1])
        record("transport_web3_extra_per_tick_ms", per_tick)
        record("transport_web3_extra_per_call_ms", call_ms[2])
        record("transport_web3_extra_per_snapshot_m10_ms", snap_ms[2])
        print(f"eth_blockNumber round trip: web3.py {call_ms[0]:.3f} ms, hand-written {call_ms[1]:.3f} ms, "
              f"paired difference {call_ms[2]:+.3f} ms (median of {SAMPLES}, order alternating)")
        print(f"snapshot, 10 markets (2 eth_calls): web3.py {snap_ms[0]:.2f} ms, hand-written {snap_ms[1]:.2f} ms, "
              f"paired difference {snap_ms[2]:+.2f} ms (median of {SNAPSHOTS})")
        verdict = "web3.py serves" if per_tick <= 1.0 else "over the limit: a hand-written path would pay"
        print(f"web3.py's extra cost per trading tick (snapshot + {OTHER_ROUND_TRIPS_PER_TRADING_TICK} round trips): "
              f"{per_tick:+.2f} ms (limit 1 ms: {verdict})")
        for client in clients.values():
            client.close()
    finally:
        world.stop()
