"""Independent chain access for the conformance suites: plain eth_call with the function's
signature and eth-abi, never the keeper's codecs, read plans or adapters; and a snapshot as the
keeper's collector reads it."""

from __future__ import annotations

from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.devnet.manifest import DevnetManifest
from keeper.types import MarketSnapshot

MAX_UINT256 = 2**256 - 1
DEADLINE_NEVER = 2**63


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def calldata(signature: str, *args: Any) -> bytes:
    """`signature` like "balanceOf(address)"; the argument types are read from it."""
    types = _arg_types(signature)
    return selector(signature) + encode(types, list(args))


def read(rpc: JsonRpc, to: str, signature: str, out_types: list[str], *args: Any, block: int | str = "latest") -> tuple[Any, ...]:
    tag = hex(block) if isinstance(block, int) else block
    data = rpc.call("eth_call", [{"to": to, "data": "0x" + calldata(signature, *args).hex()}, tag])
    return tuple(decode(out_types, bytes.fromhex(data[2:])))


def send(rpc: JsonRpc, sender: str, to: str, signature: str, *args: Any) -> dict[str, Any]:
    """A transaction from an unlocked devnet account, mined; raises on a revert (with its reason)."""
    from keeper.devnet.txs import DevSender

    return DevSender(rpc).send(sender, to, calldata(signature, *args), 0, what=signature)


def _arg_types(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1:signature.rindex(")")]
    types, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            types.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        types.append(current)
    return types


def keeper_snapshot(rpc: JsonRpc, manifest: DevnetManifest) -> MarketSnapshot:
    """The latest block as the keeper's collector reads it (what the adapters answer from)."""
    collector = SnapshotCollector(rpc, Sources.from_manifest(manifest))
    collector.prepare()
    return collector.fetch_snapshot()
