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
