"""`keeper simulate --replay`: the origin's own blocks applied again on an anvil fork, with the
keeper trading between them (the faithful backtest: its trades meet the real flow).

- The fork starts at --from-block A (`anvil --fork-block-number A --order fifo`, so that a block's
  transactions are mined in the order they are sent). For each origin block b in (A, B]: its
  transactions are sent again in their original order, from their original senders (anvil
  impersonation), with their gas limits, fees, values and calldata; the block is mined at the
  origin's timestamp, base fee, coinbase and gas limit. Deposit (type 0x7e) transactions cannot be
  sent by an account, nor blob transactions (type 3) without their blobs: they are listed and
  counted, never dropped silently; so is a transaction the fork refuses.
- Each replayed transaction's receipt is compared with the origin's: its status, and its logs
  (address, topics, data). With the keeper on, a difference means the keeper's trades changed
  what the origin's flow did; it is counted and listed.
- With the keeper on, it runs between blocks: after each replayed block it ticks once, live on
  the fork (throwaway key, executor deployed and funded on the fork, as `keeper simulate` does),
  and its transactions are mined in their own blocks before the next origin block.
- `--check` (keeper off): after each replayed block the keeper's collector reads the same
  markets on the origin at b and on the fork, and the snapshots must be equal (every price, pool,
  tick and oracle value, the block timestamp and base fee), as must every receipt.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from keeper.addressbook import ZERO_ADDRESS
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.config import KeeperConfig
from keeper.devnet.node import AnvilNode
from keeper.errors import ConfigError, FatalError, KeeperError, RpcError
from keeper.history.served import state_served
from keeper.logs import get_logger, redacted_url
from keeper.types import MarketSnapshot

log = get_logger("keeper.replay")
# Transactions an account cannot send again: OP-stack deposits (no signature, sent by the protocol)
# and blob transactions (their blobs are not in the block).
UNREPLAYABLE_TX_TYPES = {"0x7e": "system (deposit) transaction", "0x3": "blob transaction (its blobs are not in the block)"}
_TX_FIELDS = ("from", "to", "gas", "value", "input", "nonce", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice",
              "accessList", "authorizationList", "type")


@dataclass
class BlockCheck:
    origin_block: int
    fork_block: int
    transactions: int
    snapshot_equal: bool | None = None  # --check only
    difference: str | None = None


@dataclass
class ReplayReport:
    from_block: int
    to_block: int
    check: bool
    blocks: list[BlockCheck] = field(default_factory=list)
    replayed_txs: int = 0
    unreplayable: list[dict[str, Any]] = field(default_factory=list)
    reverted: list[dict[str, Any]] = field(default_factory=list)  # status differs from the origin's
    logs_changed: list[dict[str, Any]] = field(default_factory=list)
    shifted_timestamps: int = 0
    keeper: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def blocks_equal(self) -> int:
        return sum(1 for b in self.blocks if b.snapshot_equal)

    def as_json(self) -> dict[str, Any]:
        return {"from_block": self.from_block, "to_block": self.to_block, "check": self.check,
                "blocks_replayed": len(self.blocks), "blocks_equal": self.blocks_equal if self.check else None,
                "replayed_txs": self.replayed_txs, "unreplayable_count": len(self.unreplayable),
                "unreplayable": self.unreplayable, "reverted_count": len(self.reverted), "reverted": self.reverted,
                "logs_changed_count": len(self.logs_changed), "logs_changed": self.logs_changed,
                "shifted_timestamps": self.shifted_timestamps, "keeper": self.keeper, "wall_s": round(self.wall_s, 2),
                "blocks": [b.__dict__ for b in self.blocks]}


def _logs(receipt: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    return [(e["address"].lower(), tuple(t.lower() for t in e["topics"]), e["data"].lower()) for e in receipt["logs"]]


def _resend(tx: dict[str, Any]) -> dict[str, Any]:
    sent = {k: tx[k] for k in _TX_FIELDS if k in tx and tx[k] is not None}
    sent["data"] = sent.pop("input", "0x")
    if sent.get("type") in ("0x0", "0x1"):
        sent.pop("maxFeePerGas", None)
        sent.pop("maxPriorityFeePerGas", None)
    else:
        sent.pop("gasPrice", None)
    return sent


class BlockReplayer:
    """Applies origin blocks to the fork, in order, and compares the receipts."""

    def __init__(self, origin: JsonRpc, fork: JsonRpc, report: ReplayReport) -> None:
        self.origin = origin
        self.fork = fork
        self.report = report
        fork.call("anvil_autoImpersonateAccount", [True])

    def replay(self, number: int) -> BlockCheck:
        block = self.origin.call("eth_getBlockByNumber", [hex(number), True])
        if not block:
            raise FatalError(f"--to-block: the origin has no block {number}")
        txs = block["transactions"]
        receipts = self.origin.batch([("eth_getTransactionReceipt", [t["hash"]]) for t in txs]) if txs else []
        fork = self.fork
        fork.call("evm_setAutomine", [False])
        sent: list[tuple[dict[str, Any], dict[str, Any], str]] = []
        try:
            parent_ts = int(fork.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            timestamp = int(block["timestamp"], 16)
            if timestamp < parent_ts:  # the keeper's own blocks used the seconds up to it (equal: anvil takes it)
                timestamp = parent_ts + 1
                self.report.shifted_timestamps += 1
            fork.call("evm_setNextBlockTimestamp", [timestamp])
            if block.get("baseFeePerGas"):
                fork.call("anvil_setNextBlockBaseFeePerGas", [block["baseFeePerGas"]])
            fork.call("anvil_setCoinbase", [block["miner"]])
            fork.call("evm_setBlockGasLimit", [block["gasLimit"]])
            for tx, receipt in zip(txs, receipts):
                if tx.get("type") in UNREPLAYABLE_TX_TYPES:
                    self.report.unreplayable.append({"block": number, "hash": tx["hash"],
                                                     "reason": f"{UNREPLAYABLE_TX_TYPES[tx['type']]}, type {tx['type']}"})
                    continue
                try:
                    sent.append((tx, receipt, fork.call("eth_sendTransaction", [_resend(tx)])))
                except RpcError as exc:
                    self.report.unreplayable.append({"block": number, "hash": tx["hash"], "reason": exc.rpc_message[:300]})
            fork.call("evm_mine", [])
        finally:
            fork.call("evm_setAutomine", [True])
        fork_receipts = fork.batch([("eth_getTransactionReceipt", [h]) for _, _, h in sent]) if sent else []
        mined = int(fork.call("eth_blockNumber"), 16)
        for (tx, origin_receipt, _), receipt in zip(sent, fork_receipts):
            self.report.replayed_txs += 1
            entry = {"origin_block": number, "fork_block": mined, "hash": tx["hash"]}
            if receipt is None or receipt["status"] != origin_receipt["status"]:
                self.report.reverted.append(entry | {"origin_status": origin_receipt["status"],
                                                     "fork_status": None if receipt is None else receipt["status"]})
            elif _logs(receipt) != _logs(origin_receipt):
                self.report.logs_changed.append(entry)
        return BlockCheck(number, mined, len(txs))


def _first_difference(a: MarketSnapshot, b: MarketSnapshot) -> str | None:
    if (a.block_timestamp, a.base_fee_wei) != (b.block_timestamp, b.base_fee_wei):
        return f"block timestamp / base fee {a.block_timestamp}/{a.base_fee_wei} vs {b.block_timestamp}/{b.base_fee_wei}"
    for name, view in a.markets.items():
        other = b.markets.get(name)
        for part in ("perp", "spot_v2", "spot_v3", "oracle"):
            if other is None or getattr(view, part) != getattr(other, part):
                return f"{name}.{part}"
    return None if a.account == b.account else "account"


def run_replay(settings: KeeperConfig, *, fork_url: str, from_block: int, to_block: int, check: bool, out_dir: Path,
               sources_for: Callable[[JsonRpc], Sources],
               progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    """Replay origin blocks (from_block, to_block] on a fork at from_block; see the module notes."""
    started = time.monotonic()
    origin = JsonRpc(fork_url, timeout_s=30.0)
    try:
        head = origin.block_number()
    except KeeperError as exc:
        raise ConfigError(f"--fork-url {redacted_url(fork_url)}: {exc}") from exc
    if not 0 <= from_block < to_block <= head:
        raise ConfigError(f"--from-block {from_block} / --to-block {to_block}: need from < to <= the origin's head {head}")
    if not state_served(origin, ZERO_ADDRESS)(from_block):  # anvil would fail to fork there, in its own words
        raise ConfigError(f"--from-block {from_block}: the node at {redacted_url(fork_url)} cannot serve the state of "
                          f"block {from_block}: an archive node keeps every block (or a later --from-block)")
    node = AnvilNode(fork_url=fork_url, fork_block=from_block, startup_timeout_s=60.0, extra_args=["--order", "fifo"])
    report = ReplayReport(from_block, to_block, check)
    runtime = None
    work = Path(tempfile.mkdtemp(prefix=".replay-", dir=out_dir if out_dir.exists() else None))
    with ExitStack() as logs:  # the keeper's log (not with --check): closed last, an error logged in it
        try:
            try:
                fork = node.start()
            except KeeperError as exc:
                raise ConfigError(f"--fork-url {redacted_url(fork_url)}: cannot fork it at block {from_block}: {exc}") from exc
            out_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("replay.json", "keeper.log"):  # an earlier run's: never beside this run's
                (out_dir / stale).unlink(missing_ok=True)
            from keeper.simulate.command import _logs_to, logged_stop  # the keeper's log as `keeper simulate`'s

            if not check:  # the keeper's log beside replay.json, as `keeper simulate` leaves it
                logs.enter_context(_logs_to(out_dir / "keeper.log", settings.monitoring.log_level))
            replayer = BlockReplayer(origin, fork, report)
            trades: list[Any] = []
            if check:
                sources = sources_for(origin)
                on_origin, on_fork = SnapshotCollector(origin, sources), SnapshotCollector(fork, sources)
                on_origin.prepare()
                on_fork.prepare()
            else:
                runtime = _keeper_on_fork(settings, fork, work)
            with nullcontext() if runtime is None else logged_stop(lambda: runtime.ticks, to_block - from_block,
                                                                   end="replay_end"):
                for n, number in enumerate(range(from_block + 1, to_block + 1), 1):
                    result = replayer.replay(number)
                    if check:
                        difference = _first_difference(on_origin.fetch_snapshot(number),
                                                       on_fork.fetch_snapshot(result.fork_block))
                        result.snapshot_equal, result.difference = difference is None, difference
                    else:
                        assert runtime is not None
                        trades += _tick(runtime)
                    report.blocks.append(result)
                    if progress:
                        progress(n, to_block - from_block)
                if runtime is not None:
                    report.keeper = _wind_down(runtime, fork, trades)
        finally:
            if runtime is not None:
                runtime.close()
            node.stop()
            origin.close()
            shutil.rmtree(work, ignore_errors=True)
    report.wall_s = time.monotonic() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "replay.json").write_text(json.dumps(report.as_json(), indent=1) + "\n")
    return report


def _keeper_on_fork(settings: KeeperConfig, fork: JsonRpc, work: Path) -> Any:
    """The real keeper, live on the fork, as `keeper simulate` sets it up."""
    from keeper.launch import build_runtime
    from keeper.simulate.command import _key_in_environment, prepare_world, simulation_settings
    from keeper.simulate.fork import fund_gas, provision_fork_executor

    world = prepare_world(fork, settings, work)
    key = Account.create()
    fund_gas(fork, key.address)
    executor = provision_fork_executor(fork, world.book, key.address)
    with _key_in_environment(bytes(key.key).hex()):
        return build_runtime(simulation_settings(settings, world, executor.address, work), dry_run=False)


def _tick(runtime: Any) -> list[Any]:
    """One keeper tick, counted as the block loop counts them (`keeper.stopping`'s ticks); its
    included trades."""
    tick = runtime.engine.tick()
    if tick is not None:
        runtime.ticks += 1
    return [o for o in (tick.outcomes if tick else ()) if o.status == "included"]


def _wind_down(runtime: Any, fork: JsonRpc, trades: list[Any], ticks: int = 4) -> dict[str, Any]:
    """Close what the keeper holds (kill switch: unwind) after the last block, then its books."""
    runtime.pull_kill_switch("keeper simulate --replay: wind-down")
    for _ in range(ticks):
        if not runtime.journal.open_positions():
            break
        fork.call("evm_mine", [])  # a new block for the keeper to tick on
        trades += _tick(runtime)
    pnl = runtime.journal.pnl_summary().total
    return {"pnl_usd": pnl.total_x18 / 10**18, "pnl": pnl.to_json_dict(), "open_after": sorted(runtime.journal.open_positions()),
            "trades": [{"block": o.block_number, "market": o.plan.intent.market, "kind": o.plan.intent.kind,
                        "direction": o.plan.intent.direction.value, "tx_hash": o.tx_hash} for o in trades]}
