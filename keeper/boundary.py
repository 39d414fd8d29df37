"""The engine's error boundary: every exception raised inside a tick is classified
(keeper.errors.classify_error) and handled here, by group; the scheduler never sees one.

- transient (RPC timeouts, HTTP 429/5xx, JSON-RPC "try again" replies): a metric and a warning;
  the tick (or the one intent) is skipped and the next tick retries; a snapshot the node kept
  answering from another block (SnapshotWrongBlock) has its own warning, `snapshot.wrong_block`;
- opportunity: skipped with its reason;
- fatal: recorded for an orderly stop (the runtime stops the loop, the process exits 1), with a
  `keeper.fatal` event;
- unexpected: a `tick.error` event carrying the traceback as a field; a market where it keeps
  happening is quarantined after `max_failures` in a row (`market.quarantined`), as is a market
  holding a position the keeper cannot quote.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from keeper.errors import ErrorGroup, SnapshotWrongBlock, classify_error
from keeper.logs import get_logger
from keeper.metrics import KeeperMetrics
from keeper.types import Direction, Position

log = get_logger("keeper.engine")


@dataclass
class ErrorBoundary:
    metrics: KeeperMetrics
    max_failures: int = 3
    fatal: BaseException | None = None
    unexpected_in_a_row: int = 0
    market_failures: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)  # market -> reason (sticky)
    _unquotable: dict[str, str] = field(default_factory=dict)  # logged once per reason

    def handle(self, exc: Exception, *, where: str, block: int | None = None, market: str | None = None) -> ErrorGroup:
        """Log and count `exc` by its group; returns the group (the caller skips what it was doing)."""
        group = classify_error(exc)
        self.metrics.tick_errors.labels(group.value).inc()
        fields = dict(where=where, block=block, market=market, error_type=type(exc).__name__, error=str(exc))
        if isinstance(exc, SnapshotWrongBlock):  # the node answered from another block: this tick skipped
            self.metrics.rpc_errors.inc()
            log.warning("snapshot.wrong_block", where=where, block=block, phase=exc.phase,
                        expected_block=exc.expected_block, got_block=exc.got_block, reads=exc.reads, error=str(exc))
        elif group is ErrorGroup.TRANSIENT:
            self.metrics.rpc_errors.inc()
            log.warning("tick.transient", **fields)
        elif group is ErrorGroup.OPPORTUNITY:
            log.info("tick.skipped", **fields)
        elif group is ErrorGroup.FATAL:
            self.fatal = exc
            log.critical("keeper.fatal", **fields)
        else:
            self.unexpected_in_a_row += 1
            failures = 0
            if market is not None:
                failures = self.market_failures[market] = self.market_failures.get(market, 0) + 1
            log.error("tick.error", traceback="".join(traceback.format_exception(exc)),
                      in_a_row=failures or self.unexpected_in_a_row, **fields)
            if market is not None and failures >= self.max_failures:
                self.quarantine(market, f"{failures} unexpected errors in a row, last: {type(exc).__name__}: {exc}")
        return group

    def succeeded(self, market: str | None = None) -> None:
        if market is None:
            self.unexpected_in_a_row = 0
        else:
            self.market_failures.pop(market, None)

    def quarantine(self, market: str, reason: str) -> None:
        if market not in self.quarantined:
            self.quarantined[market] = reason
            self.metrics.quarantined.set(len(self.quarantined))
            log.error("market.quarantined", market=market, reason=reason)

    def blocked(self, positions: dict[str, Position]) -> dict[str, str]:
        """Quarantined markets: the sticky ones, and every market whose position cannot be quoted
        (its legs disagree with its direction), re-checked each tick."""
        blocked = dict(self.quarantined)
        now = {m: why for m, p in positions.items() if (why := unquotable(p)) and m not in blocked}
        for market, why in now.items():
            if self._unquotable.get(market) != why:
                log.error("market.quarantined", market=market, reason=why, sticky=False)
        for market in set(self._unquotable) - set(now):
            log.info("market.released", market=market, reason="its position is quotable again, or gone")
        self._unquotable = now
        self.metrics.quarantined.set(len(blocked) + len(now))
        return {**blocked, **now}


def unquotable(position: Position) -> str | None:
    """Why the exact quotes cannot price a close of this position, or None (the rule of
    keeper.quotes: perp and spot legs signed as the direction says)."""
    short = position.direction is Direction.SHORT_PERP
    if position.perp_base_x18 == 0 or (position.perp_base_x18 < 0) != short:
        return f"position perp {position.perp_base_x18} does not match {position.direction.value}"
    if position.spot_raw == 0 or (position.spot_raw > 0) != short:
        return f"position spot {position.spot_raw} does not match {position.direction.value}: cannot quote its close"
    return None
