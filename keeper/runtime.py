"""The keeper's lifecycle: start-up checks, the block loop, graceful shutdown.

Start-up: chain id, addresses have code, the signing key (live mode only; dry runs hold none), the
executor (deployed and owned by the key, not paused: a live run refuses a paused one, a dry run
warns; on an anvil devnet or fork it is provisioned if not configured), balances for gas, transactions left in flight by the last run booked, the journal
reconciled with the chain (the chain wins). Transient RPC errors are retried with backoff for
`chain.startup_retry_s` (keeper/startup.py); configuration and chain errors are fatal at once,
with a message naming what is wrong, before anything is sent.

The block loop (keeper/blockloop.py) ticks on every new head, pushed over WebSocket or polled
over HTTP, never two ticks at once; SIGINT/SIGTERM stop it after the current tick; SIGUSR1 (or
the kill-switch file) pulls the kill switch. During the start, a SIGINT/SIGTERM ends it (nothing
sent after it) and a SIGUSR1 pulls the kill switch (keeper/stop_signals.py).

The runtime does not know the devnet: it receives a `ChainSetup` (keeper/launch.py builds it; with
no RPC configured that is the embedded devnet, with the market-activity driver as a second job:
`make demo`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_utils import to_checksum_address

from keeper.addressbook import optimism_book, resolve_sources
from keeper.gas_price import build_fee_policy
from keeper.chain.keys import Signer, load_signer
from keeper.chain.pending import JsonFilePendingStore
from keeper.blockloop import build_head_feed, run_blocks
from keeper.chain.heads import HeadFeed
from keeper.chain.failover import connect_rpc
from keeper.chain.retry import LIVE_ATTEMPTS, STARTUP_ATTEMPTS, RetryCalls
from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig
from keeper.engine import Engine, StrategySlot, load_strategy_slots
from keeper.errors import ChainMismatchError, ConfigError, FatalError, RpcError, TransientError
from keeper.execute import DryRunExecutor, Executor, LiveExecutor
from keeper.executor_markets import check_executor_markets
from keeper.adopt import chain_positions
from keeper.collateral import fund_vault
from keeper.kill_switch import KillSwitch
from keeper import stop_signals
from keeper.stop_signals import StopSignals
from keeper.journal import Journal
from keeper.journal.executors import choose_executor
from keeper.journal.holder import write_off_or_refuse
from keeper.retention import prune_journal
from keeper.startup import retry_transient
from keeper.types import BASIS_PERP_VENUE, MarketSnapshot, PerpAccountState
from keeper.venues.executor import EXECUTOR
from keeper.warm_start import warm_start
from keeper.logs import get_logger, redacted_url
from keeper.journal.lock import JournalLock
from keeper.metrics import KeeperMetrics
from keeper.pairs_desk import check_pair_markets
from keeper.pairs_status import fetch_open_pairs
from keeper.plan import Planner
from keeper.signals import BasisHistory

log = get_logger("keeper.runtime")
GWEI = 10**9
MIN_GAS_BALANCE_WEI = 10**16  # 0.01 ETH


class MarketDriver(Protocol):
    """Moves a devnet's market on a timer (keeper/devnet/activity.py); `step()` reports `.step`, `.block_number` and `.shock` (a scripted premium shock or None)."""

    def step(self) -> Any: ...


@dataclass(frozen=True)
class ChainSetup:
    """The chain the runtime trades on, as its launcher (keeper/launch.py) wires it.

    `sources`: the markets' addresses when known (a devnet manifest); None: resolved on chain from
    the address book. `provision_executor(rpc, owner or None)`: on an anvil chain without a
    configured executor, deploys and funds one operated by `owner` (None: the chain's default
    keeper account) and returns its address. `embedded`: a throwaway chain of our own (the live key
    is a fresh in-memory one). `start_driver`: the market-activity driver, if any. `stop`: called
    when the runtime closes (the embedded chain's node)."""

    rpc_url: str
    sources: Sources | None = None
    provision_executor: Callable[[JsonRpc, str | None], str] | None = None
    embedded: bool = False
    start_driver: Callable[[], MarketDriver] | None = None
    stop: Callable[[], None] | None = None


