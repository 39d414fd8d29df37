"""The devnet's sender (keeper/devnet/txs.py): a queued transaction that reverts fails the step,
unless its caller said it may revert with that reason (the scenario driver's vAMM move past the
makers' liquidity: Perp's CH_F0S); then it is kept and logged and the step goes on."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode

from keeper.devnet.txs import DevSender
from keeper.errors import RpcError, TxRevertedError

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


class RevertingNode:
    """Mines every sent transaction as reverted; a replay at the parent block reverts with `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason, self.sent = reason, 0

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_sendTransaction":
            self.sent += 1
            return f"0x{self.sent:064x}"
        if method == "eth_call":
            raise RpcError("eth_call", 3, "execution reverted",
                           "0x" + (ERROR_SELECTOR + encode(["string"], [self.reason])).hex())
        raise AssertionError(method)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, str]]:
        return [{"status": "0x0", "gasUsed": "0x5208", "blockNumber": "0x10"} for _ in calls]


def test_given_a_revert_the_caller_tolerates_when_settling_then_it_is_kept_and_the_step_goes_on() -> None:
    tx = DevSender(RevertingNode("CH_F0S"))  # type: ignore[arg-type]
    tx.submit("0x" + "11" * 20, "0x" + "22" * 20, b"", what="ClearingHouse.openPosition", tolerate=("CH_F0S",))
    tx.settle()
    assert [(e.what, e.reason) for e in tx.tolerated] == [("ClearingHouse.openPosition", "CH_F0S")]
    assert tx.tx_count == 1 and tx.gas_used == 21_000


@pytest.mark.parametrize("tolerate", [(), ("CH_F0S",)])
def test_given_any_other_revert_when_settling_then_it_raises_with_its_reason(tolerate: tuple[str, ...]) -> None:
    tx = DevSender(RevertingNode("EX_OPLAS"))  # type: ignore[arg-type]
    tx.submit("0x" + "11" * 20, "0x" + "22" * 20, b"", what="ClearingHouse.openPosition", tolerate=tolerate)
    with pytest.raises(TxRevertedError, match="EX_OPLAS"):
        tx.settle()
    assert tx.tolerated == []
