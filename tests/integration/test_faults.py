"""The transaction pipeline under faults, on the devnet: a send answered with an error although
the node took it is tracked, not refused; an intent past its last block is not sent; a trade whose
keeper died between send and receipt is booked after the restart, exactly once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer
from keeper.chain.pending import JsonFilePendingStore
from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig, StaleAtSend, TxRequest
from keeper.collect import SnapshotCollector, Sources
from keeper.config import load_config
from keeper.devnet.provision import provision_impersonated
from keeper.devnet.txs import codec
from keeper.errors import TransientError, rpc_error_from_reply
from keeper.execute import LiveExecutor
from keeper.inflight import InFlight
from keeper.journal import Journal
from keeper.plan import Planner, eth_price_x18

from .conftest import Devnet
from .test_execution_pipeline import ETH, intent
from .tx_builders import chain_nonce, usdc_balance, usdc_transfer, wait_for_receipt


class LyingSendRpc(JsonRpc):
    """Forwards eth_sendRawTransaction to the node, then answers the client with an error."""

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        result = super().call(method, params)
        if method == "eth_sendRawTransaction":
            raise rpc_error_from_reply(method, -32603, "internal error")
        return result


def sender_for(rpc: JsonRpc, signer: Signer, store_path: Path, chain_id: int) -> TxSender:
    config = SenderConfig(FeePolicy(max_fee_per_gas_cap_wei=100 * 10**9), poll_interval_s=0.005, max_wait_s=20.0,
                          keep_settled=True)
    return TxSender(rpc, signer, config, JsonFilePendingStore(store_path), chain_id=chain_id)


@pytest.fixture()
def keeper_key(devnet: Devnet) -> Signer:
    signer = Signer(bytes(Account.create().key))
    devnet.rpc.call("anvil_setBalance", [signer.address, hex(100 * ETH)])
    return signer


def test_given_a_send_answered_with_an_error_the_node_took_then_it_is_tracked_and_mined_once(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    devnet.tx.call_fn(devnet.manifest.accounts.deployer, devnet.contract("USDC"), codec("MintableERC20"), "mint",
                      keeper_key.address, 100 * 10**6)
    recipient = devnet.manifest.accounts.traders[2]
    before, nonce = usdc_balance(devnet, recipient), chain_nonce(devnet, keeper_key.address)
    rpc = LyingSendRpc(devnet.rpc.url)
    sender = sender_for(rpc, keeper_key, tmp_path / "pending.json", devnet.manifest.chain_id)
    outcome = sender.send(usdc_transfer(devnet, recipient, 7 * 10**6))
    assert outcome.status == "included" and outcome.nonce == nonce
    assert usdc_balance(devnet, recipient) - before == 7 * 10**6  # exactly once
    assert chain_nonce(devnet, keeper_key.address) == nonce + 1 and sender.nonces.peek() == nonce + 1
    rpc.close()


def test_given_the_head_past_the_intents_last_block_at_send_time_then_nothing_is_signed(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    sender = sender_for(devnet.rpc, keeper_key, tmp_path / "pending.json", devnet.manifest.chain_id)
    head = devnet.rpc.block_number()
    with pytest.raises(StaleAtSend, match="at send time"):
        sender.submit(TxRequest(devnet.manifest.accounts.traders[2], label="stale", valid_until_block=head - 1))
    assert sender.nonces.peek() == chain_nonce(devnet, keeper_key.address)  # no nonce handed out
    assert sender.tracked() == [] and sender.store.load() == []


def an_open_decided(devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> tuple[str, Any, Any, Journal, int]:
    """An executor operated by the key, and an ETH open planned and recorded as a decision:
    (executor, snapshot, plan, journal, decision id)."""
    executor = provision_impersonated(devnet.rpc, devnet.manifest, keeper_key.address)
    config = load_config(None, environ={}, overrides={"execution": {"slippage_bps": 30}})
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest), account=executor)
    collector.prepare()
    snap = collector.fetch_snapshot()
    plan = Planner(config, executor, devnet.rpc).plan(intent("open", snap.block_number), snap, None)
    journal = Journal(tmp_path / "journal.sqlite")
    decision = journal.record_decision(plan.intent, block=snap.block_number, timestamp_s=snap.block_timestamp)
    return executor, snap, plan, journal, decision


def test_given_a_kill_between_send_and_receipt_then_the_trade_is_booked_after_the_restart(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    executor, snap, plan, journal, decision = an_open_decided(devnet, keeper_key, tmp_path)
    store_path = tmp_path / "pending.json"
    # Given the keeper signed, journaled and sent the trade, and died before reading the receipt
    first = LiveExecutor(sender_for(devnet.rpc, keeper_key, store_path, devnet.manifest.chain_id), devnet.rpc,
                         {"perp_v2": devnet.contract("ClearingHouse")})
    recorded = []
    pending = first.sender.submit(
        TxRequest(plan.to, plan.calldata, label="open ETH"),
        on_signed=lambda entry: recorded.append(journal.record_tx_sent(
            decision, plan, tx_hash=entry.latest.tx_hash, nonce=entry.nonce, sent_block=snap.block_number,
            eth_price_x18=eth_price_x18(snap))))
    wait_for_receipt(devnet, pending.tx_hash)  # mined while the keeper was down
    assert [tx.id for tx in journal.pending_transactions()] == recorded
    # When a new process starts with the same journal and pending-tx store
    restarted = LiveExecutor(sender_for(devnet.rpc, keeper_key, store_path, devnet.manifest.chain_id), devnet.rpc,
                             {"perp_v2": devnet.contract("ClearingHouse")})
    restarted.sender.recover()
    inflight = InFlight(journal, restarted)
    assert inflight.markets() == {"ETH"}
    settled = list(inflight.settle(devnet.rpc.block_number()))
    # Then its outcome is known, with the fills the chain gave, and is booked once
    assert len(settled) == 1
    tx, outcome = settled[0]
    assert outcome.status == "included" and outcome.fills == plan.predicted
    journal.record_tx_outcome(tx.id, outcome)
    inflight.acknowledge(outcome.nonce)
    assert journal.pending_transactions() == [] and inflight.markets() == set()
    assert journal.open_positions()["ETH"].perp_base_x18 == -10 * ETH
    assert JsonFilePendingStore(store_path).load() == []
    assert list(inflight.settle(devnet.rpc.block_number())) == []
    journal.close()


class FailingSignRpc(JsonRpc):
    """Fails the first read made while signing (the L1 data fee oracle lookup) with a try-again reply."""

    failed = False

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_getCode" and not self.failed:
            self.failed = True
            raise rpc_error_from_reply(method, -32005, "rate limited")
        return super().call(method, params)


def test_given_an_rpc_error_while_signing_then_the_nonce_is_given_back_and_no_gap_is_left(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    rpc = FailingSignRpc(devnet.rpc.url)
    sender = sender_for(rpc, keeper_key, tmp_path / "pending.json", devnet.manifest.chain_id)
    nonce = chain_nonce(devnet, keeper_key.address)
    request = TxRequest(devnet.manifest.accounts.traders[2], label="ping")
    with pytest.raises(TransientError):
        sender.send(request)
    assert sender.tracked() == [] and sender.store.load() == []
    outcome = sender.send(request)  # the next one takes the same nonce: nothing queues behind a gap
    assert outcome.status == "included" and outcome.nonce == nonce
    rpc.close()


def test_given_a_booked_tx_reorged_out_later_then_it_is_reported_and_the_nonce_resynced(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    sender = sender_for(devnet.rpc, keeper_key, tmp_path / "pending.json", devnet.manifest.chain_id)
    nonce = chain_nonce(devnet, keeper_key.address)
    outcome = sender.send(TxRequest(devnet.manifest.accounts.traders[2], label="ping"))
    assert outcome.status == "included" and sender.nonces.peek() == nonce + 1
    inflight = InFlight(Journal(tmp_path / "journal.sqlite"), SimpleNamespace(rpc=devnet.rpc, sender=sender))
    inflight.watch(SimpleNamespace(tx_hash=outcome.tx_hash, block_number=outcome.block_number, nonce=None))  # type: ignore[arg-type]
    assert inflight.check_reorgs(devnet.rpc.block_number()) == []
    # When a reorg deeper than its confirmations replaces its block with an empty one
    devnet.rpc.call("anvil_reorg", [1, []])
    with capture_logs() as logs:
        gone = inflight.check_reorgs(devnet.rpc.block_number())
    # Then it is reported and the next nonce is the chain's again (no gap behind it)
    assert gone == [outcome.tx_hash]
    assert [e["tx_hash"] for e in logs if e["event"] == "tx.reorged_after_booking"] == [outcome.tx_hash]
    assert sender.nonces.peek() == nonce == chain_nonce(devnet, keeper_key.address)
    assert inflight.check_reorgs(devnet.rpc.block_number()) == []


def test_given_a_booked_open_reorged_out_deeper_than_the_confirmations_then_its_booking_is_reversed_and_rebooked(
        devnet: Devnet, keeper_key: Signer, tmp_path: Path) -> None:
    executor, snap, plan, journal, decision = an_open_decided(devnet, keeper_key, tmp_path)
    live = LiveExecutor(sender_for(devnet.rpc, keeper_key, tmp_path / "pending.json", devnet.manifest.chain_id),
                        devnet.rpc, {"perp_v2": devnet.contract("ClearingHouse")})
    inflight = InFlight(journal, live)
    # Given an open signed, mined, settled with 1 confirmation and booked
    pending = live.sender.submit(
        TxRequest(plan.to, plan.calldata, label="open ETH"),
        on_signed=lambda entry: journal.record_tx_sent(
            decision, plan, tx_hash=entry.latest.tx_hash, nonce=entry.nonce, sent_block=snap.block_number,
            eth_price_x18=eth_price_x18(snap)))
    wait_for_receipt(devnet, pending.tx_hash)
    [(tx, outcome)] = list(inflight.settle(devnet.rpc.block_number()))
    journal.record_tx_outcome(tx.id, outcome)
    inflight.acknowledge(outcome.nonce)
    inflight.watch(outcome)
    assert journal.open_positions()["ETH"].perp_base_x18 == -10 * ETH and journal.fills(tx.id) is not None
    nonce = outcome.nonce
    # When a reorg deeper than the confirmation takes its block away
    devnet.rpc.call("anvil_reorg", [devnet.rpc.block_number() - outcome.block_number + 1, []])
    with capture_logs() as logs:
        gone = inflight.check_reorgs(devnet.rpc.block_number())
    # Then the booking is reversed (structured event): pending again, no fills, the position back to 0
    assert gone == [outcome.tx_hash]
    reversed_events = [e for e in logs if e["event"] == "journal.trade_reversed"]
    assert [e["tx_id"] for e in reversed_events] == [tx.id]
    assert journal.transaction(tx.id).status == "pending" and journal.fills(tx.id) is None
    assert "ETH" not in journal.open_positions()  # the position it opened is closed: nothing of it is on chain
    assert inflight.markets() == {"ETH"}  # held until it settles again
    # And it is booked afresh once it settles (again in a block, or dropped), matching the chain
    settled = []
    for _ in range(20):
        settled = list(inflight.settle(devnet.rpc.block_number()))
        if settled:
            break
        devnet.rpc.call("evm_mine", [])
    [(tx2, outcome2)] = settled
    assert tx2.id == tx.id and outcome2.nonce == nonce
    journal.record_tx_outcome(tx2.id, outcome2)
    inflight.acknowledge(outcome2.nonce)
    chain_perp = devnet.tx.read(devnet.contract("AccountBalance"), codec("AccountBalance"), "getTakerPositionSize",
                                executor, next(m for m in devnet.manifest.markets if m.name == "ETH").base_token)
    journal_perp = journal.open_positions()["ETH"].perp_base_x18 if "ETH" in journal.open_positions() else 0
    assert journal_perp == chain_perp
    if outcome2.status == "included":
        assert chain_perp == -10 * ETH and journal.fills(tx.id) is not None
    else:
        assert outcome2.status == "dropped" and chain_perp == 0
        assert chain_nonce(devnet, keeper_key.address) == nonce == live.sender.nonces.peek()
    journal.close()
