"""The signing key: from the environment or an encrypted keystore, never shown, clear errors."""

from __future__ import annotations

import copy
import io
import json
import pickle
from pathlib import Path

import pytest
import structlog
from eth_account import Account
from eth_utils import keccak

from keeper.chain.keys import Eip1559Tx, Signer, load_signer, load_signer_from_env, load_signer_from_keystore
from keeper.errors import ConfigError
from keeper.logs import configure_logging, get_logger

# anvil's public dev account #1 (the devnet keeper): test data, not a secret
KEY_HEX = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def assert_no_key(text: str) -> None:
    assert KEY_HEX not in text.lower()


@pytest.fixture()
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.json"
    path.write_text(json.dumps(Account.encrypt(bytes.fromhex(KEY_HEX), "correct horse", kdf="pbkdf2", iterations=2)))
    return path


# ------------------------------------------------------------------------------------ env
@pytest.mark.parametrize("value", [KEY_HEX, "0x" + KEY_HEX, f"  0x{KEY_HEX.upper()}\n"])
def test_key_loads_from_the_default_env_var(value: str) -> None:
    signer = load_signer_from_env(environ={"KEEPER_PRIVATE_KEY": value})
    assert signer.address == ADDRESS


def test_env_var_name_is_configurable() -> None:
    assert load_signer_from_env("MY_BOT_KEY", environ={"MY_BOT_KEY": KEY_HEX}).address == ADDRESS


def test_missing_env_var_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"\$KEEPER_PRIVATE_KEY is not set"):
        load_signer_from_env(environ={})


@pytest.mark.parametrize("bad", [KEY_HEX[:-2], KEY_HEX + "00", "zz" + KEY_HEX[2:], "0" * 64, "f" * 64])
def test_invalid_key_is_a_config_error_that_does_not_echo_it(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"\$KEEPER_PRIVATE_KEY") as raised:
        load_signer_from_env(environ={"KEEPER_PRIVATE_KEY": bad})
    assert bad not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None


# ------------------------------------------------------------------------------------ keystore
def test_keystore_decrypts_with_the_password_from_the_env(keystore: Path) -> None:
    signer = load_signer_from_keystore(keystore, environ={"KEEPER_KEYSTORE_PASSWORD": "correct horse"})
    assert signer.address == ADDRESS


def test_a_keystore_that_is_not_utf8_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe not a keystore \x80")
    with pytest.raises(ConfigError, match=r"keystore .*bad\.toml: not a JSON keystore \(not UTF-8"):  # was UnicodeDecodeError
        load_signer(keystore_path=bad, environ={"KEEPER_KEYSTORE_PASSWORD": "x"})
    password = tmp_path / "password"
    password.write_bytes(b"\xff\xfe")
    good = tmp_path / "k.json"
    good.write_text('{"crypto": {}}')
    with pytest.raises(ConfigError, match=r"keystore password file .*password: not UTF-8"):
        load_signer(keystore_path=good, password_file=password, environ={})


