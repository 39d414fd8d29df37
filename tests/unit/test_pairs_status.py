"""Open pairs in `keeper status` (legs, sizes, hedge ratio, entry z, unrealised PnL at the exact close
quote) and the daily loss limit counting pair PnL as well as basis PnL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.journal import Journal
from keeper.pairs_journal import PairJournal
from keeper.pairs_status import fetch_open_pairs, pair_leg_sizes_x18, with_unrealised
from keeper.pairs_types import PairIntent, SpreadFit
from keeper.quotes_pair import quote_pair_trade
from keeper.risk import assess_risk
from keeper.status import build_status
from keeper.types import ONE_X18, PnlEstimate
from keeper.venues.executor import PairFills

from .journal_builders import E18, make_fills, trade
from .test_pairs_spread import NOW, OPEN_FILLS, account, views
from .test_pnl_model import snapshot_of

LOSING_CLOSE = PairFills(3 * ONE_X18, -9_100 * ONE_X18, 0, -ONE_X18 // 20, 2_995 * ONE_X18, 0, 0)
FIT = SpreadFit(1.0, -3.0, 0.001, 0.9, 30, -2.997, 3.0)


def open_intent() -> PairIntent:
    return PairIntent("pairs_spread", "open", "ETH", "BTC", "short_spread", -3 * ONE_X18, ONE_X18 // 20, ONE_X18,
                      "test", PnlEstimate(50, 0, 0, 0, 0, 0), 100, 102, FIT)


def book_open(book: PairJournal, fills: PairFills = OPEN_FILLS, gas_x18: int = 10**16) -> int:
    trade_id = book.record_trade(open_intent(), block=100, timestamp_s=NOW, predicted=fills, bounds={"x": 1}, pair_id=None)
    book.record_outcome(trade_id, status="included", tx_hash="0x01", fills=fills, gas_used=1_600_000, fee_paid_wei=1,
                        gas_x18=gas_x18, perp_fee_x18=12 * ONE_X18, settled_funding_x18=0, detail="included")
    return book.open_pair(open_intent(), trade_id, fills, block=100, timestamp_s=NOW, gas_x18=gas_x18,
                          perp_fee_x18=12 * ONE_X18, settled_funding_x18=0)


# ------------------------------------------------------------------------------ the daily loss limit
def test_given_a_losing_pair_closed_today_when_summing_the_day_then_basis_and_pair_pnl_both_count(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        # a basis round trip that made +1 USD (test_journal's)
        trade(journal, "open", make_fills(-E18, 5 * E18), 10, -E18, fee_paid_wei=0)
        trade(journal, "close", make_fills(E18, -4 * E18, spot_raw=-E18, usdc_raw=2_990_000_000), 20, 0, fee_paid_wei=0)
        basis_only = journal.realized_today_usd()
        assert basis_only == pytest.approx(1.0)
        # a pair closed at a loss: quote 9,000 - 3,010 - 9,100 + 2,995 = -115 USD, 2 USD funding, 0.02 USD gas
        book = PairJournal(journal)
        pair_id = book_open(book)
        assert journal.realized_today_usd() == pytest.approx(basis_only)  # open pairs are not realised
        book.book_close(pair_id, LOSING_CLOSE, block=110, reason="thesis broken", gas_x18=10**16,
                        perp_fee_x18=12 * ONE_X18, settled_funding_x18=2 * ONE_X18)
        # and a pair open that reverted on chain: its gas, tied to no pair
        reverted = book.record_trade(open_intent(), block=120, timestamp_s=NOW, predicted=OPEN_FILLS, bounds={},
                                     pair_id=None)
        book.record_outcome(reverted, status="reverted", tx_hash="0x02", fills=None, gas_used=900_000, fee_paid_wei=1,
                            gas_x18=3 * 10**16, perp_fee_x18=0, settled_funding_x18=0, detail="reverted")
        today = journal.realized_today_usd()
        assert today == pytest.approx(basis_only - 115 - 2 - 0.02 - 0.03)
        assert journal.realized_today_usd(now_s=time.time() + 86_400) == 0.0  # tomorrow starts afresh
        snapshot = snapshot_of(*views(), account=account())
    risk = load_config(None, environ={}, overrides={"risk": {"daily_loss_limit_usd": 100}}).risk
    view = assess_risk(snapshot, [], {}, risk, head_block=snapshot.block_number, gas_price_wei=10**8,
                       realized_today_usd=today, kill_switch=False)
    # the pair desk asks can_open for both legs: refused
    assert "daily loss -116.05 USD hit the limit 100" in (view.can_open("ETH") or "")
    calm = assess_risk(snapshot, [], {}, risk, head_block=snapshot.block_number, gas_price_wei=10**8,
                       realized_today_usd=basis_only, kill_switch=False)
    assert calm.no_new_positions is None  # the basis PnL alone would not have stopped it


# ------------------------------------------------------------------------------ keeper status
def test_given_an_open_pair_when_asking_for_status_then_its_legs_sizes_beta_and_entry_z_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        book_open(PairJournal(journal))
    config = load_config(None, environ={}, overrides={"monitoring": {"journal": str(path)}})
    view = build_status(config)
    (pair,) = view.pairs
    assert (pair.market_a, pair.market_b, pair.side) == ("ETH", "BTC", "short_spread")
    assert (pair.base_x18_a, pair.base_x18_b, pair.hedge_ratio_x18) == (-3 * ONE_X18, ONE_X18 // 20, ONE_X18)
    assert pair.entry_z == FIT.z and pair.entry_block == 100
    assert pair.booked_x18 == (9_000 - 3_010) * ONE_X18 - 10**16 and pair.unrealised_x18 is None  # no chain read
    text = view.as_text()
    assert "no open positions" not in text
    assert ("pair 1 short_spread ETH/BTC: perp ETH -3.000000, perp BTC +0.050000, hedge ratio 1.0000, entry z +3.00 "
            "at block 100, unrealised n/a (chain not read)") in text
    assert view.as_json()["pairs"][0]["base_x18_a"] == str(-3 * ONE_X18)
    assert pair_leg_sizes_x18(view.pairs) == {"ETH": -3 * ONE_X18, "BTC": ONE_X18 // 20}


def test_given_a_snapshot_when_valuing_an_open_pair_then_unrealised_is_its_books_plus_the_exact_close(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        book_open(PairJournal(journal))
        (pair,) = fetch_open_pairs(journal)
    snapshot = snapshot_of(*views(), account=account())
    valued = with_unrealised(pair, snapshot)
    close = quote_pair_trade(snapshot.markets["ETH"], snapshot.markets["BTC"], "close", position_x18_a=-3 * ONE_X18,
                             position_x18_b=ONE_X18 // 20, hedge_ratio_x18=ONE_X18).predicted
    assert close.perp_quote_x18_a < 0 < close.perp_quote_x18_b  # buys ETH back, sells the BTC
    assert valued.unrealised_x18 == pair.booked_x18 + close.perp_quote_x18_a + close.perp_quote_x18_b
    assert isinstance(valued.unrealised_x18, int) and "unrealised" in valued.as_text()
    gone = with_unrealised(pair, snapshot_of(views()[0], account=account()))  # BTC not in the snapshot
    assert gone.unrealised_x18 is None and "no close quote" in gone.unrealised_note