@dataclass
class Runtime:
    config: KeeperConfig
    rpc: JsonRpc
    engine: Engine
    journal: Journal
    mode: str
    owner: str
    executor_address: str
    setup: ChainSetup | None = None
    driver: MarketDriver | None = None
    kill_flag: threading.Event = field(default_factory=threading.Event)
    ticks: int = 0
    heads: HeadFeed | None = None
    warm_from: MarketSnapshot | None = None  # the start-up snapshot, until the warm start has read back from it
    locks: list[JournalLock] = field(default_factory=list)  # the journal's and the key's pending store's, start to close
    signals: StopSignals | None = None  # the handlers installed at start (keeper/stop_signals.py), if any
    loop_fatal: BaseException | None = None  # an error outside a tick that stopped the block loop (exit 1)

    def pull_kill_switch(self, source: str) -> None:
        """The kill switch for every market, pulled by the program running this keeper (keeper
        simulate's wind-down); `kill_switch.pulled` names `source`."""
        switch = self.engine.kill_switch
        if isinstance(switch, KillSwitch):
            switch.pull(source)
        self.kill_flag.set()

    def warm_up(self, should_stop: Callable[[], bool] | None = None) -> None:
        """The warm start (keeper/warm_start.py), once: the block loop calls it before its first
        tick, with its signal handlers in place (`should_stop`: a stop was asked for)."""
        start, self.warm_from = self.warm_from, None
        if start is not None and self.engine.last_block >= 0:  # ticked already: the ticks recorded the past
            log.info("warm_start.skipped", reason=f"the keeper ticked already (block {self.engine.last_block})")
        elif start is not None:
            warm_start(self.engine, start, self.config.strategies.warm_start_blocks,
                       max_s=self.config.strategies.warm_start_max_s, should_stop=should_stop,
                       latest=self.rpc.block_number)

    def close(self) -> None:
        if self.heads is not None:
            self.heads.stop()
        self.engine.metrics.close()  # the metrics port is free again
        self.journal.close()
        for lock in self.locks:
            lock.release()
        self.rpc.close()
        if self.setup is not None and self.setup.stop is not None:
            self.setup.stop()


def _executor_operator(rpc: JsonRpc, executor: str, chain_id: int) -> str:
    """The executor's operator; a contract that does not answer `operator()` as a BasisExecutor
    does (it reverts, or returns no address) is refused naming account.executor."""
    try:
        raw = rpc.eth_call(executor, EXECUTOR.encode("operator"))
        return to_checksum_address(EXECUTOR.decode("operator", raw)[0])
    except TransientError:
        raise
    except (RpcError, ValueError, DecodingError) as exc:
        raise ChainMismatchError(f"account.executor: {executor} on chain {chain_id} is not a BasisExecutor "
                                 f"(its operator() {'reverted' if isinstance(exc, RpcError) else 'returned no address'})") from exc


def _journal_executor(config: KeeperConfig, rpc: JsonRpc, chain_id: int) -> str | None:
    """The executor the journal's last live run on this chain traded through, if it still has code
    there (a devnet started afresh has none: skipped, logged as `executor.skipped`): with
    account.executor unset, a restart carries on with it instead of provisioning a new one, whose
    empty account would close the journal's open positions as "not on chain" while the old
    executor still holds them. The same choice as `keeper status` and `keeper stress`."""
    choice = choose_executor(("account.executor", None), config.monitoring.journal, lambda: chain_id,
                             rpc.has_code)
    if choice.skipped:
        log.info("executor.skipped", reason=choice.skipped, journal=str(config.monitoring.journal))
    if choice.address is not None:
        log.info("executor.reused", executor=choice.address, journal=str(config.monitoring.journal))
    return choice.address


