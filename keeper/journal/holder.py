"""Open positions on a chain that is gone: found before a start reconciles them.

Reconcile aligns the journal with the executor's account on the chain it starts on; if that chain
is not the one that held the journal's open positions, every one reads as flat and would be booked
closed ("reconciled: not on chain"), its cash so far (the open's net quote included) as realized
PnL. The journal records where its open positions are held (`Journal.positions_holder`: the
executor and chain id of the last start's reconcile, live or dry, and whether that chain was the
embedded devnet's). A start:
- on the embedded devnet (a new chain every run): an earlier embedded run's open positions went
  with its chain: they are written off (`Journal.write_off`); a node's are refused, and so are
  positions whose holder is not recorded (they may be a real chain's);
- on a node (--rpc-url / chain.rpc_url): positions held by an embedded run, or by an executor
  with no code on this chain, whatever its chain id (a devnet or fork started afresh, a node not
  yet synced), are refused before anything is sent. Genesis alone would not tell two forks of one
  chain apart; the executor's code does (a fork with another chain id that has it passes).
Journals kept before the holder was recorded: a node's live runs since 2026-12-01 recorded their
executor per chain (`recorded_executors`), taken as the holder on that chain; with none recorded
the holder is unknown (a dry run's adopted positions, a live run's from before, an embedded run's):
a node's start goes on as before the holder (reconcile against its executor), an embedded one is
refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keeper.errors import ConfigError
from keeper.journal.records import PositionsHolder, held_in
from keeper.journal.reports import journal_last_block
from keeper.journal.store import Journal
from keeper.pairs_journal import PairJournal


@dataclass(frozen=True)
class Stranded:
    """The journal's open positions (`markets`) and open pairs (`pairs`, "A/B") that this chain
    cannot hold: where they are (`executor`, `chain_id`; None: not recorded), why (`why`), and
    whether they may be written off (an embedded start, the positions an earlier embedded run's)."""

    markets: tuple[str, ...]
    pairs: tuple[str, ...]
    executor: str | None
    chain_id: int | None
    why: str
    write_off: bool
    ways_out: str = "run against the chain that holds them, or point monitoring.journal at another file"

    def held(self) -> str:
        parts = [f"open positions ({', '.join(self.markets)})"] if self.markets else []
        parts += [f"open pairs ({', '.join(self.pairs)})"] if self.pairs else []
        return " and ".join(parts)


_GONE = "the chain that held them is gone (a devnet or fork started afresh?)"
_HOLDS = "run against the chain that holds them"
_ONLY_IF_GONE = "only if that chain is gone (a devnet or fork started afresh), point monitoring.journal at another file"


def find_stranded(journal_path: Path, chain_id: int, has_code: Callable[[str], bool], *, embedded: bool,
                  head: Callable[[], int] | None = None) -> Stranded | None:
    """The journal's open positions and pairs if the chain a start is on (`chain_id`; `embedded`:
    the embedded devnet's, new; `head`: the node's head block, for the message) cannot hold them;
    None when there are none or it may (on a node, positions whose holder is unknown are given the
    benefit of the doubt, as before the holder was recorded)."""
    with Journal(journal_path, readonly=True) as journal:
        markets = tuple(sorted(journal.open_positions()))
        pairs = tuple(f"{r['market_a']}/{r['market_b']}" for r in PairJournal(journal).rows("open"))
        holder = journal.positions_holder()
        recorded = journal.recorded_executors()
        with journal.read_transaction() as db:
            last_block = journal_last_block(db)
    if not markets and not pairs:
        return None
    if holder is None and chain_id in recorded and not embedded:  # kept before the holder: this chain's live runs'
        holder = PositionsHolder(chain_id, recorded[chain_id], embedded=False)
    if holder is None:
        if not embedded:
            return None
        why = ("whose chain is not recorded (kept before 2026-12-02: a node's, maybe a real chain's, or an earlier "
               "embedded run's)")
        return Stranded(markets, pairs, None, None, why, write_off=False,
                        ways_out="run on the node that holds them, or point monitoring.journal at another file")
    where = held_in(holder.executor, holder.chain_id)
    if holder.embedded:
        why = f"in {where} of an earlier embedded devnet run: that chain ended with its run"
        return Stranded(markets, pairs, holder.executor, holder.chain_id, why, write_off=embedded)
    if embedded:
        return Stranded(markets, pairs, holder.executor, holder.chain_id, f"in {where}, a node's, not an embedded "
                        "devnet's", write_off=False)
    if has_code(holder.executor):
        return None
    if holder.chain_id != chain_id:
        why = f"in {where}, which has no code on this node (chain {chain_id})"
        return Stranded(markets, pairs, holder.executor, holder.chain_id, why, write_off=False,
                        ways_out=f"{_HOLDS}; {_ONLY_IF_GONE}")
    node_head = head() if head is not None else None
    no_code = f"in {where}, which has no code on this node"
    if node_head is not None and last_block is not None and node_head >= last_block:  # not a node behind
        why = f"{no_code}, whose head {node_head} is past the journal's last block {last_block}: {_GONE}"
        ways_out = f"{_HOLDS}; {_ONLY_IF_GONE}"
    else:
        behind = ("" if node_head is None or last_block is None
                  else f", whose head {node_head} is below the journal's last block {last_block}")
        why = f"{no_code}{behind}: a node not yet synced to the executor's deployment, or {_GONE}"
        ways_out = f"wait for the node to sync, or {_HOLDS}; {_ONLY_IF_GONE}"
    return Stranded(markets, pairs, holder.executor, holder.chain_id, why, write_off=False, ways_out=ways_out)


def write_off_or_refuse(journal_path: Path, chain_id: int, has_code: Callable[[str], bool], *, embedded: bool,
                        node: str, head: Callable[[], int] | None = None) -> Stranded | None:
    """`find_stranded`, then: written off when they may be (the event per position:
    `journal.position_written_off`), else refused (ConfigError: one line naming the executor, the
    chain id, the positions and the ways out; called before anything is sent). `node`: the node
    the start is on, for the message. Returns what was written off."""
    stranded = find_stranded(journal_path, chain_id, has_code, embedded=embedded, head=head)
    if stranded is None:
        return None
    if not stranded.write_off:
        would = "write them off" if embedded else "book them closed"
        raise ConfigError(f"monitoring.journal: {journal_path} holds {stranded.held()} {stranded.why}; the start on "
                          f"{node} (chain {chain_id}) would {would}, so nothing was sent: {stranded.ways_out}")
    with Journal(journal_path) as journal:
        journal.write_off(executor=stranded.executor, chain_id=stranded.chain_id)
    return stranded
