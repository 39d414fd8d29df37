"""The keeper's lifecycle: start-up checks, the block loop, graceful shutdown.

Start-up (any failure is fatal, with a message naming what is wrong, before anything is sent):
chain id, addresses have code, the signing key (live mode only; dry runs hold none), the executor
(deployed and owned by the key; on an anvil devnet or fork it is provisioned if not configured),
balances for gas, the journal reconciled with the chain (the chain wins).

The block loop (keeper/blockloop.py) ticks on every new head, pushed over WebSocket or polled
over HTTP, never two ticks at once; SIGINT/SIGTERM stop it after the current tick; SIGUSR1 (or
the kill-switch file) pulls the kill switch. With no RPC configured the embedded devnet is
started, with the market-activity driver as a second job: this is `make demo`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from keeper.addressbook import optimism_book, resolve_sources
from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer, load_signer
from keeper.chain.pending import JsonFilePendingStore
from keeper.blockloop import build_head_feed, run_blocks
from keeper.chain.heads import HeadFeed
from keeper.chain.failover import connect_rpc
from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import SenderConfig, TxSender
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.provision import provision_executor
from keeper.devnet.txs import DevSender, codec
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.engine import Engine, load_strategy_slots
from keeper.errors import ChainMismatchError, ConfigError, FatalError
from keeper.execute import DryRunExecutor, Executor, LiveExecutor
from keeper.journal import ChainPosition, Journal
from keeper.types import PerpAccountState
from keeper.logs import get_logger
from keeper.metrics import KeeperMetrics
from keeper.plan import Planner
from keeper.signals import BasisHistory

log = get_logger("keeper.runtime")
GWEI = 10**9
MIN_GAS_BALANCE_WEI = 10**16  # 0.01 ETH


@dataclass
class Runtime:
    config: KeeperConfig
    rpc: JsonRpc
    engine: Engine
    journal: Journal
    mode: str
    owner: str
    executor_address: str
    world: World | None = None
    driver: MarketActivity | None = None
    kill_flag: threading.Event = field(default_factory=threading.Event)
    ticks: int = 0
    heads: HeadFeed | None = None

    def close(self) -> None:
        if self.heads is not None:
            self.heads.stop()
        self.journal.close()
        self.rpc.close()
        if self.world is not None:
            self.world.stop()


def _is_anvil(rpc: JsonRpc) -> bool:
    try:
        return str(rpc.call("web3_clientVersion")).lower().startswith("anvil")
    except Exception:  # noqa: BLE001 - any node without the method is simply not anvil
        return False


def _ephemeral_devnet_signer(rpc: JsonRpc) -> Signer:
    """A fresh random key for the embedded devnet, funded with gas money; it exists only in memory."""
    account = Account.create()
    signer = Signer(bytes(account.key))
    rpc.call("anvil_setBalance", [signer.address, hex(1_000 * 10**18)])
    return signer


def build_runtime(config: KeeperConfig, *, dry_run: bool, seed: int = 7) -> Runtime:
    world: World | None = None
    manifest: DevnetManifest | None = None
    if config.chain.rpc_url is None:
        if config.chain.preset != "devnet":
            raise ConfigError("chain.rpc_url: required with preset 'optimism' (no embedded chain for it)")
        world = start_world(load_state=prebuilt_state())
        manifest = world.manifest
        rpc_url = world.node.rpc_url
    else:
        rpc_url = config.chain.rpc_url
        if config.chain.preset == "devnet":
            path = config.chain.manifest or Path(".keeper/devnet/manifest.json")
            manifest = DevnetManifest.read(path)
    try:
        return _assemble(config, rpc_url, manifest, world, dry_run=dry_run, seed=seed)
    except BaseException:
        if world is not None:
            world.stop()
        raise


def _assemble(config: KeeperConfig, rpc_url: str, manifest: DevnetManifest | None, world: World | None, *,
              dry_run: bool, seed: int) -> Runtime:
    rpc = connect_rpc(config.chain, rpc_url)  # with chain.backup_rpc_urls: failover
    chain_id = rpc.chain_id()
    if config.chain.chain_id is not None and chain_id != config.chain.chain_id:
        raise ChainMismatchError(f"chain.chain_id: the node at {rpc_url} is chain {chain_id}, config says {config.chain.chain_id}")
    sources = Sources.from_manifest(manifest) if manifest is not None else resolve_sources(rpc, optimism_book())
    unknown = sorted(set(config.markets.enabled) - {m.name for m in sources.markets})
    if unknown:
        raise ConfigError(f"markets.enabled: unknown market(s) {unknown}; this chain has {[m.name for m in sources.markets]}")
    anvil = _is_anvil(rpc)
    # ---- who trades
    signer: Signer | None = None
    if not dry_run:
        if world is not None:
            signer = _ephemeral_devnet_signer(rpc)
        else:
            signer = load_signer(config.account.keystore, config.account.key_env, config.account.keystore_password_env)
    executor_address = config.account.executor
    if executor_address is None:
        if not (anvil and manifest is not None):
            raise ConfigError("account.executor: required outside a devnet/fork (deploy a BasisExecutor and set its address)")
        owner = signer.address if signer else manifest.accounts.keeper
        rpc.call("anvil_impersonateAccount", [owner])  # provisioning sends as the owner, keyless
        executor_address = provision_executor(DevSender(rpc), manifest, owner)
        rpc.call("anvil_stopImpersonatingAccount", [owner])
        log.info("executor.provisioned", executor=executor_address, owner=owner)
    if not rpc.get_code(executor_address):
        raise ChainMismatchError(f"account.executor: no contract code at {executor_address} on chain {chain_id}")
    owner = to_checksum_address(  # the executor's operator: the only account that may trade
        codec("BasisExecutor").decode("operator", rpc.eth_call(executor_address, codec("BasisExecutor").encode("operator")))[0])
    if signer is not None and owner.lower() != signer.address.lower():
        raise ChainMismatchError(f"account.executor: {executor_address} is operated by {owner}, not by the key's address {signer.address}")
    if signer is not None:
        balance = int(rpc.call("eth_getBalance", [signer.address, "latest"]), 16)
        if balance < MIN_GAS_BALANCE_WEI:
            raise FatalError(f"keeper account {signer.address} has {balance / 1e18:.6f} ETH: not enough for gas")
    # ---- reading, deciding, planning
    collector = SnapshotCollector(rpc, sources, account=executor_address)
    collector.prepare()
    journal = Journal(config.monitoring.journal)
    snapshot = collector.fetch_snapshot()
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        raise ChainMismatchError(f"executor {executor_address}: Perp account unreadable: {getattr(account, 'reason', account)}")
    chain_positions = {name: ChainPosition(held.position_size_x18) for name, held in account.markets.items()}
    differences = journal.reconcile(chain_positions, block=snapshot.block_number, timestamp_s=snapshot.block_timestamp)
    strategies = load_strategy_slots(config)
    heads = build_head_feed(config, rpc)  # the block loop's feed; pushed heads also wake the sender
    executor: Executor
    if signer is None:
        executor = DryRunExecutor(rpc, owner)
    else:
        cfg = config.execution
        sender = TxSender(
            rpc, signer,
            SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=int(cfg.max_fee_per_gas_gwei * GWEI)),
                         gas_margin_bps=cfg.gas_margin_pct * 100, confirmations=cfg.confirmations,
                         replace_after_blocks=cfg.replace_after_blocks, poll_interval_s=config.chain.poll_interval_s),
            JsonFilePendingStore(config.monitoring.journal.with_name(f"pending-{chain_id}-{signer.address}.json")),
            chain_id=chain_id, sleep=heads.sleep_until_new_head)
        sender.recover()
        executor = LiveExecutor(sender, rpc, sources.perp.clearing_house)
    metrics = KeeperMetrics()
    metrics.serve(config.monitoring.metrics_port)
    kill_flag = threading.Event()

    def kill_switch() -> bool:
        return kill_flag.is_set() or Path(config.risk.kill_switch_file).exists()

    engine = Engine(
        config=config, collector=collector, strategies=strategies,
        planner=Planner(config, executor_address, rpc), executor=executor, journal=journal, metrics=metrics,
        kill_switch=kill_switch, history=BasisHistory(config.strategies.basis_window_s, config.strategies.basis_min_samples))
    driver = None
    if world is not None and manifest is not None:
        driver = MarketActivity(JsonRpc(rpc_url), manifest, ActivityConfig(seed=seed))
    mode = "dry_run" if signer is None else "live"
    log.info("keeper.started", mode=mode, chain_id=chain_id, rpc_url=rpc_url, executor=executor_address, owner=owner,
             markets=config.markets.enabled, strategies=[s.strategy.name for s in strategies],
             embedded_devnet=world is not None, reconciled=len(differences))
    runtime = Runtime(config, rpc, engine, journal, mode, owner, executor_address, world, driver, kill_flag,
                      heads=heads)
    return runtime


def run_loop(runtime: Runtime, *, blocks: int | None, drive_interval_s: float = 2.0, view: Any = None) -> None:
    """Tick on every new head until `blocks` ticks have run, SIGINT/SIGTERM, or forever
    (keeper/blockloop.py: heads pushed over ws, polled over HTTP as the fallback)."""
    run_blocks(runtime, blocks=blocks, drive_interval_s=drive_interval_s, view=view)
