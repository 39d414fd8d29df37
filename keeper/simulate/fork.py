"""An anvil fork to simulate on, and what the keeper needs there: its addresses, money, an
executor, and oracles the scenario can move.

- `start_fork`: anvil forked from the origin RPC (at a block, or its head), clock re-anchored one
  second after the fork head as for a loaded devnet state. The origin is only ever read: every
  write (transactions, anvil_set*) goes to the fork's own node.
- Token balances are written into storage (`set_token_balance`): the balanceOf mapping's slot is
  found by probing (write a marker at keccak(pad(account) ++ pad(slot)) for slots 0..30, Solidity
  layout, then keccak(pad(slot) ++ pad(account)), Vyper layout; read balanceOf; restore the slot
  on a miss). Works for any plain ERC20, proxies included (the storage is the proxy's), so it funds
  the keeper on a real-chain fork where nobody can mint.
- `install_mock_aggregator`: on a real chain the index comes from a Chainlink aggregator nobody
  here can update; its code is replaced by MockV3Aggregator's runtime code (anvil_setCode), its
  decimals written to the slot MockV3Aggregator reads them from, and its current answer posted, so
  the scenario can then post answers with updateAnswer like on the devnet.
- `provision_fork_executor`: deploy and set up a BasisExecutor operated by the throwaway keeper key,
  with the same contract calls as keeper/devnet/provision.py, but funded by storage writes (the
  same on a devnet fork and a real-chain fork) and sent by impersonating the owner (anvil), so the
  key itself signs only the keeper's own trades.
- `find_origin_manifest`: which devnet a fork came from (for its addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from keeper.addressbook import AddressBook
from keeper.artifacts import PROJECT_ROOT, load_artifact
from keeper.chain.rpc import JsonRpc
from keeper.devnet.deploy import USDC_DECIMALS
from keeper.devnet.manifest import DEFAULT_MANIFEST, DevnetManifest
from keeper.devnet.node import AnvilNode, reanchor_clock
from keeper.devnet.provision import ExecutorFunding, ExecutorRoles, deploy_executor
from keeper.devnet.txs import DevSender, codec
from keeper.errors import ConfigError, FatalError, KeeperError
from keeper.logs import get_logger, redacted_url

log = get_logger("keeper.simulate")
MAX_PROBED_SLOT = 30
PROBE_MARKER = 0x5EED_0F_BA1A_11CE_5EED  # an unlikely balance, written only while probing
MOCK_AGGREGATOR_DECIMALS_SLOT = 0  # MockV3Aggregator: uint8 decimals (slot 0), latestAnswer (1), latestTimestamp (2), latestRound (3)
MOCK_AGGREGATOR_ROUND_SLOT = 3
ONE_X18 = 10**18
KEEPER_GAS_ETH = 100  # ETH given to the throwaway keeper account for gas
# Admin and treasury of the fork's executor: an address no key controls, impersonated while provisioning.
FORK_ADMIN = "0x00000000000000000000000000000000000AD317"


# ------------------------------------------------------------------------------ the fork node
class ForkStartError(FatalError):
    """anvil could not fork the origin (at that block): every run from the same origin block would fail alike."""


def check_fork_block(fork_block: int | None, head: int) -> None:
    """A --fork-block the origin has (0 .. its head), else a ConfigError naming the head."""
    if fork_block is not None and not 0 <= fork_block <= head:
        raise ConfigError(f"--fork-block {fork_block}: must be between 0 and the origin's head, block {head}")


def start_fork(fork_url: str, fork_block: int | None = None) -> AnvilNode:
    """anvil forked from `fork_url`; raises ForkStartError (bad --fork-url / --fork-block) on failure."""
    node = AnvilNode(fork_url=fork_url, fork_block=fork_block, startup_timeout_s=60.0)
    try:
        rpc = node.start()
        reanchor_clock(rpc)
    except KeeperError as exc:
        node.stop()
        at = "" if fork_block is None else f" at --fork-block {fork_block}"
        raise ForkStartError(f"--fork-url {redacted_url(fork_url)}: cannot fork it{at}: {exc}") from exc
    return node


def origin_head(fork_url: str) -> tuple[int, int]:
    """(chain id, head block) of the origin; FatalError when it does not answer."""
    rpc = JsonRpc(fork_url, timeout_s=10.0)
    try:
        return rpc.chain_id(), rpc.block_number()
    except KeeperError as exc:
        raise FatalError(f"--fork-url {redacted_url(fork_url)}: {exc}") from exc
    finally:
        rpc.close()


# ------------------------------------------------------------------------------ storage writes
def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def mapping_slot(key_address: str, slot: int, vyper: bool = False) -> int:
    """Storage slot of mapping[key] for a mapping at `slot` (Solidity: keccak(key ++ slot))."""
    key = encode(["address"], [to_checksum_address(key_address)])
    index = encode(["uint256"], [slot])
    return int.from_bytes(keccak(index + key if vyper else key + index), "big")


@dataclass(frozen=True)
class BalanceSlot:
    token: str
    slot: int  # the mapping's declaration slot
    vyper: bool  # keccak(slot ++ key) instead of keccak(key ++ slot)

    def of(self, account: str) -> int:
        return mapping_slot(account, self.slot, self.vyper)


_BALANCE_SLOTS: dict[tuple[str, str], BalanceSlot] = {}  # (rpc url, token) -> slot


def _storage(rpc: JsonRpc, address: str, slot: int) -> int:
    return int(rpc.call("eth_getStorageAt", [address, hex(slot), "latest"]), 16)


def _set_storage(rpc: JsonRpc, address: str, slot: int, value: int) -> None:
    rpc.call("anvil_setStorageAt", [address, _word(slot), _word(value)])


def balance_of(rpc: JsonRpc, token: str, account: str) -> int:
    erc20 = codec("MintableERC20")
    return int(erc20.decode("balanceOf", rpc.eth_call(token, erc20.encode("balanceOf", account)), 1)[0])


def balance_probe_account(token: str) -> str:
    """The account whose balance is written while probing `token` (an address nobody holds)."""
    return to_checksum_address(keccak(text=f"balance-probe:{token.lower()}")[:20].hex())


def find_balance_slot(rpc: JsonRpc, token: str, max_slot: int = MAX_PROBED_SLOT) -> BalanceSlot:
    """Find the balanceOf mapping by probing; every probed slot is restored. Raises FatalError when
    no slot in 0..max_slot moves balanceOf (a token with an unusual layout: fund it another way)."""
    cached = _BALANCE_SLOTS.get((rpc.url, token.lower()))
    if cached is not None:
        return cached
    probe = balance_probe_account(token)
    for vyper in (False, True):
        for slot in range(max_slot + 1):
            where = mapping_slot(probe, slot, vyper)
            original = _storage(rpc, token, where)
            _set_storage(rpc, token, where, PROBE_MARKER)
            try:
                hit = balance_of(rpc, token, probe) == PROBE_MARKER
            except KeeperError:
                hit = False
            _set_storage(rpc, token, where, original)
            if hit:
                found = BalanceSlot(token, slot, vyper)
                _BALANCE_SLOTS[(rpc.url, token.lower())] = found
                return found
    raise FatalError(f"token {token}: no balanceOf mapping found in storage slots 0..{max_slot} "
                     f"(neither Solidity nor Vyper layout); fund this token another way")


def set_token_balance(rpc: JsonRpc, token: str, account: str, amount_raw: int) -> None:
    """Make balanceOf(account) == amount_raw by writing storage (totalSupply is not adjusted)."""
    slot = find_balance_slot(rpc, token)
    _set_storage(rpc, token, slot.of(account), amount_raw)
    got = balance_of(rpc, token, account)
    if got != amount_raw:
        raise FatalError(f"token {token}: wrote balance {amount_raw} for {account} but balanceOf says {got}")


def add_token_balance(rpc: JsonRpc, token: str, account: str, amount_raw: int) -> None:
    set_token_balance(rpc, token, account, balance_of(rpc, token, account) + amount_raw)


# ------------------------------------------------------------------------------ oracles
def install_mock_aggregator(rpc: JsonRpc, aggregator: str, sender: str) -> int:
    """Replace a Chainlink aggregator's code by MockV3Aggregator's and post its current answer
    again; returns the answer. The decimals are read before and written back; the round counter
    restarts at 1. Idempotent (a MockV3Aggregator stays one, with its decimals and answer)."""
    mock = codec("MockV3Aggregator")
    decimals = int(mock.decode("decimals", rpc.eth_call(aggregator, mock.encode("decimals")))[0])
    _, answer, _, _, _ = mock.decode("latestRoundData", rpc.eth_call(aggregator, mock.encode("latestRoundData")))
    runtime_code = load_artifact("MockV3Aggregator").deployed_bytecode
    rpc.call("anvil_setCode", [aggregator, "0x" + runtime_code.hex()])
    _set_storage(rpc, aggregator, MOCK_AGGREGATOR_DECIMALS_SLOT, decimals)
    _set_storage(rpc, aggregator, MOCK_AGGREGATOR_ROUND_SLOT, 0)
    DevSender(rpc).call_fn(sender, aggregator, mock, "updateAnswer", int(answer))
    return int(answer)


# ------------------------------------------------------------------------------ the executor
@dataclass(frozen=True)
class ProvisionedExecutor:
    address: str
    owner: str
    usdc_wallet_raw: int  # in the executor, after provisioning
    collateral_raw: int  # in the Perp vault, after provisioning
    spot_raw: dict[str, int]  # by market


def provision_fork_executor(rpc: JsonRpc, book: AddressBook, owner: str,
                            funding: ExecutorFunding = ExecutorFunding()) -> ProvisionedExecutor:
    """Deploy a BasisExecutor operated by `owner` on the fork (admin and treasury: FORK_ADMIN),
    register every market, fund it by storage writes (USDC for the wallet and the collateral, spot
    inventory worth funding.spot_inventory_usd per market at the Perp index), deposit the collateral.

    The admin's and the owner's transactions are sent by impersonation (anvil_impersonateAccount),
    stopped after."""
    if book.uniswap_v2_router is None:
        raise ConfigError("the executor needs a Uniswap V2 router on this chain (address book has none)")
    tx = DevSender(rpc)
    fund_gas(rpc, FORK_ADMIN)
    rpc.call("anvil_impersonateAccount", [owner])
    rpc.call("anvil_impersonateAccount", [FORK_ADMIN])
    try:
        executor = deploy_executor(
            tx, ExecutorRoles(FORK_ADMIN, FORK_ADMIN, owner), book.perp.clearing_house, book.uniswap_v2_router,
            book.uniswap_v3_swap_router, ((m.base_token, m.spot_token, m.uniswap_v3_fee_pips) for m in book.markets))
        ex = codec("BasisExecutor")
        add_token_balance(rpc, book.usdc, executor, funding.usdc_wallet_raw + funding.usdc_collateral_raw)
        spot: dict[str, int] = {}
        base_abi, erc20 = codec("BaseToken"), codec("MintableERC20")
        for market in book.markets:
            index_x18 = tx.read(market.base_token, base_abi, "getIndexPrice", 0)
            decimals = tx.read(market.spot_token, erc20, "decimals")
            amount = funding.spot_inventory_usd * 10**decimals * ONE_X18 // index_x18
            add_token_balance(rpc, market.spot_token, executor, amount)
            if market.spot_token.lower() == book.weth.lower():  # keep WETH9 backed by ETH
                held = int(rpc.call("eth_getBalance", [book.weth, "latest"]), 16)
                rpc.call("anvil_setBalance", [book.weth, hex(held + amount)])
            spot[market.name] = amount
        tx.call_fn(owner, executor, ex, "depositCollateral", funding.usdc_collateral_raw)
    finally:
        rpc.call("anvil_stopImpersonatingAccount", [owner])
        rpc.call("anvil_stopImpersonatingAccount", [FORK_ADMIN])
    log.info("simulate.executor_provisioned", executor=executor, owner=owner,
             usdc_wallet=funding.usdc_wallet_raw / 10**USDC_DECIMALS,
             collateral=funding.usdc_collateral_raw / 10**USDC_DECIMALS)
    return ProvisionedExecutor(executor, owner, funding.usdc_wallet_raw, funding.usdc_collateral_raw, spot)


def fund_gas(rpc: JsonRpc, account: str, eth: int = KEEPER_GAS_ETH) -> None:
    rpc.call("anvil_setBalance", [account, hex(eth * 10**18)])


# ------------------------------------------------------------------------------ devnet origin
def manifest_candidates(configured: Path | None) -> list[Path]:
    """Where a devnet's manifest may be: the configured one; else the prebuilt state's of this
    checkout, `keeper devnet`'s default, and older prebuilt states, newest first (a deployment is
    deterministic: the same deployer code gives the same addresses)."""
    if configured is not None:
        return [configured]
    from keeper.devnet.deploy import DEFAULT_MARKETS
    from keeper.devnet.world import BUILD_DIR, fingerprint, manifest_path_for

    current = manifest_path_for(BUILD_DIR / f"state-{len(DEFAULT_MARKETS)}m-{fingerprint(DEFAULT_MARKETS)}.json")
    found = [current, DEFAULT_MANIFEST]
    found += sorted((PROJECT_ROOT / "build" / "devnet").glob("state-*.json.manifest.json"),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    return [p for p in found if p.is_file()]


def find_origin_manifest(rpc: JsonRpc, configured: Path | None) -> DevnetManifest:
    """The devnet manifest whose contracts are on this chain (checked: chain id, code at the
    ClearingHouse, Multicall3, and every market's base token and pools)."""
    chain_id = rpc.chain_id()
    tried = []
    for path in manifest_candidates(configured):
        try:
            manifest = DevnetManifest.read(path)
        except ConfigError as exc:
            tried.append(f"{path} ({exc})")
            continue
        if manifest.chain_id != chain_id:
            tried.append(f"{path} (chain {manifest.chain_id}, fork is {chain_id})")
            continue
        needed = [manifest.contracts["ClearingHouse"], manifest.contracts["Multicall3"]]
        for m in manifest.markets:
            needed += [m.base_token, m.aggregator, m.uniswap_v3_pool, m.uniswap_v2_pair]
        if all(rpc.get_code(address) for address in needed):
            return manifest
        tried.append(f"{path} (its contracts are not on this chain)")
    hint = "; ".join(tried) or "none found"
    raise ConfigError(f"chain.manifest: no devnet manifest matches the forked chain {chain_id} (tried: {hint}); "
                      f"set chain.manifest (or KEEPER_CHAIN__MANIFEST) to the origin devnet's manifest, "
                      f"or chain.preset = 'optimism' for an Optimism fork")
