"""A journal written by the code before the split (commit 111b43e, schema version 1;
tests/data/make_journal_v1.py made tests/data/journal-v1.sqlite and recorded what that code read
back in journal-v1.json) is upgraded in place when opened, and every row survives. So is a version 2
journal, with or without the pair tables the pair desk created on first use before version 3."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import keeper.journal.schema as schema
from keeper.journal import SCHEMA_VERSION, Journal, JournalError, JournalSchemaError, PositionLeg
from tests.unit.journal_builders import E18, make_fills, trade

DATA = Path(__file__).resolve().parents[1] / "data"
OLD = json.loads((DATA / "journal-v1.json").read_text())
LEGS_ETH = (PositionLeg(0, "perp", "perp_v2"), PositionLeg(1, "spot", "uniswap_v3"))


@pytest.fixture()
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    shutil.copyfile(DATA / "journal-v1.sqlite", path)
    return path


def _raw(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_the_fixture_is_a_version_1_journal(old_file: Path) -> None:
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    assert _raw(old_file, "SELECT name FROM sqlite_master WHERE name = 'position_legs'") == []


def test_an_old_journal_upgrades_in_place_and_every_row_survives(old_file: Path) -> None:
    # When the new code opens a version 1 journal
    with Journal(old_file) as journal:
        status = journal.status().to_json_dict()
        positions = [[p.id, p.position.market, p.status, str(p.position.perp_base_x18), str(p.position.spot_raw),
                      str(p.pnl.total_x18)] for p in journal.positions()]
        legs = {p.id: p.legs for p in journal.positions()}
    # Then it is the current version, and every table the old code wrote has all its rows
    assert SCHEMA_VERSION == 3
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    for table, count in OLD["rows"].items():
        assert _raw(old_file, f"SELECT count(*) FROM {table}") == [(count,)], table  # noqa: S608
    # And the new code reads them as the old code did: positions, PnL, funding, status
    assert positions == OLD["positions"]
    assert status["schema_version"] == SCHEMA_VERSION and OLD["status"]["schema_version"] == 1
    for key in ("last_block", "latest_funding", "pending_transactions", "pnl"):
        assert status[key] == OLD["status"][key], key
    assert [{k: v for k, v in p.items() if k != "legs"} for p in status["positions"]] == OLD["status"]["positions"]
    # And each old position now has its legs: the perp leg on Perp v2 and its spot venue
    assert legs == {1: LEGS_ETH, 2: (PositionLeg(0, "perp", "perp_v2"), PositionLeg(1, "spot", "uniswap_v3"))}


def test_the_upgraded_journal_keeps_working(old_file: Path) -> None:
    with Journal(old_file) as journal:
        # the open ETH position (-1.5 ETH + 7 wei after the old reconcile) closes through the new code
        trade(journal, "close", make_fills(3 * E18 // 2 + 7, -E18), 150, 0)
        assert journal.open_positions() == {}
        trade(journal, "open", make_fills(-E18, 5 * E18), 160, -E18, market="BTC")
        opened = journal.positions("open")
        assert [p.position.market for p in opened] == ["BTC"] and opened[0].legs == LEGS_ETH
        assert journal.realized(1) is not None and journal.realized(1).split.total_x18 != 0


def test_a_fresh_journal_and_an_upgraded_one_have_the_same_schema(old_file: Path, tmp_path: Path) -> None:
    Journal(old_file).close()
    Journal(tmp_path / "fresh.sqlite").close()
    query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    assert _raw(old_file, query) == _raw(tmp_path / "fresh.sqlite", query)


def test_a_failed_upgrade_leaves_the_old_version_whole(old_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a migration whose last statement fails
    monkeypatch.setitem(schema.MIGRATIONS, 2, [*schema.MIGRATIONS[2], "INSERT INTO no_such_table VALUES (1)"])
    with pytest.raises((JournalError, JournalSchemaError)):
        Journal(old_file)
    # Then nothing of it is left: still version 1, no legs table, every row there
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    assert _raw(old_file, "SELECT name FROM sqlite_master WHERE name = 'position_legs'") == []
    assert _raw(old_file, "SELECT count(*) FROM positions") == [(OLD["rows"]["positions"],)]


def test_read_only_never_upgrades_and_says_how(old_file: Path) -> None:
    with pytest.raises(JournalSchemaError, match="older than this keeper's .*keeper run"):
        Journal(old_file, readonly=True)
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]


def test_status_speaks_in_legs(old_file: Path) -> None:
    from keeper.status import StatusView

    with Journal(old_file) as journal:
        report = journal.status()
    text = StatusView(report, chain_checked="no node", mismatches=()).as_text()
    assert "ETH   short_perp  perp on perp_v2 + spot on uniswap_v3: perp -1.500000" in text
    legs = report.to_json_dict()["positions"][0]["legs"]
    assert legs == [{"leg": 0, "venue_kind": "perp", "venue": "perp_v2"}, {"leg": 1, "venue_kind": "spot", "venue": "uniswap_v3"}]



# The pair tables as the pair desk created them on first use in a version 2 journal (d58fcca).
_V2_PAIR_DDL = (
    """CREATE TABLE IF NOT EXISTS pair_positions (
        id INTEGER PRIMARY KEY, market_a TEXT NOT NULL, market_b TEXT NOT NULL, side TEXT NOT NULL,
        status TEXT NOT NULL, base_x18_a TEXT NOT NULL, base_x18_b TEXT NOT NULL, hedge_ratio_x18 TEXT NOT NULL,
        entry_block INTEGER NOT NULL, entry_timestamp_s INTEGER NOT NULL, entry_beta REAL NOT NULL,
        entry_z REAL NOT NULL, entry_spread REAL NOT NULL, entry_mean REAL NOT NULL, entry_scale REAL NOT NULL,
        quote_x18 TEXT NOT NULL, fees_x18 TEXT NOT NULL,
        funding_settled_x18 TEXT NOT NULL, gas_x18 TEXT NOT NULL, closed_block INTEGER, close_reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS pair_trades (
        id INTEGER PRIMARY KEY, pair_id INTEGER, kind TEXT NOT NULL, strategy TEXT NOT NULL, block INTEGER NOT NULL,
        timestamp_s INTEGER NOT NULL, market_a TEXT NOT NULL, market_b TEXT NOT NULL, side TEXT NOT NULL,
        reason TEXT NOT NULL, expected_net_usd REAL, predicted TEXT NOT NULL, bounds TEXT NOT NULL,
        status TEXT NOT NULL, tx_hash TEXT, fills TEXT, gas_used INTEGER, fee_paid_wei TEXT, gas_x18 TEXT,
        perp_fee_x18 TEXT, settled_funding_x18 TEXT, detail TEXT)""",
)


def _make_v2(path: Path, *, with_pairs: bool) -> None:
    """The version 1 fixture upgraded by version 2's migration alone (what d58fcca wrote), and, if
    `with_pairs`, an open pair booked in the tables the desk made for itself."""
    db = sqlite3.connect(path)
    try:
        with db:
            for statement in schema.MIGRATIONS[2]:
                db.execute(statement)
            db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
            if with_pairs:
                for statement in _V2_PAIR_DDL:
                    db.execute(statement)
                db.execute("INSERT INTO pair_positions VALUES (1, 'ETH', 'BTC', 'short_spread', 'open', '-3000000000000000000',"
                           " '150000000000000000', '1020000000000000000', 200, 1700000000, 1.02, 4.5, -2.89, -2.9, 0.002,"
                           " '11790302394651807', '9000000000000000000', '0', '6000000000000000000', NULL, NULL)")
                db.execute("INSERT INTO pair_trades (id, pair_id, kind, strategy, block, timestamp_s, market_a, market_b,"
                           " side, reason, predicted, bounds, status, gas_used) VALUES (1, 1, 'open', 'pairs_spread', 200,"
                           " 1700000000, 'ETH', 'BTC', 'short_spread', 'z +4.5', '{}', '{}', 'included', 2037780)")
    finally:
        db.close()


@pytest.mark.parametrize("with_pairs", [False, True])
def test_a_version_2_journal_upgrades_in_place_with_its_pairs(old_file: Path, tmp_path: Path, with_pairs: bool) -> None:
    from keeper.pairs_journal import PairJournal

    _make_v2(old_file, with_pairs=with_pairs)
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    with Journal(old_file) as journal:
        book = PairJournal(journal)
        held = book.open_position()
        trades = book.trades()
        assert len(journal.positions()) == OLD["rows"]["positions"]
    assert _raw(old_file, "SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]
    if with_pairs:  # the pair booked before the upgrade is still open, to the wei
        assert held is not None and held.pair_id == 1 and held.base_x18_a == -3 * E18 and held.entry_z == 4.5
        assert [(t["kind"], t["gas_used"]) for t in trades] == [("open", 2037780)]
    else:
        assert held is None and trades == []
    Journal(tmp_path / "fresh.sqlite").close()
    query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    assert _raw(old_file, query) == _raw(tmp_path / "fresh.sqlite", query)


def test_the_pair_tables_are_the_schemas_and_the_desk_creates_none(tmp_path: Path) -> None:
    from keeper.pairs_journal import PairJournal

    with Journal(tmp_path / "j.sqlite") as journal:
        before = _raw(tmp_path / "j.sqlite", "SELECT name FROM sqlite_master ORDER BY name")
        assert ("pair_positions",) in before and ("pair_trades",) in before
        PairJournal(journal)
    assert _raw(tmp_path / "j.sqlite", "SELECT name FROM sqlite_master ORDER BY name") == before
    with Journal(tmp_path / "j.sqlite", readonly=True) as journal:  # a read-only reader sees the empty books
        assert PairJournal(journal).open_position() is None and PairJournal(journal).trades() == []