def _refuse_other_executor(config: KeeperConfig, chain_id: int, executor: str) -> None:
    """A configured executor other than the one this journal's open positions are in (its holder on
    this chain, recorded by every start's reconcile; before the holder, by its live runs) is refused
    before anything is sent: reconciling with its account would book them closed ("not on chain")
    while the other executor still holds them."""
    with Journal(config.monitoring.journal) as journal:
        holder = journal.positions_holder()
        recorded = (holder.executor if holder is not None and holder.chain_id == chain_id and not holder.embedded
                    else journal.recorded_executors().get(chain_id))
        if recorded is None or recorded.lower() == executor.lower():
            return
        held = sorted(set(journal.open_positions()) | {m for p in fetch_open_pairs(journal) for m in (p.market_a, p.market_b)})
    if held:
        raise ConfigError(f"account.executor: {executor}, but this journal's open positions ({', '.join(held)}) are in "
                          f"{recorded} on chain {chain_id}: close them there first (account.executor = {recorded}), "
                          f"or use another monitoring.journal")


def pending_store_path(config: KeeperConfig, chain_id: int, address: str) -> Path:
    """The sender's pending-transaction store of a key on a chain, beside the journal."""
    return config.monitoring.journal.with_name(f"pending-{chain_id}-{address}.json")


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


def assemble_runtime(config: KeeperConfig, setup: ChainSetup, *, dry_run: bool,
                     journal_lock: JournalLock | None = None) -> Runtime:
    """Connects to `setup`'s chain and assembles the keeper on it (start-up retries transient
    errors); on failure the setup's chain is stopped. `journal_lock`: the journal's, taken by the
    caller (it stays the caller's to release should this fail); None: taken here."""
    try:
        return retry_transient(lambda: _assemble(config, setup, dry_run=dry_run, journal_lock=journal_lock),
                               budget_s=config.chain.startup_retry_s, backoff_max_s=config.chain.startup_backoff_max_s)
    except BaseException:
        if setup.stop is not None:
            setup.stop()
        raise


def _assemble(config: KeeperConfig, setup: ChainSetup, *, dry_run: bool, journal_lock: JournalLock | None) -> Runtime:
    strategies = load_strategy_slots(config)  # a bad strategy name or parameter: refused before anything is sent
    # likewise a second keeper on this journal (and, live, on this key's pending store: _connect_and_assemble)
    locks = [journal_lock or JournalLock(config.monitoring.journal).acquire()]
    metrics = KeeperMetrics()
    try:
        metrics.bind(config.monitoring.metrics_port)  # likewise a port another process holds (taken now, served later)
        runtime = _connect_and_assemble(config, setup, strategies, metrics, locks, dry_run=dry_run)
    except BaseException:
        metrics.close()  # a start-up that failed (and may be retried) frees the port and what it locked
        for lock in locks[1 if journal_lock is not None else 0:]:
            lock.release()
        raise
    runtime.locks = locks
    return runtime


