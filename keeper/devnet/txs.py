"""Sending transactions from anvil's unlocked dev accounts (devnet set-up and market activity only;
the keeper itself signs its own transactions, see keeper/chain)."""

from __future__ import annotations

import time
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address

from keeper.artifacts import abi_codec, load_artifact
from keeper.chain.abi import ContractAbi, describe_revert
from keeper.chain.rpc import JsonRpc
from keeper.errors import RpcError, TransientError, TxRevertedError
from keeper.logs import get_logger

log = get_logger("keeper.devnet")

# Every dev transaction carries an explicit gas cap so anvil does not estimate first (half the
# round trips); a revert is then mined with status 0 and re-simulated for its reason.
DEV_TX_GAS = 25_000_000
RECEIPT_TIMEOUT_S = 30.0
# Queued (one-block) transactions share a block: a realistic cap (a Perp trade is 0.8-3M gas, more with positions in many markets).
QUEUED_TX_GAS = 8_000_000


def create_address(sender: str, nonce: int) -> str:
    """The address CREATE gives a contract deployed by `sender` at `nonce`."""
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


class DevSender:
    """Sends transactions from unlocked anvil accounts and checks each one succeeded."""

    def __init__(self, rpc: JsonRpc) -> None:
        self.rpc = rpc
        self.tx_count = 0
        self._sync_supported = True
        self._queued: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = []
        self.gas_used = 0
        self.tolerated: list[TxRevertedError] = []  # reverts a caller said it expects (see submit)

    def nonce(self, account: str) -> int:
        return int(self.rpc.call("eth_getTransactionCount", [account, "pending"]), 16)

    def send(self, sender: str, to: str | None, data: bytes = b"", value_wei: int = 0, what: str = "") -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(DEV_TX_GAS)}
        if to:
            tx["to"] = to
        if value_wei:
            tx["value"] = hex(value_wei)
        try:
            receipt = self._send_and_wait(tx)
        except RpcError as exc:
            raise TxRevertedError(what or "transaction", exc.rpc_message) from exc
        tx_hash = receipt["transactionHash"]
        self.tx_count += 1
        self.gas_used += int(receipt["gasUsed"], 16)
        if int(receipt["status"], 16) != 1:
            raise TxRevertedError(what or "transaction", self._revert_reason(tx, receipt), tx_hash)
        return receipt

    def submit(self, sender: str, to: str, data: bytes, value_wei: int = 0, what: str = "",
               tolerate: tuple[str, ...] = ()) -> str:
        """Queue a transaction without waiting (automine off); settle() checks it once mined. A
        revert whose reason (the mined transaction's own, from its trace) contains one of `tolerate`
        is kept in `tolerated` and logged (`devnet.tx_reverted`, a warning) instead of raised: a
        best-effort trade of the driver's. A node that cannot trace tolerates nothing."""
        tx: dict[str, Any] = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(QUEUED_TX_GAS)}
        if value_wei:
            tx["value"] = hex(value_wei)
        try:
            tx_hash = self.rpc.call("eth_sendTransaction", [tx])
        except RpcError as exc:
            raise TxRevertedError(what or "transaction", exc.rpc_message) from exc
        self._queued.append((tx_hash, tx, what, tolerate))
        return tx_hash

    def settle(self) -> None:
        """Check every queued transaction was mined successfully (after an evm_mine)."""
        queued, self._queued = self._queued, []
        receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h, *_ in queued]) if queued else []
        for (tx_hash, tx, what, tolerate), receipt in zip(queued, receipts):
            if receipt is None:
                raise TransientError(f"{what}: {tx_hash} was not mined")
            self.tx_count += 1
            self.gas_used += int(receipt["gasUsed"], 16)
            if int(receipt["status"], 16) != 1:
                # a revert is tolerated on the reason the mined transaction itself gave (its trace):
                # a replay at the parent block runs before the step's other trades of that block
                own = self._mined_revert_reason(tx_hash) if tolerate else None
                reason = own if own is not None else self._revert_reason(tx, receipt)
                self.tolerate(TxRevertedError(what or "transaction", reason, tx_hash), tolerate if own is not None else ())

    def tolerate(self, exc: TxRevertedError, reasons: tuple[str, ...]) -> None:
        """Keep and log a revert whose reason is one of `reasons`; raise any other."""
        if not any(r in exc.reason for r in reasons):
            raise exc
        self.tolerated.append(exc)
        log.warning("devnet.tx_reverted", what=exc.what, reason=exc.reason, tx=exc.tx_hash, tolerated=True)

    def _send_and_wait(self, tx: dict[str, Any]) -> dict[str, Any]:
        """anvil's eth_sendTransactionSync returns the receipt in one round trip; other nodes
        get eth_sendTransaction and a receipt poll."""
        if self._sync_supported:
            try:
                return self.rpc.call("eth_sendTransactionSync", [tx])
            except RpcError as exc:
                if exc.code != -32601:  # method not found
                    raise
                self._sync_supported = False
        tx_hash = self.rpc.call("eth_sendTransaction", [tx])
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        while (receipt := self.rpc.call("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise TransientError(f"no receipt for {tx_hash} within {RECEIPT_TIMEOUT_S} s")
            time.sleep(0.005)
        return receipt

    def _mined_revert_reason(self, tx_hash: str) -> str | None:
        """The revert reason of the mined transaction itself, from anvil's call tracer (None when the
        node cannot trace it)."""
        try:
            trace = self.rpc.call("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        except RpcError:
            return None
        output = trace.get("output") or "0x"
        return describe_revert(bytes.fromhex(output[2:])) if len(output) > 2 else str(trace.get("error") or "reverted")

    def _revert_reason(self, tx: dict[str, Any], receipt: dict[str, Any]) -> str:
        parent = hex(int(receipt["blockNumber"], 16) - 1)
        try:
            self.rpc.call("eth_call", [tx, parent])
        except RpcError as exc:
            data = exc.data if isinstance(exc.data, str) and exc.data.startswith("0x") else ""
            return describe_revert(bytes.fromhex(data[2:])) if len(data) > 2 else exc.rpc_message
        return "reverted (simulation at the parent block succeeded: state-dependent revert)"

    def call_fn(self, sender: str, to: str, codec: ContractAbi, fn: str, *args: Any, value_wei: int = 0) -> dict[str, Any]:
        return self.send(sender, to, codec.encode(fn, *args), value_wei, what=f"{codec.name}.{fn}")

    def deploy(self, sender: str, name: str, *args: Any) -> str:
        artifact = load_artifact(name)
        receipt = self.send(sender, None, artifact.bytecode + artifact.codec.encode_constructor(*args), what=f"deploy {name}")
        return to_checksum_address(receipt["contractAddress"])

    def read(self, to: str, codec: ContractAbi, fn: str, *args: Any) -> Any:
        out = codec.decode(fn, self.rpc.eth_call(to, codec.encode(fn, *args)), len(args))
        return out[0] if len(out) == 1 else out


def codec(name: str) -> ContractAbi:
    return abi_codec(name)
