"""What `keeper run` (and the simulations built on it) start: the chain the keeper trades on,
wired into keeper/runtime.py.

The runtime knows nothing of the devnet: it receives a `ChainSetup` (where the chain is, which
markets it has, and, on an anvil devnet, how to provision an executor and drive the market). This
module builds that setup: the embedded devnet when no RPC is configured (`make demo`), a devnet
manifest's addresses with the devnet preset, or nothing extra on a real chain (the address book
resolves the markets there).
"""

from __future__ import annotations

from keeper.addressbook import config_chain
from keeper.chain.rpc import JsonRpc
from keeper.collect import Sources
from keeper.config import KeeperConfig
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.provision import provision_impersonated
from keeper.devnet.world import World, prebuilt_state, start_world
from keeper.errors import ConfigError, TransientError, UrlRefusedError
from keeper.journal import Journal
from keeper.journal.lock import JournalLock
from keeper.logs import get_logger
from keeper.runtime import ChainSetup, Runtime, assemble_runtime

log = get_logger("keeper.runtime")


def devnet_setup(manifest: DevnetManifest, rpc_url: str, *, world: World | None = None,
                 activity: ActivityConfig | None = None, key_setting: str = "account.key_env") -> ChainSetup:
    """A devnet's markets from its manifest and its executor provisioning (anvil only); with the
    embedded `world`: a throwaway key and the market-activity driver too (`activity`: its seed,
    scripted shocks etc.; default ActivityConfig()), and the world stops with the runtime.
    `key_setting`: the setting the keeper's key comes from (named if provisioning refuses it)."""

    def provision(rpc: JsonRpc, owner: str | None) -> str:
        return provision_impersonated(rpc, manifest, owner or manifest.accounts.keeper,  # keyless
                                      key_setting=key_setting)

    return ChainSetup(
        rpc_url=rpc_url, sources=Sources.from_manifest(manifest), provision_executor=provision,
        embedded=world is not None,
        start_driver=(lambda: MarketActivity(JsonRpc(rpc_url), manifest, activity or ActivityConfig())) if world else None,
        stop=world.stop if world is not None else None)


def build_runtime(config: KeeperConfig, *, dry_run: bool, activity: ActivityConfig | None = None) -> Runtime:
    """The runtime on the configured chain; with no RPC configured, on the embedded devnet, whose
    market-activity driver runs with `activity` (default ActivityConfig()). The
    journal is locked (keeper/journal/lock.py) and opened (created, or checked to be a keeper
    journal) first: a bad monitoring.journal, or one another keeper holds, is refused before any
    chain is started or any transaction sent. A failure other than bad input (ConfigError: the
    CLI's one error line) is logged as `keeper.start_failed` (with its error_type) before it
    propagates."""
    try:
        lock = JournalLock(config.monitoring.journal).acquire()
        try:
            Journal(config.monitoring.journal).close()
            return assemble_runtime(config, _chain_setup(config, activity), dry_run=dry_run, journal_lock=lock)
        except BaseException:
            lock.release()
            raise
    except (TransientError, UrlRefusedError):
        raise  # keeper.start_failed logged by the start's retries (keeper/startup.py), with their count
    except ConfigError:
        raise  # bad input: its one error line says it all (exit 2)
    except Exception as exc:
        log.error("keeper.start_failed", error_type=type(exc).__name__, error=str(exc))  # URLs redacted by the log
        raise


def _chain_setup(config: KeeperConfig, activity: ActivityConfig | None) -> ChainSetup:
    if config.chain.rpc_url is None:
        if config.chain.preset != "devnet":
            raise ConfigError("chain.rpc_url: required with preset 'optimism' (no embedded chain for it)")
        world = start_world(load_state=prebuilt_state())
        try:
            return devnet_setup(world.manifest, world.node.rpc_url, world=world, activity=activity)
        except BaseException:
            world.stop()
            raise
    rpc_url, manifest = config_chain(config)  # the devnet preset: its manifest's addresses
    if manifest is None:
        return ChainSetup(rpc_url=rpc_url)
    return devnet_setup(manifest, rpc_url,
                        key_setting="account.keystore" if config.account.keystore is not None else "account.key_env")
