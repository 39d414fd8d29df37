"""The transaction pipeline through reorgs and restarts: a reorg is detected and the outcome
checked again; a restart neither sends a stored transaction twice nor loses it, even when the send
failed in transit. The keeper is anvil's public dev account #1 (the `signer` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from keeper.chain.keys import Signer
from keeper.chain.pending import JsonFilePendingStore
from keeper.chain.rpc import JsonRpc
from keeper.chain.tx_types import TxOutcome
from keeper.errors import TransientError

from .conftest import Devnet
from .tx_builders import (USDC, block_tx_hashes, chain_nonce, make_sender, manual_mining, mine, usdc_balance,
                          usdc_transfer, wait_for_receipt)


# ------------------------------------------------------------------------------------ reorgs
@pytest.mark.parametrize("reorg", ["tx-dropped-by-reorg", "tx-moved-by-reorg"])
def test_reorg_is_detected_and_the_outcome_rechecked(devnet: Devnet, signer: Signer, reorg: str) -> None:
    # Given a transfer mined (automine) and waiting for 3 confirmations, on a block mined here (the
    # reorg's common ancestor: anvil keeps the states of recent blocks only, and one from before the
    # test's snapshot may be gone after the session's other tests)
    mine(devnet)
    recipient = devnet.manifest.accounts.traders[1]
    before = usdc_balance(devnet, recipient)
    sender = make_sender(devnet, signer, confirmations=3)
    pending = sender.submit(usdc_transfer(devnet, recipient, 5 * USDC))
    wait_for_receipt(devnet, pending.tx_hash)
    assert sender.poll(pending) is None
    assert pending.included_at is not None
    first_block, first_hash = pending.included_at
    with capture_logs() as logs:
        if reorg == "tx-dropped-by-reorg":
            # When its block is replaced by an empty one: anvil forgets the tx entirely
            devnet.rpc.call("anvil_reorg", [1, []])
            assert devnet.rpc.call("eth_getTransactionReceipt", [pending.tx_hash]) is None
            outcome = sender.poll(pending)
            # Then it is dropped, not re-broadcast (its bytes were signed for a state that is
            # gone; the intent is decided again), and the nonce is resynced from the chain
            assert outcome is not None and outcome.status == "dropped" and outcome.reorgs == 1
            assert [e["block_hash"] for e in logs if e["event"] == "tx.reorged"] == [first_hash]
            assert sender.nonces.peek() == pending.nonce == chain_nonce(devnet, signer.address)
            assert usdc_balance(devnet, recipient) == before
            return
        else:
            # When the last 2 blocks are replaced, with the same tx one block later
            mine(devnet)
            assert sender.poll(pending) is None
            devnet.rpc.call("anvil_reorg", [2, [["0x" + pending.entry.latest.raw_tx.hex(), 1]]])
            assert sender.poll(pending) is None  # seen in its new block: confirmations restart
        mine(devnet, 2)
        outcome = sender.poll(pending)
    # Then the reorg was logged and the outcome is the one on the canonical chain
    reorged = [e for e in logs if e["event"] == "tx.reorged"]
    assert len(reorged) == 1 and reorged[0]["block_hash"] == first_hash
    assert outcome is not None and outcome.status == "included" and outcome.reorgs == 1
    assert outcome.tx_hash == pending.entry.attempts[0].tx_hash  # the same signed tx, not a second one
    assert outcome.block_number == first_block + 1 and outcome.block_hash != first_hash
    canonical = devnet.rpc.call("eth_getBlockByNumber", [hex(first_block + 1), False])
    assert canonical["hash"] == outcome.block_hash and outcome.tx_hash in canonical["transactions"]
    assert usdc_balance(devnet, recipient) - before == 5 * USDC  # exactly once


# ------------------------------------------------------------------------------------ restarts
@pytest.mark.parametrize("node_state", ["still-in-pool", "lost-by-node"])
def test_restart_while_pending_neither_double_submits_nor_loses_it(
    devnet: Devnet, signer: Signer, tmp_path: Path, node_state: str
) -> None:
    recipient = devnet.manifest.accounts.traders[0]
    before = usdc_balance(devnet, recipient)
    nonce = chain_nonce(devnet, signer.address)
    store = JsonFilePendingStore(tmp_path / "pending.json")
    with manual_mining(devnet):
        # Given a transfer sent (and stored) by a sender that then stops before it is mined
        crashed = make_sender(devnet, signer, store)
        sent = crashed.submit(usdc_transfer(devnet, recipient, 1 * USDC))
        assert [(e.nonce, e.latest.tx_hash) for e in store.load()] == [(nonce, sent.tx_hash)]
        if node_state == "lost-by-node":
            devnet.rpc.call("anvil_dropTransaction", [sent.tx_hash])
            assert devnet.rpc.call("eth_getTransactionByHash", [sent.tx_hash]) is None
        del crashed
        # When a new sender starts on the same store and sends another transfer
        restarted = make_sender(devnet, signer, store)
        (recovered,) = restarted.recover()
        assert recovered.tx_hash == sent.tx_hash
        assert devnet.rpc.call("eth_getTransactionByHash", [sent.tx_hash]) is not None
        following = restarted.submit(usdc_transfer(devnet, recipient, 2 * USDC))
        mine(devnet)
        outcomes = [restarted.poll(recovered), restarted.poll(following)]
    # Then the stored tx is mined once under its original hash and the new one took the next nonce
    assert all(isinstance(o, TxOutcome) and o.status == "included" for o in outcomes)
    assert [o.nonce for o in outcomes if o] == [nonce, nonce + 1]
    assert block_tx_hashes(devnet, devnet.rpc.block_number()) == [sent.tx_hash, following.tx_hash]
    assert usdc_balance(devnet, recipient) - before == 3 * USDC
    assert chain_nonce(devnet, signer.address) == nonce + 2
    assert store.load() == []


class SendFailsRpc(JsonRpc):
    """The devnet's endpoint, but eth_sendRawTransaction times out (the process 'dies' mid-send)."""

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_sendRawTransaction":
            raise TransientError("eth_sendRawTransaction: timed out")
        return super().call(method, params)


def test_entry_is_stored_before_broadcast_and_recovered_after_a_failed_send(
    devnet: Devnet, signer: Signer, tmp_path: Path
) -> None:
    # Given a send that fails in transit (nothing reaches the node)
    store = JsonFilePendingStore(tmp_path / "pending.json")
    flaky = SendFailsRpc(devnet.rpc.url)
    nonce = chain_nonce(devnet, signer.address)
    try:
        with pytest.raises(TransientError):
            make_sender(devnet, signer, store, rpc=flaky, broadcast_attempts=2).submit(
                usdc_transfer(devnet, devnet.manifest.accounts.traders[0], 1 * USDC))
    finally:
        flaky.close()
    # Then the signed tx was already in the store, though the node never saw it
    (entry,) = store.load()
    assert entry.nonce == nonce
    assert devnet.rpc.call("eth_getTransactionByHash", [entry.latest.tx_hash]) is None
    # When a new sender starts, it re-broadcasts those bytes and settles them
    restarted = make_sender(devnet, signer, store)
    (recovered,) = restarted.recover()
    outcome = restarted.wait(recovered)
    assert outcome.status == "included" and outcome.tx_hash == entry.latest.tx_hash and outcome.nonce == nonce
    assert store.load() == []
