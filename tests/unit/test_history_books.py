"""The backtest's paper account: funding accrues from the recorded premium, as the paper trades
of the simulation book it; the account the engine reads follows the books."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from keeper.errors import KeeperError
from keeper.history.books import INITIAL_MARGIN_PPM, BacktestJournal, PaperAccount
from keeper.journal import Journal
from keeper.pnl_split import TradeFees
from keeper.simulate.paper import compute_funding_paid_x18
from keeper.types import ONE_X18, Direction, Position

from .journal_builders import E18, make_fills, make_intent, trade
from .test_pnl_model import market_view, perp_state, snapshot_of


def _short(size: float = 2.0) -> Position:
    return Position(market="ETH", direction=Direction.SHORT_PERP, spot_venue="uniswap_v3",
                    perp_base_x18=-int(size * ONE_X18), spot_raw=int(size * ONE_X18), entry_block=1,
                    entry_timestamp_s=0, entry_basis_bps=0.0, net_quote_x18=0)


def _books_with_an_eth_short(tmp_path: Path) -> tuple[Journal, BacktestJournal]:
    """A journal with an open ETH short (2 ETH), and the backtest's books on it."""
    journal = Journal(tmp_path / "journal.sqlite")
    trade(journal, "open", make_fills(perp_base_x18=-2 * E18, net_quote_x18=3 * E18), 10, -2 * E18)
    return journal, BacktestJournal(journal)


def _counting_summaries(journal: Journal) -> tuple[list[int], Any]:
    """The journal's whole PnL summary, counted each time the books read it: (the count, the summary)."""
    calls: list[int] = []
    full = journal.pnl_summary
    journal.pnl_summary = lambda: calls.append(1) or full()  # type: ignore[method-assign]
    return calls, full


def test_given_longs_paying_when_a_short_is_held_an_hour_then_it_receives_the_premium_over_the_hour() -> None:
    rich = market_view(perp=perp_state(3000.0, 3000.0, market_twap_usd=3030.0))
    first = snapshot_of(rich, block=10)
    later = replace(snapshot_of(rich, block=11), block_timestamp=first.block_timestamp + 3600)
    account, positions = PaperAccount(50_000), {"ETH": _short()}
    account.accrue(first, positions)
    account.accrue(later, positions)
    premium = rich.perp.funding_premium_x18  # type: ignore[union-attr]
    expected = compute_funding_paid_x18(-2 * ONE_X18, premium, 3600)
    assert expected == -int(2.5 * ONE_X18)  # 2 ETH x $30 x 1 h / 24 h, received
    assert account.pending_x18["ETH"] == expected
    assert account.settle("ETH") == expected and account.settle("ETH") == 0