def test_keystore_decrypts_with_a_password_file(keystore: Path, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("correct horse\n")  # as `echo` writes it
    assert load_signer(keystore_path=keystore, password_file=password_file, environ={}).address == ADDRESS


def test_wrong_password_is_a_config_error_naming_the_file(keystore: Path) -> None:
    with pytest.raises(ConfigError, match=f"keystore {keystore}: cannot decrypt") as raised:
        load_signer_from_keystore(keystore, environ={"KEEPER_KEYSTORE_PASSWORD": "wrong"})
    assert raised.value.__context__ is None


def test_missing_password_names_the_env_var(keystore: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$VAULT_PW"):
        load_signer_from_keystore(keystore, password_env="VAULT_PW", environ={})


@pytest.mark.parametrize(("content", "message"), [(None, "file not found"), ("{not json", "not JSON"),
                                                  ('{"address": "x"}', "not a keystore")])
def test_unusable_keystore_file_is_a_config_error_naming_it(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "ks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"keystore {path}: {message}"):
        load_signer_from_keystore(path, environ={"KEEPER_KEYSTORE_PASSWORD": "x"})


def test_load_signer_uses_the_env_key_when_no_keystore_is_given() -> None:
    assert load_signer(environ={"KEEPER_PRIVATE_KEY": KEY_HEX}).address == ADDRESS


# ------------------------------------------------------------------------------------ never shown
def test_signer_repr_and_str_show_the_address_only() -> None:
    signer = Signer(bytes.fromhex(KEY_HEX))
    for text in (repr(signer), str(signer), f"{signer}", repr([signer]), repr({"s": signer})):
        assert_no_key(text)
        assert ADDRESS in text


def test_signer_cannot_be_pickled_or_copied() -> None:
    signer = Signer(bytes.fromhex(KEY_HEX))
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    with pytest.raises(TypeError):
        copy.deepcopy(signer)
    with pytest.raises(TypeError):
        vars(signer)


def test_key_never_reaches_the_log(keystore: Path) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json_lines=True, stream=stream)
    try:
        signer = load_signer_from_env(environ={"KEEPER_PRIVATE_KEY": KEY_HEX})
        load_signer_from_keystore(keystore, environ={"KEEPER_KEYSTORE_PASSWORD": "correct horse"})
        get_logger("test").info("test.signer", signer=signer, holder={"signer": signer})
        try:
            load_signer_from_env(environ={"KEEPER_PRIVATE_KEY": KEY_HEX[:-1]})
        except ConfigError:
            get_logger("test").exception("test.load_failed")
    finally:
        structlog.reset_defaults()
    output = stream.getvalue()
    assert output.count("keys.loaded") == 2 and ADDRESS in output and "test.load_failed" in output
    assert_no_key(output)
    assert KEY_HEX[:-1] not in output.lower()


# ------------------------------------------------------------------------------------ signing
def test_signed_eip1559_tx_recovers_to_the_signer_and_hashes_to_its_hash() -> None:
    signer = Signer(bytes.fromhex(KEY_HEX))
    tx = Eip1559Tx(chain_id=31337, nonce=3, to="0x000000000000000000000000000000000000dEaD", data=b"\x01\x02",
                   value_wei=5, gas_limit=50_000, max_fee_per_gas_wei=2 * 10**9, max_priority_fee_per_gas_wei=10**9)
    signed = signer.sign(tx)
    assert signed.raw_tx[0] == 2  # type-2 envelope
    assert Account.recover_transaction(signed.raw_tx) == ADDRESS
    assert signed.tx_hash == "0x" + keccak(signed.raw_tx).hex()


def test_signatures_go_through_coincurve_not_the_pure_python_fallback() -> None:
    # eth-keys picks coincurve when it is installed (~1 ms a signature instead of ~9 ms)
    from eth_keys.backends import get_backend

    assert type(get_backend()).__name__ == "CoinCurveECCBackend"


def test_given_a_key_pasted_as_the_variables_name_when_loading_then_the_error_does_not_print_it() -> None:
    from keeper.chain.keys import load_signer_from_env, shown_env_name
    from keeper.errors import ConfigError
    pasted = "ab" * 32
    with pytest.raises(ConfigError) as caught:
        load_signer_from_env(pasted, environ={})
    assert pasted[:16] not in str(caught.value) and "not shown" in str(caught.value)
    assert shown_env_name("KEEPER_PRIVATE_KEY") == "$KEEPER_PRIVATE_KEY"
    assert "not shown" in shown_env_name("hunter2 password")


def test_a_load_error_names_the_account_field_it_comes_from(tmp_path: Path) -> None:
    from keeper.chain.keys import KeyLoadError

    keystore = tmp_path / "k.json"
    keystore.write_text('{"crypto": {}}')
    cases = [(lambda: load_signer(key_env="MY_KEY", environ={}), "key_env"),
             (lambda: load_signer(key_env="MY_KEY", environ={"MY_KEY": "0x12"}), "key_env"),
             (lambda: load_signer(keystore_path=tmp_path / "none.json", environ={}), "keystore"),
             (lambda: load_signer(keystore_path=keystore, environ={}), "keystore_password_env")]
    for load, source in cases:
        with pytest.raises(KeyLoadError) as raised:
            load()
        assert raised.value.source == source, str(raised.value)
