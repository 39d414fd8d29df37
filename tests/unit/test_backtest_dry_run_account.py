"""`keeper backtest --dry-run` decides on the recorded account: a history recorded without one is
refused, naming the option (the audit: it ran, saw no collateral at every block and reported 0
trades, exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.history.backtest import run_backtest
from keeper.history.store import BlockRecord, HistoryWriter

META = {"chain_id": 31337, "account": None, "sources": {"markets": []}}


def _history(path: Path) -> Path:
    writer = HistoryWriter(path, META)
    writer.append(BlockRecord(block=5, timestamp=1_700_000_000, hash=b"\x01" * 32, parent_hash=b"\x00" * 32,
                              base_fee_wei=1, gas_used=1, gas_limit=2, l1=None, window_ticks={}, reads=[]))
    writer.flush()
    return path


def test_a_dry_run_of_a_history_without_an_account_is_refused(tmp_path: Path) -> None:
    history = _history(tmp_path / "h")
    with pytest.raises(ConfigError, match=r"^--dry-run: history .* was recorded without an account"):
        run_backtest(history, load_config(None, environ={}), mode="dry_run", pipeline=False, work_dir=tmp_path / "w")
