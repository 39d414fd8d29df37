"""The admin's commands for the BasisExecutor on a real chain (or a fork): `keeper executor deploy`
and `keeper executor migrate`. The admin is the cold key (contracts/src/interfaces/IBasisExecutor.sol):
it deploys, registers the markets, pauses, and withdraws, always to the treasury.

The admin key comes from the environment variable named by --admin-key-env (default
KEEPER_ADMIN_PRIVATE_KEY) or an encrypted keystore (--admin-keystore, password from
--admin-password-env); never from a flag value, never logged. Transactions go through the
keeper's own pipeline (keeper/chain/sender.py: simulate, fees under the configured cap, nonce,
persist, send, wait), with their own pending-transaction file beside the journal.

Migration (the admin moves collateral and inventory from an old executor to a new one):
every check runs before anything is sent (both executors have code, the key is the admin of both,
same ClearingHouse and USDC, every market the old executor has registered and holds inventory for
registered alike on the new one, the old executor holds no position or order, the treasury can be
signed for and has ETH for its transfers' gas, and the admin for its own transactions'); then the old executor is paused, its free collateral withdrawn, every token it holds
(USDC and the spot tokens of the markets) sent to the treasury, and the treasury sends those exact
amounts on to the new executor, which deposits the collateral back into its own Vault account. ETH
held by the old executor goes to the treasury and stays there (the executor needs none). A failure
midway stops with what was done: what was already withdrawn sits in the treasury, and each
movement done was logged (`executor.migrated`) when its transaction was included; a re-run finds the
old executor paused and empty, and the command lists the treasury's holdings (`fetch_holdings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address

from keeper.addressbook import AddressBook, book_from_manifest, chain_url_source, config_chain, optimism_book
from keeper.artifacts import abi_codec, load_artifact
from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer, load_signer
from keeper.chain.pending import JsonFilePendingStore
from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig, TxRequest
from keeper.config import KeeperConfig
from keeper.errors import ChainMismatchError, ConfigError, FatalError, RpcError, TransientError, TxRevertedError
from keeper.logs import get_logger

DEFAULT_ADMIN_KEY_ENV = "KEEPER_ADMIN_PRIVATE_KEY"
GWEI = 10**9
TRANSFER_GAS = 100_000  # an ERC-20 transfer's gas, with room (the treasury's, at migration)
ADMIN_CALL_GAS = 300_000  # an admin call's at migration, with room (devnet, 2026-12-02: withdrawCollateral 130,519)
EXECUTOR = abi_codec("BasisExecutor")
ERC20 = abi_codec("MintableERC20")
log = get_logger("keeper.executor")


# ------------------------------------------------------------------------------ chain and keys
@dataclass(frozen=True)
class AdminKey:
    """Where a key comes from: an env var's name, or a keystore file and its password's env var."""

    key_env: str = DEFAULT_ADMIN_KEY_ENV
    keystore: Path | None = None
    keystore_password_env: str = "KEEPER_ADMIN_KEYSTORE_PASSWORD"

    def load(self) -> Signer:
        return load_signer(self.keystore, self.key_env, self.keystore_password_env)


def connect(settings: KeeperConfig, rpc_url_option: str | None = None) -> tuple[JsonRpc, AddressBook]:
    """The node and the address book (addressbook.config_chain): the devnet manifest's with the
    devnet preset, else the Optimism preset's. A node that does not answer is a FatalError naming
    where its URL came from (`rpc_url_option`: the command's --rpc-url, if given): nothing sent."""
    rpc_url, manifest = config_chain(settings)
    rpc = JsonRpc(rpc_url, timeout_s=settings.chain.request_timeout_s)
    book = book_from_manifest(manifest) if manifest is not None else optimism_book()
    try:
        chain_id = rpc.chain_id()
    except TransientError as exc:
        raise FatalError(f"{chain_url_source(rpc_url_option, settings)}: {exc}") from exc
    if chain_id != book.chain_id:
        raise ChainMismatchError(f"{chain_url_source(rpc_url_option, settings)}: the node is chain {chain_id}, "
                                 f"the address book is for {book.chain_id}")
    return rpc, book


def build_sender(rpc: JsonRpc, signer: Signer, settings: KeeperConfig) -> TxSender:
    cfg = settings.execution
    store = JsonFilePendingStore(settings.monitoring.journal.with_name(f"pending-{rpc.chain_id()}-{signer.address}.json"))
    sender = TxSender(rpc, signer, SenderConfig(
        FeePolicy(max_fee_per_gas_cap_wei=int(cfg.max_fee_per_gas_gwei * GWEI)), gas_margin_bps=cfg.gas_margin_pct * 100,
        confirmations=cfg.confirmations, replace_after_blocks=cfg.replace_after_blocks,
        poll_interval_s=settings.chain.poll_interval_s), store)
    sender.recover()
    return sender


def _send(sender: TxSender, to: str | None, data: bytes, label: str) -> dict[str, Any]:
    """Send and wait; the receipt of an included transaction, else TxRevertedError."""
    outcome = sender.send(TxRequest(to=to, data=data, label=label, errors_abi=EXECUTOR))
    if outcome.status != "included":
        raise TxRevertedError(label, outcome.revert_reason or outcome.status, outcome.tx_hash)
    return sender.rpc.call("eth_getTransactionReceipt", [outcome.tx_hash])


# ------------------------------------------------------------------------------ deploy
@dataclass(frozen=True)
class Deployment:
    address: str
    tx_hash: str
    gas_used: int
    admin: str
    treasury: str
    operator: str
    markets: tuple[tuple[str, str, str, int], ...]  # (name, Perp base token, spot token, V3 fee pips)
    chain_id: int  # the address book's, checked against the node before sending (connect)

    def config_lines(self) -> str:
        return f'[account]\nexecutor = "{self.address}"\n'


def deploy(rpc: JsonRpc, sender: TxSender, book: AddressBook, treasury: str, operator: str,
           market_names: list[str]) -> Deployment:
    """Deploy from the admin key (the admin) and register the markets; checks before sending. Once
    sent, nothing but the sends and their receipts is asked of the node (the chain is the book's:
    connect checked it), so no read after the last receipt can lose the new executor's address. A
    node failing during a setMarket send or a receipt read still can: `executor.deployed` is logged
    after the markets (a setMarket revert names the address; a transport failure there does not)."""
    admin = sender.address
    if operator.lower() in (admin.lower(), treasury.lower()):
        raise ConfigError(f"--operator: {operator} must be a key of its own, neither the admin nor the treasury")
    if book.uniswap_v2_router is None:
        raise ConfigError("the executor needs a Uniswap V2 router on this chain (the address book has none)")
    by_name = {m.name: m for m in book.markets}
    unknown = sorted(set(market_names) - set(by_name))
    if unknown or not market_names:
        raise ConfigError(f"--markets: unknown or none {unknown}; this chain has {sorted(by_name)}")
    artifact = load_artifact("BasisExecutor")
    creation = artifact.bytecode + artifact.codec.encode_constructor(
        admin, treasury, operator, book.perp.clearing_house, book.uniswap_v2_router, book.uniswap_v3_swap_router)
    receipt = _send(sender, None, creation, "deploy BasisExecutor")
    address = to_checksum_address(receipt["contractAddress"])
    markets = []
    for name in market_names:
        m = by_name[name]
        _send(sender, address, EXECUTOR.encode("setMarket", m.base_token, m.spot_token, m.uniswap_v3_fee_pips),
              f"setMarket {name} on the new executor {address}")  # a failure names what was deployed
        markets.append((name, m.base_token, m.spot_token, m.uniswap_v3_fee_pips))
    log.info("executor.deployed", executor=address, admin=admin, treasury=treasury, operator=operator,
             markets=market_names, tx_hash=receipt["transactionHash"], chain_id=book.chain_id, rpc_url=rpc.url)
    return Deployment(address, receipt["transactionHash"], int(receipt["gasUsed"], 16), admin, treasury, operator,
                      tuple(markets), book.chain_id)


# ------------------------------------------------------------------------------ migrate
@dataclass(frozen=True)
class ExecutorView:
    address: str
    admin: str
    treasury: str
    operator: str
    clearing_house: str
    account_balance: str
    vault: str
    usdc: str
    paused: bool


def fetch_executor_view(rpc: JsonRpc, address: str, option: str) -> ExecutorView:
    if not rpc.get_code(address):
        raise ConfigError(f"{option}: no contract code at {address}")

    def read(fn: str) -> Any:
        return EXECUTOR.decode(fn, rpc.eth_call(address, EXECUTOR.encode(fn)))[0]

    try:
        views = {fn: read(fn) for fn in ("admin", "treasury", "operator", "clearingHouse", "accountBalance", "vault",
                                         "usdc", "paused")}
    except Exception as exc:  # not our executor (or an older one without roles)
        raise ConfigError(f"{option}: {address} is not a BasisExecutor with roles ({exc})") from None
    addr = {k: to_checksum_address(v) for k, v in views.items() if k != "paused"}
    return ExecutorView(to_checksum_address(address), addr["admin"], addr["treasury"], addr["operator"],
                        addr["clearingHouse"], addr["accountBalance"], addr["vault"], addr["usdc"], bool(views["paused"]))


def _spot_market(rpc: JsonRpc, executor: str, base_token: str) -> tuple[str, int, int]:
    """An executor's registration of a market: (spot token, scale to 18 decimals, V3 fee pips)."""
    spot, scale, fee = EXECUTOR.decode("spotMarket", rpc.eth_call(executor, EXECUTOR.encode("spotMarket", base_token)))[0]
    return spot.lower(), int(scale), int(fee)


@dataclass(frozen=True)
class Movement:
    what: str
    token: str
    amount_raw: int
    tx_hash: str


@dataclass
class Migration:
    old: ExecutorView
    new: ExecutorView
    collateral_raw: int = 0
    moved: list[Movement] = field(default_factory=list)

    def record(self, movement: Movement) -> None:
        """One movement done, logged at once: a failure after it leaves it in the log."""
        self.moved.append(movement)
        log.info("executor.migrated", what=movement.what, token=movement.token, amount_raw=movement.amount_raw,
                 tx_hash=movement.tx_hash)


def check_migration(rpc: JsonRpc, admin: Signer, treasury: Signer | None, old_address: str,
                    new_address: str, market_names: Mapping[str, str] | None = None,
                    admin_option: str = "--admin-key-env",
                    spot_tokens: Sequence[str] = ()) -> tuple[ExecutorView, ExecutorView]:
    """Every pre-condition of `migrate`, before anything is sent (ConfigError names the option; the
    admin key's is `admin_option`). `market_names`: the chain's market names by Perp base token, for
    the refusal of an open position; `spot_tokens`: the inventory tokens `migrate` moves (for the
    gas the keys need)."""
    old = fetch_executor_view(rpc, old_address, "--from")
    new = fetch_executor_view(rpc, new_address, "--to")
    if old.address == new.address:
        raise ConfigError("--to: the same executor as --from")
    for view, option in ((old, "--from"), (new, "--to")):
        if view.admin.lower() != admin.address.lower():
            raise ConfigError(f"{option}: {view.address}'s admin is {view.admin}, not the admin key's {admin.address}")
    if (old.clearing_house, old.usdc) != (new.clearing_house, new.usdc):
        raise ConfigError(f"--to: {new.address} trades on another ClearingHouse/USDC than {old.address}")
    for base_token, name in (market_names or {}).items():
        had, has = (_spot_market(rpc, view.address, base_token) for view in (old, new))
        held = _balance_of(rpc, had[0], old.address) if int(had[0], 16) else 0
        if held and had[0] != has[0]:  # its inventory would sit where the keeper cannot trade it (another V3 fee
            # tier of the same token still trades it: the keeper's own start checks the pools it quotes)
            raise ConfigError(f"--to: {new.address} has no market {name} with spot token {to_checksum_address(had[0])} "
                              f"registered, and {old.address} holds {held} raw of that token; deploy the new executor "
                              "with that market (`keeper executor deploy --markets`)")
    ab = abi_codec("AccountBalance")
    open_markets = ab.decode("getBaseTokens", rpc.eth_call(old.account_balance, ab.encode("getBaseTokens", old.address)))[0]
    if open_markets:
        names = {k.lower(): v for k, v in (market_names or {}).items()}
        held = ", ".join(f"{names[b.lower()]} (base token {to_checksum_address(b)})" if b.lower() in names
                         else to_checksum_address(b) for b in open_markets)
        raise ConfigError(f"--from: {old.address} still holds positions or orders in {held}; "
                          "close them first (pause it to stop the keeper)")
    signer = treasury or admin
    if signer.address.lower() != old.treasury.lower():
        raise ConfigError(f"--treasury-key-env: the treasury {old.treasury} must sign the transfers to the new "
                          f"executor; the key given is {signer.address}")
    # a key without gas would stop the migration midway: the old executor paused, the funds in the treasury;
    # counted from what there is to move (an executor holding nothing needs no transfer)
    free_raw, held_tokens, eth_wei = _to_move(rpc, old, spot_tokens)
    tokens_out = len(held_tokens) + (1 if free_raw and all(t != old.usdc for t, _ in held_tokens) else 0)
    transfers = [TRANSFER_GAS] * tokens_out  # the treasury's, each token on to the new executor
    admin_calls = [ADMIN_CALL_GAS] * ((0 if old.paused else 1) + tokens_out + (1 if eth_wei else 0)
                                      + (2 if free_raw else 0))  # pause, withdrawals, ETH; collateral out and in
    if treasury is not None:
        _refuse_without_gas_eth(rpc, "--treasury-key-env", "the treasury", treasury.address,
                                "its transfers to the new executor", transfers)
    _refuse_without_gas_eth(rpc, admin_option, "the admin", admin.address, "its transactions",
                            admin_calls + (transfers if treasury is None else []))
    return old, new


def _balance_of(rpc: JsonRpc, token: str, account: str) -> int:
    return int(ERC20.decode("balanceOf", rpc.eth_call(token, ERC20.encode("balanceOf", account)))[0])


def _to_move(rpc: JsonRpc, old: ExecutorView, spot_tokens: Sequence[str]) -> tuple[int, list[tuple[str, int]], int]:
    """What `migrate` moves out of `old`: its free collateral in the vault, its non-zero balances of
    USDC and `spot_tokens` (ordered, no repeats), and its ETH."""
    held = [(t, b) for t in dict.fromkeys([old.usdc, *spot_tokens]) if (b := _balance_of(rpc, t, old.address)) > 0]
    return _free_collateral(rpc, old), held, int(rpc.call("eth_getBalance", [old.address, "latest"]), 16)


def _free_collateral(rpc: JsonRpc, old: ExecutorView) -> int:
    vault_abi = abi_codec("Vault")
    return int(vault_abi.decode("getFreeCollateralByToken", rpc.eth_call(
        old.vault, vault_abi.encode("getFreeCollateralByToken", old.address, old.usdc)))[0])


def _refuse_without_gas_eth(rpc: JsonRpc, option: str, role: str, address: str, what: str,
                            gas_per_tx: list[int]) -> None:
    """ConfigError naming `option` when `address` holds less ETH than the gas of up to `gas_per_tx`
    transactions at the node's gas price."""
    need_wei = sum(gas_per_tx) * int(rpc.call("eth_gasPrice", []), 16)
    have_wei = int(rpc.call("eth_getBalance", [address, "latest"]), 16)
    if have_wei < need_wei:
        raise ConfigError(f"{option}: {role} {address} has too little ETH for the gas of {what} ({have_wei} wei; up to "
                          f"{len(gas_per_tx)} transactions, {sum(gas_per_tx):,} gas at the node's gas price, need "
                          f"{need_wei} wei): send it some first")


@dataclass(frozen=True)
class Holding:
    token: str
    symbol: str  # "" when the token does not answer symbol()
    amount_raw: int


def fetch_holdings(rpc: JsonRpc, account: str, tokens: list[str]) -> list[Holding]:
    """`account`'s non-zero balances of `tokens` (e.g. the treasury's, after a migration stopped midway)."""
    held = []
    for token in dict.fromkeys(tokens):
        amount = _balance_of(rpc, token, account)
        if amount > 0:
            try:
                symbol = str(ERC20.decode("symbol", rpc.eth_call(token, ERC20.encode("symbol")))[0])
            except (RpcError, DecodingError, ValueError):  # no string symbol() (reverts, bytes32, not UTF-8): its address
                symbol = ""
            held.append(Holding(to_checksum_address(token), symbol, amount))
    return held


def migrate(rpc: JsonRpc, admin: TxSender, treasury: TxSender, spot_tokens: list[str], old: ExecutorView,
            new: ExecutorView) -> Migration:
    """Pause the old executor, withdraw its collateral and tokens to the treasury, forward them to
    the new executor, deposit the collateral there. `spot_tokens`: inventory tokens to move."""
    result = Migration(old, new)
    if not old.paused:
        _send(admin, old.address, EXECUTOR.encode("setPaused", True), "pause the old executor")
    free_raw = _free_collateral(rpc, old)
    if free_raw > 0:
        receipt = _send(admin, old.address, EXECUTOR.encode("withdrawCollateral", free_raw), "withdraw collateral")
        result.collateral_raw = free_raw
        result.record(Movement("vault -> old executor", old.usdc, free_raw, receipt["transactionHash"]))
    _, held_tokens, eth_wei = _to_move(rpc, old, spot_tokens)  # the collateral withdrawn is USDC held now
    withdrawn: list[tuple[str, int]] = []
    for token, held in held_tokens:
        receipt = _send(admin, old.address, EXECUTOR.encode("withdrawToken", token, held), "withdraw token")
        result.record(Movement("old executor -> treasury", token, held, receipt["transactionHash"]))
        withdrawn.append((token, held))
    if eth_wei > 0:
        receipt = _send(admin, old.address, EXECUTOR.encode("withdrawEth", eth_wei), "withdraw ETH")
        result.record(Movement("old executor -> treasury (stays)", "ETH", eth_wei, receipt["transactionHash"]))
    for token, amount in withdrawn:
        receipt = _send(treasury, token, ERC20.encode("transfer", new.address, amount), "treasury -> new executor")
        result.record(Movement("treasury -> new executor", token, amount, receipt["transactionHash"]))
    if result.collateral_raw > 0:
        receipt = _send(admin, new.address, EXECUTOR.encode("depositCollateral", result.collateral_raw),
                        "deposit collateral")
        result.record(Movement("new executor -> vault", new.usdc, result.collateral_raw,
                                     receipt["transactionHash"]))
    return result
