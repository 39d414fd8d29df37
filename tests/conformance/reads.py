"""The part of each conformance suite about a venue's own reads: the adapter is one of the
snapshot's readers, it plans calls to its venue's contracts only, and the field it fills in the
keeper's snapshot is the state it answers from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keeper.collect import SnapshotCollector, Sources
from keeper.venues.registry import SNAPSHOT_READERS

from .conftest import Devnet


def assert_plans_its_own_reads(devnet: Devnet, adapter: Any, contracts: Callable[[str, Any], set[str]]) -> None:
    """`contracts(market, static)`: the addresses the venue's reads of `market` may call."""
    assert adapter in SNAPSHOT_READERS
    assert sum(r.snapshot_field == adapter.snapshot_field for r in SNAPSHOT_READERS) == 1  # one reader per field
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest))
    collector.prepare()
    snapshot = collector.fetch_snapshot()
    markets, _ = collector._markets()
    for mr in markets:
        name = mr.ctx.static.source.name
        plans = adapter.head_plans(mr.ctx)
        assert plans, f"{adapter.name} plans no read for {name}"
        allowed = {a.lower() for a in contracts(name, mr.ctx.static)}
        assert {c.target.lower() for p in plans.values() for c in p.calls} <= allowed
        assert {s.pool.address.lower() for s in adapter.pools(mr.ctx)} <= allowed
        view = snapshot.markets[name]
        assert getattr(view, adapter.snapshot_field) is adapter.state(view)
