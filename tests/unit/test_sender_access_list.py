"""The sender's simulation through eth_createAccessList: a node without the method falls back to
eth_estimateGas for good; a contract's revert, whatever its words, is a revert and nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer
from keeper.chain.nonces import NonceAllocator
from keeper.chain.pending import MemoryPendingStore
from keeper.chain.retry import RetryingJsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig, SimulationReverted, TxRequest


class ScriptedNode(RetryingJsonRpc):
    """Answers eth_createAccessList with the next scripted error (then gasUsed), and keeps the methods asked."""

    def __init__(self, access_list_errors: list[dict[str, Any]]) -> None:
        super().__init__("http://127.0.0.1:1", attempts=1, sleep=lambda _s: None)
        self.errors = access_list_errors
        self.methods: list[str] = []

    def _post(self, payload: Any) -> Any:
        method = payload["method"]
        self.methods.append(method)
        if method == "eth_createAccessList" and self.errors:
            return {"jsonrpc": "2.0", "id": payload["id"], "error": self.errors.pop(0)}
        result = {"accessList": [], "gasUsed": "0x5208"} if method == "eth_createAccessList" else "0x5208"
        return {"jsonrpc": "2.0", "id": payload["id"], "result": result}


def _sender(rpc: ScriptedNode) -> TxSender:
    signer = Signer(bytes(Account.create().key))
    return TxSender(rpc, signer, SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=10**11)), MemoryPendingStore(),
                    chain_id=31337, nonces=NonceAllocator(lambda: 0), sleep=lambda _s: None)


def test_a_revert_saying_not_supported_is_a_revert_and_the_access_list_path_stays_on() -> None:
    # Given a contract whose revert reason says "not supported" (its words, not the node's)
    rpc = ScriptedNode([{"code": 3, "message": "execution reverted: market not supported"}])
    sender = _sender(rpc)
    request = TxRequest(to="0x" + "11" * 20, data=b"\x01", label="open ETH")
    # When simulated, then it is a revert, not an estimate
    with pytest.raises(SimulationReverted, match="not supported"):
        sender.simulate(request)
    assert rpc.methods == ["eth_createAccessList"]
    # and the next simulation still runs through eth_createAccessList
    assert sender.simulate(request) > 0
    assert rpc.methods == ["eth_createAccessList", "eth_createAccessList"]


def test_a_node_without_the_method_falls_back_to_estimate_gas_for_good() -> None:
    rpc = ScriptedNode([{"code": -32000, "message": "eth_createAccessList is not supported"}])
    sender = _sender(rpc)
    request = TxRequest(to="0x" + "11" * 20, data=b"\x01")
    sender.simulate(request)
    sender.simulate(request)
    assert rpc.methods == ["eth_createAccessList", "eth_estimateGas", "eth_estimateGas"]
