"""After a restart the stored transaction's re-broadcast is answered "nonce too low" when it was
mined meanwhile: tx.recovered says it was already mined (or already in the pool), not "accepted"."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from keeper.chain.broadcast import rebroadcast_result
from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer
from keeper.chain.nonces import NonceAllocator, SendErrorKind
from keeper.chain.pending import MemoryPendingStore, PendingEntry, TxAttempt
from keeper.chain.retry import RetryingJsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig


def test_the_result_names_what_happened() -> None:
    assert rebroadcast_result(None) == "accepted"
    assert rebroadcast_result(SendErrorKind.NONCE_TOO_LOW, {"hash": "0xab", "blockNumber": "0x10"}) == "already_mined"
    assert rebroadcast_result(SendErrorKind.NONCE_TOO_LOW, {"hash": "0xab", "blockNumber": None}) == "already_pending"
    assert rebroadcast_result(SendErrorKind.ALREADY_KNOWN) == "already_known"
    assert rebroadcast_result(SendErrorKind.NONCE_TOO_LOW) == "nonce_too_low"  # refused, and not held


class RestartedNodeRpc(RetryingJsonRpc):
    """A node where the stored transaction is already mined (or pooled): its send is refused as nonce too low."""

    def __init__(self, held: dict[str, Any] | None) -> None:
        super().__init__("http://127.0.0.1:1", attempts=1, sleep=lambda _s: None)
        self.held = held

    def _post(self, payload: Any) -> Any:
        if payload["method"] == "eth_sendRawTransaction":
            return {"jsonrpc": "2.0", "id": payload["id"], "error": {"code": -32003, "message": "nonce too low"}}
        result = self.held if payload["method"] == "eth_getTransactionByHash" else "0xa"
        return {"jsonrpc": "2.0", "id": payload["id"], "result": result}


@pytest.mark.parametrize(("held", "said"), [
    ({"hash": "0xab", "blockNumber": "0x10"}, "already_mined"),
    ({"hash": "0xab", "blockNumber": None}, "already_pending"),
    (None, "nonce_too_low"),
])
def test_a_recovered_tx_the_node_refuses_as_nonce_too_low_says_what_the_node_holds(
        held: dict[str, Any] | None, said: str) -> None:
    signer = Signer(bytes(Account.create().key))
    store = MemoryPendingStore()
    store.put(PendingEntry(chain_id=31337, sender=signer.address, nonce=9, to=signer.address, data=b"", value_wei=0,
                           gas_limit=21_000, label="open ETH", attempts=(TxAttempt("0xab", b"\x02", 2, 1, 100),)))
    sender = TxSender(RestartedNodeRpc(held), signer, SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=10**11)), store,
                      chain_id=31337, nonces=NonceAllocator(lambda: 10), sleep=lambda _s: None)
    with capture_logs() as logs:
        sender.recover()
    assert [e["rebroadcast"] for e in logs if e["event"] == "tx.recovered"] == [said]
    assert any(e["event"] == "tx.send_error_but_known" for e in logs) == (held is not None)
