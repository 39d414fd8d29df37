"""The keeper's JSON-RPC client: single calls and batches, over web3.py's HTTPProvider.

The interface is plain JSON-RPC so that the number of round trips is explicit: the snapshot
reader's "at most 2 RPC calls per snapshot" is counted here. The transport is web3.py's
HTTPProvider (its pooled keep-alive session, JSON encoding, and its retries of connection errors
and timeouts on read methods; a send is never retried blindly). `bench/transport.py` measures it
against a hand-written requests client: +0.02 ms per round trip, under 0.6 ms per trading tick
(limit 1 ms), so no hand-written transport is kept.

Riders: `ride(method, params)` queues a read that costs no round trip of its own. It goes out in
the same JSON-RPC batch as the client's next read round trip (a call becomes a batch of it and its
riders), and its answer (or error) lands in the returned `Rider`. A rider never changes what the
call it rides with returns or raises; if that round trip fails as a whole, the rider waits for the
next one. The gas tip's `eth_feeHistory` rides with the tick's snapshot reads this way
(keeper/gas_price.py).
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from web3 import HTTPProvider
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from keeper.errors import HttpStatusError, RpcError, TransientError, rpc_error_from_reply
from keeper.logs import redacted_url

# Reads only: a send that timed out may have reached the node (its outcome is "unknown", and the
# sender's pending-transaction tracking owns it), so it is never retried here.
READ_METHODS = ("eth_blockNumber", "eth_call", "eth_chainId", "eth_createAccessList", "eth_estimateGas",
                "eth_feeHistory", "eth_gasPrice", "eth_getBalance", "eth_getBlockByNumber", "eth_getCode",
                "eth_getLogs", "eth_getStorageAt", "eth_getTransactionByHash", "eth_getTransactionCount",
                "eth_getTransactionReceipt", "eth_maxPriorityFeePerGas", "net_version", "web3_clientVersion")
RETRIES = ExceptionRetryConfiguration(errors=(requests.ConnectionError, requests.Timeout), retries=3,
                                      backoff_factor=0.05, method_allowlist=READ_METHODS)


BlockParam = int | str | dict[str, str]  # a number, a tag ("latest"), or EIP-1898 {"blockHash": "0x.."}


@dataclass
class RpcStats:
    """Round trips made through one client (a batch counts once)."""

    round_trips: int = 0
    requests_sent: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


@dataclass
class Rider:
    """A read queued to ride the next round trip: `done` once answered, then `result` or `error`."""

    method: str
    params: list[Any]
    done: bool = False
    result: Any = None
    error: Exception | None = None

    def answer(self, reply: dict[str, Any]) -> None:
        try:
            self.result = _result_of(self.method, reply)
        except (RpcError, TransientError) as exc:
            self.error = exc
        self.done = True


class JsonRpc:
    """JSON-RPC over HTTP. Raises TransientError when the endpoint is unreachable (or answers
    HTTP 429/5xx, or not JSON), RpcError when it answers with an error object."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.stats = RpcStats()
        self._ids = itertools.count(1)
        self._riders: list[Rider] = []
        self._riders_lock = threading.Lock()
        self._session = requests.Session()
        # RPC endpoints are called directly: skip requests' per-request scan of proxy variables
        # and .netrc (about half a millisecond a call).
        self._session.trust_env = False
        self.provider = HTTPProvider(url, request_kwargs={"timeout": timeout_s}, session=self._session,
                                     exception_retry_configuration=RETRIES)

    def close(self) -> None:
        self._session.close()

    def _post(self, payload: Any) -> Any:
        """One round trip through web3.py's provider; the replies carry the caller's ids."""
        self.stats.round_trips += 1
        try:
            if isinstance(payload, list):
                replies = self.provider.make_batch_request([(p["method"], p["params"]) for p in payload])
                if isinstance(replies, list):
                    # web3.py numbers the requests itself and answers in request order.
                    return [dict(reply, id=p["id"]) for reply, p in zip(replies, payload)]
                return replies
            return dict(self.provider.make_request(payload["method"], payload["params"]), id=payload["id"])
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise HttpStatusError(f"RPC {redacted_url(self.url)} answered HTTP {status or '?'}", status) from exc
        except requests.RequestException as exc:
            raise TransientError(f"RPC {redacted_url(self.url)} unreachable: {_short_reason(exc)}") from exc
        except ValueError as exc:  # the body was not JSON
            raise TransientError(f"RPC {redacted_url(self.url)} answered non-JSON: {str(exc)[:120]}") from exc

    def _count(self, method: str) -> None:
        self.stats.requests_sent += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1

    def ride(self, method: str, params: list[Any]) -> Rider:
        """Queue a read (a method of READ_METHODS) to go out with the next read round trip."""
        if method not in READ_METHODS:
            raise ValueError(f"only reads ride: {method}")
        rider = Rider(method, params)
        with self._riders_lock:
            self._riders.append(rider)
        return rider

    def _take_riders(self, methods: list[str]) -> list[Rider]:
        """The queued riders, when every method of this round trip is a read (sends go alone)."""
        if not self._riders or any(m not in READ_METHODS for m in methods):
            return []
        with self._riders_lock:
            riders, self._riders = self._riders, []
        return riders

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self._count(method)
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        riders = self._take_riders([method])
        if not riders:
            return _result_of(method, self._post(request))
        replies = self._post_riding([request], riders)
        return _result_of(method, replies[0] if isinstance(replies, list) else replies)

    def _post_riding(self, payload: list[dict[str, Any]], riders: list[Rider]) -> Any:
        """`payload` (a batch) and the riders in one round trip; the replies to `payload` in order
        (or the node's single error object for the whole batch, as it came). The riders are
        answered; when the round trip fails as a whole (an exception, or one error object for the
        batch: a gateway refusing a rider's method, a batch-size limit), the riders take that
        failure and `payload` is sent once more alone, so a rider never changes what its carrier
        returns or raises (and a rider that breaks every batch is not sent again and again)."""
        ids = []
        for rider in riders:
            self._count(rider.method)
            ids.append(next(self._ids))
        try:
            replies = self._post(payload + [{"jsonrpc": "2.0", "id": i, "method": r.method, "params": r.params}
                                            for i, r in zip(ids, riders)])
        except (RpcError, TransientError) as exc:
            self._fail_riders(riders, exc)
            return self._post(payload)
        if not isinstance(replies, list):
            self._fail_riders(riders, RpcError("batch", -32600, f"the round trip carrying it failed: {replies}"))
            return self._post(payload)
        by_id = {reply.get("id"): reply for reply in replies}
        for rider, request_id in zip(riders, ids):
            rider.answer(by_id.get(request_id, {}))
        return [by_id.get(p["id"], {}) for p in payload]

    @staticmethod
    def _fail_riders(riders: list[Rider], exc: Exception) -> None:
        for rider in riders:
            rider.error, rider.done = exc, True

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
        riders = self._take_riders([method for method, _ in calls])
        replies = self._post_riding(payload, riders) if riders else self._post(payload)
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

    def has_code(self, address: str) -> bool:
        """A contract at `address` (latest block)."""
        return bool(self.get_code(address))

    def eth_call(self, to: str, data: bytes, block: BlockParam = "latest", sender: str | None = None) -> bytes:
        """`block`: a number, a tag, or EIP-1898's {"blockHash": "0x.."} (that block, whatever its number now holds)."""
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        tag = hex(block) if isinstance(block, int) else block
        return bytes.fromhex(self.call("eth_call", [tx, tag])[2:])


def _short_reason(exc: Exception) -> str:
    """'connection refused' rather than urllib3's three nested reprs."""
    text = re.sub(r"with url: \S+", "with url: ...", str(exc))  # urllib3 quotes the path: a provider's key
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
