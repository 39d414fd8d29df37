"""A journal written by the code before the split (commit 111b43e, schema version 1;
tests/data/make_journal_v1.py made tests/data/journal-v1.sqlite and recorded what that code read
back in journal-v1.json) is upgraded in place when opened, and every row survives."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import keeper.journal.schema as schema
from keeper.journal import SCHEMA_VERSION, Journal, JournalError, JournalSchemaError, PositionLeg
from tests.unit.test_journal import E18, make_fills, trade

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
    assert SCHEMA_VERSION == 2
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