def _connect_and_assemble(config: KeeperConfig, setup: ChainSetup, strategies: list[StrategySlot],
                          metrics: KeeperMetrics, locks: list[JournalLock], *, dry_run: bool) -> Runtime:
    rpc_url = setup.rpc_url
    rpc = connect_rpc(config.chain, rpc_url, attempts=STARTUP_ATTEMPTS,  # with chain.backup_rpc_urls: failover
                      backoff_max_s=config.chain.startup_backoff_max_s)
    chain_id = rpc.chain_id()
    if config.chain.chain_id is not None and chain_id != config.chain.chain_id:
        node = config.where("chain", "rpc_url") if rpc_url == config.chain.rpc_url else redacted_url(rpc_url)  # a manifest's: local
        raise ChainMismatchError(f"chain.chain_id: the node ({node}) is chain {chain_id}, config says {config.chain.chain_id}")
    sources = setup.sources if setup.sources is not None else resolve_sources(rpc, optimism_book())
    unknown = sorted(set(config.markets.enabled) - {m.name for m in sources.markets})
    if unknown:
        raise ConfigError(f"markets.enabled: unknown market(s) {unknown}; this chain has {[m.name for m in sources.markets]}")
    check_pair_markets(config, [m.name for m in sources.markets])
    # every address has code: a wrong chain is named before any deploy; the live loop's snapshots are
    # checked to come from the block asked for (a batch the node answered from another is read again)
    collector = SnapshotCollector(rpc, sources, check_block=True)
    collector.prepare()
    anvil = _is_anvil(rpc)
    # the journal's open positions on a chain that is gone: an earlier embedded run's written off, others refused
    write_off_or_refuse(config.monitoring.journal, chain_id, rpc.has_code, embedded=setup.embedded,
                        node="the embedded devnet" if setup.embedded else redacted_url(rpc_url), head=rpc.block_number)
    # ---- who trades
    signer: Signer | None = None
    if not dry_run:
        if setup.embedded:
            signer = _ephemeral_devnet_signer(rpc)
        else:
            signer = load_signer(config.account.keystore, config.account.key_env, config.account.keystore_password_env)
    executor_address = config.account.executor
    if executor_address is not None:
        _refuse_other_executor(config, chain_id, executor_address)
    reused = False
    if executor_address is None and anvil and setup.provision_executor is not None and not setup.embedded:
        executor_address = _journal_executor(config, rpc, chain_id)
        reused = executor_address is not None
    if executor_address is None:
        if not (anvil and setup.provision_executor is not None):
            raise ConfigError("account.executor: required outside a devnet/fork (deploy a BasisExecutor and set its address)")
        with stop_signals.sending():  # a deploy, then funding: a stop signal meanwhile ends the start after it
            executor_address = setup.provision_executor(rpc, signer.address if signer else None)
        log.info("executor.provisioned", executor=executor_address)
    if not rpc.get_code(executor_address):
        raise ChainMismatchError(f"account.executor: no contract code at {executor_address} on chain {chain_id}")
    owner = _executor_operator(rpc, executor_address, chain_id)  # the only account that may trade
    if signer is not None:  # one keeper per key and chain: its pending store (nonces) is not shared
        locks.append(JournalLock(pending_store_path(config, chain_id, signer.address),
                                 what="the pending-transaction store of this key and chain").acquire())
    if signer is not None and owner.lower() != signer.address.lower():
        which = (f"unset, and the executor this journal traded through, {executor_address}," if reused
                 else f"{executor_address}")
        raise ChainMismatchError(f"account.executor: {which} is operated by {owner}, not by the key's address "
                                 f"{signer.address}" + ("; set account.executor, or use another monitoring.journal"
                                                        if reused else ""))
    paused = bool(EXECUTOR.decode("paused", rpc.eth_call(executor_address, EXECUTOR.encode("paused")))[0])
    if paused and signer is not None:  # the contract refuses every trade (IsPaused): not a keeper worth starting
        raise ConfigError(f"account.executor: {executor_address} is paused (by its admin, e.g. after `keeper executor "
                          f"migrate`): it refuses every trade; set account.executor to the executor in use, or have "
                          f"the admin unpause this one")
    # every enabled market registered as the book quotes it (the pair desk's too), a dry run's as well
    check_executor_markets(collector.multicall, executor_address, collector.static, config.markets.enabled)
    if paused:
        log.warning("executor.paused", executor=executor_address,
                    note="the executor refuses every trade (IsPaused): the dry run's simulations will revert")
    if signer is not None:
        balance = int(rpc.call("eth_getBalance", [signer.address, "latest"]), 16)
        if balance < MIN_GAS_BALANCE_WEI:
            raise FatalError(f"keeper account {signer.address} has {balance / 1e18:.6f} ETH: not enough for gas")
    # ---- reading, deciding, planning
    collector.account = executor_address
    snapshot = collector.fetch_snapshot()
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        raise ChainMismatchError(f"executor {executor_address}: Perp account unreadable: {getattr(account, 'reason', account)}")
    journal = Journal(config.monitoring.journal)
    try:
        if signer is not None and not setup.embedded:  # a restart with account.executor unset carries on with it
            journal.record_executor(chain_id, executor_address)
        return _assemble_engine(config, rpc, setup, sources, collector, journal, snapshot, signer,
                                owner, executor_address, chain_id, strategies, metrics, paused)
    except BaseException:
        journal.close()
        raise


