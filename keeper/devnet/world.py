"""Bring the devnet world up: deploy from scratch, or load a saved state and its manifest.

A saved state is two files: anvil's state JSON and a sidecar manifest `<state>.manifest.json`.
The prebuilt state used by tests and benchmarks is cached under build/devnet/ and rebuilt when
its fingerprint (deployer code, our contracts, the pinned npm packages) changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from keeper.artifacts import ARTIFACT_SOURCES, PROJECT_ROOT, load_artifact
from keeper.devnet.deploy import DEFAULT_MARKETS, MarketSpec, ProgressFn, deploy_world
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.node import AnvilNode, dump_state
from keeper.errors import ConfigError

BUILD_DIR = PROJECT_ROOT / "build" / "devnet"
DEVNET_OWN_CONTRACTS = ("MintableERC20", "Multicall3")  # ours that the deployer puts on chain


def manifest_path_for(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".manifest.json")


@dataclass
class World:
    node: AnvilNode
    manifest: DevnetManifest
    ready_s: float  # from process start to a usable chain
    deployed: bool  # True: deployed now; False: loaded from a state file

    def stop(self) -> None:
        self.node.stop()


def start_world(
    port: int = 0,
    load_state: Path | None = None,
    dump_state_to: Path | None = None,
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS,
    progress: ProgressFn | None = None,
) -> World:
    """Start anvil and either deploy everything or load `load_state`. Optionally save the state."""
    started = time.monotonic()
    if load_state is not None:
        sidecar = manifest_path_for(load_state)
        if not load_state.exists():
            raise ConfigError(f"--load-state {load_state}: file not found")
        if load_state.is_dir():
            raise ConfigError(f"--load-state {load_state}: a directory, not a state file saved with --dump-state")
        if not sidecar.exists():
            raise ConfigError(f"--load-state {load_state}: its manifest {sidecar.name} is missing beside it")
        saved = DevnetManifest.read(sidecar)
        node = AnvilNode(port=port, chain_id=saved.chain_id, load_state=load_state)
        rpc = node.start()
        manifest = saved.with_rpc_url(node.rpc_url)
        deployed = False
    else:
        node = AnvilNode(port=port)
        rpc = node.start()
        try:
            manifest = deploy_world(rpc, markets, progress)
        except BaseException:
            node.stop()
            raise
        deployed = True
    ready_s = time.monotonic() - started
    if dump_state_to is not None:
        dump_state(rpc, dump_state_to)
        manifest.write(manifest_path_for(dump_state_to))
    return World(node, manifest, ready_s, deployed)


def fingerprint(markets: tuple[MarketSpec, ...]) -> str:
    """Changes whenever what the prebuilt state would contain changes."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "keeper" / "devnet").glob("*.py")):
        digest.update(path.read_bytes())
    digest.update((PROJECT_ROOT / "package-lock.json").read_bytes())
    for name, (source, rel_path) in sorted(ARTIFACT_SOURCES.items()):
        if source == "forge" and name in DEVNET_OWN_CONTRACTS:  # not tests: they don't change the chain
            digest.update(name.encode())
            digest.update(load_artifact(name).bytecode)
    digest.update(json.dumps([m.__dict__ for m in markets], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def prebuilt_state(markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS, progress: ProgressFn | None = None) -> Path:
    """Path of a saved state for `markets`, deploying it once if the cache is missing or stale."""
    key = fingerprint(markets)
    state = BUILD_DIR / f"state-{len(markets)}m-{key}.json"
    if state.exists() and manifest_path_for(state).exists():
        return state
    world = start_world(dump_state_to=state, markets=markets, progress=progress)
    world.stop()
    return state
