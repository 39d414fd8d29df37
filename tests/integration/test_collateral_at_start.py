"""An executor funded with USDC in its wallet only (as `keeper executor deploy` leaves it, then a
transfer) has an empty Perp vault: a live keeper deposits account.collateral_usdc at start, once;
a dry run sends nothing and says what a live start would deposit."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from keeper.chain.keys import Signer
from keeper.devnet.provision import ExecutorFunding, provision_impersonated
from keeper.devnet.txs import codec
from keeper.launch import build_runtime
from tests.integration.conftest import Devnet

TARGET_USDC = 30_000


def _vault_usdc_raw(devnet: Devnet, executor: str) -> int:
    c = devnet.manifest.contracts
    return int(devnet.tx.read(c["Vault"], codec("Vault"), "getBalance", executor))


def test_a_live_start_funds_an_empty_vault_to_the_target_once(devnet: Devnet, tmp_path: Path, signer: Signer) -> None:
    executor = provision_impersonated(devnet.rpc, devnet.manifest, signer.address,
                                      ExecutorFunding(usdc_collateral_raw=0))
    assert _vault_usdc_raw(devnet, executor) == 0
    settings = devnet.keeper_config(tmp_path, account={"executor": executor, "collateral_usdc": TARGET_USDC})
    with capture_logs() as logs:
        runtime = build_runtime(settings, dry_run=False)
        runtime.close()
    deposited = [e for e in logs if e["event"] == "collateral.deposited"]
    assert len(deposited) == 1 and deposited[0]["deposit_usdc"] == TARGET_USDC and deposited[0]["gas_used"] > 0
    assert _vault_usdc_raw(devnet, executor) == TARGET_USDC * 10**6
    with capture_logs() as logs:  # at the target now: the next start sends nothing
        build_runtime(settings, dry_run=False).close()
    assert not [e for e in logs if str(e["event"]).startswith("collateral.")]
    assert _vault_usdc_raw(devnet, executor) == TARGET_USDC * 10**6


def test_a_dry_run_sends_nothing_and_says_what_a_live_start_would_deposit(devnet: Devnet, tmp_path: Path,
                                                                           signer: Signer) -> None:
    executor = provision_impersonated(devnet.rpc, devnet.manifest, signer.address,
                                      ExecutorFunding(usdc_collateral_raw=0))
    settings = devnet.keeper_config(tmp_path, account={"executor": executor, "collateral_usdc": TARGET_USDC})
    with capture_logs() as logs:
        build_runtime(settings, dry_run=True).close()
    short = [e for e in logs if e["event"] == "collateral.short"]
    assert len(short) == 1 and short[0]["deposit_usdc"] == TARGET_USDC and short[0]["vault_usd"] == 0
    assert _vault_usdc_raw(devnet, executor) == 0


def test_a_live_start_with_the_kill_switch_pulled_deposits_nothing(devnet: Devnet, tmp_path: Path,
                                                                    signer: Signer) -> None:
    executor = provision_impersonated(devnet.rpc, devnet.manifest, signer.address,
                                      ExecutorFunding(usdc_collateral_raw=0))
    kill = tmp_path / "KILL"
    kill.touch()
    settings = devnet.keeper_config(tmp_path, account={"executor": executor, "collateral_usdc": TARGET_USDC},
                                    risk={"kill_switch_file": kill})
    with capture_logs() as logs:
        build_runtime(settings, dry_run=False).close()
    deferred = [e for e in logs if e["event"] == "collateral.deferred"]
    assert len(deferred) == 1 and "kill switch is pulled" in deferred[0]["reason"]
    assert not [e for e in logs if e["event"] == "collateral.deposited"]
    assert _vault_usdc_raw(devnet, executor) == 0
    # a file naming one market leaves the others to trade: they need the collateral, so it is deposited
    kill.write_text("ETH")
    with capture_logs() as logs:
        build_runtime(settings, dry_run=False).close()
    assert [e["event"] for e in logs if str(e["event"]).startswith("collateral.")] == ["collateral.deposited"]
    assert _vault_usdc_raw(devnet, executor) == TARGET_USDC * 10**6
