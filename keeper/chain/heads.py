"""New chain heads for the block loop: pushed over WebSocket, polled over HTTP as the fallback.

With a ws URL the feed subscribes to `newHeads` through web3.py's WebSocketProvider (AsyncWeb3,
`eth_subscribe`) on its own thread and event loop, so a block reaches the loop as soon as the node
announces it. With no ws URL, while the socket is down, or when the socket has been silent for a
while, the loop's own thread polls `eth_blockNumber` over HTTP every `poll_interval_s`: the keeper
never stops because a socket dropped.

- Reconnect: after a drop the subscription is retried with exponential backoff (jittered, capped).
- Never two ticks at once: the feed only records the newest head; one consumer (the block loop)
  asks for "a head newer than the one I last ticked" and gets the newest, so heads that arrive
  during a tick coalesce into one.
- Missed blocks: the first head pushed after a reconnect is compared with the last head pushed
  before the drop; the gap is logged (`heads.missed`) with how much of it polling covered.
- A node that does not answer the poll: the next look waits twice as long each time (from
  `poll_interval_s` up to `poll_backoff_max_s`); the first failure is logged (`heads.poll_failed`),
  then one line per `poll_log_every_s` with the failures not logged since, and the first answer
  after them once (`heads.poll_recovered`, with how many failed and for how long).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider

from keeper.errors import TransientError
from keeper.logs import get_logger, redact_urls

log = get_logger("keeper.heads")


@dataclass(frozen=True)
class Head:
    number: int
    source: str  # "ws" (pushed) or "poll" (HTTP)
    received_s: float  # time.perf_counter() when the keeper learnt of it


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.2  # +- this fraction, so that several keepers do not reconnect in step

    def delays(self) -> Any:
        delay = self.initial_s
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * 2, self.max_s)


def ws_url_for(http_url: str) -> str:
    """anvil serves WebSocket on its HTTP port: http://h:p -> ws://h:p (https -> wss)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


