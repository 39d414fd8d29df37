"""Block mined -> the keeper's transaction in the node's pool, 10 markets, anvil interval mining
(targets with pushed heads: p50 <= 50 ms, p90 <= 80 ms), for pushed heads (ws) and for HTTP
polling (chain.poll_interval_s) in the same run, on the same chain.

The real block loop runs (keeper.blockloop.run_blocks, live, with a key). anvil mines a block
every second on its own (interval mining, automine off); before a block the bench queues one
market-activity step with a premium shock in one market, so that the keeper trades right after
that block. Both ends are seen by an independent observer on its own WebSocket connection:
`newHeads` (the block was mined) and `newPendingTransactions` (the keeper's transaction entered the
pool), so the figure includes the keeper learning of the block, the tick, signing and sending;
the observer's own notification delay is on both ends and cancels.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from websockets.sync.client import connect

from bench.results import record
from bench.snapshot import markets_for
from bench.tick import start_live_keeper, warm_up
from keeper.blockloop import run_blocks
from keeper.chain.heads import HeadFeed, ws_url_for
from keeper.devnet.activity import MarketActivity
from keeper.devnet.world import prebuilt_state, start_world
from keeper.errors import TxRevertedError
from keeper.logs import configure_logging
from keeper.runtime import Runtime

ROUNDS = 30
BLOCK_TIME_S = 1


class Observer:
    """Arrival times (perf_counter) of new heads and pending transactions, on its own socket."""

    def __init__(self, ws_url: str) -> None:
        self.heads: dict[int, float] = {}
        self.pending: dict[str, float] = {}
        self._socket = connect(ws_url, max_size=None)
        self._kinds: dict[str, str] = {}
        for request_id, kind in ((1, "newHeads"), (2, "newPendingTransactions")):
            self._socket.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "eth_subscribe", "params": [kind]}))
            reply = json.loads(self._socket.recv())
            self._kinds[reply["result"]] = kind
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._socket:
                now = time.perf_counter()
                params = json.loads(raw).get("params") or {}
                kind, result = self._kinds.get(params.get("subscription", "")), params.get("result")
                if kind == "newHeads":
                    self.heads[int(result["number"], 16)] = now
                elif kind == "newPendingTransactions":
                    self.pending[str(result).lower()] = now
        except Exception:  # noqa: BLE001 - the socket closes when the bench ends
            return

    def close(self) -> None:
        self._socket.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _wait_for_new_head(observer: Observer, timeout_s: float = 3 * BLOCK_TIME_S) -> int:
    seen = max(observer.heads, default=-1)
    deadline = time.monotonic() + timeout_s
    while max(observer.heads, default=-1) == seen and time.monotonic() < deadline:
        time.sleep(0.005)
    return max(observer.heads, default=-1)


def _drive_rounds(driver: MarketActivity, observer: Observer, sent: list[tuple[str, int]], rounds: int, offset: int,
                  done: threading.Event) -> None:
    """The bench's side: one premium shock per round, then wait for the keeper's reaction."""
    names = [m.name for m in driver.manifest.markets]
    try:
        for i in range(rounds):
            market = names[((offset + i) // 2) % len(names)]
            driver.shock_premium(market, -0.03 if i % 2 == 0 else 0.0)  # open long perp, then converge
            before = len(sent)
            # The miner pauses while the step is queued, so that one block carries all of it; the
            # bench is then idle (this process's GIL free) while the keeper reacts to that block.
            driver.rpc.call("evm_setIntervalMining", [0])
            driver.queue_step()
            driver.rpc.call("evm_setIntervalMining", [BLOCK_TIME_S])
            deadline = time.monotonic() + 4 * BLOCK_TIME_S
            while len(sent) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2.5 * BLOCK_TIME_S)  # the keeper's transaction mined and confirmed
            try:
                driver.tx.settle()
            except TxRevertedError as exc:  # an arbitrage trade that lost the race to the keeper's
                print(f"  (driver trade reverted after the keeper's: {exc.reason[:80]})")
    finally:
        done.set()
        os.kill(os.getpid(), signal.SIGINT)  # stops the block loop after its tick in flight


def _measure(runtime: Runtime, driver: MarketActivity, observer: Observer, ws_url: str | None,
             offset: int) -> list[float]:
    sent: list[tuple[str, int]] = []  # (tx hash, head block the keeper was ticking on)
    ticks: list[tuple[float, float]] = []  # (start, end) of every tick, perf_counter
    original_call = runtime.rpc.call

    def recording_call(method, params=None):  # type: ignore[no-untyped-def]
        result = original_call(method, params)
        if method == "eth_sendRawTransaction":
            sent.append((str(result).lower(), runtime.engine.last_block))
        return result

    runtime.rpc.call = recording_call  # type: ignore[method-assign]
    if ws_url is None:  # polling only; the sender's receipt waits are plain sleeps too
        feed = HeadFeed(runtime.rpc.block_number, None, poll_interval_s=runtime.config.chain.poll_interval_s)
    else:  # the keeper's own feed: pushed heads also wake the sender's receipt polling
        feed = runtime.heads
        assert feed is not None and feed.ws_url == ws_url
    learnt: dict[int, float] = {}
    original_offer = feed._offer

    def recording_offer(head):  # type: ignore[no-untyped-def]
        learnt.setdefault(head.number, head.received_s)
        original_offer(head)

    feed._offer = recording_offer  # type: ignore[method-assign]
    original_tick = runtime.engine.tick

    def recording_tick(head_block=None):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original_tick(head_block)
        finally:
            ticks.append((started, time.perf_counter()))

    runtime.engine.tick = recording_tick  # type: ignore[method-assign]
    done = threading.Event()
    bench = threading.Thread(target=_drive_rounds, args=(driver, observer, sent, ROUNDS, offset, done), daemon=True)
    bench.start()
    try:
        run_blocks(runtime, blocks=None, feed=feed)
    finally:
        runtime.rpc.call = original_call  # type: ignore[method-assign]
        runtime.engine.tick = original_tick  # type: ignore[method-assign]
        done.wait(30)
    time.sleep(0.2)
    latencies, learn_ms, after_own = [], [], []
    firsts = {}
    for tx_hash, block in sent:
        firsts.setdefault(block, tx_hash)  # the first transaction the block led to
    for block, tx_hash in firsts.items():
        mined_at, in_pool_at = observer.heads.get(block), observer.pending.get(tx_hash)
        if mined_at is None or in_pool_at is None:
            continue
        if any(start <= mined_at < end for start, end in ticks):
            # a tick was still running when the block came: the keeper was waiting for its previous
            # transaction's receipt (the sender confirms before the loop takes the next head)
            after_own.append((in_pool_at - mined_at) * 1000)
            continue
        latencies.append((in_pool_at - mined_at) * 1000)
        if block in learnt:
            learn_ms.append((learnt[block] - mined_at) * 1000)
    mode = "ws" if ws_url else "poll"
    if learn_ms:
        record(f"e2e_{mode}_learn_head_p50_ms", statistics.median(learn_ms))
        record(f"e2e_{mode}_transactions", len(sent))
        print(f"  ({mode}: the keeper learnt of a block {statistics.median(learn_ms):.1f} ms (median) after the "
              f"observer; {len(sent)} transactions in {ROUNDS} rounds)")
    if after_own:
        record(f"e2e_{mode}_after_own_tx_p50_ms", statistics.median(after_own))
        record(f"e2e_{mode}_after_own_tx_n", len(after_own))
        print(f"  ({mode}: {len(after_own)} blocks came while a tick was still waiting for its own transaction's "
              f"receipt: p50 {statistics.median(after_own):.1f} ms from those blocks; not in the figure below)")
    return latencies


def main() -> None:
    print("== block mined -> keeper transaction in the node's pool (10 markets, interval mining) ==")
    log_path = Path("build/bench-e2e.log")  # the keeper's own log lines, to see what it decided
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_stream = log_path.open("w", encoding="utf-8")
    configure_logging("INFO", json_lines=True, stream=log_stream)
    world = start_world(load_state=prebuilt_state(markets_for(10)))
    observer = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runtime, driver = start_live_keeper(world, Path(tmp))
            warm_up(runtime, driver)
            rpc = driver.rpc
            rpc.call("evm_setAutomine", [False])
            rpc.call("evm_setIntervalMining", [BLOCK_TIME_S])
            ws_url = ws_url_for(world.node.rpc_url)
            observer = Observer(ws_url)
            polled = _measure(runtime, driver, observer, None, offset=0)
            pushed = _measure(runtime, driver, observer, ws_url, offset=ROUNDS)
            runtime.close()
        poll_s = runtime.config.chain.poll_interval_s
        for label, name, values in (("pushed heads (ws)", "e2e_block_to_pool", pushed),
                                    (f"HTTP polling every {poll_s:g} s", "e2e_poll_block_to_pool", polled)):
            if not values:
                print(f"{label}: the keeper sent no transaction in {ROUNDS} rounds")
                continue
            p50 = record(f"{name}_p50_ms", statistics.median(values))
            p90 = record(f"{name}_p90_ms", _percentile(values, 0.9))
            record(f"{name}_n", len(values))
            record(f"{name}_max_ms", max(values))
            print(f"{label:<28} block mined -> tx in pool: p50 {p50:6.1f} ms, p90 {p90:6.1f} ms, "
                  f"max {max(values):6.1f} ms over {len(values)} transactions")
        record("e2e_rounds", ROUNDS)
        record("e2e_block_time_s", BLOCK_TIME_S)
        print("(target with pushed heads: p50 <= 50 ms, p90 <= 80 ms; anvil mining a block every "
              f"{BLOCK_TIME_S} s, 10 markets)")
    finally:
        if observer is not None:
            observer.close()
        world.stop()
        log_stream.close()
