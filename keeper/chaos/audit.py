"""What a chaos run is judged by, read from the chain and the keeper's journal and log.

- every keeper transaction mined on chain is booked in the journal (included as included,
  reverted as reverted), and the gas the keeper account paid equals the gas booked;
- no open succeeded on a position that was not flat (duplicate open); opens refused on chain by
  PositionNotFlat are counted apart (the executor's guard held);
- blocks unhedged: blocks where the executor's perp and spot legs disagree beyond the residual
  tolerance (sampled at every block while the run goes, from the node's recent states);
- journal vs chain: open positions per market; the PnL identity when the run ends flat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keeper.chain.rpc import JsonRpc
from keeper.devnet.manifest import DevnetManifest
from keeper.devnet.txs import DevSender, codec
from keeper.venues.executor import EXECUTOR, fills_from_receipt

_SELECTORS = {EXECUTOR.fn(name).selector: name for name in ("openBasis", "resizeBasis", "closeBasis")}


def executor_value_x18(rpc: JsonRpc, manifest: DevnetManifest, executor: str) -> int:
    """USDC wallet + Vault collateral + Perp's owed realized and unrealized PnL, USD x18, exactly."""
    c, tx = manifest.contracts, DevSender(rpc)
    wallet = tx.read(c["USDC"], codec("MintableERC20"), "balanceOf", executor)
    collateral = tx.read(c["Vault"], codec("Vault"), "getBalance", executor)
    owed_realized, unrealized, pending_fee = tx.read(c["AccountBalance"], codec("AccountBalance"),
                                                     "getPnlAndPendingFee", executor)
    return (wallet + collateral) * 10**12 + owed_realized + unrealized + pending_fee


@dataclass
class HedgeSampler:
    """Reads the executor's legs at every block (anvil keeps the last 128 states)."""

    rpc: JsonRpc
    manifest: DevnetManifest
    executor: str
    spot_baseline_raw: dict[str, int]
    tolerance_bps: float = 50.0
    next_block: int = 0
    sampled: int = 0
    unhedged: list[tuple[int, str, int, int]] = field(default_factory=list)  # block, market, perp, spot delta

    def sample_to(self, head: int) -> None:
        c = self.manifest.contracts
        ab, erc20 = codec("AccountBalance"), codec("MintableERC20")
        for block in range(max(self.next_block, head - 120), head + 1):
            calls = []
            for m in self.manifest.markets:
                calls.append(("eth_call", [{"to": c["AccountBalance"], "data": "0x" + ab.encode(
                    "getTakerPositionSize", self.executor, m.base_token).hex()}, hex(block)]))
                calls.append(("eth_call", [{"to": m.spot_token, "data": "0x" + erc20.encode(
                    "balanceOf", self.executor).hex()}, hex(block)]))
            replies = self.rpc.batch(calls)
            for i, m in enumerate(self.manifest.markets):
                perp = int.from_bytes(bytes.fromhex(replies[2 * i][2:]), "big", signed=True)
                spot_delta = int(replies[2 * i + 1], 16) - self.spot_baseline_raw[m.name]
                residual = perp + spot_delta * 10 ** (18 - m.spot_token_decimals)
                limit = abs(perp) * self.tolerance_bps / 1e4 if perp else 10**12
                if abs(residual) > limit:
                    self.unhedged.append((block, m.name, perp, spot_delta))
            self.sampled += 1
        self.next_block = head + 1


@dataclass
class ChainAudit:
    keeper_txs: int = 0
    included_trades: int = 0
    reverted: int = 0
    not_booked: list[str] = field(default_factory=list)
    duplicate_opens: int = 0
    refused_opens_not_flat: int = 0
    gas_paid_wei: int = 0
    gas_booked_wei: int = 0


def audit_chain(rpc: JsonRpc, journal_path: Path, keeper: str, executor: str, from_block: int) -> ChainAudit:
    audit = ChainAudit()
    booked: dict[str, str] = {}
    for row in _transactions(journal_path):
        for h in [row["tx_hash"], *json.loads(row["attempt_hashes_json"])]:
            if h:
                booked[h.lower()] = row["status"]
        audit.gas_booked_wei += int(row["fee_paid_wei"])
    head = rpc.block_number()
    for number in range(from_block + 1, head + 1):
        block = rpc.call("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if tx["from"].lower() != keeper.lower():
                continue
            audit.keeper_txs += 1
            receipt = rpc.call("eth_getTransactionReceipt", [tx["hash"]])
            audit.gas_paid_wei += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
            ok = int(receipt["status"], 16) == 1
            function = _SELECTORS.get(bytes.fromhex(tx["input"][2:10]))
            if ok:
                audit.included_trades += 1
            else:
                audit.reverted += 1
            if booked.get(tx["hash"].lower()) != ("included" if ok else "reverted"):
                audit.not_booked.append(f"{tx['hash']} {function} {'included' if ok else 'reverted'} "
                                        f"(journal: {booked.get(tx['hash'].lower(), 'absent')})")
            if function == "openBasis" and ok:
                found = fills_from_receipt(receipt, executor)
                if found and found[2] != found[1].perp_base_x18:
                    audit.duplicate_opens += 1
            if function == "openBasis" and not ok and "PositionNotFlat" in _revert_name(rpc, tx, number):
                audit.refused_opens_not_flat += 1
    return audit


def _transactions(path: Path) -> list[Any]:
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM transactions WHERE tx_hash IS NOT NULL").fetchall()
    finally:
        db.close()


def _revert_name(rpc: JsonRpc, tx: dict[str, Any], number: int) -> str:
    try:
        trace = rpc.call("debug_traceTransaction", [tx["hash"], {"tracer": "callTracer"}])
        output = bytes.fromhex((trace.get("output") or "0x")[2:])
        return EXECUTOR.describe_revert(output)
    except Exception:  # noqa: BLE001 - a missing trace only loses the label
        return ""


def log_events(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(JSON events, other lines) of a keeper log."""
    events, other = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
                continue
            except ValueError:
                pass
        other.append(line)
    return events, other