def _assemble_engine(config: KeeperConfig, rpc: JsonRpc, setup: ChainSetup, sources: Sources,
                     collector: SnapshotCollector, journal: Journal, snapshot: MarketSnapshot, signer: Signer | None,
                     owner: str, executor_address: str, chain_id: int, strategies: list[StrategySlot],
                     metrics: KeeperMetrics, paused: bool = False) -> Runtime:
    heads = build_head_feed(config, rpc)  # the block loop's feed; pushed heads also wake the sender
    executor: Executor
    sender: TxSender | None = None  # a dry run sends nothing
    if signer is None:
        executor = DryRunExecutor(rpc, owner)
    else:
        cfg = config.execution
        sender = TxSender(
            rpc, signer,
            SenderConfig(build_fee_policy(config),  # the planner's tips come from the same policy
                         gas_margin_bps=cfg.gas_margin_pct * 100, confirmations=cfg.confirmations,
                         replace_after_blocks=cfg.replace_after_blocks, dropped_after_blocks=cfg.dropped_after_blocks,
                         poll_interval_s=config.chain.poll_interval_s,
                         keep_settled=True),
            JsonFilePendingStore(pending_store_path(config, chain_id, signer.address)),
            chain_id=chain_id, sleep=heads.sleep_until_new_head)
        with stop_signals.sending():  # re-broadcasts: a stop signal meanwhile ends the start after them
            sender.recover()
        executor = LiveExecutor(sender, rpc, {BASIS_PERP_VENUE: sources.perp.clearing_house})
    signals = stop_signals.installed()  # a SIGUSR1 during the start pulls this kill switch
    kill_flag = signals.kill_flag if signals is not None else threading.Event()
    kill_switch = KillSwitch(config.risk.kill_switch_file, config.markets.enabled, kill_flag)

    engine = Engine(
        config=config, collector=collector, strategies=strategies,
        planner=Planner(config, executor_address, rpc), executor=executor, journal=journal, metrics=metrics,
        kill_switch=kill_switch, history=BasisHistory(config.strategies.basis_window_s, config.strategies.basis_min_samples))
    engine.settle_in_flight(snapshot)  # what the last run left in flight is booked before reconciling
    in_flight = engine.inflight.markets() if engine.inflight is not None else set()
    differences = journal.reconcile(chain_positions(snapshot, sources, journal.open_positions(), in_flight),
                                    block=snapshot.block_number, timestamp_s=snapshot.block_timestamp)
    # the open positions are now exactly this executor's on this chain, a dry run's too (keeper/journal/holder.py)
    journal.record_positions_holder(chain_id, executor_address, embedded=setup.embedded)
    prune_journal(journal, snapshot.block_timestamp, config.monitoring.journal_retention_days)
    if sources.markets and kill_switch() is True:  # pulled for every market: no money moves, a deposit neither
        log.warning("collateral.deferred", executor=executor_address, target_usd=config.account.collateral_usdc,
                    reason=f"the kill switch is pulled ({config.risk.kill_switch_file}): nothing deposited this start")
    elif sources.markets:  # the vault holds account.collateral_usdc (keeper/collateral.py), read after the settling
        with stop_signals.sending():
            fund_vault(collector.fetch_snapshot() if sender is not None else snapshot, sources.markets[0].usdc,
                       executor_address, config.account.collateral_usdc, sender)
    metrics.serve(config.monitoring.metrics_port)
    driver = setup.start_driver() if setup.start_driver is not None else None
    mode = "dry_run" if signer is None else "live"
    log.info("keeper.started", mode=mode, chain_id=chain_id, rpc_url=setup.rpc_url, executor=executor_address, owner=owner,
             markets=config.markets.enabled, strategies=[s.strategy.name for s in strategies],
             embedded_devnet=setup.embedded, reconciled=len(differences), executor_paused=paused)
    runtime = Runtime(config, rpc, engine, journal, mode, owner, executor_address, setup, driver, kill_flag,
                      heads=heads, warm_from=snapshot, signals=signals)  # the past blocks: read by the loop, before its first tick
    if isinstance(rpc, RetryCalls):
        rpc.attempts = LIVE_ATTEMPTS  # in the loop a call that still fails skips the tick
    return runtime


def run_loop(runtime: Runtime, *, blocks: int | None, drive_interval_s: float = 2.0, view: Any = None) -> None:
    """Tick on every new head until `blocks` ticks have run, SIGINT/SIGTERM, a fatal error in a
    tick, or forever (keeper/blockloop.py: heads pushed over ws, polled over HTTP as the fallback)."""
    run_blocks(runtime, blocks=blocks, drive_interval_s=drive_interval_s, view=view)
