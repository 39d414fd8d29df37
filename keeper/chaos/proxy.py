"""A loopback JSON-RPC fault proxy between the keeper and its node (127.0.0.1 only).

Per request, with seeded randomness: a JSON-RPC error reply that means "try again"
(`error_rate`), a request held until the client gives up (`timeout_rate`, held `hold_s`, then the
connection is closed), a delay (`max_delay_ms`); per eth_sendRawTransaction: forwarded to the node
and then answered with an error (`dropped_send_rate`: the node has it, the client is told it
failed). `stick_sends(blocks)` swallows every send until the node's head has moved that many
blocks (a transaction stuck out of the pool) once the next send arrives. Every fault is counted in `stats`.

Bounded: the server binds 127.0.0.1, holds a request at most `hold_s`, and stops by itself after
`lifetime_s` (or on `stop()`).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class FaultConfig:
    error_rate: float = 0.10
    timeout_rate: float = 0.05
    dropped_send_rate: float = 0.20
    max_delay_ms: float = 20.0
    hold_s: float = 2.5  # longer than the keeper's request timeout
    lifetime_s: float = 900.0
    seed: int = 1


@dataclass
class FaultStats:
    requests: int = 0
    errors: int = 0
    timeouts: int = 0
    dropped_sends: int = 0
    stuck_sends: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


_TRY_AGAIN = ({"code": -32005, "message": "rate limited: too many requests"},
              {"code": -32603, "message": "upstream request timed out, try again"},
              {"code": -32000, "message": "header not found"})
_DROPPED_SEND = {"code": -32603, "message": "internal error"}


class FaultProxy:
    def __init__(self, upstream_url: str, config: FaultConfig | None = None) -> None:
        self.upstream_url = upstream_url
        self.config = config or FaultConfig()
        self.stats = FaultStats()
        self.enabled = True
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._stuck_until_block: int | None = None
        self._stick_blocks: int | None = None
        self._session = requests.Session()
        self._session.trust_env = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._timer = threading.Timer(self.config.lifetime_s, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def stick_sends(self, blocks: int) -> None:
        """From the next eth_sendRawTransaction on, swallow every send until the head has moved
        `blocks` blocks (the transaction, its re-broadcasts and replacements never reach the node)."""
        with self._lock:
            self._stick_blocks = blocks

    # ------------------------------------------------------------------ internals
    def _count(self, kind: str) -> None:
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def _upstream(self, payload: Any) -> Any:
        return self._session.post(self.upstream_url, json=payload, timeout=30).json()

    def _stuck(self) -> bool:
        with self._lock:
            until, arm = self._stuck_until_block, self._stick_blocks
        if until is None and arm is None:
            return False
        head = int(self._upstream({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})["result"], 16)
        if until is None:
            with self._lock:
                until = self._stuck_until_block = head + (arm or 0)
                self._stick_blocks = None
        if head >= until:
            with self._lock:
                self._stuck_until_block = None
            return False
        return True

    def answer(self, payload: Any) -> Any | None:
        """The reply for one HTTP request body; None: hold it and close the connection."""
        cfg = self.config
        calls = payload if isinstance(payload, list) else [payload]
        self.stats.requests += 1
        if not self.enabled:
            return self._upstream(payload)
        if cfg.max_delay_ms:
            time.sleep(self._draw() * cfg.max_delay_ms / 1000)
        draw = self._draw()
        if draw < cfg.timeout_rate:
            self.stats.timeouts += 1
            self._count("timeout")
            return None
        if draw < cfg.timeout_rate + cfg.error_rate:
            self.stats.errors += 1
            self._count("error")
            error = _TRY_AGAIN[int(self._draw() * len(_TRY_AGAIN))]
            replies = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return replies if isinstance(payload, list) else replies[0]
        sends = [c for c in calls if c.get("method") == "eth_sendRawTransaction"]
        if sends and not isinstance(payload, list):
            if self._stuck():
                self.stats.stuck_sends += 1
                self._count("stuck_send")
                return None  # never reaches the node; the client times out
            reply = self._upstream(payload)
            if "result" in reply and self._draw() < cfg.dropped_send_rate:
                self.stats.dropped_sends += 1
                self._count("dropped_send")
                return {"jsonrpc": "2.0", "id": payload.get("id"), "error": _DROPPED_SEND}
            return reply
        return self._upstream(payload)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    reply = proxy.answer(json.loads(body))
                except (requests.RequestException, ValueError) as exc:
                    self.send_error(502, f"upstream: {exc}")
                    return
                if reply is None:
                    time.sleep(proxy.config.hold_s)  # bounded hold, then the connection closes
                    self.close_connection = True
                    return
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up first (its timeout): nothing to answer

            def log_message(self, *_: Any) -> None:
                pass

        return Handler
