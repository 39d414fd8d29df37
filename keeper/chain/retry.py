"""Per-call retries of transient RPC failures (timeouts, HTTP 429/5xx, JSON-RPC "try again"
replies), with a short exponential backoff, on top of the plain JSON-RPC client.

The runtime starts with many attempts per call (a start-up is some thirty calls: all-or-nothing
retries of the whole start-up would almost never get through a flaky endpoint) and lowers them
for the live loop, where a call that still fails skips the tick and the next tick retries.
Every call retried here is idempotent (reads). eth_sendRawTransaction is not retried here: the
sender retries its broadcasts itself (`SenderConfig.broadcast_attempts`) and treats one that still
fails as "unknown"; retrying it in both layers multiplied a held send into attempts x
broadcast_attempts request timeouts (18 s at a 1-s timeout), which blocked start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from keeper.chain.rpc import JsonRpc
from keeper.errors import TransientError
from keeper.logs import get_logger

log = get_logger("keeper.chain.rpc")
T = TypeVar("T")
STARTUP_ATTEMPTS = 6
LIVE_ATTEMPTS = 2
NOT_RETRIED = frozenset({"eth_sendRawTransaction"})  # the sender's own retries (one layer)


class RetryCalls:
    """Mixin over a JsonRpc (or a FailoverRpc): `call` and `batch` retried on TransientError."""

    attempts: int = LIVE_ATTEMPTS
    backoff_s: float = 0.05
    backoff_max_s: float = 1.0
    retried: int = 0
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        if method in NOT_RETRIED:
            return super().call(method, params)  # type: ignore[misc]
        return self._retry(method, lambda: super(RetryCalls, self).call(method, params))  # type: ignore[misc]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return self._retry("batch", lambda: super(RetryCalls, self).batch(calls))  # type: ignore[misc]

    def configure_retries(self, attempts: int, backoff_s: float = 0.05, backoff_max_s: float = 1.0,
                          sleep: Callable[[float], None] = time.sleep) -> None:
        """Retries here, and none below: web3.py's own retries of timeouts (keeper/chain/rpc.py)
        would multiply with these (a request a node keeps holding would cost attempts x 4
        timeouts, and blow the start-up budget)."""
        self.attempts, self.backoff_s, self.backoff_max_s, self._sleep = attempts, backoff_s, backoff_max_s, sleep
        for client in [self, *(e.client for e in getattr(self, "endpoints", ()))]:
            provider = getattr(client, "provider", None)
            if provider is not None:
                provider.exception_retry_configuration = None

    def _retry(self, what: str, attempt: Callable[[], T]) -> T:
        backoff_s = self.backoff_s
        for attempt_no in range(1, self.attempts + 1):
            try:
                return attempt()
            except TransientError as exc:
                if attempt_no == self.attempts or exc.refuses:
                    raise  # a refusing status (a wrong URL or key) is not mended by asking again
                self.retried += 1
                log.debug("rpc.retry", method=what, attempt=attempt_no, backoff_s=backoff_s, error=str(exc))
                self._sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.backoff_max_s)
        raise AssertionError("unreachable")  # pragma: no cover


class RetryingJsonRpc(RetryCalls, JsonRpc):
    def __init__(self, url: str, timeout_s: float = 30.0, attempts: int = LIVE_ATTEMPTS, backoff_s: float = 0.05,
                 backoff_max_s: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        JsonRpc.__init__(self, url, timeout_s=timeout_s)
        self.configure_retries(attempts, backoff_s, backoff_max_s, sleep)
