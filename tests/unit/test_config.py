from pathlib import Path

import pytest

from keeper.addressbook import optimism_book
from keeper.config import load_config
from keeper.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keeper.toml"
    path.write_text(text)
    return path


def test_given_no_file_when_loading_then_defaults_are_valid() -> None:
    config = load_config(None, environ={})
    assert config.chain.rpc_url is None and config.risk.max_leverage == 3.0


@pytest.mark.parametrize(("text", "message"), [
    ("[risk]\nmax_leverage = -1\n", "risk.max_leverage: Input should be greater than 0 (got -1)"),
    ("[risk]\nmax_levrage = 2\n", "risk.max_levrage: unknown key"),
    ("[riks]\n", "riks: unknown key"),
    ("[execution]\nslippage_bps = 'lots'\n", "execution.slippage_bps"),
    ("[account]\nexecutor = '0x1234'\n", "account.executor"),
    ("[risk\n", "not valid TOML"),
])
def test_given_a_bad_value_when_loading_then_the_error_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, text), environ={})


def test_given_env_overrides_when_loading_then_they_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nmax_leverage = 2\n[markets]\nenabled = ['ETH', 'BTC']\n")
    config = load_config(path, environ={"KEEPER_RISK__MAX_LEVERAGE": "1.5", "KEEPER_MARKETS__ENABLED": "ETH",
                                        "KEEPER_PRIVATE_KEY": "not-a-setting"})
    assert config.risk.max_leverage == 1.5 and config.markets.enabled == ["ETH"]


def test_given_an_unknown_env_setting_when_loading_then_it_is_an_error() -> None:
    with pytest.raises(ConfigError, match="KEEPER_RISK__MAX_LEVRAGE|risk.max_levrage"):
        load_config(None, environ={"KEEPER_RISK__MAX_LEVRAGE": "2"})
    with pytest.raises(ConfigError, match="KEEPER_LEVERAGE"):
        load_config(None, environ={"KEEPER_LEVERAGE": "2"})


@pytest.mark.parametrize("name", ["keeper.example.toml", "config/devnet.toml", "config/optimism.toml"])
def test_given_the_shipped_configs_when_loading_then_they_are_valid(name: str) -> None:
    load_config(ROOT / name, environ={})


def test_given_the_optimism_preset_then_it_names_chain_10_and_perp_markets() -> None:
    book = optimism_book()
    assert book.chain_id == 10
    assert {m.name for m in book.markets} == {"ETH", "BTC"}
    assert book.perp.clearing_house == "0x82ac2CE43e33683c58BE4cDc40975E73aA50f459"


def test_given_backup_rpc_urls_in_the_environment_then_they_are_a_list() -> None:
    config = load_config(None, environ={"KEEPER_CHAIN__BACKUP_RPC_URLS": "http://b:8545, http://c:8545"})
    assert config.chain.backup_rpc_urls == ["http://b:8545", "http://c:8545"]


@pytest.mark.parametrize(("text", "message"), [
    ("[account]\nexecutor = '0x" + "zz" * 20 + "'\n", "account.executor: not an address"),
    ("[account]\nexecutor = '0x70997970C51812dc3A010C7d01b50e0d17dc79C9'\n", "account.executor: not an address"),  # bad checksum
    ("[chain]\nrpc_url = 'localhost:8545'\n", "chain.rpc_url: not a node URL"),
    ("[chain]\nbackup_rpc_urls = ['http://127.0.0.1:8545', 'node2']\n", "chain.backup_rpc_urls: not a node URL"),
    ("[chain]\nws_url = 'http://127.0.0.1:8545'\n", "chain.ws_url: not a node URL (expected scheme ws or wss"),
    ("[chain]\npreset = 'optimism'\nmanifest = 'm.json'\n",  # was: read by the executor commands, not by run
     "chain.manifest: a devnet manifest: only with preset 'devnet' (the preset is 'optimism', whose addresses are "
     "resolved on chain) (got 'm.json')"),  # the path as written, not PosixPath('m.json')
])
def test_given_a_malformed_address_or_url_when_loading_then_the_field_is_named(tmp_path: Path, text: str,
                                                                               message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert message in str(caught.value) and "Value error" not in str(caught.value)


def test_given_good_urls_and_a_checksummed_or_lowercase_address_then_they_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[chain]\nrpc_url = 'https://node.example:8545/v1'\nws_url = 'wss://node.example'\n"
                                         "[account]\nexecutor = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'\n"), environ={})
    assert config.chain.rpc_url == "https://node.example:8545/v1" and config.account.executor is not None


def test_given_a_directory_or_a_binary_file_as_config_then_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, environ={})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[risk]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, environ={})


def test_given_the_key_variables_by_any_name_then_they_are_not_taken_for_settings(tmp_path: Path) -> None:
    # the admin commands' default variables, the variable account.key_env names, a command's own
    config = load_config(write(tmp_path, "[account]\nkey_env = 'KEEPER_HOT_KEY'\n"),
                         environ={"KEEPER_ADMIN_PRIVATE_KEY": "x", "KEEPER_ADMIN_KEYSTORE_PASSWORD": "x",
                                  "KEEPER_HOT_KEY": "x", "KEEPER_TREASURY_KEY": "x"},
                         secret_env=("KEEPER_TREASURY_KEY",))
    assert config.account.key_env == "KEEPER_HOT_KEY"
    load_config(None, environ={"KEEPER_ACCOUNT__KEY_ENV": "KEEPER_OTHER_KEY", "KEEPER_OTHER_KEY": "x"})
    with pytest.raises(ConfigError, match="KEEPER_RISK_MAX_LEVERAGE"):  # a typo'd setting is still an error
        load_config(None, environ={"KEEPER_RISK_MAX_LEVERAGE": "2"})


