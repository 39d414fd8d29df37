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
