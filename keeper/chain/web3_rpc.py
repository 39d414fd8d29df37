"""JSON-RPC through web3.py's HTTPProvider, behind the keeper's `JsonRpc` interface.

The provider does the HTTP session (one pooled `requests` session per thread), the JSON encoding
and decoding, and the retries of connection errors and timeouts (its `ExceptionRetryConfiguration`,
for the read methods on its allow-list; a send is never retried blindly). What the provider cannot
tell apart (unreachable, HTTP 429 / 5xx, a non-JSON reply) is mapped to `TransientError`; an error
object in the reply becomes `RpcError`, exactly as with the hand-written client.

Which transport runs is chosen by `bench/transport.py`: web3.py where it costs at most 1 ms per
tick over the hand-written client (README, "Measured").
"""

from __future__ import annotations

from typing import Any

import requests
from web3 import HTTPProvider
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from keeper.chain.rpc import JsonRpc, _short_reason
from keeper.errors import TransientError

# Reads only: a send that timed out may have reached the node (its outcome is "unknown", and the
# sender's pending-transaction tracking owns it), so it is never retried here.
READ_METHODS = ("eth_blockNumber", "eth_call", "eth_chainId", "eth_createAccessList", "eth_estimateGas",
                "eth_feeHistory", "eth_gasPrice", "eth_getBalance", "eth_getBlockByNumber", "eth_getCode",
                "eth_getLogs", "eth_getStorageAt", "eth_getTransactionByHash", "eth_getTransactionCount",
                "eth_getTransactionReceipt", "eth_maxPriorityFeePerGas", "net_version", "web3_clientVersion")
RETRIES = ExceptionRetryConfiguration(errors=(requests.ConnectionError, requests.Timeout), retries=3,
                                      backoff_factor=0.05, method_allowlist=READ_METHODS)


class Web3Rpc(JsonRpc):
    """`JsonRpc` whose round trips go through web3.py's HTTPProvider."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        super().__init__(url, timeout_s)
        session = requests.Session()
        session.trust_env = False  # see JsonRpc: no proxy / .netrc scan per request
        self.provider = HTTPProvider(url, request_kwargs={"timeout": timeout_s}, session=session,
                                     exception_retry_configuration=RETRIES)

    def _post(self, payload: Any) -> Any:
        self.stats.round_trips += 1
        try:
            if isinstance(payload, list):
                replies = self.provider.make_batch_request([(p["method"], p["params"]) for p in payload])
                if isinstance(replies, list):
                    # web3.py numbers the requests itself and answers in request order: give each
                    # reply the id the caller chose.
                    return [dict(reply, id=p["id"]) for reply, p in zip(replies, payload)]
                return replies
            reply = self.provider.make_request(payload["method"], payload["params"])
            return dict(reply, id=payload["id"])
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise TransientError(f"RPC {self.url} answered HTTP {status}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"RPC {self.url} unreachable: {_short_reason(exc)}") from exc
        except ValueError as exc:  # the body was not JSON
            raise TransientError(f"RPC {self.url} answered non-JSON: {str(exc)[:120]}") from exc
