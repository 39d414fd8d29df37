"""Open positions on a chain that is gone: found before a start reconciles them.

Reconcile aligns the journal with the executor's account on the chain it starts on; if that chain
is not the one that held the journal's open positions, every one reads as flat and would be booked
closed ("reconciled: not on chain"), its cash so far (the open's net quote included) as realized
PnL. The journal records where its open positions are held (`Journal.positions_holder`: the last
live run's executor and chain id, and whether that chain was the embedded devnet's). A start:
- on the embedded devnet (a new chain every run): an earlier embedded run's open positions went
  with its chain: they are written off (`Journal.write_off`); a node's are refused;
- on a node (--rpc-url / chain.rpc_url): positions held by an embedded run, or by an executor
  with no code on this chain (a devnet or fork started afresh), are refused before anything is
  sent. Genesis alone would not tell two forks of one chain apart; the executor's code does.
Journals kept before the holder was recorded: a node's live runs recorded their executor per chain
(`recorded_executors`), embedded runs none; positions in a journal recording none came from
embedded runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keeper.errors import ConfigError
from keeper.journal.store import Journal


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

    def held(self) -> str:
        parts = [f"open positions ({', '.join(self.markets)})"] if self.markets else []
        parts += [f"open pairs ({', '.join(self.pairs)})"] if self.pairs else []
        return " and ".join(parts)


def find_stranded(journal_path: Path, chain_id: int, has_code: Callable[[str], bool], *,
                  embedded: bool) -> Stranded | None:
    """The journal's open positions and pairs if the chain a start is on (`chain_id`; `embedded`:
    the embedded devnet's, new) cannot hold them; None when there are none or it may (a chain
    that was not recorded as theirs is given the benefit of the doubt, as before)."""
    with Journal(journal_path, readonly=True) as journal:
        markets = tuple(sorted(journal.open_positions()))
        with journal.read_transaction() as db:
            pairs = tuple(f"{a}/{b}" for a, b in db.execute(
                "SELECT market_a, market_b FROM pair_positions WHERE status = 'open' ORDER BY id"))
        holder = journal.positions_holder()
        recorded = journal.recorded_executors()
    if not markets and not pairs:
        return None
    if holder is not None:
        executor, held_on, by_embedded = holder.executor, holder.chain_id, holder.embedded
    elif not recorded:  # only embedded runs (which recorded no executor) traded with this journal
        executor, held_on, by_embedded = None, None, True
    else:
        held_on = chain_id if chain_id in recorded else min(recorded)
        executor, by_embedded = recorded[held_on], False
    where = f"executor {executor or '(not recorded)'} on chain {held_on if held_on is not None else chain_id}"
    if by_embedded:
        why = f"in {where} of an earlier embedded devnet run: that chain ended with its run"
        return Stranded(markets, pairs, executor, held_on, why, write_off=embedded)
    if embedded:
        return Stranded(markets, pairs, executor, held_on, f"in {where}, a node's, not an embedded devnet's",
                        write_off=False)
    if held_on == chain_id and executor is not None and not has_code(executor):
        why = f"in {where}, which has no code on this node: the chain that held them is gone (a devnet or fork " \
              "started afresh?)"
        return Stranded(markets, pairs, executor, held_on, why, write_off=False)
    return None


def write_off_or_refuse(journal_path: Path, chain_id: int, has_code: Callable[[str], bool], *, embedded: bool,
                        node: str) -> Stranded | None:
    """`find_stranded`, then: written off when they may be (the event per position:
    `journal.position_written_off`), else refused (ConfigError: one line naming the executor, the
    chain id, the positions and the ways out; called before anything is sent). `node`: the node
    the start is on, for the message. Returns what was written off."""
    stranded = find_stranded(journal_path, chain_id, has_code, embedded=embedded)
    if stranded is None:
        return None
    if not stranded.write_off:
        would = "write them off" if embedded else "book them closed"
        raise ConfigError(f"monitoring.journal: {journal_path} holds {stranded.held()} {stranded.why}; the start on "
                          f"{node} (chain {chain_id}) would {would}, so nothing was sent: run against the chain that "
                          "holds them, or point monitoring.journal at another file")
    with Journal(journal_path) as journal:
        journal.write_off(executor=stranded.executor, chain_id=stranded.chain_id)
    return stranded
