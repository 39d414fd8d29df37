"""Start-up under a flaky RPC: transient errors (timeouts, HTTP 429/5xx, JSON-RPC "try again"
replies) are retried with exponential backoff for a bounded time; anything else (a wrong
configuration, the wrong chain, missing code, a node that answers HTTP 401/404/405: a wrong URL or
API key, which no retry mends) is fatal at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from keeper.errors import TransientError, UrlRefusedError
from keeper.logs import get_logger

log = get_logger("keeper.runtime")
T = TypeVar("T")
FIRST_BACKOFF_S = 0.25


def retry_transient(attempt: Callable[[], T], *, budget_s: float, backoff_max_s: float,
                    sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> T:
    """`attempt()` until it returns; a TransientError is retried while `budget_s` lasts (then
    re-raised), any other exception propagates at once."""
    started = clock()
    backoff_s = FIRST_BACKOFF_S
    tries = 0
    while True:
        tries += 1
        try:
            result = attempt()
        except TransientError as exc:
            elapsed = clock() - started
            if exc.refuses:
                log.error("keeper.start_failed", tries=tries, elapsed_s=round(elapsed, 2), error_type=type(exc).__name__,
                          error=str(exc))
                raise UrlRefusedError(f"{exc}: the node refuses the URL (check its path and API key)") from exc
            if elapsed + backoff_s > budget_s:
                log.error("keeper.start_failed", tries=tries, elapsed_s=round(elapsed, 2), error_type=type(exc).__name__,
                          error=str(exc))
                raise
            log.warning("keeper.start_retry", tries=tries, elapsed_s=round(elapsed, 2), backoff_s=backoff_s,
                        error=str(exc))
            sleep(backoff_s)
            backoff_s = min(backoff_s * 2, backoff_max_s)
            continue
        if tries > 1:
            log.info("keeper.start_succeeded", tries=tries, elapsed_s=round(clock() - started, 2))
        return result
