"""The devnet's sender (keeper/devnet/txs.py): a queued transaction that reverts fails the step,
unless its caller said it may revert with that reason (the scenario driver's vAMM move past the
makers' liquidity: Perp's CH_F0S) and the mined transaction's own trace says so; then it is kept
and logged and the step goes on, every other queued transaction still checked."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode

from keeper.devnet.txs import DevSender
from keeper.errors import RpcError, TxRevertedError

SENDER, TO = "0x" + "11" * 20, "0x" + "22" * 20


def revert_data(reason: str) -> str:
    return "0x" + (bytes.fromhex("08c379a0") + encode(["string"], [reason])).hex()  # Error(string)


class Node:
    """Mines the sent transactions with the given outcomes, in order: None succeeds, a string
    reverts with that reason in the transaction's own trace. `replayed`: what a replay at the
    parent block says (None: the trace's reason); `traces`: False for a node without debug_*."""

    def __init__(self, *outcomes: str | None, replayed: str | None = None, traces: bool = True) -> None:
        self.outcomes, self.replayed, self.traces = list(outcomes), replayed, traces
        self.sent: list[str] = []

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_sendTransaction":
            self.sent.append(f"0x{len(self.sent) + 1:064x}")
            return self.sent[-1]
        if method == "debug_traceTransaction":
            if not self.traces:
                raise RpcError(method, -32601, "method not found")
            reason = self.outcomes[self.sent.index(params[0])]
            return {"output": revert_data(reason), "error": "execution reverted"}
        if method == "eth_call":  # the replay at the parent block (of the last reverted one asked)
            reason = self.replayed or next(r for r in self.outcomes if r is not None)
            raise RpcError(method, 3, "execution reverted", revert_data(reason))
        raise AssertionError(method)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, str]]:
        return [{"status": "0x1" if self.outcomes[self.sent.index(h)] is None else "0x0", "gasUsed": "0x5208",
                 "blockNumber": "0x10"} for _, (h,) in calls]


def queue(tx: DevSender, n: int, tolerate: tuple[str, ...] = ("CH_F0S",)) -> None:
    for _ in range(n):
        tx.submit(SENDER, TO, b"", what="ClearingHouse.openPosition", tolerate=tolerate)


def test_given_a_revert_the_caller_tolerates_when_settling_then_it_is_kept_and_the_next_ones_are_checked() -> None:
    tx = DevSender(Node("CH_F0S", None))  # type: ignore[arg-type]
    queue(tx, 2)
    tx.settle()
    assert [(e.what, e.reason) for e in tx.tolerated] == [("ClearingHouse.openPosition", "CH_F0S")]
    assert tx.tx_count == 2 and tx.gas_used == 2 * 21_000
    # a tolerated revert first, another revert after it: the step fails on the second
    tx = DevSender(Node("CH_F0S", "EX_OPLAS"))  # type: ignore[arg-type]
    queue(tx, 2)
    with pytest.raises(TxRevertedError, match="EX_OPLAS"):
        tx.settle()
    assert len(tx.tolerated) == 1 and tx.tx_count == 2


@pytest.mark.parametrize("tolerate", [(), ("CH_F0S",)])
def test_given_any_other_revert_when_settling_then_it_raises_with_its_reason(tolerate: tuple[str, ...]) -> None:
    tx = DevSender(Node("EX_OPLAS"))  # type: ignore[arg-type]
    queue(tx, 1, tolerate)
    with pytest.raises(TxRevertedError, match="EX_OPLAS"):
        tx.settle()
    assert tx.tolerated == []


def test_given_a_replay_that_says_ch_f0s_but_not_the_mined_transaction_then_nothing_is_tolerated() -> None:
    # the replay runs at the parent block, before the step's earlier trades: only the trace counts
    tx = DevSender(Node("EX_OPLAS", replayed="CH_F0S"))  # type: ignore[arg-type]
    queue(tx, 1)
    with pytest.raises(TxRevertedError, match="EX_OPLAS"):
        tx.settle()
    # and a node that cannot trace tolerates nothing, whatever the replay says
    tx = DevSender(Node("CH_F0S", traces=False))  # type: ignore[arg-type]
    queue(tx, 1)
    with pytest.raises(TxRevertedError, match="CH_F0S"):
        tx.settle()
    assert tx.tolerated == []
