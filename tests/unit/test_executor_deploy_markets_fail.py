"""`keeper executor deploy`: when a market's registration fails after the executor was deployed,
the error names the deployed executor's address (before: `setMarket BTC reverted: ...`, and the
address of the executor the admin had just paid for was in no output line)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from eth_utils import to_checksum_address

from keeper.errors import TxRevertedError
from keeper.executor_admin import deploy

NEW = "0x" + "ab" * 20
MARKETS = [SimpleNamespace(name=name, base_token="0x" + b * 20, spot_token="0x" + s * 20, uniswap_v3_fee_pips=500)
           for name, b, s in (("ETH", "01", "02"), ("BTC", "03", "04"))]
BOOK = SimpleNamespace(uniswap_v2_router="0x" + "05" * 20, uniswap_v3_swap_router="0x" + "06" * 20,
                       perp=SimpleNamespace(clearing_house="0x" + "07" * 20), markets=MARKETS)


class FakeSender:
    """The deployment and the ETH registration are included; the BTC registration reverts."""

    address = "0x" + "cc" * 20

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.rpc = SimpleNamespace(call=lambda method, params: {"contractAddress": NEW, "transactionHash": params[0],
                                                                "gasUsed": "0x1"})

    def send(self, request: Any) -> Any:
        self.labels.append(request.label)
        status = "reverted" if len(self.labels) == 3 else "included"
        return SimpleNamespace(status=status, tx_hash=f"0x{len(self.labels):02x}", revert_reason="UnsupportedToken")


def test_a_failed_market_registration_names_the_deployed_executor() -> None:
    sender = FakeSender()
    with pytest.raises(TxRevertedError) as failed:
        deploy(sender.rpc, sender, BOOK, "0x" + "dd" * 20, "0x" + "ee" * 20, ["ETH", "BTC"])  # type: ignore[arg-type]
    assert str(failed.value) == f"setMarket BTC on the new executor {to_checksum_address(NEW)} reverted: UnsupportedToken (tx 0x03)"
