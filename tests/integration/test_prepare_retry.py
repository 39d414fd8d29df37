"""prepare() reads a market that failed once more before it is fatal (the audit: `keeper simulate
--replay --check` on a driven devnet stopped at start, now and then, with "market ETH: Perp v2
market unreadable: AccountBalance.getMarkPrice reverted: SafeMath: subtraction overflow", a read
anvil answered while it mined the next block)."""

from __future__ import annotations

from typing import Any

import pytest

from keeper import collect
from keeper.chain.multicall import CallResult
from keeper.collect import SnapshotCollector, Sources
from keeper.errors import ChainMismatchError

pytestmark = pytest.mark.integration


def _failing_mark_price(collector: SnapshotCollector, times: int) -> list[int]:
    """The collector's Multicall3, answering the market reads' getMarkPrice as reverted `times` times."""
    real, failed = collector.multicall.run_calls, [0]

    def run_calls(calls: list[Any], block: int | str = "latest") -> list[CallResult]:
        results = real(calls, block)
        if failed[0] < times and any(".getMarkPrice(" in c.label for c in calls):
            failed[0] += 1
            return [CallResult(False, b"") if ".getMarkPrice(" in c.label else r for c, r in zip(calls, results)]
        return results

    collector.multicall.run_calls = run_calls  # type: ignore[method-assign]
    return failed


def test_a_market_read_that_fails_once_is_read_again(devnet, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(collect, "PREPARE_RETRY_PAUSE_S", 0.0)
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest))
    failed = _failing_mark_price(collector, times=1)
    collector.prepare()
    assert failed[0] == 1 and len(collector.static) == len(devnet.manifest.markets)


def test_a_market_read_that_fails_twice_is_fatal(devnet, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(collect, "PREPARE_RETRY_PAUSE_S", 0.0)
    collector = SnapshotCollector(devnet.rpc, Sources.from_manifest(devnet.manifest))
    _failing_mark_price(collector, times=2)
    with pytest.raises(ChainMismatchError, match="Perp v2 market unreadable"):
        collector.prepare()
