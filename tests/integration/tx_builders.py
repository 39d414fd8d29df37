"""Builders for the transaction-pipeline tests (test_tx_pipeline.py, test_tx_recovery.py): a
sender for the keeper's signer, USDC transfers, nonces, blocks, and node settings changed for one
test and restored after it (evm_revert restores state, not node settings)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keeper.chain.fees import FeePolicy
from keeper.chain.keys import Signer
from keeper.chain.pending import MemoryPendingStore, PendingTxStore
from keeper.chain.rpc import JsonRpc
from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SenderConfig, TxRequest
from keeper.devnet.txs import codec

from .conftest import Devnet

GWEI = 10**9
USDC = 10**6


def make_sender(devnet: Devnet, signer: Signer, store: PendingTxStore | None = None, rpc: JsonRpc | None = None,
                cap_wei: int = 1_000 * GWEI, **overrides: Any) -> TxSender:
    config = SenderConfig(fee_policy=FeePolicy(max_fee_per_gas_cap_wei=cap_wei), poll_interval_s=0.005,
                          max_wait_s=20.0, **overrides)
    return TxSender(rpc or devnet.rpc, signer, config, store or MemoryPendingStore(), chain_id=devnet.manifest.chain_id)


def usdc_transfer(devnet: Devnet, to: str, amount_raw: int) -> TxRequest:
    erc20 = codec("MintableERC20")
    return TxRequest(devnet.contract("USDC"), erc20.encode("transfer", to, amount_raw), label="USDC.transfer",
                     errors_abi=erc20)


def usdc_balance(devnet: Devnet, account: str) -> int:
    return int(devnet.tx.read(devnet.contract("USDC"), codec("MintableERC20"), "balanceOf", account))


def chain_nonce(devnet: Devnet, account: str, tag: str = "latest") -> int:
    return int(devnet.rpc.call("eth_getTransactionCount", [account, tag]), 16)


def mine(devnet: Devnet, blocks: int = 1) -> None:
    for _ in range(blocks):
        devnet.rpc.call("evm_mine", [])


def block_tx_hashes(devnet: Devnet, number: int) -> list[str]:
    return list(devnet.rpc.call("eth_getBlockByNumber", [hex(number), False])["transactions"])


@contextmanager
def manual_mining(devnet: Devnet) -> Iterator[None]:
    devnet.rpc.call("evm_setAutomine", [False])
    try:
        yield
    finally:
        devnet.rpc.call("anvil_dropAllTransactions", [])
        devnet.rpc.call("evm_setAutomine", [True])


@contextmanager
def base_fee_restored(devnet: Devnet) -> Iterator[None]:
    """anvil_setNextBlockBaseFeePerGas outlives evm_revert: put the next block's base fee back."""
    original = devnet.rpc.call("eth_feeHistory", ["0x1", "latest", []])["baseFeePerGas"][-1]
    try:
        yield
    finally:
        devnet.rpc.call("anvil_setNextBlockBaseFeePerGas", [original])


def wait_for_receipt(devnet: Devnet, tx_hash: str) -> dict[str, Any]:
    """anvil's automine answers eth_sendRawTransaction before the receipt is queryable."""
    deadline = time.monotonic() + 5
    while (receipt := devnet.rpc.call("eth_getTransactionReceipt", [tx_hash])) is None:
        assert time.monotonic() < deadline, f"no receipt for {tx_hash}"
        time.sleep(0.002)
    return dict(receipt)


@contextmanager
def block_gas_limit(devnet: Devnet, gas: int) -> Iterator[None]:
    original = devnet.rpc.call("eth_getBlockByNumber", ["latest", False])["gasLimit"]
    devnet.rpc.call("evm_setBlockGasLimit", [hex(gas)])
    try:
        yield
    finally:
        devnet.rpc.call("evm_setBlockGasLimit", [original])
