"""`keeper executor deploy` reports the chain id it read before sending (connect(), the address
book's): before, deploy() asked the node for it again after the deployment and every setMarket were
included, and the command a third time inside its printed line, so an eth_chainId that failed then
(a timeout) lost the new executor's address: neither `executor.deployed` nor the printed line
carried it."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from eth_utils import to_checksum_address
from structlog.testing import capture_logs

import keeper.executor_admin as admin
from keeper.cli import app
from keeper.cli_console import run_app
from keeper.errors import TransientError

NEW = "0x" + "ab" * 20
NODE = "https://node.example:8545/v2/SECRET"
MARKETS = [SimpleNamespace(name="ETH", base_token="0x" + "01" * 20, spot_token="0x" + "02" * 20, uniswap_v3_fee_pips=500)]
BOOK = SimpleNamespace(chain_id=10, uniswap_v2_router="0x" + "05" * 20, uniswap_v3_swap_router="0x" + "06" * 20,
                       perp=SimpleNamespace(clearing_house="0x" + "07" * 20), markets=MARKETS)
DEV_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # public anvil key


class NodeAfterSending:
    """The node once the transactions are in: receipts answered, eth_chainId timing out."""

    url = NODE

    def chain_id(self) -> int:
        raise TransientError("eth_chainId: read timed out")

    def call(self, method: str, params: list[Any]) -> Any:
        assert method == "eth_getTransactionReceipt"
        return {"contractAddress": NEW, "transactionHash": params[0], "gasUsed": "0x5208"}


class IncludingSender:
    address = "0x" + "cc" * 20

    def __init__(self) -> None:
        self.rpc = NodeAfterSending()
        self.labels: list[str] = []

    def send(self, request: Any) -> Any:
        self.labels.append(request.label)
        return SimpleNamespace(status="included", tx_hash=f"0x{len(self.labels):02x}", revert_reason=None)


def test_given_eth_chain_id_failing_after_sending_then_deploy_still_reports_the_executor() -> None:
    sender = IncludingSender()
    with capture_logs() as logs:
        done = admin.deploy(sender.rpc, sender, BOOK, "0x" + "dd" * 20, "0x" + "ee" * 20, ["ETH"])  # type: ignore[arg-type]
    assert done.address == to_checksum_address(NEW) and done.chain_id == 10
    (deployed,) = [e for e in logs if e["event"] == "executor.deployed"]
    assert deployed["executor"] == to_checksum_address(NEW) and deployed["chain_id"] == 10


def test_given_eth_chain_id_failing_after_sending_then_the_command_prints_the_executor(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sender = IncludingSender()
    monkeypatch.setattr(admin, "connect", lambda settings, rpc_url=None: (sender.rpc, BOOK))
    monkeypatch.setattr(admin, "build_sender", lambda rpc, signer, settings: sender)
    monkeypatch.setenv("KEEPER_ADMIN_PRIVATE_KEY", DEV_KEY)
    monkeypatch.setattr(sys, "argv", ["keeper", "executor", "deploy", "--treasury", "0x" + "dd" * 20,
                                      "--operator", "0x" + "ee" * 20, "--markets", "ETH", "--rpc-url", NODE])
    previous = structlog.get_config()
    try:
        code = run_app(app)
    finally:
        structlog.configure(**previous)
    printed = capsys.readouterr().out
    assert code == 0 and sender.labels == ["deploy BasisExecutor", f"setMarket ETH on the new executor {to_checksum_address(NEW)}"]
    assert (f"BasisExecutor deployed at {to_checksum_address(NEW)} on chain 10 via https://node.example:8545/... "
            "(tx 0x01, 21,000 gas)") in printed
    assert f'executor = "{to_checksum_address(NEW)}"' in printed
