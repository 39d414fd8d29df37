"""The keeper's signing key: loaded from an environment variable or an encrypted keystore file,
held by a `Signer` that signs EIP-1559 transactions and never shows the key.

Never from a CLI flag, never logged: `repr`/`str` of a Signer show only its address, it refuses to
be pickled or copied, and load errors name the variable or file but never echo its content (the
underlying exception is suppressed because its message may carry the bad value).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from keeper.errors import ConfigError
from keeper.logs import get_logger

DEFAULT_KEY_ENV = "KEEPER_PRIVATE_KEY"
DEFAULT_KEYSTORE_PASSWORD_ENV = "KEEPER_KEYSTORE_PASSWORD"
EIP1559_TX_TYPE = 2
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_KEY_HEX = re.compile(r"(0x)?[0-9a-fA-F]{64}")

log = get_logger(__name__)


@dataclass(frozen=True)
class Eip1559Tx:
    """A complete, unsigned type-2 transaction. `to` is a checksummed address, or "" for a
    contract creation (`keeper executor deploy`; the keeper itself only calls contracts)."""

    chain_id: int
    nonce: int
    to: str
    data: bytes
    value_wei: int
    gas_limit: int
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int

    def as_eth_account_dict(self) -> dict[str, Any]:
        return {
            "type": EIP1559_TX_TYPE,
            "chainId": self.chain_id,
            "nonce": self.nonce,
            "to": self.to,
            "data": self.data,
            "value": self.value_wei,
            "gas": self.gas_limit,
            "maxFeePerGas": self.max_fee_per_gas_wei,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas_wei,
            "accessList": [],
        }


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction as broadcast: raw bytes and its hash ("0x..." lower-case)."""

    tx: Eip1559Tx
    raw_tx: bytes
    tx_hash: str


class Signer:
    """Signs EIP-1559 transactions with one private key; exposes only `.address`."""

    __slots__ = ("_account", "_address")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < _SECP256K1_ORDER:
            raise ConfigError("private key is not a valid secp256k1 key (32 bytes, 0 < key < n)")
        account: LocalAccount = Account.from_key(private_key)
        self._account = account
        self._address = to_checksum_address(account.address)

    @property
    def address(self) -> str:
        return self._address

    def sign(self, tx: Eip1559Tx) -> SignedTx:
        signed = self._account.sign_transaction(tx.as_eth_account_dict())
        return SignedTx(tx, bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex())

    def __repr__(self) -> str:
        return f"Signer(address={self._address})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Signer holds a private key and cannot be pickled or copied")


# ------------------------------------------------------------------------------------ loading
class KeyLoadError(ConfigError):
    """A key that cannot be loaded. `source` names the input that is wrong, as the account config
    field it comes from: "key_env" (the variable or its content), "keystore" (the file) or
    "keystore_password_env" (its password); the caller names its option or config key with it."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source


_ENV_NAME_SHOWN = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_HEX_RUN = re.compile(r"(0X)?[0-9A-F]{32,}")


def shown_env_name(name: str) -> str:
    """`$NAME` for a message, when `name` looks like an environment variable's name (upper case,
    digits, _; not a long hex run); otherwise a stand-in: a key or password pasted where a
    variable's NAME belongs must not be printed back."""
    if _ENV_NAME_SHOWN.fullmatch(name) and not _HEX_RUN.search(name.upper()):
        return f"${name}"
    return "the variable the config names (not shown: it does not look like a variable's name)"


def load_signer_from_env(env_var: str = DEFAULT_KEY_ENV, environ: Mapping[str, str] | None = None) -> Signer:
    """The key as 64 hex digits (0x optional) in `env_var`."""
    env = os.environ if environ is None else environ
    value = env.get(env_var, "").strip()
    if not value:
        raise KeyLoadError(f"{shown_env_name(env_var)} is not set: put the signing key there (64 hex digits), "
                           "or use a keystore file", "key_env")
    if not _KEY_HEX.fullmatch(value):
        raise KeyLoadError(f"{shown_env_name(env_var)} is not a private key (expected 64 hex digits, 0x optional)",
                           "key_env")
    signer = _signer_or_config_error(bytes.fromhex(value.removeprefix("0x")), shown_env_name(env_var), "key_env")
    log.info("keys.loaded", source="env", env_var=env_var, address=signer.address)
    return signer


def load_signer_from_keystore(
    path: Path,
    password_env: str = DEFAULT_KEYSTORE_PASSWORD_ENV,
    password_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Signer:
    """An encrypted JSON keystore (Web3 Secret Storage). The password comes from `password_file`
    when given (one trailing newline ignored), else from the environment variable `password_env`."""
    keystore = _read_keystore(path)
    password = _read_password(password_env, password_file, environ)
    try:
        key = bytes(Account.decrypt(keystore, password))
    except Exception:  # wrong password (MAC mismatch) or a malformed crypto section
        _raise_without_context(KeyLoadError(f"keystore {path}: cannot decrypt (wrong password or corrupt file)",
                                            "keystore"))
    signer = _signer_or_config_error(key, f"keystore {path}", "keystore")
    log.info("keys.loaded", source="keystore", keystore=str(path), address=signer.address)
    return signer


def load_signer(
    keystore_path: Path | None = None,
    key_env: str = DEFAULT_KEY_ENV,
    password_env: str = DEFAULT_KEYSTORE_PASSWORD_ENV,
    password_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Signer:
    """A keystore when `keystore_path` is given, else the key in `key_env`."""
    if keystore_path is not None:
        return load_signer_from_keystore(keystore_path, password_env, password_file, environ)
    return load_signer_from_env(key_env, environ)


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyLoadError(f"keystore {path}: file not found", "keystore") from None
    except OSError as exc:
        raise KeyLoadError(f"keystore {path}: cannot read ({exc.strerror})", "keystore") from None
    except UnicodeDecodeError as exc:  # a binary or wrongly encoded file: not a JSON keystore
        raise KeyLoadError(f"keystore {path}: not a JSON keystore (not UTF-8 text: {exc.reason} at byte {exc.start})",
                           "keystore") from None
    try:
        keystore = json.loads(text)
    except ValueError:
        raise KeyLoadError(f"keystore {path}: not JSON", "keystore") from None
    if not isinstance(keystore, dict) or ("crypto" not in keystore and "Crypto" not in keystore):
        raise KeyLoadError(f"keystore {path}: not a keystore (no 'crypto' section)", "keystore")
    return keystore


def _read_password(password_env: str, password_file: Path | None, environ: Mapping[str, str] | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise KeyLoadError(f"keystore password file {password_file}: cannot read ({exc.strerror})",
                               "keystore_password_env") from None
        except UnicodeDecodeError as exc:
            raise KeyLoadError(f"keystore password file {password_file}: not UTF-8 text ({exc.reason} at byte "
                               f"{exc.start})", "keystore_password_env") from None
    env = os.environ if environ is None else environ
    if password_env not in env:
        raise KeyLoadError(f"keystore password: set {shown_env_name(password_env)} or give a password file",
                           "keystore_password_env")
    return env[password_env]


def _signer_or_config_error(key: bytes, shown: str, source: str) -> Signer:
    try:
        return Signer(key)
    except ConfigError as exc:
        _raise_without_context(KeyLoadError(f"{shown}: {exc}", source))


def _raise_without_context(error: ConfigError) -> NoReturn:
    """Raise with no chained exception: the original's message or locals may hold the secret."""
    try:
        raise error
    finally:
        error.__context__ = None
        error.__suppress_context__ = True
