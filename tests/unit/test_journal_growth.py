"""Journal growth: a strategy's "no trade" rows are written once per change of reason, old skip
rows and funding readings are pruned by age; decisions that traded are kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.journal import Journal
from keeper.retention import DAY_S, prune_journal
from keeper.skiplog import SkipLog, reason_layout, reason_shape

from keeper.types import Outcome

from .journal_builders import make_intent, make_plan


def rows(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def test_given_the_same_reason_with_new_numbers_then_one_row_until_the_reason_changes(tmp_path: Path) -> None:
    assert reason_shape("z 0.41 below entry 2.0 (basis -3.5 bps)") == reason_shape("z 1.07 below entry 2.0 (basis 12 bps)")
    journal = Journal(tmp_path / "j.sqlite")
    skips = SkipLog(journal)
    for block in range(1, 101):
        skips.record(block=block, strategy="basis_convergence", market="ETH",
                     reason=f"z {block / 100:.2f} below entry 2.0", timestamp_s=block)
    skips.record(block=101, strategy="basis_convergence", market="ETH", reason="oracle stale", timestamp_s=101)
    skips.record(block=102, strategy="basis_convergence", market="BTC", reason="z 0.10 below entry 2.0", timestamp_s=102)
    journal.close()
    assert rows(tmp_path / "j.sqlite", "SELECT count(*) FROM decisions WHERE status = 'skipped'") == 3
    assert (skips.written, skips.suppressed) == (3, 99)


class _Rows:
    """A journal that only counts the skip rows written."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def record_skip(self, *, reason: str, **_: object) -> int:
        self.rows.append(reason)
        return len(self.rows)


# reasons close to one another: digits, signs, points, exponents, commas and a non-ASCII digit
_REASON = st.text(alphabet="0123456789-+.,_eE %abz\u0663", max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ETH", "BTC"]), _REASON), max_size=40))
def test_given_any_reasons_then_the_rows_are_those_of_comparing_shapes_alone(reasons: list[tuple[str, str]]) -> None:
    # Given a skip log, and the rule it implements: a row whenever the shape changes for the market
    skips, expected, last = SkipLog(_Rows()), [], {}
    for market, reason in reasons:
        if last.get(market) != reason_shape(reason):
            expected.append(reason)
        last[market] = reason_shape(reason)
    # When every reason is recorded (the layout settles most without the pattern)
    for block, (market, reason) in enumerate(reasons):
        skips.record(block=block, strategy="s", market=market, reason=reason, timestamp_s=block)
    # Then the rows written are exactly the rule's
    assert skips.journal.rows == expected and skips.written + skips.suppressed == len(reasons)


@given(_REASON, st.lists(st.sampled_from("0123456789"), min_size=12, max_size=12))
def test_given_a_reason_with_other_digits_in_place_then_its_layout_and_shape_are_the_same(
        reason: str, digits: list[str]) -> None:
    # Given a reason and the same reason with each ASCII digit replaced by another
    other = "".join(digits[i] if c in "0123456789" else c for i, c in enumerate(reason))
    # Then they are laid out alike, and shaped alike
    assert reason_layout(other) == reason_layout(reason)
    assert reason_shape(other) == reason_shape(reason)
    # And a reason laid out otherwise is told apart
    assert reason_layout(reason + "1") != reason_layout(reason + "a")


def test_given_rows_older_than_the_window_then_skips_and_funding_go_and_trades_stay(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    day = 10 * DAY_S
    for t in (day - 3 * DAY_S, day - 2 * DAY_S, day - 1):
        journal.record_skip(block=t, strategy="s", market="ETH", reason="no edge", timestamp_s=t)
    intent = make_intent()
    decision = journal.record_decision(intent, block=1, timestamp_s=day - 5 * DAY_S)
    plan = make_plan(intent)
    # a decision whose simulation reverted is 'skipped' but has a transaction row: kept
    journal.record_outcome(decision, Outcome(plan, "simulation_reverted", None, None, 0, 0, None, "CH_TLRS"))
    for t in (day - 4 * DAY_S, day - 3 * DAY_S, day - 10):
        journal.record_funding("ETH", block=t, pending_funding_x18=t, timestamp_s=t)
    assert prune_journal(journal, day, retention_days=1.5) == (2, 2)
    assert prune_journal(journal, day, retention_days=0) == (0, 0)  # 0: keep everything
    journal.close()
    assert rows(path, "SELECT count(*) FROM decisions WHERE status = 'skipped'") == 2  # the newest skip + the reverted
    assert rows(path, "SELECT count(*) FROM decisions WHERE id = %d" % decision) == 1  # it traded: kept
    assert rows(path, "SELECT count(*) FROM funding") == 1
