"""Riders (keeper/chain/rpc.py): a queued read goes out in the batch of the client's next read
round trip, never with a send; a round trip that fails as a whole fails the rider and its
carrier is sent again alone, so a rider never changes what its carrier returns or raises."""

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


def test_given_a_failed_round_trip_then_the_rider_takes_the_failure_and_the_call_goes_alone() -> None:
    node = Node()
    rider = node.ride("eth_feeHistory", ["0x14", "latest", [50]])
    node.fail = TransientError("timed out")
    assert node.block_number() == 42  # sent again without the rider
    assert rider.done and isinstance(rider.error, TransientError) and rider.result is None
    assert [p["method"] for p in node.payloads[0]] == ["eth_blockNumber", "eth_feeHistory"]
    assert [p["method"] for p in node.payloads[1]] == ["eth_blockNumber"]
    node.block_number()
    assert isinstance(node.payloads[2], dict)  # the failed rider is not carried again


def test_given_a_gateway_refusing_the_whole_batch_then_the_call_still_answers_every_time() -> None:
    class Refusing(Node):  # answers any batch carrying eth_feeHistory with one error object
        def _post(self, payload: Any) -> Any:
            if isinstance(payload, list) and any(p["method"] == "eth_feeHistory" for p in payload):
                self.stats.round_trips += 1
                return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch not supported"}}
            return super()._post(payload)

    node = Refusing()
    rider = node.ride("eth_feeHistory", ["0x14", "latest", [50]])
    assert [node.block_number() for _ in range(3)] == [42, 42, 42]
    assert rider.done and isinstance(rider.error, RpcError) and "batch not supported" in str(rider.error)
    assert node.stats.round_trips == 4  # one refused, then the call alone; the rider is not sent again


def test_only_reads_ride() -> None:
    with pytest.raises(ValueError, match="only reads ride"):
        Node().ride("eth_sendRawTransaction", ["0x00"])
