"""Transactions in flight, persisted so that a restart neither double-submits nor loses one.

One entry per nonce, holding everything needed to re-broadcast (the raw signed bytes of every
attempt, oldest first) and to re-sign a fee-bumped replacement (the call and its gas limit).
The sender writes an entry BEFORE each broadcast and removes it once the nonce is settled
(included, reverted, taken by another transaction, or dropped).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from keeper.errors import ConfigError

STORE_VERSION = 1


@dataclass(frozen=True)
class TxAttempt:
    tx_hash: str
    raw_tx: bytes
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int
    sent_at_block: int  # chain head when it was broadcast


@dataclass(frozen=True)
class PendingEntry:
    chain_id: int
    sender: str
    nonce: int
    to: str
    data: bytes
    value_wei: int
    gas_limit: int
    label: str
    attempts: tuple[TxAttempt, ...]  # oldest first; the last is the one the node should hold

    @property
    def latest(self) -> TxAttempt:
        return self.attempts[-1]

    def with_attempt(self, attempt: TxAttempt) -> PendingEntry:
        return replace(self, attempts=(*self.attempts, attempt))


class PendingTxStore(Protocol):
    def load(self) -> list[PendingEntry]:
        """Every entry, by nonce."""
        ...

    def put(self, entry: PendingEntry) -> None:
        """Insert or replace the entry for `entry.nonce`; durable when this returns."""
        ...

    def remove(self, nonce: int) -> None:
        ...


class MemoryPendingStore:
    """Process-local; for tests and for senders that may lose track on a crash."""

    def __init__(self) -> None:
        self._entries: dict[int, PendingEntry] = {}
        self._lock = threading.Lock()

    def load(self) -> list[PendingEntry]:
        with self._lock:
            return [self._entries[n] for n in sorted(self._entries)]

    def put(self, entry: PendingEntry) -> None:
        with self._lock:
            self._entries[entry.nonce] = entry

    def remove(self, nonce: int) -> None:
        with self._lock:
            self._entries.pop(nonce, None)


class JsonFilePendingStore:
    """One JSON file, rewritten atomically (temp file, fsync, rename) on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> list[PendingEntry]:
        with self._lock:
            entries = self._read()
        return [entries[n] for n in sorted(entries)]

    def put(self, entry: PendingEntry) -> None:
        with self._lock:
            entries = self._read()
            entries[entry.nonce] = entry
            self._write(entries)

    def remove(self, nonce: int) -> None:
        with self._lock:
            entries = self._read()
            if entries.pop(nonce, None) is not None:
                self._write(entries)

    def _read(self) -> dict[int, PendingEntry]:
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"pending-tx store {self.path}: unreadable ({exc}); fix or move it, "
                              "it may hold transactions still in flight") from exc
        if not isinstance(document, dict) or document.get("version") != STORE_VERSION:
            raise ConfigError(f"pending-tx store {self.path}: not a version-{STORE_VERSION} store")
        try:
            return {int(nonce): _entry_from_json(item) for nonce, item in document["entries"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"pending-tx store {self.path}: malformed entry ({exc})") from exc

    def _write(self, entries: dict[int, PendingEntry]) -> None:
        document = {"version": STORE_VERSION,
                    "entries": {str(n): _entry_to_json(entries[n]) for n in sorted(entries)}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as handle:
            json.dump(document, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _entry_to_json(entry: PendingEntry) -> dict[str, Any]:
    return {
        "chain_id": entry.chain_id,
        "sender": entry.sender,
        "nonce": entry.nonce,
        "to": entry.to,
        "data": "0x" + entry.data.hex(),
        "value_wei": str(entry.value_wei),
        "gas_limit": entry.gas_limit,
        "label": entry.label,
        "attempts": [
            {
                "tx_hash": a.tx_hash,
                "raw_tx": "0x" + a.raw_tx.hex(),
                "max_fee_per_gas_wei": str(a.max_fee_per_gas_wei),
                "max_priority_fee_per_gas_wei": str(a.max_priority_fee_per_gas_wei),
                "sent_at_block": a.sent_at_block,
            }
            for a in entry.attempts
        ],
    }


def _entry_from_json(item: dict[str, Any]) -> PendingEntry:
    return PendingEntry(
        chain_id=int(item["chain_id"]),
        sender=str(item["sender"]),
        nonce=int(item["nonce"]),
        to=str(item["to"]),
        data=bytes.fromhex(item["data"].removeprefix("0x")),
        value_wei=int(item["value_wei"]),
        gas_limit=int(item["gas_limit"]),
        label=str(item["label"]),
        attempts=tuple(
            TxAttempt(
                tx_hash=str(a["tx_hash"]),
                raw_tx=bytes.fromhex(a["raw_tx"].removeprefix("0x")),
                max_fee_per_gas_wei=int(a["max_fee_per_gas_wei"]),
                max_priority_fee_per_gas_wei=int(a["max_priority_fee_per_gas_wei"]),
                sent_at_block=int(a["sent_at_block"]),
            )
            for a in item["attempts"]
        ),
    )
