"""Market-state reads: RPC calls and latency per snapshot at M = 1, 10 and 50 markets, against a
naive reader (one eth_call per read) and against raw eth_calls carrying the same payloads
(transport + EVM only: no encoding, no decoding); then exact Python V3 quotes vs QuoterV2."""

from __future__ import annotations

import statistics
import time

from bench.results import record
from keeper.artifacts import abi_codec
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.deploy import DEFAULT_MARKETS, extra_market_specs
from keeper.devnet.world import prebuilt_state, start_world
from keeper.venues.uniswap_v3_math import V3PoolState, compute_v3_swap

SAMPLES = 60
MARKET_COUNTS = (1, 10, 50)


def markets_for(count: int) -> tuple:  # type: ignore[type-arg]
    if count <= len(DEFAULT_MARKETS):
        return DEFAULT_MARKETS[:count]
    return DEFAULT_MARKETS + extra_market_specs(count - len(DEFAULT_MARKETS))


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_markets(count: int) -> None:
    state = prebuilt_state(markets_for(count), progress=lambda label, done, total: None)
    world = start_world(load_state=state)
    try:
        rpc = world.node.rpc
        assert rpc is not None
        collector = SnapshotCollector(rpc, Sources.from_manifest(world.manifest), account=world.manifest.accounts.keeper)
        collector.prepare()
        collector.fetch_snapshot()  # learns tick windows (3 calls once)
        payloads: list[tuple[bytes, object]] = []
        original_run = collector.multicall.run

        def recording_run(calldata: bytes, block: object = "latest"):  # type: ignore[no-untyped-def]
            payloads.append((calldata, block))
            return original_run(calldata, block)  # type: ignore[arg-type]

        collector.multicall.run = recording_run  # type: ignore[method-assign]
        # Interleaved, so both see the same machine load: a snapshot, then the same payloads raw.
        mc = collector.sources.multicall3
        snap_s, raw_s, round_trips = [], [], []
        for _ in range(SAMPLES):
            payloads.clear()
            t0 = time.perf_counter()
            snap = collector.fetch_snapshot()
            snap_s.append(time.perf_counter() - t0)
            round_trips.append(snap.rpc_round_trips)
            block = snap.block_number
            t0 = time.perf_counter()
            for calldata, _ in payloads:
                rpc.call("eth_call", [{"to": mc, "data": "0x" + calldata.hex()}, hex(block)])
            raw_s.append(time.perf_counter() - t0)
        # Naive: every sub-read as its own eth_call (same calls, same block)
        sub_calls = []
        for calldata, _ in payloads:
            sub_calls += _split_aggregate3(calldata)
        naive_s = []
        for _ in range(3):
            t0 = time.perf_counter()
            for target, data in sub_calls:
                rpc.call("eth_call", [{"to": target, "data": "0x" + data.hex()}, hex(block)])
            naive_s.append(time.perf_counter() - t0)
        ratio = statistics.median(snap_s) / statistics.median(raw_s)
        record(f"snapshot_rpc_calls_m{count}", max(round_trips))
        record(f"snapshot_ms_m{count}", _median_ms(snap_s))
        record(f"raw_eth_calls_ms_m{count}", _median_ms(raw_s))
        record(f"snapshot_vs_raw_m{count}", ratio)
        record(f"naive_rpc_calls_m{count}", len(sub_calls))
        record(f"naive_ms_m{count}", _median_ms(naive_s))
        print(f"M={count:>2}: {len(sub_calls):>5} reads | snapshot: {max(round_trips)} RPC calls, "
              f"median {_median_ms(snap_s):7.2f} ms | raw eth_calls, same payloads: {_median_ms(raw_s):7.2f} ms "
              f"(snapshot/raw {ratio:.2f}x) | naive: {len(sub_calls)} RPC calls, {_median_ms(naive_s):8.1f} ms")
        if count == MARKET_COUNTS[0]:
            bench_quotes(world, collector)
    finally:
        world.stop()


def _split_aggregate3(calldata: bytes) -> list[tuple[str, bytes]]:
    from eth_abi import decode

    (calls,) = decode(["(address,bool,bytes)[]"], calldata[4:])
    return [(target, data) for target, _, data in calls]


def bench_quotes(world, collector: SnapshotCollector) -> None:  # type: ignore[no-untyped-def]
    snap = collector.fetch_snapshot()
    view = snap.markets["ETH"]
    pool = view.spot_v3
    assert isinstance(pool, V3PoolState)
    usdc, weth = world.manifest.contracts["USDC"], world.manifest.market("ETH").spot_token
    amount_in = 4_000_000 * 10**6  # crosses initialized ticks
    zero_for_one = int(usdc, 16) < int(weth, 16)
    quoter = abi_codec("QuoterV2")
    calldata = quoter.encode("quoteExactInputSingle", (usdc, weth, amount_in, pool.fee_pips, 0))
    rpc = world.node.rpc
    py = compute_v3_swap(pool, zero_for_one, amount_in)
    on_chain = quoter.decode("quoteExactInputSingle", rpc.eth_call(world.manifest.contracts["QuoterV2"], calldata, snap.block_number))
    n_py, n_rpc = 2000, 200
    t0 = time.perf_counter()
    for _ in range(n_py):
        compute_v3_swap(pool, zero_for_one, amount_in)
    py_qps = n_py / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n_rpc):
        rpc.eth_call(world.manifest.contracts["QuoterV2"], calldata, snap.block_number)
    rpc_qps = n_rpc / (time.perf_counter() - t0)
    record("v3_quote_python_per_s", py_qps)
    record("v3_quote_quoter_eth_call_per_s", rpc_qps)
    record("v3_quote_speedup_x", py_qps / rpc_qps)
    record("v3_quote_difference_wei", py.amount_out_raw - on_chain[0])
    record("v3_quote_initialized_ticks_crossed", py.initialized_ticks_crossed)
    print(f"V3 exact-input quote, 4M USDC -> WETH ({py.initialized_ticks_crossed} initialized ticks crossed): "
          f"Python {py_qps:,.0f}/s vs QuoterV2 eth_call {rpc_qps:,.0f}/s ({py_qps / rpc_qps:.1f}x); "
          f"difference {py.amount_out_raw - on_chain[0]} wei")


def main() -> None:
    print("== market state: snapshot reads ==")
    for count in MARKET_COUNTS:
        bench_markets(count)


