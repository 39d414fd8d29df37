"""`keeper run` pointed at a node that does not hold the manifest's contracts (a plain anvil, a
devnet restarted elsewhere): refused naming the missing code, before any executor is deployed
there. It used to deploy one first and stop on that deploy's revert data (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.node import AnvilNode
from keeper.devnet.world import manifest_path_for, prebuilt_state
from keeper.errors import ChainMismatchError
from keeper.launch import build_runtime


def test_given_a_node_without_the_manifests_contracts_when_run_starts_then_refused_and_nothing_sent(
        tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    DevnetManifest.read(manifest_path_for(prebuilt_state())).write(manifest)
    node = AnvilNode(port=0)
    rpc = node.start()
    try:
        config = load_config(None, environ={}, overrides={
            "chain": {"rpc_url": node.rpc_url, "manifest": manifest, "startup_retry_s": 0},
            "monitoring": {"journal": tmp_path / "journal.sqlite", "live_panel": "off"}})
        with pytest.raises(ChainMismatchError, match=r"no contract code at Multicall3 .* and \d+ more on chain 31337 "
                                                     r"\(none of the addresses has code"):
            build_runtime(config, dry_run=True)
        assert rpc.block_number() == 0  # no executor deployed, nothing mined
    finally:
        node.stop()
