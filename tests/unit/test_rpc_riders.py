"""Riders (keeper/chain/rpc.py): a queued read goes out in the batch of the client's next read
round trip, never with a send, and a round trip that fails as a whole leaves it queued."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.chain.rpc import JsonRpc
from keeper.errors import RpcError, TransientError


class Node(JsonRpc):
    """Answers every request with its method's canned result; `fail` makes the next round trip fail."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1")
        self.payloads: list[Any] = []
        self.fail: Exception | None = None
        self.results: dict[str, Any] = {"eth_blockNumber": "0x2a", "eth_feeHistory": {"oldestBlock": "0x1"},
                                        "eth_sendRawTransaction": "0x" + "ab" * 32}

    def _post(self, payload: Any) -> Any:
        self.stats.round_trips += 1
        self.payloads.append(payload)
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        if isinstance(payload, list):
            return [self._answer(p) for p in payload]
        return self._answer(payload)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["method"] == "eth_getBalance":
            return {"id": request["id"], "error": {"code": -32000, "message": "header not found"}}
        return {"id": request["id"], "result": self.results[request["method"]]}


def test_a_rider_goes_out_in_the_next_read_round_trip_and_the_call_still_answers() -> None:
    node = Node()
    rider = node.ride("eth_feeHistory", ["0x14", "latest", [50]])
    assert not rider.done and node.stats.round_trips == 0
    assert node.block_number() == 42
    assert node.stats.round_trips == 1 and rider.done and rider.result == {"oldestBlock": "0x1"}
    assert [p["method"] for p in node.payloads[0]] == ["eth_blockNumber", "eth_feeHistory"]
    node.block_number()
    assert isinstance(node.payloads[1], dict)  # answered riders go once


def test_a_rider_rides_with_a_batch_and_its_error_stays_its_own() -> None:
    node = Node()
    rider = node.ride("eth_getBalance", ["0x" + "11" * 20, "latest"])
    assert node.batch([("eth_blockNumber", []), ("eth_blockNumber", [])]) == ["0x2a", "0x2a"]
    assert node.stats.round_trips == 1 and len(node.payloads[0]) == 3
    assert rider.done and isinstance(rider.error, RpcError) and rider.result is None


def test_a_rider_never_goes_with_a_send_and_waits_for_a_read() -> None:
    node = Node()
    rider = node.ride("eth_feeHistory", ["0x14", "latest", [50]])
    node.call("eth_sendRawTransaction", ["0x00"])
    assert isinstance(node.payloads[0], dict) and not rider.done
    node.block_number()
    assert rider.done


def test_given_a_failed_round_trip_then_the_rider_waits_for_the_next() -> None:
    node = Node()
    rider = node.ride("eth_feeHistory", ["0x14", "latest", [50]])
    node.fail = TransientError("timed out")
    with pytest.raises(TransientError):
        node.block_number()
    assert not rider.done
    node.block_number()
    assert rider.done and rider.result == {"oldestBlock": "0x1"}


def test_only_reads_ride() -> None:
    with pytest.raises(ValueError, match="only reads ride"):
        Node().ride("eth_sendRawTransaction", ["0x00"])
