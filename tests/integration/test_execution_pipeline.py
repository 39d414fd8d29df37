"""The Python execution path on the devnet: plan from a snapshot, simulate, sign, send; a
front-running trade between planning and sending makes the simulation fail and nothing is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from eth_account import Account

from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer
from keeper.chain.pending import MemoryPendingStore
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig
from keeper.collect import SnapshotCollector, Sources
from keeper.config import load_config
from keeper.devnet.deploy import DEADLINE_NEVER
from keeper.devnet.provision import provision_impersonated
from keeper.devnet.txs import codec
from keeper.execute import LiveExecutor
from keeper.logs import configure_logging
from keeper.plan import Planner
from keeper.types import Direction, Intent, PnlEstimate, Position

from .conftest import Devnet

ETH = 10**18


@pytest.fixture()
def live(devnet: Devnet, tmp_path: Path) -> Iterator[tuple[Devnet, str, LiveExecutor, SnapshotCollector, Planner, Signer]]:
    key = Account.create()
    signer = Signer(bytes(key.key))
    devnet.rpc.call("anvil_setBalance", [signer.address, hex(100 * ETH)])
    executor = provision_impersonated(devnet.rpc, devnet.manifest, signer.address)
    config = load_config(None, environ={}, overrides={"execution": {"slippage_bps": 30}})
    sender = TxSender(devnet.rpc, signer, SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=100 * 10**9)),
                      MemoryPendingStore())
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=executor)
    collector.prepare()
    yield devnet, executor, LiveExecutor(sender, devnet.rpc, {"perp_v2": devnet.contract("ClearingHouse")}), collector, \
        Planner(config, executor, devnet.rpc), signer


def intent(kind: str, block: int, size_x18: int = 10 * ETH) -> Intent:
    return Intent(strategy="test", kind=kind, market="ETH", direction=Direction.SHORT_PERP, spot_venue="uniswap_v3",  # type: ignore[arg-type]
                  perp_base_x18=size_x18, reason="test", expected=PnlEstimate(1_000.0, 0, 0, 0, 0, 0),
                  created_block=block, valid_until_block=block + 2)


def executor_state(devnet: Devnet, executor: str) -> tuple[int, ...]:
    c, eth = devnet.manifest.contracts, devnet.manifest.market("ETH")
    return (devnet.tx.read(c["USDC"], codec("MintableERC20"), "balanceOf", executor),
            devnet.tx.read(eth.spot_token, codec("MintableERC20"), "balanceOf", executor),
            devnet.tx.read(c["Vault"], codec("Vault"), "getBalance", executor),
            devnet.tx.read(c["AccountBalance"], codec("AccountBalance"), "getTakerPositionSize", executor, eth.base_token))


def test_open_then_close_fill_exactly_as_planned_with_zero_residual(live) -> None:  # type: ignore[no-untyped-def]
    devnet, executor, live_executor, collector, planner, _ = live
    snap = collector.fetch_snapshot()
    opened = live_executor.execute(planner.plan(intent("open", snap.block_number), snap, None))
    assert opened.status == "included" and opened.fills == opened.plan.predicted
    assert opened.fills.residual_base_x18 == 0 and opened.position_base_after_x18 == -10 * ETH
    assert opened.perp_fee_x18 > 0  # Perp's PositionChanged fee, read from the receipt
    position = Position(
        "ETH", Direction.SHORT_PERP, "uniswap_v3", -10 * ETH, opened.fills.spot_raw, snap.block_number,
        snap.block_timestamp, 0.0, opened.fills.net_quote_x18)
    snap = collector.fetch_snapshot()
    closed = live_executor.execute(planner.plan(intent("close", snap.block_number), snap, position))
    assert closed.status == "included" and closed.fills == closed.plan.predicted
    assert closed.fills.residual_base_x18 == 0 and closed.position_base_after_x18 == 0


def test_a_front_run_breaks_the_bound_and_nothing_is_sent_or_lost(live, capsys) -> None:  # type: ignore[no-untyped-def]
    devnet, executor, live_executor, collector, planner, signer = live
    configure_logging("INFO", json_lines=True)
    snap = collector.fetch_snapshot()
    plan = planner.plan(intent("open", snap.block_number), snap, None)
    before = executor_state(devnet, executor)
    nonce_before = int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16)
    # Another account shorts 300 vETH first: our short now gets far less quote than its bound.
    trader = devnet.manifest.accounts.traders[0]
    devnet.tx.call_fn(trader, devnet.contract("ClearingHouse"), codec("ClearingHouse"), "openPosition",
                      (devnet.manifest.market("ETH").base_token, True, True, 300 * ETH, 0, DEADLINE_NEVER, 0, b"\0" * 32))
    outcome = live_executor.execute(plan)
    assert outcome.status == "simulation_reverted" and "CH_TLRS" in outcome.detail  # too little quote received
    assert int(devnet.rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16) == nonce_before
    assert executor_state(devnet, executor) == before  # nothing moved, no leg left behind
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    reverted = [e for e in logged if e.get("event") == "tx.simulation_reverted"]
    assert reverted and "CH_TLRS" in reverted[0]["reason"]
    structlog.reset_defaults()


def test_an_adopted_position_gets_the_executors_spot_and_can_be_closed(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from keeper.adopt import chain_positions
    from keeper.boundary import unquotable
    from keeper.journal import Journal

    devnet, executor, live_executor, collector, planner, _ = live
    snap = collector.fetch_snapshot()
    opened = live_executor.execute(planner.plan(intent("open", snap.block_number), snap, None))
    assert opened.status == "included"
    # Given a journal that never saw the open (a crash, another process): the chain's position is adopted
    journal = Journal(tmp_path / "journal.sqlite")
    snap = collector.fetch_snapshot()
    journal.reconcile(chain_positions(snap, collector.sources, journal.open_positions()), block=snap.block_number,
                      timestamp_s=snap.block_timestamp)
    adopted = journal.open_positions()["ETH"]
    # Then its spot leg is what the executor holds against it, and its close can be quoted and sent
    assert adopted.perp_base_x18 == -10 * ETH and adopted.spot_raw == opened.fills.spot_raw
    assert unquotable(adopted) is None
    closed = live_executor.execute(planner.plan(intent("close", snap.block_number), snap, adopted))
    assert closed.status == "included" and closed.position_base_after_x18 == 0
    assert closed.fills == closed.plan.predicted
    journal.close()
