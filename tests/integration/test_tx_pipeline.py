"""The transaction pipeline against the devnet: send and confirm, never send what reverts in
simulation, replace a stuck transaction, the L1 data fee call. Reorgs and restarts:
test_tx_recovery.py.

The keeper is anvil's public dev account #1 (the `signer` fixture in conftest.py). Tests that switch
automine off or change the block gas limit restore them (and empty the pool) in a finally block:
the fixture's evm_revert restores state, not node settings.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from keeper.chain.fees import GAS_PRICE_ORACLE, build_get_l1_fee_calldata, fetch_l1_data_fee_wei
from keeper.chain.keys import Eip1559Tx, Signer
from keeper.chain.pending import MemoryPendingStore
from keeper.chain.tx_types import SimulationReverted, TxRequest
from keeper.devnet.txs import codec
from keeper.errors import SkipOpportunity

from .conftest import Devnet
from .tx_builders import (GWEI, USDC, base_fee_restored, block_gas_limit, chain_nonce, make_sender, manual_mining,
                          mine, usdc_balance, usdc_transfer)


# ------------------------------------------------------------------------------------ send
def test_usdc_transfer_is_sent_confirmed_and_logged_with_its_hash(devnet: Devnet, signer: Signer) -> None:
    # Given the keeper's signer and a recipient
    recipient = devnet.manifest.accounts.traders[0]
    before = usdc_balance(devnet, recipient)
    nonce_before = chain_nonce(devnet, signer.address)
    sender = make_sender(devnet, signer)
    # When it sends a USDC transfer
    with capture_logs() as logs:
        outcome = sender.send(usdc_transfer(devnet, recipient, 1_234 * USDC))
    # Then the transfer happened, from the keeper, at its next nonce, and the outcome is exact
    assert outcome.status == "included"
    assert usdc_balance(devnet, recipient) - before == 1_234 * USDC
    assert outcome.nonce == nonce_before and chain_nonce(devnet, signer.address) == nonce_before + 1
    receipt = devnet.rpc.call("eth_getTransactionReceipt", [outcome.tx_hash])
    assert receipt["from"].lower() == signer.address.lower()
    assert outcome.block_number == int(receipt["blockNumber"], 16)
    assert outcome.gas_used == int(receipt["gasUsed"], 16) > 21_000
    assert outcome.fee_paid_wei == outcome.gas_used * outcome.effective_gas_price_wei > 0
    assert outcome.attempt_hashes == (outcome.tx_hash,) and outcome.reorgs == 0
    # And every step was logged, each after signing with the tx hash
    events = [entry["event"] for entry in logs]
    for step in ("tx.simulated", "tx.signed", "tx.sent", "tx.mined", "tx.included"):
        assert step in events
    assert events.index("tx.simulated") < events.index("tx.sent") < events.index("tx.included")
    assert all(entry["tx_hash"] == outcome.tx_hash for entry in logs if entry["event"] != "tx.simulated")
    assert sender.tracked() == []


def test_transaction_whose_simulation_reverts_is_never_sent(devnet: Devnet, signer: Signer) -> None:
    # Given a transfer of more USDC than the keeper holds
    balance = usdc_balance(devnet, signer.address)
    nonce_before = chain_nonce(devnet, signer.address, "pending")
    store = MemoryPendingStore()
    sender = make_sender(devnet, signer, store)
    sends_before = devnet.rpc.stats.by_method.get("eth_sendRawTransaction", 0)
    # When it is sent, the simulation reverts with the token's decoded custom error
    with pytest.raises(SimulationReverted, match=r"InsufficientBalance\(") as raised:
        sender.send(usdc_transfer(devnet, devnet.manifest.accounts.traders[0], balance + 1))
    assert isinstance(raised.value, SkipOpportunity)
    assert str(balance + 1) in raised.value.reason
    # Then nothing was broadcast, stored or tracked, and the nonce did not move
    assert devnet.rpc.stats.by_method.get("eth_sendRawTransaction", 0) == sends_before
    assert chain_nonce(devnet, signer.address, "pending") == nonce_before
    assert store.load() == [] and sender.tracked() == []


def test_transaction_that_reverts_when_mined_is_reported_reverted(devnet: Devnet, signer: Signer) -> None:
    # Given an allowance to pull 10 USDC from another account, and a pull that simulates fine
    owner, usdc, erc20 = devnet.manifest.accounts.traders[0], devnet.contract("USDC"), codec("MintableERC20")
    devnet.tx.call_fn(owner, usdc, erc20, "approve", signer.address, 10 * USDC)
    sender = make_sender(devnet, signer)
    with manual_mining(devnet):
        pending = sender.submit(TxRequest(usdc, erc20.encode("transferFrom", owner, signer.address, 10 * USDC),
                                          label="USDC.transferFrom", errors_abi=erc20))
        # When the owner revokes it with a higher tip (ordered first in the same block)
        revoke = erc20.encode("approve", signer.address, 0)
        devnet.rpc.call("eth_sendTransaction", [{"from": owner, "to": usdc, "data": "0x" + revoke.hex(),
                                                 "gas": hex(100_000), "maxFeePerGas": hex(200 * GWEI),
                                                 "maxPriorityFeePerGas": hex(100 * GWEI)}])
        mine(devnet)
        outcome = sender.poll(pending)
    # Then ours is reported reverted with the decoded reason; it used its nonce and paid gas
    assert outcome is not None and outcome.status == "reverted"
    assert outcome.revert_reason is not None and outcome.revert_reason.startswith("InsufficientAllowance(")
    assert outcome.gas_used > 0 and outcome.fee_paid_wei == outcome.gas_used * outcome.effective_gas_price_wei
    assert chain_nonce(devnet, signer.address) == outcome.nonce + 1
    assert sender.tracked() == []


# ------------------------------------------------------------------------------------ stuck
def test_stuck_transaction_is_replaced_with_bumped_fees_after_k_blocks(devnet: Devnet, signer: Signer) -> None:
    # Given a transfer sent under manual mining, and blocks too small to hold it (it stays in the
    # pool, never included; anvil would evict a tx priced under the base fee instead, see below)
    recipient = devnet.manifest.accounts.traders[2]
    before = usdc_balance(devnet, recipient)
    nonce = chain_nonce(devnet, signer.address)
    sender = make_sender(devnet, signer, replace_after_blocks=3)
    with manual_mining(devnet):
        pending = sender.submit(usdc_transfer(devnet, recipient, 7 * USDC))
        stuck = pending.entry.latest
        with block_gas_limit(devnet, 30_000):
            # When two blocks pass without it, it is left alone
            for _ in range(2):
                mine(devnet)
                assert sender.poll(pending) is None
            assert len(pending.entry.attempts) == 1
            mine(devnet)
        # (anvil refuses any tx with more gas than the block limit, so the limit is back before
        # the replacement is sent; no block is mined in between)
        # And when the third has passed, it is replaced: same nonce, both fees bumped >= 12.5%
        with capture_logs() as logs:
            assert sender.poll(pending) is None
        replacement = pending.entry.latest
        assert len(pending.entry.attempts) == 2 and replacement.tx_hash != stuck.tx_hash
        assert replacement.max_fee_per_gas_wei * 8 >= stuck.max_fee_per_gas_wei * 9
        assert replacement.max_priority_fee_per_gas_wei * 8 >= stuck.max_priority_fee_per_gas_wei * 9
        replaced = [e for e in logs if e["event"] == "tx.replaced"]
        assert [(e["tx_hash"], e["replaces"]) for e in replaced] == [(replacement.tx_hash, stuck.tx_hash)]
        # Then, with room in the next block, the replacement (and only it) is included
        mine(devnet)
        outcome = sender.poll(pending)
    assert outcome is not None and outcome.status == "included"
    assert outcome.tx_hash == replacement.tx_hash
    assert outcome.attempt_hashes == (stuck.tx_hash, replacement.tx_hash)
    assert outcome.effective_gas_price_wei <= replacement.max_fee_per_gas_wei
    assert devnet.rpc.call("eth_getTransactionReceipt", [stuck.tx_hash]) is None
    assert chain_nonce(devnet, signer.address) == nonce + 1
    assert usdc_balance(devnet, recipient) - before == 7 * USDC


def test_transaction_priced_out_by_the_base_fee_is_repriced_to_the_market(devnet: Devnet, signer: Signer) -> None:
    # Given a transfer sent under manual mining with the devnet's low fees
    sender = make_sender(devnet, signer, replace_after_blocks=3)
    with base_fee_restored(devnet), manual_mining(devnet):
        pending = sender.submit(usdc_transfer(devnet, devnet.manifest.accounts.traders[2], 3 * USDC))
        low = pending.entry.latest
        # When the base fee jumps tenfold above its max fee (anvil then evicts it from the pool)
        devnet.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(10 * low.max_fee_per_gas_wei)])
        mine(devnet)
        assert devnet.rpc.call("eth_getTransactionByHash", [low.tx_hash]) is None
        # Then the next poll re-broadcasts it, is refused as underpriced, and replaces it at once
        assert sender.poll(pending) is None
        repriced = pending.entry.latest
        pending_base_wei = int(devnet.rpc.call("eth_feeHistory", ["0x1", "latest", []])["baseFeePerGas"][-1], 16)
        assert repriced.max_fee_per_gas_wei >= pending_base_wei + repriced.max_priority_fee_per_gas_wei
        assert repriced.max_priority_fee_per_gas_wei * 8 >= low.max_priority_fee_per_gas_wei * 9
        mine(devnet)
        outcome = sender.poll(pending)
    assert outcome is not None and outcome.status == "included" and outcome.tx_hash == repriced.tx_hash


def test_transaction_priced_out_beyond_the_cap_is_dropped_and_frees_its_nonce(devnet: Devnet, signer: Signer) -> None:
    # Given a cap of 3 gwei, and a transfer priced under it
    store = MemoryPendingStore()
    sender = make_sender(devnet, signer, store, cap_wei=3 * GWEI)
    nonce = chain_nonce(devnet, signer.address)
    with base_fee_restored(devnet), manual_mining(devnet):
        pending = sender.submit(usdc_transfer(devnet, devnet.manifest.accounts.traders[2], 3 * USDC))
        # When the base fee jumps to 10 gwei: evicted, and a replacement would pass the cap
        devnet.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(10 * GWEI)])
        mine(devnet)
        with capture_logs() as logs:
            # the node does not hold it: re-broadcast and replacement refused, but it is dropped
            # only once the node has not held it for dropped_after_blocks (3) blocks
            for _ in range(3):
                assert sender.poll(pending) is None and store.load() != []
                mine(devnet)  # the base fee decays 12.5% a block: 8.75, 7.66, 6.70 gwei, still above the cap
            outcome = sender.poll(pending)
    # Then it is reported dropped, nothing is stored, and the next transaction reuses the nonce
    assert outcome is not None and outcome.status == "dropped" and outcome.block_number is None
    assert [e["missing_blocks"] for e in logs if e["event"] == "tx.rebroadcast"] == [0, 1, 2, 3]
    assert "tx.replace_refused" in [e["event"] for e in logs]
    assert store.load() == [] and chain_nonce(devnet, signer.address, "pending") == nonce
    assert sender.nonces.peek() == nonce


def test_nonce_taken_by_another_transaction_is_reported_replaced(devnet: Devnet, signer: Signer) -> None:
    # Given our transfer waiting in the pool
    recipient = devnet.manifest.accounts.traders[2]
    before = usdc_balance(devnet, recipient)
    store = MemoryPendingStore()
    sender = make_sender(devnet, signer, store)
    with manual_mining(devnet):
        pending = sender.submit(usdc_transfer(devnet, recipient, 4 * USDC))
        ours = pending.entry.latest
        # When another process with the same key sends something else at that nonce, paying more
        other = signer.sign(Eip1559Tx(
            chain_id=devnet.manifest.chain_id, nonce=pending.nonce, to=signer.address, data=b"", value_wei=0,
            gas_limit=21_000, max_fee_per_gas_wei=10 * ours.max_fee_per_gas_wei,
            max_priority_fee_per_gas_wei=10 * ours.max_priority_fee_per_gas_wei))
        devnet.rpc.call("eth_sendRawTransaction", ["0x" + other.raw_tx.hex()])
        mine(devnet)
        assert sender.poll(pending) is None  # nonce used, no receipt of ours: confirmed one block later
        mine(devnet)
        outcome = sender.poll(pending)
    # Then ours is reported replaced, nothing of it was mined, and the next nonce follows the chain
    assert outcome is not None and outcome.status == "replaced" and outcome.block_number is None
    assert outcome.attempt_hashes == (ours.tx_hash,)
    assert devnet.rpc.call("eth_getTransactionReceipt", [other.tx_hash])["status"] == "0x1"
    assert usdc_balance(devnet, recipient) == before
    assert store.load() == [] and sender.nonces.peek() == pending.nonce + 1


# ------------------------------------------------------------------------------------ L1 data fee
def test_l1_data_fee_is_zero_without_the_oracle_and_read_from_it_when_present(devnet: Devnet, signer: Signer) -> None:
    signed = signer.sign(Eip1559Tx(
        chain_id=devnet.manifest.chain_id, nonce=0, to=devnet.contract("USDC"), data=b"\x00" * 68,
        value_wei=0, gas_limit=60_000, max_fee_per_gas_wei=GWEI, max_priority_fee_per_gas_wei=GWEI))
    # Given our devnet, which has no GasPriceOracle predeploy: no L1 fee
    assert devnet.rpc.get_code(GAS_PRICE_ORACLE) == b""
    assert fetch_l1_data_fee_wei(devnet.rpc, signed.raw_tx) == 0
    # When a stand-in oracle sits there (runtime code: return 16 * calldatasize), it is called
    # with getL1Fee(bytes) of the signed tx and its answer returned
    # CALLDATASIZE PUSH1 16 MUL PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    devnet.rpc.call("anvil_setCode", [GAS_PRICE_ORACLE, "0x3660100260005260206000f3"])
    assert fetch_l1_data_fee_wei(devnet.rpc, signed.raw_tx) == 16 * len(build_get_l1_fee_calldata(signed.raw_tx))