def test_given_positions_and_pnl_when_the_engine_reads_the_account_then_it_follows_the_books() -> None:
    view = market_view(perp=perp_state(3000.0, 3000.0))
    snapshot = snapshot_of(view)
    account = PaperAccount(50_000)
    account.pending_x18["ETH"] = 7
    state = account.state(snapshot, {"ETH": _short()}, pnl_to_date_x18=-1_000 * ONE_X18)
    assert state.markets["ETH"].position_size_x18 == -2 * ONE_X18
    assert state.markets["ETH"].pending_funding_x18 == 7
    assert state.account_value_x18 == 49_000 * ONE_X18
    assert state.total_abs_position_value_x18 == 6_000 * ONE_X18
    assert state.free_collateral_raw == (49_000 - 6_000 * INITIAL_MARGIN_PPM // 10**6) * 10**6
    assert state.margin_ratio == 49_000 / 6_000
    flat = account.state(snapshot, {}, 0)
    assert flat.margin_ratio is None and flat.free_collateral_raw == 50_000 * 10**6


def test_given_funding_readings_flushed_between_samples_when_the_pnl_is_read_then_it_is_the_journals_total(
        tmp_path: Path) -> None:
    # Given books with an open ETH short and a closed BTC position (fills, fees, gas, settled funding)
    journal = Journal(tmp_path / "journal.sqlite")
    books = BacktestJournal(journal)
    trade(journal, "open", make_fills(perp_base_x18=-2 * E18, net_quote_x18=3 * E18), 10, -2 * E18,
          fees=TradeFees(E18 // 7, 3))
    trade(journal, "open", make_fills(net_quote_x18=E18), 11, -E18, market="BTC")
    trade(journal, "close", make_fills(perp_base_x18=E18, net_quote_x18=-E18 // 3), 12, 0, market="BTC",
          settled_funding_x18=E18 // 11)
    assert books.pnl_total() == journal.pnl_summary().total
    calls, full = _counting_summaries(journal)
    # When pending-funding readings are flushed between reads (paid, received, unchanged, of a flat market)
    for block, pending in ((13, 5 * E18 // 3), (14, -E18 // 9), (15, -E18 // 9), (16, 0)):
        books.record_funding("ETH", block=block, pending_funding_x18=pending, timestamp_s=1_700_000_000 + block)
        books.record_funding("BTC", block=block, pending_funding_x18=7, timestamp_s=1_700_000_000 + block)
        books.flush_funding()
        # Then the total is the journal's, to the wei, without reading the whole summary again
        got = books.pnl_total()
        assert got == full().total and got.funding_x18 == full().total.funding_x18
    assert calls == []
    # And after a trade the summary is read again
    trade(journal, "close", make_fills(perp_base_x18=2 * E18, net_quote_x18=-E18), 17, 0)
    assert books.pnl_total() == full().total and calls == [1]
    journal.close()


def test_given_decision_rows_written_between_samples_when_the_pnl_is_read_then_it_is_kept_and_still_the_journals(
        tmp_path: Path) -> None:
    # Given books with an open ETH short whose PnL to date was read once
    journal, books = _books_with_an_eth_short(tmp_path)
    assert books.pnl_total() == journal.pnl_summary().total
    calls, full = _counting_summaries(journal)
    # When decision rows are written (an intent, its skip, a hand-over) and a funding reading flushed
    decision_id = books.record_decision(make_intent("close", block=11), block=11, timestamp_s=1_700_000_011)
    books.record_skip(decision_id=decision_id, block=11, strategy="basis_convergence", market="ETH", reason="risk")
    books.record_handover(market="ETH", to_strategy="funding_carry", reason="z still wide", block=12,
                          timestamp_s=1_700_000_012)
    books.record_funding("ETH", block=12, pending_funding_x18=E18 // 3, timestamp_s=1_700_000_012)
    books.flush_funding()
    # Then the PnL to date is the journal's to the wei, without the whole summary read again
    assert books.pnl_total() == full().total
    assert calls == []
    assert journal.decision(decision_id).status == "skipped"  # and the rows are the journal's own
    journal.close()


def test_given_a_handover_when_the_owners_are_read_then_the_new_strategy_owns_the_position(tmp_path: Path) -> None:
    # Given books with an open ETH short owned by the strategy that opened it, owners read once
    journal, books = _books_with_an_eth_short(tmp_path)
    opener = books.position_owners()["ETH"]
    assert opener != "funding_carry"
    # When the position is handed over to funding_carry
    books.record_handover(market="ETH", to_strategy="funding_carry", reason="carry pays", block=12,
                          timestamp_s=1_700_000_012)
    # Then the books name the new owner, as the journal does (not the cached old one)
    assert books.position_owners() == journal.position_owners() == {"ETH": "funding_carry"}
    journal.close()


def test_given_samples_readings_held_back_when_the_pnl_is_read_then_it_is_the_journals_once_they_are_written(
        tmp_path: Path) -> None:
    # Given books with an open ETH short and an open BTC long, the PnL to date read once
    journal, books = _books_with_an_eth_short(tmp_path)
    trade(journal, "open", make_fills(net_quote_x18=E18), 11, -E18, market="BTC")
    books.pnl_total()
    calls, full = _counting_summaries(journal)
    # When report samples take readings without writing them (paid, received, unchanged)
    samples = []
    for block, pending in ((13, 5 * E18 // 3), (14, -E18 // 9), (15, -E18 // 9)):
        books.record_funding("ETH", block=block, pending_funding_x18=pending, timestamp_s=1_700_000_000 + block)
        books.record_funding("BTC", block=block, pending_funding_x18=block, timestamp_s=1_700_000_000 + block)
        books.flush_funding(write=False)
        samples.append(books.pnl_total())
    # Then nothing is written until the journal is read; then every reading is, in order
    assert journal.funding_history("ETH") == [] and calls == []
    assert books.open_positions()["ETH"].perp_base_x18 == -2 * E18  # a read of the journal: written first
    assert [(r.block, r.amount_x18) for r in journal.funding_history("ETH")] == [
        (13, 5 * E18 // 3), (14, -E18 // 9), (15, -E18 // 9)]
    assert [r.block for r in journal.funding_history("BTC")] == [13, 14, 15]
    # And each sample's PnL was the journal's as of its readings, to the wei, without the whole summary
    assert samples[-1] == full().total and calls == []
    assert samples[1].funding_x18 - samples[0].funding_x18 == (5 * E18 // 3 + 13) - (-E18 // 9 + 14)  # pending owed: paid
    assert books.pnl_total() == full().total
    journal.close()


def test_given_a_held_back_reading_its_position_row_does_not_take_when_written_then_the_books_say_so(
        tmp_path: Path) -> None:
    # Given an open ETH short whose row already holds a reading of a later block
    journal, books = _books_with_an_eth_short(tmp_path)
    journal.record_funding("ETH", block=20, pending_funding_x18=E18, timestamp_s=1_700_000_020)
    books.pnl_total()
    # When a sample's reading of an earlier block is taken, then written
    books.record_funding("ETH", block=15, pending_funding_x18=2 * E18, timestamp_s=1_700_000_015)
    books.flush_funding(write=False)
    books.pnl_total()
    # Then the write refuses (the sample's PnL took the reading as the row's): nothing is written
    with pytest.raises(KeeperError, match="did not take the funding reading of block 15"):
        books.write_readings()
    assert [r.block for r in journal.funding_history("ETH")] == [20]
    journal.close()


def test_given_a_write_of_held_readings_that_fails_when_retried_then_nothing_is_lost_and_the_pnl_is_the_journals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two held readings, counted by the books' PnL
    journal, books = _books_with_an_eth_short(tmp_path)
    books.pnl_total()
    for block, pending in ((13, 5 * E18), (14, 7 * E18)):
        books.record_funding("ETH", block=block, pending_funding_x18=pending, timestamp_s=1_700_000_000 + block)
        books.flush_funding(write=False)
    assert books.pnl_total().funding_x18 != journal.pnl_summary().total.funding_x18
    # When the journal's write fails (a locked or full disk)
    real = journal.record_fundings

    def failing(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(journal, "record_fundings", failing)
    with pytest.raises(OSError):
        books.write_readings()
    assert journal.funding_history("ETH") == []
    # Then the readings are still held: the next access writes both, in order, and the books' PnL is
    # the journal's (not a cached total that counted readings never written)
    monkeypatch.setattr(journal, "record_fundings", real)
    total = books.pnl_total()
    assert [(r.block, r.amount_x18) for r in journal.funding_history("ETH")] == [(13, 5 * E18), (14, 7 * E18)]
    assert total == journal.pnl_summary().total
    journal.close()
