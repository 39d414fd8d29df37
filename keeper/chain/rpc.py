"""A small, fast JSON-RPC client over one keep-alive HTTP session.

It speaks plain JSON-RPC (single calls and batches) so that the number of round trips is
explicit: the snapshot reader's "at most 2 RPC calls per snapshot" is counted here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import requests

from keeper.errors import RpcError, TransientError, rpc_error_from_reply


@dataclass
class RpcStats:
    """Round trips made through one client (a batch counts once)."""

    round_trips: int = 0
    requests_sent: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class JsonRpc:
    """JSON-RPC over HTTP. Raises TransientError when the endpoint is unreachable, RpcError when
    it answers with an error object."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.stats = RpcStats()
        self._ids = itertools.count(1)
        self._session = requests.Session()
        self._session.headers["Content-Type"] = "application/json"
        # RPC endpoints are called directly: skip requests' per-request scan of proxy variables
        # and .netrc (about half a millisecond a call).
        self._session.trust_env = False

    def close(self) -> None:
        self._session.close()

    def _post(self, payload: Any) -> Any:
        self.stats.round_trips += 1
        try:
            response = self._session.post(self.url, json=payload, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"RPC {self.url} unreachable: {_short_reason(exc)}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"RPC {self.url} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"RPC {self.url} answered non-JSON (HTTP {response.status_code})") from exc

    def _count(self, method: str) -> None:
        self.stats.requests_sent += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self._count(method)
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []})
        return _result_of(method, reply)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one round trip; results in order. Raises on the first error."""
        if not calls:
            return []
        ids = []
        payload = []
        for method, params in calls:
            self._count(method)
            request_id = next(self._ids)
            ids.append(request_id)
            payload.append({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        replies = self._post(payload)
        if not isinstance(replies, list):
            # Some nodes answer a whole batch with one error object.
            err = replies.get("error") if isinstance(replies, dict) else None
            if isinstance(err, dict):
                raise rpc_error_from_reply("batch", int(err.get("code", 0)), str(err.get("message", "")))
            raise RpcError("batch", -32600, str(replies))
        by_id = {reply.get("id"): reply for reply in replies}
        return [_result_of(method, by_id.get(request_id, {})) for (method, _), request_id in zip(calls, ids)]

    # ------------------------------------------------------------------ conveniences
    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def get_code(self, address: str, block: str = "latest") -> bytes:
        return bytes.fromhex(self.call("eth_getCode", [address, block])[2:])

    def eth_call(self, to: str, data: bytes, block: str | int = "latest", sender: str | None = None) -> bytes:
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        tag = hex(block) if isinstance(block, int) else block
        return bytes.fromhex(self.call("eth_call", [tx, tag])[2:])


def _short_reason(exc: Exception) -> str:
    """'connection refused' rather than urllib3's three nested reprs."""
    text = str(exc)
    errno_at = text.rfind("[Errno")
    if errno_at >= 0:
        return text[errno_at:].split("]", 1)[-1].strip(" ')\"")
    return f"{exc.__class__.__name__}: {text[:160]}"


def _result_of(method: str, reply: dict[str, Any]) -> Any:
    if "error" in reply:
        err = reply["error"] or {}
        raise rpc_error_from_reply(method, int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
    if "result" not in reply:
        raise TransientError(f"{method}: reply carries neither result nor error")
    return reply["result"]
