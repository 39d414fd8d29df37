"""The devnet for integration tests: loaded once per session from the prebuilt state (deployed
once and cached under build/devnet/), with evm_snapshot / evm_revert around every test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keeper.chain.keys import Signer, load_signer_from_env
from keeper.chain.rpc import JsonRpc
from keeper.config import KeeperConfig, load_config
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World, prebuilt_state, start_world

DEV_ACCOUNT_1_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # public anvil key


@dataclass
class Devnet:
    rpc: JsonRpc
    manifest: DevnetManifest
    tx: DevSender

    def contract(self, name: str) -> str:
        return self.manifest.contracts[name]

    def post_index(self, market: str, answer_raw: int) -> None:
        """A new round of the market's aggregator (8 decimals), then the price feed's update()."""
        m, deployer = self.manifest.market(market), self.manifest.accounts.deployer
        self.tx.call_fn(deployer, m.aggregator, codec("MockV3Aggregator"), "updateAnswer", answer_raw)
        self.tx.call_fn(deployer, m.chainlink_price_feed, codec("ChainlinkPriceFeedV3"), "update")

    def keeper_config(self, tmp_path: Path, **sections: dict[str, Any]) -> KeeperConfig:
        """The keeper's config for this devnet: its RPC and manifest, a journal under `tmp_path`,
        and any other config `sections`."""
        manifest = tmp_path / "manifest.json"
        self.manifest.write(manifest)
        return load_config(None, environ={}, overrides={
            "chain": {"rpc_url": self.manifest.rpc_url, "manifest": manifest},
            "monitoring": {"journal": tmp_path / "journal.sqlite"},
            **sections,
        })


@pytest.fixture(scope="session")
def devnet_world() -> Iterator[World]:
    world = start_world(load_state=prebuilt_state())
    yield world
    world.stop()


@pytest.fixture()
def devnet(devnet_world: World) -> Iterator[Devnet]:
    rpc = devnet_world.node.rpc
    assert rpc is not None, "devnet node is not running"
    snapshot = rpc.call("evm_snapshot")
    yield Devnet(rpc, devnet_world.manifest, DevSender(rpc))
    rpc.call("anvil_removeBlockTimestampInterval")
    assert rpc.call("evm_revert", [snapshot]) is True


@pytest.fixture()
def signer(monkeypatch: pytest.MonkeyPatch, devnet: Devnet) -> Signer:
    """The keeper's signer (anvil's public dev account #1), loaded from the env var as in production."""
    monkeypatch.setenv("KEEPER_PRIVATE_KEY", DEV_ACCOUNT_1_KEY)
    signer = load_signer_from_env()
    assert signer.address == devnet.manifest.accounts.keeper
    return signer
