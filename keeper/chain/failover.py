"""Several RPC endpoints behind one `JsonRpc`: a primary and backups, with failover and demotion.

Each round trip goes to the first usable endpoint in the configured order. An endpoint that fails
at the transport level (unreachable, timeout, HTTP 429/5xx) is benched for a backoff period and
the call moves on to the next one at once; the primary takes over again when its bench time is
over. `check_heads()` reads every endpoint's head through its own probe client (short timeout):
a node more than `max_lag_blocks` behind the best head, or whose head has not moved for
`max_lag_s` while another's has, is demoted (`rpc.demoted`) until it catches up
(`rpc.restored`). `start_head_checks()` runs it on a background thread, so that a node that
hangs never delays a tick. When every endpoint is demoted or benched, the best of them still
serves: a lagging answer beats none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keeper.chain.retry import LIVE_ATTEMPTS, RetryCalls, RetryingJsonRpc
from keeper.chain.rpc import JsonRpc
from keeper.config import ChainConfig
from keeper.errors import TransientError
from keeper.logs import get_logger

log = get_logger("keeper.rpc")


PROBE_TIMEOUT_S = 2.0


@dataclass
class Endpoint:
    client: JsonRpc
    probe: JsonRpc  # for head checks, on the checker's thread
    head: int = -1
    head_moved_s: float = field(default_factory=time.monotonic)
    demoted: str | None = None  # why, while demoted
    benched_until_s: float = 0.0
    failures: int = 0
    name: str = "chain.rpc_url"  # the setting it comes from: logs show hosts only (API keys)

    @property
    def url(self) -> str:
        return self.client.url


class FailoverRpc(JsonRpc):
    """`JsonRpc` over several endpoints (the same chain), in order of preference."""

    def __init__(self, clients: Sequence[JsonRpc], *, max_lag_blocks: int = 3, max_lag_s: float = 30.0,
                 bench_s: float = 5.0, bench_max_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 probes: Sequence[JsonRpc] | None = None, names: Sequence[str] | None = None) -> None:
        if not clients:
            raise ValueError("FailoverRpc needs at least one endpoint")
        super().__init__(clients[0].url, clients[0].timeout_s)
        probes = probes or [JsonRpc(c.url, timeout_s=min(PROBE_TIMEOUT_S, c.timeout_s)) for c in clients]
        names = names or ["chain.rpc_url"] + [f"chain.backup_rpc_urls[{i}]" for i in range(len(clients) - 1)]
        self.endpoints = [Endpoint(c, p, head_moved_s=clock(), name=n) for c, p, n in zip(clients, probes, names)]
        self.max_lag_blocks = max_lag_blocks
        self.max_lag_s = max_lag_s
        self.bench_s = bench_s
        self.bench_max_s = bench_max_s
        self._clock = clock
        self._active = self.endpoints[0]
        self._checks_stop = threading.Event()
        self._checker: threading.Thread | None = None

    @property
    def active_url(self) -> str:
        return self._active.url

    def close(self) -> None:
        self.stop_head_checks()
        for endpoint in self.endpoints:
            endpoint.client.close()
            endpoint.probe.close()
        super().close()

    def start_head_checks(self, interval_s: float) -> None:
        """check_heads() every `interval_s` on a daemon thread, until stop_head_checks()."""
        if self._checker is not None or len(self.endpoints) < 2:
            return
        self._checks_stop.clear()

        def run() -> None:
            while not self._checks_stop.wait(interval_s):
                self.check_heads()

        self._checker = threading.Thread(target=run, name="rpc-head-checks", daemon=True)
        self._checker.start()

    def stop_head_checks(self) -> None:
        self._checks_stop.set()
        if self._checker is not None:
            self._checker.join(PROBE_TIMEOUT_S * 4)
            self._checker = None

    def _order(self) -> list[Endpoint]:
        now = self._clock()
        usable = [e for e in self.endpoints if not e.demoted and e.benched_until_s <= now]
        rest = sorted((e for e in self.endpoints if e not in usable), key=lambda e: (e.benched_until_s > now, -e.head))
        return usable + rest

    def _post(self, payload: Any) -> Any:
        self.stats.round_trips += 1
        failures: list[TransientError] = []
        for endpoint in self._order():
            try:
                reply = endpoint.client._post(payload)
            except TransientError as exc:
                failures.append(exc)
                endpoint.failures += 1
                pause = min(self.bench_s * 2 ** (endpoint.failures - 1), self.bench_max_s)
                endpoint.benched_until_s = self._clock() + pause
                log.warning("rpc.endpoint_failed", endpoint=endpoint.name, url=endpoint.url, error=str(exc),
                            benched_s=pause)
                continue
            endpoint.failures = 0
            if endpoint is not self._active:
                log.warning("rpc.failover", from_endpoint=self._active.name, to_endpoint=endpoint.name,
                            from_url=self._active.url, to_url=endpoint.url)
                self._active = endpoint
                self.url = endpoint.url
            return reply
        # a node that may come back is the one to report (start-up retries it); a refusal (a wrong
        # URL or key: keeper/startup.py ends the start) only when every endpoint refused
        passing = [f for f in failures if not f.refuses]
        refused = [f for f in failures if f not in passing]
        if passing and refused:  # the wait goes on, and the wrong URL is named with it
            raise TransientError(f"{passing[0]}; and another endpoint refused: {refused[0]}") from passing[0]
        raise (passing or failures or [TransientError("no RPC endpoint configured")])[0]

    def check_heads(self) -> None:
        """Read every endpoint's head; demote the laggards, restore the ones that caught up."""
        if len(self.endpoints) < 2:
            return
        now = self._clock()
        for endpoint in self.endpoints:
            try:
                head = endpoint.probe.block_number()
            except TransientError as exc:
                log.debug("rpc.head_unreadable", endpoint=endpoint.name, url=endpoint.url, error=str(exc))
                continue
            if head > endpoint.head:
                endpoint.head, endpoint.head_moved_s = head, now
        best = max(e.head for e in self.endpoints)
        best_moved_s = max(e.head_moved_s for e in self.endpoints if e.head == best)
        for endpoint in self.endpoints:
            if endpoint.head < 0:
                continue
            lag_blocks = best - endpoint.head
            stalled_s = now - endpoint.head_moved_s
            reason = None
            if lag_blocks > self.max_lag_blocks:
                reason = f"head {endpoint.head} is {lag_blocks} blocks behind {best}"
            elif lag_blocks > 0 and stalled_s > self.max_lag_s and best_moved_s > endpoint.head_moved_s:
                reason = f"head {endpoint.head} has not moved for {stalled_s:.0f} s while another node's has"
            if reason and not endpoint.demoted:
                endpoint.demoted = reason
                log.warning("rpc.demoted", endpoint=endpoint.name, url=endpoint.url, reason=reason, head=endpoint.head, best_head=best)
            elif not reason and endpoint.demoted:
                endpoint.demoted = None
                log.info("rpc.restored", endpoint=endpoint.name, url=endpoint.url, head=endpoint.head, best_head=best)


