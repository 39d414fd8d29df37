"""Writes tests/data/journal-v1.sqlite (+ .json: what that code read back from it) with the journal
code of commit 111b43e (schema version 1, before the journal became a package), for the migration
test. Run from a checkout of that commit: `python tests/data/make_journal_v1.py OUT_DIR`."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from keeper.journal import ChainPosition, Journal
from keeper.pnl_split import TradeFees
from keeper.types import Direction
from tests.unit.journal_builders import E18, make_fills, trade

out = Path(sys.argv[1])
path = out / "journal-v1.sqlite"
path.unlink(missing_ok=True)
with Journal(path) as journal:
    # ETH: open, funding, resize (still open); BTC: open then close; a skip; a reconcile difference
    trade(journal, "open", make_fills(-E18, 5 * E18), 100, -E18, fees=TradeFees(perp_fee_x18=3 * E18))
    journal.record_funding("ETH", block=105, pending_funding_x18=-2 * E18, timestamp_s=1_700_000_105)
    trade(journal, "resize", make_fills(-E18 // 2, 2 * E18), 110, -3 * E18 // 2)
    trade(journal, "open", make_fills(E18, -(10**17), usdc_raw=2_995_000_000), 120, E18, market="BTC",
          direction=Direction.LONG_PERP)
    trade(journal, "close", make_fills(-E18, 4 * E18, usdc_raw=-2_990_000_000), 130, 0, market="BTC",
          direction=Direction.LONG_PERP, settled_funding_x18=10**16)
    journal.record_skip(block=131, strategy="carry", market="BTC", reason="basis 3 bps < 10")
    journal.reconcile({"ETH": ChainPosition(-3 * E18 // 2 - 7)}, block=140, timestamp_s=1_700_000_140)
    status = journal.status().to_json_dict()
    positions = [[p.id, p.position.market, p.status, str(p.position.perp_base_x18), str(p.position.spot_raw),
                  str(p.pnl.total_x18)] for p in journal.positions()]
db = sqlite3.connect(path)
counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - table names from sqlite_master
          for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")}
db.close()
(out / "journal-v1.json").write_text(json.dumps({"status": status, "positions": positions, "rows": counts},
                                                indent=1, sort_keys=True) + "\n")
