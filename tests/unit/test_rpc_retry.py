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


def test_given_a_send_that_times_out_then_this_layer_does_not_retry_it() -> None:
    # Given a retrying client and a send the endpoint holds until the client gives up
    rpc = FlakyRpc([TransientError("timed out")] * 6, attempts=6)
    # When the keeper broadcasts through it
    with pytest.raises(TransientError):
        rpc.call("eth_sendRawTransaction", ["0x02"])
    # Then one request went out: the sender's broadcast attempts are the only retries of a send
    assert rpc.posts == 1 and rpc.retried == 0


class HeldSendRpc(RetryingJsonRpc):
    """Every eth_sendRawTransaction times out (a send held by the node or a proxy); reads answer."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1", attempts=6, sleep=lambda _s: None)
        self.sends = 0

    def _post(self, payload: Any) -> Any:
        if payload["method"] == "eth_sendRawTransaction":
            self.sends += 1
            raise TransientError("RPC unreachable: ReadTimeout")
        return {"jsonrpc": "2.0", "id": payload["id"], "result": "0x7"}


def test_given_a_stored_tx_whose_rebroadcast_is_held_then_recover_returns_it_as_unknown_and_tracked() -> None:
    from eth_account import Account
    from structlog.testing import capture_logs

    from keeper.chain.fees import FeePolicy
    from keeper.chain.keys import Signer
    from keeper.chain.pending import MemoryPendingStore, PendingEntry, TxAttempt
    from keeper.chain.sender import TxSender
    from keeper.chain.tx_types import SenderConfig

    # Given a transaction the last run stored (sent, then killed before its receipt)
    signer = Signer(bytes(Account.create().key))
    store = MemoryPendingStore()
    store.put(PendingEntry(chain_id=31337, sender=signer.address, nonce=9, to=signer.address, data=b"", value_wei=0,
                           gas_limit=21_000, label="open ETH", attempts=(TxAttempt("0xab", b"\x02", 2, 1, 100),)))
    rpc = HeldSendRpc()
    sender = TxSender(rpc, signer, SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=10**11)), store, chain_id=31337,
                      nonces=NonceAllocator(lambda: 9), sleep=lambda _s: None)
    # When the restarted keeper recovers while every send is held
    with capture_logs() as logs:
        tracked = sender.recover()
    # Then recovery returns (the sender's 3 broadcast attempts, no more), the tx stays tracked as
    # unknown for the polls to settle, and new nonces start past it
    assert rpc.sends == SenderConfig.broadcast_attempts == 3
    assert [p.nonce for p in tracked] == [9] and store.load()[0].nonce == 9
    assert [e["rebroadcast"] for e in logs if e["event"] == "tx.recovered"] == ["unknown"]
    assert sender.nonces.next_nonce() == 10