class RetryingFailoverRpc(RetryCalls, FailoverRpc):
    """A FailoverRpc whose calls are retried (keeper/chain/retry.py) when every node failed."""


def connect_rpc(chain: ChainConfig, primary_url: str, *, attempts: int = LIVE_ATTEMPTS,
                backoff_max_s: float = 1.0) -> JsonRpc:
    """The keeper's RPC client for `primary_url`, and with chain.backup_rpc_urls, a FailoverRpc
    over all of them (primary first); transient failures retried `attempts` times per call."""
    named = [(primary_url, "chain.rpc_url")] + [(u, f"chain.backup_rpc_urls[{i}]")
                                                 for i, u in enumerate(chain.backup_rpc_urls) if u != primary_url]
    if len(named) == 1:
        return RetryingJsonRpc(primary_url, timeout_s=chain.request_timeout_s, attempts=attempts,
                               backoff_max_s=backoff_max_s)
    rpc = RetryingFailoverRpc([JsonRpc(u, timeout_s=chain.request_timeout_s) for u, _ in named],
                              max_lag_blocks=chain.max_head_lag_blocks, max_lag_s=chain.max_head_lag_s,
                              names=[n for _, n in named])
    rpc.configure_retries(attempts, backoff_max_s=backoff_max_s)
    return rpc
