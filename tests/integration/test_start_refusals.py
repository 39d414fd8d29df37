"""Start-up on the devnet refuses what would run quietly doing nothing (the audit): a pairs_spread
market the chain lacks, and a live run on a paused executor (a dry run goes on, saying so)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from keeper.chain.keys import Signer
from keeper.devnet.txs import codec
from keeper.errors import ConfigError
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet

pytestmark = pytest.mark.integration


def test_a_pair_on_a_market_the_chain_lacks_is_refused_before_anything_is_sent(devnet: Devnet, tmp_path: Path) -> None:
    settings = devnet.keeper_config(tmp_path, strategies={"enabled": ["pairs_spread"],
                                                          "params": {"pairs_spread": {"market_a": "DOGE"}}})
    block = devnet.rpc.block_number()
    with pytest.raises(ConfigError, match=r"^strategies\.params\.pairs_spread\.market_a: 'DOGE' is not a market"):
        build_runtime(settings, dry_run=True)
    assert devnet.rpc.block_number() == block  # no executor provisioned: nothing sent


def test_a_paused_executor_refuses_a_live_start_and_a_dry_run_says_so(devnet: Devnet, signer: Signer,
                                                                        tmp_path: Path) -> None:
    # Given the keeper's executor, paused by its admin (as `keeper executor migrate` leaves the old one)
    first = build_runtime(devnet.keeper_config(tmp_path / "a"), dry_run=True)
    executor = first.executor_address
    first.close()
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, executor, codec("BasisExecutor"), "setPaused", True)
    settings = devnet.keeper_config(tmp_path / "b", account={"executor": executor})
    # When the keeper starts live, then it is refused, naming account.executor
    with pytest.raises(ConfigError, match=rf"^account\.executor: {executor} is paused"):
        build_runtime(settings, dry_run=False)
    # When it starts in dry run, then it starts, saying so at start
    with capture_logs() as logs:
        runtime = build_runtime(settings, dry_run=True)
    runtime.close()
    assert [e["executor"] for e in logs if e["event"] == "executor.paused"] == [executor]
    started = next(e for e in logs if e["event"] == "keeper.started")
    assert started["executor_paused"] is True and started["mode"] == "dry_run"


def test_an_executor_without_the_books_markets_refuses_a_live_start_and_a_dry_run(devnet: Devnet, signer: Signer,
                                                                                   tmp_path: Path) -> None:
    # Given the keeper's executor, its ETH market removed by its admin and its BTC market set to another fee tier
    first = build_runtime(devnet.keeper_config(tmp_path / "a"), dry_run=True)
    executor = first.executor_address
    first.close()
    eth, btc = devnet.manifest.market("ETH"), devnet.manifest.market("BTC")
    other_fee = 10_000 if btc.uniswap_v3_fee_pips != 10_000 else 3_000
    admin = devnet.manifest.accounts.deployer
    devnet.tx.call_fn(admin, executor, codec("BasisExecutor"), "setMarket", eth.base_token, "0x" + "00" * 20, 0)
    devnet.tx.call_fn(admin, executor, codec("BasisExecutor"), "setMarket", btc.base_token, btc.spot_token, other_fee)
    settings = devnet.keeper_config(tmp_path / "b", account={"executor": executor},
                                    markets={"enabled": ["ETH", "BTC"]})
    block = devnet.rpc.block_number()
    # When the keeper starts, live or dry, then it is refused, naming account.executor, both markets and the way out
    for dry_run in (False, True):
        with pytest.raises(ConfigError, match=rf"^account\.executor: {executor} cannot trade") as refused:
            build_runtime(settings, dry_run=dry_run)
        message = str(refused.value)
        assert "ETH: no market registered" in message
        assert f"BTC: V3 fee {other_fee}" in message and f"the book's V3 pool has fee {btc.uniswap_v3_fee_pips}" in message
        assert "keeper executor deploy --markets ETH,BTC" in message and "markets.enabled" in message
    assert devnet.rpc.block_number() == block  # nothing sent


def test_an_executor_with_another_spot_token_is_refused(devnet: Devnet, tmp_path: Path) -> None:
    first = build_runtime(devnet.keeper_config(tmp_path / "a"), dry_run=True)
    executor = first.executor_address
    first.close()
    eth, btc = devnet.manifest.market("ETH"), devnet.manifest.market("BTC")
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, executor, codec("BasisExecutor"), "setMarket",
                      eth.base_token, btc.spot_token, eth.uniswap_v3_fee_pips)
    settings = devnet.keeper_config(tmp_path / "b", account={"executor": executor}, markets={"enabled": ["ETH"]})
    with pytest.raises(ConfigError, match=rf"ETH: spot token {btc.spot_token}.*the book's spot token is {eth.spot_token}"):
        build_runtime(settings, dry_run=True)
