"""Which executor a command reads or trades through: one choice for `keeper run`, `status` and
`stress`.

A given executor (an option such as `--account`, or account.executor) wins; unset, the executor
the journal's last live run on this chain traded through (`Journal.recorded_executors`), if the
chain has code there. A recorded executor without code (a devnet started afresh) is skipped, and
the choice says so (`skipped`) for the command to print or log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keeper.journal.store import Journal

FROM_JOURNAL = "journal"


@dataclass(frozen=True)
class ExecutorChoice:
    """`address` (None: no executor) and where it came from (`source`: the option or config key
    that gave it, or FROM_JOURNAL); `skipped`: why the journal's recorded executor was not used."""

    address: str | None
    source: str | None = None
    skipped: str | None = None

    def describe(self) -> str:
        if self.address is None:
            return "none (no --account, no account.executor" + (f"; {self.skipped})" if self.skipped else
                                                                 ", none recorded in the journal for this chain)")
        where = "the journal's last live run on this chain" if self.source == FROM_JOURNAL else self.source
        return f"{self.address} (from {where})"


def choose_executor(given: tuple[str, str | None], journal_path: Path, chain_id: Callable[[], int],
                    has_code: Callable[[str], bool]) -> ExecutorChoice:
    """`given` = (where it is set, the address or None): that address; else the journal's recorded
    executor on the chain (`chain_id()`, asked only when the journal records one) when
    `has_code(address)`; else none (`skipped` names a recorded one without code). A journal file
    that does not exist records none."""
    where, address = given
    if address is not None:
        return ExecutorChoice(address, where)
    if not journal_path.is_file():
        return ExecutorChoice(None)
    with Journal(journal_path, readonly=True) as journal:
        by_chain = journal.recorded_executors()
    recorded = by_chain.get(chain_id()) if by_chain else None
    if recorded is None:
        return ExecutorChoice(None)
    if not has_code(recorded):
        return ExecutorChoice(None, skipped=f"the journal's executor {recorded} has no code on chain {chain_id()}: "
                                            "skipped (a devnet started afresh?)")
    return ExecutorChoice(recorded, FROM_JOURNAL)
