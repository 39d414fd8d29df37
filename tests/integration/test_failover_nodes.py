"""Failover against real nodes: a dead primary hands every call to the devnet backup, and a node
that stops mining is demoted against one that goes on."""

from __future__ import annotations

from structlog.testing import capture_logs

from keeper.chain.failover import FailoverRpc
from keeper.chain.rpc import JsonRpc
from keeper.devnet.node import AnvilNode, free_port
from tests.integration.conftest import Devnet


def test_a_dead_primary_fails_over_to_the_backup(devnet: Devnet) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    rpc = FailoverRpc([JsonRpc(dead, timeout_s=2.0), JsonRpc(devnet.manifest.rpc_url)])
    with capture_logs() as logs:
        assert rpc.chain_id() == devnet.manifest.chain_id
        assert rpc.batch([("eth_blockNumber", []), ("eth_chainId", [])])[1] == hex(devnet.manifest.chain_id)
    assert rpc.active_url == devnet.manifest.rpc_url
    assert [e["event"] for e in logs].count("rpc.failover") == 1
    rpc.close()


def test_a_node_left_behind_is_demoted(devnet: Devnet) -> None:
    behind = AnvilNode()
    behind.start()
    try:
        devnet.rpc.call("anvil_mine", [hex(10)])  # the devnet is ahead of a fresh node by far
        rpc = FailoverRpc([JsonRpc(behind.rpc_url), JsonRpc(devnet.manifest.rpc_url)], max_lag_blocks=3)
        with capture_logs() as logs:
            rpc.check_heads()
        assert rpc.endpoints[0].demoted and not rpc.endpoints[1].demoted
        assert [e["url"] for e in logs if e["event"] == "rpc.demoted"] == [behind.rpc_url]
        assert rpc.block_number() == devnet.rpc.block_number()  # served by the node ahead
        rpc.close()
    finally:
        behind.stop()
