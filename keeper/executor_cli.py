"""`keeper executor deploy | migrate`: the command-line side of keeper/executor_admin.py (registered
in keeper/cli.py with one add_typer line)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from keeper.chain.keys import Signer
    from keeper.chain.rpc import JsonRpc

app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown",
                  help="The admin's commands for the BasisExecutor: deploy one, migrate to a new one.")

AdminKeyEnv = Annotated[str, typer.Option(help="Name of the environment variable holding the admin's private key (the key itself is never a flag).")]
AdminKeystore = Annotated[Optional[Path], typer.Option(help="Encrypted keystore JSON of the admin key (instead of --admin-key-env).")]
ADMIN_PASSWORD_ENV = "KEEPER_ADMIN_KEYSTORE_PASSWORD"
# --admin-password-env: short enough to be read whole in an 80-column --help; the old name still works (hidden)
AdminKeystorePasswordEnv = Annotated[str, typer.Option("--admin-password-env", show_default=False, help=f"Environment variable holding the admin keystore's password (default: {ADMIN_PASSWORD_ENV}; old name: --admin-keystore-password-env).")]
OldPasswordEnv = Annotated[Optional[str], typer.Option("--admin-keystore-password-env", hidden=True)]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config: chain (rpc_url, preset, manifest), markets, execution fee cap.")]
RpcOption = Annotated[Optional[str], typer.Option(help="JSON-RPC URL (overrides chain.rpc_url).")]
ManifestOption = Annotated[Optional[Path], typer.Option(help="Devnet manifest with the addresses (overrides chain.manifest).")]


def _settings(config: Path | None, rpc_url: str | None, manifest: Path | None,  # type: ignore[no-untyped-def]
              secret_env: tuple[str, ...]):
    """The config, with the key variables this command reads skipped as settings (they hold secrets)."""
    from keeper.cli_console import load_settings

    chain: dict[str, object] = {}
    if rpc_url:
        chain["rpc_url"] = rpc_url
    if manifest:
        chain["manifest"] = manifest
    return load_settings(config, overrides={"chain": chain} if chain else None, secret_env=secret_env)


def _password_env(given: str, old_name: str | None) -> str:
    """--admin-password-env, or its old name --admin-keystore-password-env (not both)."""
    from keeper.errors import ConfigError

    if old_name is None:
        return given
    if given != ADMIN_PASSWORD_ENV:
        raise ConfigError("--admin-password-env and --admin-keystore-password-env (its old name) both given: pick one")
    return old_name


def _key_from(option: str, load: Callable[[], Signer]) -> Signer:
    """A key loaded for `option`: its refusal (variable unset, not a key, keystore unreadable) names the
    option (the keystore's password: --admin-password-env)."""
    from keeper.chain.keys import KeyLoadError
    from keeper.errors import ConfigError

    try:
        return load()
    except KeyLoadError as exc:
        named = "--admin-password-env" if exc.source == "keystore_password_env" else option
        raise ConfigError(f"{named}: {exc}") from exc


def _node(rpc: JsonRpc, chain_id: int) -> str:
    """Where a command sent: on a fork, a forgotten --rpc-url sends to the devnet manifest's node.
    `chain_id`: the one read before sending (no RPC call after a send: a failing one would lose the
    report of what was sent)."""
    from keeper.logs import redacted_url

    return f"chain {chain_id} via {redacted_url(rpc.url)}"


def _admin_option(keystore: Path | None) -> str:
    return "--admin-keystore" if keystore is not None else "--admin-key-env"


@app.command()
def deploy(
    treasury: Annotated[str, typer.Option(help="Where every withdrawal goes (e.g. a cold wallet or a multisig).")],
    operator: Annotated[str, typer.Option(help="The keeper's hot key address: the only account that may trade.")],
    markets: Annotated[Optional[str], typer.Option(help="Comma-separated markets to register (default: markets.enabled).")] = None,
    admin_key_env: AdminKeyEnv = "KEEPER_ADMIN_PRIVATE_KEY",
    admin_keystore: AdminKeystore = None,
    admin_password_env: AdminKeystorePasswordEnv = ADMIN_PASSWORD_ENV,
    old_password_env: OldPasswordEnv = None,
    config: ConfigOption = None,
    rpc_url: RpcOption = None,
    manifest: ManifestOption = None,
) -> None:
    """Deploy a BasisExecutor whose admin is the admin key (withdrawals to --treasury only, markets,
    pause) and whose operator is --operator (trades only); register the markets; print the address
    and the config lines for the keeper."""
    from keeper.cli_console import configure_logging_from, fail, out
    from keeper.errors import ConfigError, KeeperError
    from keeper.config import parse_address
    from keeper.executor_admin import AdminKey, build_sender, connect
    from keeper.executor_admin import deploy as deploy_executor

    try:
        admin_keystore_password_env = _password_env(admin_password_env, old_password_env)
        treasury_address = parse_address(treasury, "--treasury")
        operator_address = parse_address(operator, "--operator")
        settings = _settings(config, rpc_url, manifest, (admin_key_env, admin_keystore_password_env))
        configure_logging_from(settings)
        names = [m.strip() for m in markets.split(",") if m.strip()] if markets else list(settings.markets.enabled)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # setMarket would be sent once per mention
            raise ConfigError(f"--markets: {', '.join(twice)} given more than once")
        signer = _key_from(_admin_option(admin_keystore),
                           AdminKey(admin_key_env, admin_keystore, admin_keystore_password_env).load)
        rpc, book = connect(settings, rpc_url)
        done = deploy_executor(rpc, build_sender(rpc, signer, settings), book, treasury_address, operator_address, names)
    except KeeperError as exc:
        raise fail(exc) from exc
    out.print(f"BasisExecutor deployed at {done.address} on {_node(rpc, done.chain_id)} (tx {done.tx_hash}, {done.gas_used:,} gas)",
              highlight=False)
    out.print(f"  admin    {done.admin}\n  treasury {done.treasury}\n  operator {done.operator}", highlight=False)
    for name, base, spot, fee in done.markets:
        out.print(f"  market {name}: Perp base {base}, spot {spot}, V3 fee {fee} pips", highlight=False)
    out.print("\nPut in the keeper's config (the operator's key in account.key_env or account.keystore):\n", highlight=False)
    out.print(done.config_lines(), highlight=False, markup=False)  # "[account]" is TOML, not rich markup


@app.command()
def migrate(
    from_address: Annotated[str, typer.Option("--from", help="The old executor.")],
    to_address: Annotated[str, typer.Option("--to", help="The new executor (same admin, deployed with `keeper executor deploy`).")],
    treasury_key_env: Annotated[Optional[str], typer.Option(help="Environment variable holding the treasury's key, when the treasury is not the admin.")] = None,
    admin_key_env: AdminKeyEnv = "KEEPER_ADMIN_PRIVATE_KEY",
    admin_keystore: AdminKeystore = None,
    admin_password_env: AdminKeystorePasswordEnv = ADMIN_PASSWORD_ENV,
    old_password_env: OldPasswordEnv = None,
    config: ConfigOption = None,
    rpc_url: RpcOption = None,
    manifest: ManifestOption = None,
) -> None:
    """Move collateral and inventory from an old executor to a new one: pause the old one, withdraw
    its free collateral and its tokens to the treasury, send them on to the new executor and
    deposit the collateral there. Refused, with nothing sent, while the old executor holds a
    position, when the new one lacks a market the old one has registered and holds inventory
    for, or when the key is not the admin of both."""
    from keeper.chain.keys import load_signer_from_env
    from keeper.cli_console import configure_logging_from, fail, out
    from keeper.errors import KeeperError
    from keeper.config import parse_address
    from keeper.executor_admin import AdminKey, build_sender, check_migration, connect, fetch_holdings
    from keeper.executor_admin import migrate as run_migration

    try:
        admin_keystore_password_env = _password_env(admin_password_env, old_password_env)
        old_address = parse_address(from_address, "--from")
        new_address = parse_address(to_address, "--to")
        settings = _settings(config, rpc_url, manifest,
                             (admin_key_env, admin_keystore_password_env, treasury_key_env or admin_key_env))
        configure_logging_from(settings)
        admin = _key_from(_admin_option(admin_keystore),
                          AdminKey(admin_key_env, admin_keystore, admin_keystore_password_env).load)
        treasury = _key_from("--treasury-key-env", lambda: load_signer_from_env(treasury_key_env)) if treasury_key_env else None
        rpc, book = connect(settings, rpc_url)
        spot_tokens = [m.spot_token for m in book.markets]
        old, new = check_migration(rpc, admin, treasury, old_address, new_address,
                                   {m.base_token: m.name for m in book.markets}, _admin_option(admin_keystore),
                                   spot_tokens)
        admin_sender = build_sender(rpc, admin, settings)
        treasury_sender = build_sender(rpc, treasury, settings) if treasury else admin_sender
        tokens = [old.usdc, *spot_tokens]
        done = run_migration(rpc, admin_sender, treasury_sender, tokens[1:], old, new)
        in_treasury = fetch_holdings(rpc, old.treasury, tokens) if old.paused and not done.moved else []
    except KeeperError as exc:
        raise fail(exc) from exc
    out.print(f"migrated {old.address} -> {new.address} on {_node(rpc, book.chain_id)} (the old executor is paused)", highlight=False)
    for m in done.moved:
        out.print(f"  {m.what}: {m.amount_raw} raw of {m.token} (tx {m.tx_hash})", highlight=False)
    if not done.moved:
        out.print(f"  nothing to move: the old executor {'is paused and holds' if old.paused else 'held'} no "
                  "collateral, tokens or ETH", highlight=False)
    if in_treasury:  # a re-run after a migration that stopped midway: its funds wait in the treasury
        held = ", ".join(f"{h.amount_raw} raw of {h.symbol or 'token'} ({h.token})" for h in in_treasury)
        out.print(f"  the treasury {old.treasury} holds {held}: if an earlier migration stopped after withdrawing "
                  "them (its executor.migrated lines 'old executor -> treasury' give the amounts), send them to the "
                  f"new executor {new.address} from the treasury (an ERC-20 transfer of each amount; a re-run "
                  "cannot tell the old executor's funds from the treasury's own); the keeper deposits the USDC into "
                  "the Perp vault at its start, up to account.collateral_usdc", highlight=False)
