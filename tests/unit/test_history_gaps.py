"""A history has no holes: a recording resumes right after its last block, a --from-block past
it is refused, and a history that has a hole anyway (parts deleted, an older keeper) is never
read across it: the hole is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.history.record import resume_block
from keeper.history.store import HistoryWriter, read_blocks, recorded_gaps, require_contiguous

from .test_history_store import META, _record


def _history(path: Path, *spans: tuple[int, int]) -> Path:
    for first, last in spans:  # one recording per span: its own part(s)
        writer = HistoryWriter(path, META)
        for b in range(first, last + 1):
            writer.append(_record(b))
        writer.flush()
    return path


def test_given_a_history_when_resumed_then_it_continues_right_after_its_last_block(tmp_path: Path) -> None:
    h = _history(tmp_path / "h", (324, 437))
    assert resume_block(h, None) == 438  # no --from-block: resume (also when following the head)
    assert resume_block(h, 400) == 438  # inside the history: after it
    assert resume_block(h, 438) == 438
    assert resume_block(tmp_path / "new", 1396) is None  # no history yet: where the caller says


def test_given_a_from_block_past_the_end_when_recording_then_refused_naming_the_option_and_the_hole(tmp_path: Path) -> None:
    h = _history(tmp_path / "h", (324, 437))
    with pytest.raises(ConfigError, match=r"^--from-block 1396: .* ends at block 437; .* blocks 438-1395"):
        resume_block(h, 1396)


def test_given_a_from_block_before_the_start_when_recording_then_refused_naming_the_blocks_left_out(tmp_path: Path) -> None:
    # Given a history of blocks 324-437 (the audit: --from-block 90 --to-block 400 printed
    # "recorded 0 blocks", exit 0, and blocks 90-323 were never recorded, said nowhere)
    h = _history(tmp_path / "h", (324, 437))
    with pytest.raises(ConfigError, match=r"^--from-block 90: .*h holds blocks 324-437; blocks 90-323 cannot be added"):
        resume_block(h, 90)
    assert resume_block(h, 324) == 438  # its own first block: the same command again resumes


def test_given_a_hole_between_parts_when_read_then_refused_naming_it(tmp_path: Path) -> None:
    h = _history(tmp_path / "h", (324, 437), (1396, 1406))
    assert recorded_gaps(h) == [(438, 1395)]
    with pytest.raises(ConfigError, match=r"blocks 438-1395 were never recorded.*--to-block 437 or --from-block 1396"):
        read_blocks(h)
    with pytest.raises(ConfigError, match="438-1395"):
        require_contiguous(h, 400, 1400)
    # each side on its own reads
    assert [r.block for r in read_blocks(h, 1396)] == list(range(1396, 1407))
    assert len(list(read_blocks(h, None, 437))) == 114
    assert recorded_gaps(h, 1396, 1406) == [] and recorded_gaps(h, 0, 437) == []


def test_given_contiguous_parts_then_no_gap(tmp_path: Path) -> None:
    h = _history(tmp_path / "h", (0, 9), (10, 12), (13, 13))
    assert recorded_gaps(h) == []
    assert [r.block for r in read_blocks(h)] == list(range(14))
