"""Replaying one origin block on a fork: what is sent, in which order, at which time and base fee;
what cannot be replayed is listed; receipts that differ are counted (a fake node on both sides)."""

from __future__ import annotations

from typing import Any

from keeper.errors import RpcError
from keeper.history.forkreplay import BlockReplayer, ReplayReport

LOG = {"address": "0xAA", "topics": ["0x01"], "data": "0x02"}


def _tx(hash_: str, type_: str, nonce: str, sender: str = "0xS1") -> dict[str, Any]:
    return {"hash": hash_, "type": type_, "from": sender, "to": "0xC0", "gas": "0x5208", "value": "0x0",
            "input": "0xabcd", "nonce": nonce, "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1",
            "gasPrice": "0x9", "accessList": [], "blockHash": "0xB", "transactionIndex": "0x0"}


class Origin:
    def __init__(self) -> None:
        self.block = {"number": "0x65", "timestamp": "0x1000", "baseFeePerGas": "0x7", "miner": "0xM1",
                      "gasLimit": "0x1c9c380",
                      "transactions": [_tx("0xd1", "0x7e", "0x0", "0xDEPOSITOR"), _tx("0xa1", "0x2", "0x5"),
                                       _tx("0xa2", "0x2", "0x6"), _tx("0xa3", "0x0", "0x7"), _tx("0xa4", "0x2", "0x8")]}
        ok = {"status": "0x1", "logs": [LOG]}
        self.receipts = {"0xd1": ok, "0xa1": ok, "0xa2": ok, "0xa3": ok, "0xa4": ok}

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        assert method == "eth_getBlockByNumber" and params == ["0x65", True]
        return self.block

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [self.receipts[p[0]] for _, p in calls]


class Fork:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.calls.append((method, params))
        if method == "eth_getBlockByNumber":
            return {"timestamp": "0xfff"}
        if method == "eth_sendTransaction":
            tx = params[0]  # type: ignore[index]
            if tx["nonce"] == "0x7":
                raise RpcError(method, -32003, "nonce too low")
            self.sent.append(tx)
            return f"0xf{len(self.sent)}"
        if method == "eth_blockNumber":
            return "0x65"
        return True

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        replies = {"0xf1": {"status": "0x1", "logs": [LOG]},  # as on the origin
                   "0xf2": {"status": "0x0", "logs": []},  # reverted on the fork
                   "0xf3": {"status": "0x1", "logs": [LOG | {"data": "0x03"}]}}  # other amounts
        return [replies[p[0]] for _, p in calls]


def test_given_an_origin_block_when_replayed_then_sent_in_order_at_its_time_and_differences_counted() -> None:
    report = ReplayReport(100, 101, check=False)
    fork = Fork()
    result = BlockReplayer(Origin(), fork, report).replay(0x65)  # type: ignore[arg-type]
    # the deposit and the transaction the fork refused are listed, not dropped
    assert [(u["hash"], u["reason"].split(",")[0]) for u in report.unreplayable] == [
        ("0xd1", "system (deposit) transaction"), ("0xa3", "nonce too low")]
    # the others went in their original order, with their own fields
    assert [t["nonce"] for t in fork.sent] == ["0x5", "0x6", "0x8"]
    assert fork.sent[0] == {"from": "0xS1", "to": "0xC0", "gas": "0x5208", "value": "0x0", "data": "0xabcd",
                            "nonce": "0x5", "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x1", "accessList": [],
                            "type": "0x2"}
    methods = [m for m, _ in fork.calls]
    assert methods.index("evm_setNextBlockTimestamp") < methods.index("eth_sendTransaction") < methods.index("evm_mine")
    assert ("evm_setNextBlockTimestamp", [0x1000]) in fork.calls
    assert ("anvil_setNextBlockBaseFeePerGas", ["0x7"]) in fork.calls and ("anvil_setCoinbase", ["0xM1"]) in fork.calls
    automine = [p for m, p in fork.calls if m == "evm_setAutomine"]
    assert automine == [[False], [True]]  # off while the block is assembled, back on after it is mined
    # receipts: one equal, one reverted, one with changed logs
    assert report.replayed_txs == 3
    assert [r["hash"] for r in report.reverted] == ["0xa2"] and [r["hash"] for r in report.logs_changed] == ["0xa4"]
    assert result.transactions == 5 and result.fork_block == 0x65


def test_given_origin_blocks_sharing_a_second_when_replayed_then_each_keeps_the_origins_timestamp() -> None:
    # a devnet mines several blocks in the same second; anvil takes a block at its parent's
    # timestamp, so shifting it a second on made `simulate --replay --check` report every such
    # block as differing from the origin
    report = ReplayReport(100, 101, check=True)
    fork = Fork()
    fork.call = _parent_at(fork.call, "0x1000")  # type: ignore[method-assign]
    BlockReplayer(Origin(), fork, report).replay(0x65)  # type: ignore[arg-type]
    assert ("evm_setNextBlockTimestamp", [0x1000]) in fork.calls and report.shifted_timestamps == 0
    # a parent later than the origin's block (the keeper's own blocks used the time): shifted past it
    report, fork = ReplayReport(100, 101, check=False), Fork()
    fork.call = _parent_at(fork.call, "0x1005")  # type: ignore[method-assign]
    BlockReplayer(Origin(), fork, report).replay(0x65)  # type: ignore[arg-type]
    assert ("evm_setNextBlockTimestamp", [0x1006]) in fork.calls and report.shifted_timestamps == 1


def _parent_at(call: Any, timestamp: str) -> Any:
    def answer(method: str, params: list[Any] | None = None) -> Any:
        got = call(method, params)
        return {"timestamp": timestamp} if method == "eth_getBlockByNumber" else got

    return answer
