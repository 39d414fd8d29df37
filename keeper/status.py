"""`keeper status`: positions and PnL from the journal, checked against the chain when reachable.

The chain check reads the executor's Perp positions (one Multicall3 batch, the same reader as the
keeper) and reports each market where the journal (basis positions and open pairs' legs together)
and the chain disagree; it changes nothing (the running keeper reconciles at its next start).
Without a reachable node it says so. Open pairs are listed with their legs (keeper/pairs_status.py),
and their unrealised PnL when the chain was read.

The journal's PnL of an open basis position is its cash so far (the open's net quote, funding,
fees, gas), not its value: an open that sold the perp rich shows that premium as a gain before
any of it is earned. When the chain was read, the open positions are also marked to market: what
closing each now would add (its exact close quote, less the close's gas), and the total with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keeper.addressbook import config_chain, config_sources
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector
from keeper.config import KeeperConfig
from keeper.errors import ConfigError, KeeperError
from keeper.journal import Journal, PositionRecord, StatusReport
from keeper.journal.executors import FROM_JOURNAL, choose_executor
from keeper.journal.holder import find_stranded
from keeper.pairs_journal import PAIR_WRITTEN_OFF
from keeper.pairs_status import OpenPairStatus, fetch_open_pairs, fetch_pairs, pair_leg_sizes_x18, with_unrealised
from keeper.plan import PRIORITY_FEE_WEI
from keeper.pnl_split import sum_pnl
from keeper.simulate.paper import close_values_x18
from keeper.types import MarketSnapshot, PerpAccountState

USD = 10**18


@dataclass(frozen=True)
class StatusView:
    journal: StatusReport
    chain_checked: str  # "yes: ..." or why not
    mismatches: tuple[str, ...]
    pairs: tuple[OpenPairStatus, ...] = field(default=())
    closes_x18: Mapping[str, int | None] | None = None  # per open market, what closing now adds (None: not read)
    chain_read: bool = False  # the executor's account was read on chain (mismatches are then meaningful)
    positions_note: str | None = None  # the open positions are not on the node's chain (keeper/journal/holder.py)
    written_off_pairs: tuple[OpenPairStatus, ...] = ()  # their chain gone: books as they were, in no PnL

    @property
    def close_value_x18(self) -> int | None:
        """What closing every open basis position now adds; None when the chain was not read or a
        close could not be quoted (then no marked total is claimed)."""
        values = self.closes_x18
        return None if values is None or None in values.values() else sum(values.values())  # type: ignore[arg-type]

    def unmarked(self) -> list[str]:
        return sorted(m for m, v in (self.closes_x18 or {}).items() if v is None)

    def as_json(self) -> dict[str, Any]:
        value = self.close_value_x18
        marked = None if value is None else self.journal.pnl.total.total_x18 + value
        return {"journal": self.journal.to_json_dict(), "chain_checked": self.chain_checked, "chain_read": self.chain_read,
                "mismatches": list(self.mismatches), "pairs": [p.to_json_dict() for p in self.pairs],
                "open_close_value_x18": None if value is None else str(value),
                "marked_total_x18": None if marked is None else str(marked), "unmarked_markets": self.unmarked(),
                "positions_note": self.positions_note,
                "written_off_pairs": [p.to_json_dict() for p in self.written_off_pairs]}

    def as_text(self) -> str:
        r = self.journal
        lines = [f"journal {r.journal_path} (last block {r.last_block})", f"chain check: {self.chain_checked}"]
        if not r.positions and not self.pairs:
            lines.append("no open positions")
        for record in r.positions:
            p = record.position
            legs = " + ".join(f"{leg.venue_kind} on {leg.venue}" for leg in record.legs or p.legs)
            lines.append(f"  {p.market:<5} {p.direction.value:<11} {legs}: perp {p.perp_base_x18 / 1e18:+.6f} "
                         f"spot {p.spot_raw} raw, opened block {p.entry_block}")
        lines += [pair.as_text() for pair in self.pairs]
        if self.positions_note and (r.positions or self.pairs):
            lines.append(f"  {self.positions_note}")
        total = r.pnl.total
        realized = r.pnl.realized
        lines.append(f"PnL total {total.total_x18 / USD:+.4f} USD = funding {total.funding_x18 / USD:+.4f} "
                     f"+ convergence {total.convergence_x18 / USD:+.4f} - fees {total.fees_x18 / USD:.4f} "
                     f"- gas {total.gas_x18 / USD:.4f} (realized {realized.total_x18 / USD:+.4f})")
        value = self.close_value_x18
        if r.positions and value is None:
            why = (f"no close quote for {', '.join(self.unmarked())}" if self.unmarked() else "chain not read")
            lines.append(f"  open positions not marked to market ({why}): their part is cash so far, the open's "
                         "net quote included")
        elif r.positions and value is not None:
            lines.append(f"PnL marked to market {(total.total_x18 + value) / USD:+.4f} USD = total "
                         f"{total.total_x18 / USD:+.4f} {value / USD:+.4f} for closing the open positions now "
                         "(their exact quotes, less the close's gas)")
        for market, pnl in r.pnl.markets.items():
            t = pnl.total
            lines.append(f"  {market:<5} {t.total_x18 / USD:+.4f} USD (funding {t.funding_x18 / USD:+.4f}, convergence "
                         f"{t.convergence_x18 / USD:+.4f}, fees {t.fees_x18 / USD:.4f}, gas {t.gas_x18 / USD:.4f})")
        if r.written_off or self.written_off_pairs:
            gone = sum_pnl(p.pnl for p in r.written_off).total_x18 + sum(p.booked_x18 for p in self.written_off_pairs)
            which = [_written_off_line(p) for p in r.written_off] + [
                f"pair {p.pair_id} {p.side} {p.market_a}/{p.market_b} (entry block {p.entry_block})"
                for p in self.written_off_pairs]
            lines.append(f"written off: the chain that held them is gone: {', '.join(which)}; cash so far "
                         f"{gone / USD:+.4f} USD, in no PnL above (not realized)")
        for tx in r.pending_transactions:
            lines.append(f"  pending tx {tx.tx_hash} ({tx.market} {tx.kind})")
        lines += [f"  MISMATCH {m}" for m in self.mismatches]
        return "\n".join(lines)


def _written_off_line(record: PositionRecord) -> str:
    p = record.position
    return f"{p.market} {p.direction.value} (position {record.id}, last block {record.last_block})"


def build_status(config: KeeperConfig) -> StatusView:
    path = config.monitoring.journal
    if not path.exists():
        raise ConfigError(f"monitoring.journal: {path} does not exist (has the keeper run with this config?)")
    with Journal(path, readonly=True) as journal:
        report = journal.status()
        pairs = fetch_open_pairs(journal)
        gone_pairs = fetch_pairs(journal, PAIR_WRITTEN_OFF)
    checked, mismatches, snapshot = _check_chain(config, report, pairs)
    close_value = None
    if snapshot is not None:
        pairs = tuple(with_unrealised(p, snapshot) for p in pairs)
        close_value = close_values_x18(snapshot, [r.position for r in report.positions], PRIORITY_FEE_WEI)
    note = _stranded_note(config) if report.positions or pairs else None
    return StatusView(report, checked, tuple(mismatches), pairs, close_value, chain_read=snapshot is not None,
                      positions_note=note, written_off_pairs=gone_pairs)


def _stranded_note(config: KeeperConfig) -> str | None:
    """With a node: whether the journal's open positions are on its chain (keeper/journal/holder.py,
    the check `keeper run` makes); without one it cannot be known (they show as open)."""
    if config.chain.rpc_url is None:
        return None
    try:
        rpc = JsonRpc(config.chain.rpc_url, timeout_s=config.chain.request_timeout_s)
        stranded = find_stranded(config.monitoring.journal, rpc.chain_id(), rpc.has_code, embedded=False,
                                 head=rpc.block_number)
    except KeeperError:
        return None  # the chain check's line says why the node was not read
    if stranded is None:
        return None
    return (f"NOT ON THIS CHAIN: the {stranded.held()} above are {stranded.why}; `keeper run` on this node refuses "
            "to start (it would book them closed)")


_SET_EXECUTOR = "set account.executor to check the journal against the chain"
_NO_EXECUTOR = f"no: {_SET_EXECUTOR}"


def _check_chain(config: KeeperConfig, report: StatusReport,
                 pairs: tuple[OpenPairStatus, ...] = ()) -> tuple[str, list[str], MarketSnapshot | None]:
    if config.chain.rpc_url is None:  # only what is missing: the executor may come from the journal
        executor = "" if config.account.executor else (" (and account.executor, unless the journal's last live run "
                                                       "on that chain recorded its executor)")
        return f"no: set chain.rpc_url (or --rpc-url) to check the journal against the chain{executor}", [], None
    try:
        rpc = JsonRpc(config.chain.rpc_url, timeout_s=config.chain.request_timeout_s)
        choice = choose_executor(("account.executor", config.account.executor), config.monitoring.journal,
                                 rpc.chain_id, rpc.has_code)
        if choice.address is None:
            return (f"no: {choice.skipped}; {_SET_EXECUTOR}" if choice.skipped else _NO_EXECUTOR), [], None
        executor = choice.address
        source = (f" (executor {executor}, the journal's: account.executor is unset)"
                  if choice.source == FROM_JOURNAL else "")
        sources = config_sources(rpc, config_chain(config)[1])
        collector = SnapshotCollector(rpc, sources, account=executor)
        snapshot = collector.fetch_snapshot()
    except KeeperError as exc:
        return f"no: {exc}", [], None
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        return f"no: executor account unreadable at block {snapshot.block_number}", [], None
    journal_sizes = pair_leg_sizes_x18(pairs)
    for r in report.positions:
        journal_sizes[r.position.market] = journal_sizes.get(r.position.market, 0) + r.position.perp_base_x18
    mismatches = []
    for market, held in account.markets.items():
        if held.position_size_x18 != journal_sizes.get(market, 0):
            mismatches.append(f"{market}: journal perp {journal_sizes.get(market, 0)}, chain {held.position_size_x18}")
    return f"yes, at block {snapshot.block_number}{source}", mismatches, snapshot
