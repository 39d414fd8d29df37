"""Per-call retries of transient RPC failures: a try-again reply is retried with backoff, a
revert or refusal is not, and the attempts are bounded."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.chain.nonces import NonceAllocator
from keeper.chain.retry import RetryingJsonRpc
from keeper.errors import RpcError, TransientError


class FlakyRpc(RetryingJsonRpc):
    def __init__(self, replies: list[Any], **kw: Any) -> None:
        self.sleeps: list[float] = []
        super().__init__("http://127.0.0.1:1", sleep=self.sleeps.append, **kw)
        self.replies = replies
        self.posts = 0

    def _post(self, payload: Any) -> Any:
        self.posts += 1
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return {"jsonrpc": "2.0", "id": payload["id"], **reply}


def test_given_try_again_replies_then_the_call_is_retried_with_backoff() -> None:
    rpc = FlakyRpc([{"error": {"code": -32005, "message": "rate limited"}}, TransientError("timed out"),
                    {"result": "0x2a"}], attempts=3)
    assert rpc.block_number() == 42
    assert rpc.posts == 3 and rpc.sleeps == [0.05, 0.1] and rpc.retried == 2


def test_given_a_revert_then_it_is_not_retried() -> None:
    rpc = FlakyRpc([{"error": {"code": 3, "message": "execution reverted"}}], attempts=5)
    with pytest.raises(RpcError) as raised:
        rpc.call("eth_call", [])
    assert not isinstance(raised.value, TransientError) and rpc.posts == 1


def test_given_only_failures_then_the_attempts_are_bounded() -> None:
    rpc = FlakyRpc([TransientError("timed out")] * 5, attempts=2)
    with pytest.raises(TransientError):
        rpc.call("eth_chainId")
    assert rpc.posts == 2


def test_given_a_nonce_handed_out_and_never_broadcast_then_release_gives_it_back() -> None:
    nonces = NonceAllocator(lambda: 15)
    assert nonces.next_nonce() == 15
    nonces.release(15)  # signing failed (an RPC error on the L1-fee read): no gap
    assert nonces.next_nonce() == 15


def test_given_retries_here_then_web3_retries_nothing_below() -> None:
    # Given the keeper's retrying clients (one node, and several)
    from keeper.chain.failover import connect_rpc
    from keeper.config import ChainConfig

    single = connect_rpc(ChainConfig(), "http://a", attempts=6)
    several = connect_rpc(ChainConfig(backup_rpc_urls=["http://b"]), "http://a", attempts=6)
    # Then no web3.py provider under them retries on its own (the two layers would multiply)
    providers = [single.provider, several.provider, *(e.client.provider for e in several.endpoints)]  # type: ignore[attr-defined]
    assert all(p.exception_retry_configuration is None for p in providers)
