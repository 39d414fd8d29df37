"""A recording on a devnet never leaves a hole, and a backtest never runs across one (the audit:
`record --from-block` past the end of a history wrote a hole, and the backtest ran across it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.history.backtest import run_backtest
from keeper.history.record import record_history
from keeper.history.store import read_blocks, recorded_gaps

pytestmark = pytest.mark.integration


def test_record_resumes_without_a_hole_and_a_backtest_refuses_one(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(9):
        devnet.rpc.call("evm_mine", [])
    head = devnet.rpc.block_number()
    devnet.manifest.write(tmp_path / "manifest.json")
    settings = load_config(None, environ={}, overrides={"chain": {"manifest": tmp_path / "manifest.json"},
                                                        "monitoring": {"journal": tmp_path / "j.sqlite"}})
    h = tmp_path / "h"

    def record(from_block: int | None, to_block: int) -> int:
        return record_history(settings, devnet.rpc, h, from_block=from_block, to_block=to_block, follow=False,
                              account=None)[0]

    assert record(head - 8, head - 6) == 3
    # Given a --from-block past the end of the history: refused, nothing written
    with pytest.raises(ConfigError, match=f"^--from-block {head - 2}: .*blocks {head - 5}-{head - 3}"):
        record(head - 2, head)
    # Given no --from-block: it resumes right after the last block
    assert record(None, head - 3) == 3
    assert record(None, head) == 3
    assert [r.block for r in read_blocks(h)] == list(range(head - 8, head + 1)) and recorded_gaps(h) == []
    # Given a hole anyway (a part gone): the backtest refuses it, naming it; each side still runs
    middle = sorted(h.glob("part-*.parquet"))[1]
    middle.unlink()
    with pytest.raises(ConfigError, match=f"blocks {head - 5}-{head - 3} were never recorded"):
        run_backtest(h, settings, pipeline=False, work_dir=tmp_path / "w1")
    assert run_backtest(h, settings, from_block=head - 2, pipeline=False, work_dir=tmp_path / "w2").blocks == 3