class HeadFeed:
    """The newest head known, pushed (ws) or polled (HTTP). Start it, then call `wait_newer`."""

    def __init__(self, fetch_block_number: Callable[[], int], ws_url: str | None = None, *,
                 poll_interval_s: float = 0.25, ws_silence_s: float = 2.0, backoff: Backoff = Backoff(),
                 on_poll_error: Callable[[Exception], None] | None = None, poll_backoff_max_s: float = 4.0,
                 poll_log_every_s: float = 60.0) -> None:
        self._fetch_block_number = fetch_block_number
        self.ws_url = ws_url
        self.poll_interval_s = poll_interval_s
        self.poll_backoff_max_s = max(poll_backoff_max_s, poll_interval_s)
        self.poll_log_every_s = poll_log_every_s
        self.poll_failures = 0  # consecutive failed polls (0: the node answers)
        self._failing_since_s = 0.0
        self._failures_logged_s = 0.0
        self._failures_not_logged = 0
        self._clock = time.monotonic
        self.ws_silence_s = ws_silence_s
        self.backoff = backoff
        self.on_poll_error = on_poll_error
        self._cond = threading.Condition()
        self._latest: Head | None = None
        self._ws_live = False
        self._last_pushed: int | None = None
        self._last_push_s = 0.0
        self._just_resubscribed = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed_once = False
        self.reconnects = 0
        self.missed_blocks = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HeadFeed:
        if self.ws_url and self._thread is None:
            self._thread = threading.Thread(target=self._run_ws, name="heads-ws", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._cond:
            self._cond.notify_all()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once the ws subscription is live (False at the timeout, or with no ws URL)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._ws_live and self.ws_url and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return self._ws_live

    @property
    def ws_live(self) -> bool:
        return self._ws_live

    @property
    def mode(self) -> str:
        return "ws" if self._ws_live else "poll"

    # ------------------------------------------------------------------ the consumer side
    def wait_newer(self, after: int, stop: threading.Event) -> Head | None:
        """Block until a head newer than `after` is known and return the newest one (heads that
        arrived meanwhile coalesce). Polls over HTTP whenever the socket is not live, or has been
        silent for `ws_silence_s`. None once `stop` is set."""
        while not stop.is_set() and not self._stopping.is_set():
            with self._cond:
                latest = self._latest
                if latest is not None and latest.number > after:
                    return latest
                live = self._ws_live
                silent = live and time.perf_counter() - self._last_push_s > self.ws_silence_s
            if not live or silent or latest is None:
                self.poll()
                with self._cond:
                    if self._latest is not None and self._latest.number > after:
                        return self._latest
            with self._cond:
                self._cond.wait(self.poll_retry_s if not live else self.ws_silence_s)
        return None

    @property
    def poll_retry_s(self) -> float:
        """The wait before the next poll: poll_interval_s, doubled per consecutive failure up to
        poll_backoff_max_s (a head pushed meanwhile, or a stop, still ends the wait at once)."""
        if self.poll_failures == 0:
            return self.poll_interval_s
        return float(min(self.poll_interval_s * 2 ** min(self.poll_failures, 32), self.poll_backoff_max_s))

    def sleep_until_new_head(self, timeout_s: float) -> None:
        """Sleep up to `timeout_s`, less if a head is pushed meanwhile: the sender polls for its
        receipt with this, so that a tick waiting for its own transaction looks again as soon as
        the next block is announced, not up to a poll interval later. Without a live socket it
        is a plain sleep."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            seen = self._latest.number if self._latest is not None else -1
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._latest is not None and self._latest.number > seen):
                    return
                self._cond.wait(remaining)

    def wake(self) -> None:
        """Wake `wait_newer` so that it looks at its stop event now."""
        with self._cond:
            self._cond.notify_all()

    def poll(self) -> None:
        """One HTTP look at the head (the consumer's thread: the RPC client is not shared)."""
        try:
            number = self._fetch_block_number()
        except TransientError as exc:
            if self.on_poll_error is not None:
                self.on_poll_error(exc)
            self._poll_failed(exc)
            return
        if self.poll_failures:
            log.info("heads.poll_recovered", block=number, failures=self.poll_failures,
                     down_s=round(self._clock() - self._failing_since_s, 1))
            self.poll_failures = self._failures_not_logged = 0
        self._offer(Head(number, "poll", time.perf_counter()))

    def _poll_failed(self, exc: Exception) -> None:
        """The first failure logged at once; then one line per poll_log_every_s, with the failures since."""
        now = self._clock()
        self.poll_failures += 1
        if self.poll_failures == 1:
            self._failing_since_s = now
        elif now - self._failures_logged_s < self.poll_log_every_s:
            self._failures_not_logged += 1
            return
        log.warning("heads.poll_failed", error=str(exc), failures=self.poll_failures,
                    not_logged=self._failures_not_logged, retry_in_s=round(self.poll_retry_s, 2))
        self._failures_logged_s, self._failures_not_logged = now, 0

    def _offer(self, head: Head) -> None:
        with self._cond:
            if self._latest is None or head.number > self._latest.number:
                self._latest = head
                self._cond.notify_all()

    # ------------------------------------------------------------------ the ws side
    def _pushed(self, number: int) -> None:
        now = time.perf_counter()
        with self._cond:
            self._last_push_s = now
            if self._just_resubscribed:
                self._just_resubscribed = False
                self._note_gap(number)
            self._last_pushed = number if self._last_pushed is None else max(self._last_pushed, number)
        self._offer(Head(number, "ws", now))

    def _note_gap(self, first_after_reconnect: int) -> None:
        """Called with the lock held: blocks announced while the socket was down."""
        if self._last_pushed is None or first_after_reconnect <= self._last_pushed + 1:
            return
        not_pushed = first_after_reconnect - self._last_pushed - 1
        polled_up_to = self._latest.number if self._latest is not None else self._last_pushed
        self.missed_blocks += not_pushed
        log.warning("heads.missed", first=self._last_pushed + 1, last=first_after_reconnect - 1,
                    blocks=not_pushed, covered_by_polling=max(0, min(polled_up_to, first_after_reconnect - 1) - self._last_pushed),
                    reconnects=self.reconnects)

    def _set_live(self, live: bool) -> None:
        with self._cond:
            self._ws_live = live
            if live:
                self._just_resubscribed = True
                self._last_push_s = time.perf_counter()
            self._cond.notify_all()

    def _run_ws(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._ws_main())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    async def _ws_main(self) -> None:
        delays = self.backoff.delays()
        while not self._stopping.is_set():
            try:
                provider = WebSocketProvider(self.ws_url, max_connection_retries=1, request_timeout=10.0)
                async with AsyncWeb3(provider) as w3:
                    await w3.eth.subscribe("newHeads")
                    if self._subscribed_once:
                        self.reconnects += 1
                    self._subscribed_once = True
                    log.info("heads.ws_subscribed", ws_url=self.ws_url, reconnects=self.reconnects)
                    self._set_live(True)
                    delays = self.backoff.delays()
                    async for message in w3.socket.process_subscriptions():
                        self._pushed(int(message["result"]["number"]))
                reason = "the node closed the subscription"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any socket or protocol failure: fall back, reconnect
                reason = f"{exc.__class__.__name__}: {redact_urls(str(exc))[:160]}"  # web3 names the URL: not its key
            finally:
                self._set_live(False)
            if self._stopping.is_set():
                return
            delay = next(delays)
            log.warning("heads.ws_down", ws_url=self.ws_url, reason=reason, retry_in_s=round(delay, 2),
                        fallback="http polling")
            await asyncio.sleep(delay)