def test_given_a_url_with_a_providers_key_when_refused_then_the_key_is_not_in_the_message() -> None:
    from keeper.config import check_url
    for overrides in ({"chain": {"rpc_url": "htps://node.example/v2/SECRETKEY"}},
                      {"chain": {"rpc_url": "ftp://user:SECRETKEY@node.example"}}):
        with pytest.raises(ConfigError) as caught:
            load_config(None, environ={}, overrides=overrides)
        assert "SECRETKEY" not in str(caught.value) and "chain.rpc_url" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        check_url("htps://node.example/v2/SECRETKEY", "--rpc-url")
    assert "SECRETKEY" not in str(caught.value) and "node.example" in str(caught.value)
    with pytest.raises(ConfigError, match="not a node URL"):
        check_url("http://:8545", "--rpc-url")  # no host


def test_given_a_key_pasted_as_key_env_when_loading_then_it_is_refused_without_echoing_it() -> None:
    key = "0x" + "ab" * 32
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={}, overrides={"account": {"key_env": key}})
    assert "account.key_env" in str(caught.value) and key not in str(caught.value) and "ab" * 8 not in str(caught.value)


@pytest.mark.parametrize("pasted", ["ab" * 32, "AB" * 32, "0x" + "12" * 32])
def test_given_a_bare_hex_key_as_key_env_when_loading_then_it_is_refused_without_echoing_it(pasted: str) -> None:
    for field in ("key_env", "keystore_password_env"):
        with pytest.raises(ConfigError) as caught:
            load_config(None, environ={}, overrides={"account": {field: pasted}})
        assert f"account.{field}" in str(caught.value) and pasted[-20:] not in str(caught.value)


def test_given_a_malformed_ipv6_url_then_one_error_naming_the_field() -> None:
    from keeper.config import check_url, redacted_url
    with pytest.raises(ConfigError, match="chain.rpc_url"):
        load_config(None, environ={}, overrides={"chain": {"rpc_url": "http://[::1"}})
    with pytest.raises(ConfigError, match="--rpc-url: not a node URL"):
        check_url("http://[::1", "--rpc-url")
    assert redacted_url("http://[::1]:8545/v2/KEY") == "http://[::1]:8545/..."
    assert check_url("HTTP://[::1]:8545/", "x") == "HTTP://[::1]:8545/"


def test_an_error_in_a_value_an_environment_variable_set_names_the_variable_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nmax_leverage = 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"KEEPER_RISK__MAX_LEVRAGE": "2"})
    assert str(caught.value).startswith("environment KEEPER_RISK__MAX_LEVRAGE: risk.max_levrage: unknown key")
    with pytest.raises(ConfigError, match=r"^environment KEEPER_RIKS__X: riks: unknown key"):
        load_config(path, environ={"KEEPER_RIKS__X": "1"})
    with pytest.raises(ConfigError, match=r"^config .*keeper.toml: risk.max_leverage"):  # the file's own error
        load_config(write(tmp_path, "[risk]\nmax_leverage = -1\n"), environ={})


def test_nested_keys_and_lists_can_be_set_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategies.params.basis_convergence]\nexit_z = 0.5\n")
    config = load_config(path, environ={"KEEPER_STRATEGIES__PARAMS__BASIS_CONVERGENCE__ENTRY_Z": "3",
                                        "KEEPER_MARKETS__ENABLED": "ETH", "KEEPER_STRATEGIES__ENABLED": "funding_carry"})
    assert config.strategies.params == {"basis_convergence": {"exit_z": 0.5, "entry_z": 3}}  # merged with the file's
    assert config.markets.enabled == ["ETH"] and config.strategies.enabled == ["funding_carry"]


@pytest.mark.parametrize(("environ", "message"), [
    ({"KEEPER_RISK__MAX_NOTIONAL_USD_TOTAL": "inf"}, "risk.max_notional_usd_total: Input should be a finite number"),
    ({"KEEPER_COSTS__MIN_PROFIT_USD": "nan"}, "costs.min_profit_usd: Input should be a finite number"),
    ({"KEEPER_CHAIN__RPC_URL": "http://127.0.0.1:99999"}, "chain.rpc_url: not a node URL"),
    ({"KEEPER_CHAIN__BACKUP_RPC_URLS": "http://a:8545/KEY,http://b:0"}, r"chain.backup_rpc_urls: not a node URL.*'http://a:8545/\.\.\.'"),
])
def test_non_finite_numbers_and_invalid_ports_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ=environ)


def test_a_config_file_inf_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"keeper.toml: risk.max_gas_price_gwei: Input should be a finite number"):
        load_config(write(tmp_path, "[risk]\nmax_gas_price_gwei = inf\n"), environ={})


@pytest.mark.parametrize(("text", "message"), [
    ("[markets]\nenabled = ['ETH', 'BTC', 'ETH']\n", "markets.enabled: ETH given more than once"),
    ("[markets]\nspot_venues = ['uniswap_v3', 'uniswap_v3']\n", "markets.spot_venues: uniswap_v3 given more than once"),
    ("[strategies]\nenabled = ['funding_carry', 'funding_carry']\n", "strategies.enabled: funding_carry given more than once"),
])
def test_a_name_listed_twice_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})
