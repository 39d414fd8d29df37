"""`keeper executor migrate` logs each movement of funds when its transaction is included, so a
migration that fails midway (here: the treasury's transfer to the new executor reverts) leaves in
the log what was moved and where it sits (the collateral and tokens withdrawn to the treasury)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from eth_abi import encode
from structlog.testing import capture_logs

from keeper.errors import TxRevertedError
from keeper.executor_admin import ExecutorView, migrate

USDC, WETH = "0x" + "11" * 20, "0x" + "22" * 20
OLD = ExecutorView("0x" + "aa" * 20, "0x" + "01" * 20, "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20,
                   "0x" + "04" * 20, "0x" + "05" * 20, USDC, paused=False)
NEW = ExecutorView("0x" + "bb" * 20, OLD.admin, OLD.treasury, OLD.operator, OLD.clearing_house,
                   OLD.account_balance, OLD.vault, USDC, paused=False)


class FakeRpc:
    """Free collateral 7 USDC raw in the old executor's vault account; it holds 5 USDC and 3 WETH raw."""

    def eth_call(self, to: str, data: bytes) -> bytes:
        if to == OLD.vault:
            return encode(["uint256"], [7])
        return encode(["uint256"], [{USDC: 5, WETH: 3}[to]])

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getBalance":
            return "0x0"
        return {"transactionHash": params[0]}  # eth_getTransactionReceipt


class FakeSender:
    def __init__(self, rpc: FakeRpc, name: str, status: str = "included") -> None:
        self.rpc, self.name, self.status, self.sent = rpc, name, status, 0

    def send(self, request: Any) -> Any:
        self.sent += 1
        return SimpleNamespace(status=self.status, tx_hash=f"0x{self.name}{self.sent}", revert_reason="reverted")


def test_a_migration_that_fails_midway_has_logged_what_it_moved() -> None:
    rpc = FakeRpc()
    admin, treasury = FakeSender(rpc, "a"), FakeSender(rpc, "t", status="reverted")
    with capture_logs() as logs, pytest.raises(TxRevertedError):
        migrate(rpc, admin, treasury, [WETH], OLD, NEW)  # type: ignore[arg-type]
    moved = [(e["what"], e["token"], e["amount_raw"], e["tx_hash"]) for e in logs if e["event"] == "executor.migrated"]
    assert moved == [("vault -> old executor", USDC, 7, "0xa2"), ("old executor -> treasury", USDC, 5, "0xa3"),
                     ("old executor -> treasury", WETH, 3, "0xa4")]
