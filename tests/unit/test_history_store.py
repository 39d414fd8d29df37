"""The history file: rows round-trip exactly, parts are atomic and resumable, a history of another
chain is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.history.record import resume_block
from keeper.history.store import (
    BlockRecord,
    HistoryWriter,
    count_blocks,
    last_recorded_block,
    read_blocks,
    read_meta,
    recorded_range,
    require_within,
)

META = {"chain_id": 31337, "account": None, "sources": {"markets": []}}


def _record(block: int, l1: bool = False) -> BlockRecord:
    return BlockRecord(block=block, timestamp=1_700_000_000 + 2 * block, hash=block.to_bytes(32, "big"),
                       parent_hash=max(0, block - 1).to_bytes(32, "big"), base_fee_wei=10**9 + block, gas_used=21_000 * block,
                       gas_limit=30_000_000, l1=(7, None, 1368, 810_949, 41_000_000_000) if l1 else None,
                       window_ticks={"0xpool": -887_000 + block},
                       reads=[(b"\x01" * 36, block.to_bytes(64, "big")), (b"\x02" * 4, b"")])


def test_given_written_blocks_when_read_then_every_field_is_the_same(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=3)
    written = [_record(b, l1=b % 2 == 0) for b in range(10, 17)]
    for record in written:
        writer.append(record)
    writer.flush()
    assert list(read_blocks(tmp_path / "h")) == written
    assert len(list((tmp_path / "h").glob("part-*.parquet"))) == 3  # 3 + 3 + 1
    assert recorded_range(tmp_path / "h") == (10, 16) and last_recorded_block(tmp_path / "h") == 16
    assert read_meta(tmp_path / "h")["chain_id"] == 31337


def test_given_a_range_when_read_then_only_its_blocks_and_count(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=4)
    for b in range(0, 12):
        writer.append(_record(b))
    writer.flush()
    assert [r.block for r in read_blocks(tmp_path / "h", 3, 9)] == list(range(3, 10))
    assert count_blocks(tmp_path / "h", 3, 9) == 7
    assert count_blocks(tmp_path / "h") == 12


def test_given_an_unflushed_part_when_stopped_then_the_written_parts_stay_readable(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=2)
    for b in range(5):
        writer.append(_record(b))  # block 4 waits in memory: lost, as a stopped recording loses it
    assert [r.block for r in read_blocks(tmp_path / "h")] == [0, 1, 2, 3]
    assert not list((tmp_path / "h").glob("*.tmp"))


def test_given_a_history_of_another_chain_when_appending_then_refused(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "h", META)
    writer.append(_record(1))
    writer.flush()
    with pytest.raises(ConfigError, match="another chain"):
        HistoryWriter(tmp_path / "h", META | {"chain_id": 10})
    HistoryWriter(tmp_path / "h", META)  # the same chain and contracts: resumed


def test_given_a_history_of_another_account_when_appending_then_the_refusal_names_account(tmp_path: Path) -> None:
    # Given a history recorded without an account (the audit: resuming it with --account ADDR said
    # "holds a history of other contracts or another chain (chain 31337)": the same chain)
    writer = HistoryWriter(tmp_path / "h", META)
    writer.append(_record(1))
    writer.flush()
    with pytest.raises(ConfigError, match=r"^--account: .*h was recorded without an account, this recording has "
                                          r"0x70997970C51812dc3A010C7d01b50e0d17dc79C8; choose another --out"):
        HistoryWriter(tmp_path / "h", META | {"account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"})
    with pytest.raises(ConfigError, match="other contracts or another chain"):  # account and chain: the chain first
        HistoryWriter(tmp_path / "h", META | {"account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "chain_id": 10})


def test_given_no_history_when_read_then_an_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no recorded blocks"):
        list(read_blocks(tmp_path / "missing"))


def test_given_the_same_answer_in_several_blocks_when_read_then_one_bytes_object_equal_to_it(tmp_path: Path) -> None:
    # Given blocks whose calldata is the same and whose answer repeats (a quiet pool)
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=10)
    written = [replace(_record(b), reads=[(b"\x01" * 36, b"same" * 8), (b"\x02" * 4, b.to_bytes(32, "big"))])
               for b in range(6)]
    for record in written:
        writer.append(record)
    writer.flush()
    # When read back
    read = list(read_blocks(tmp_path / "h"))
    # Then every field is as written, and a repeated answer is one object (compared once by the replay)
    assert read == written
    assert len({id(r.reads[0][1]) for r in read}) == 1 and len({id(r.reads[0][0]) for r in read}) == 1


def test_given_a_range_outside_the_history_when_checked_then_the_option_is_named(tmp_path: Path) -> None:
    # Given a history of blocks 10-16 (the audit: --to-block 9999 ran 10-16 and said nothing)
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=3)
    for b in range(10, 17):
        writer.append(_record(b))
    writer.flush()
    # Then a range inside it passes, and one reaching outside names the option and the recorded span
    require_within(tmp_path / "h", 10, 16)
    require_within(tmp_path / "h")
    with pytest.raises(ConfigError, match=r"^--to-block 9999: history .* holds blocks 10-16$"):
        require_within(tmp_path / "h", 12, 9999)
    with pytest.raises(ConfigError, match=r"^--from-block 3: history .* holds blocks 10-16$"):
        require_within(tmp_path / "h", 3, None)
    # a reversed range inside it (the audit: --sweep ... --from-block 14 --to-block 12 said
    # "--folds 3: -1 blocks cannot make 4 windows"): named as the backtest names it
    with pytest.raises(ConfigError, match=r"^--from-block 14 is after --to-block 12$"):
        require_within(tmp_path / "h", 14, 12)


@pytest.mark.parametrize("name", ["part-000000000001-000000000002.parquet", "part-x.parquet"])
def test_given_a_part_that_is_not_parquet_or_misnamed_when_read_then_one_error_names_the_file(tmp_path: Path, name: str) -> None:
    # Given a history whose first part is junk (the audit: pyarrow's ArrowInvalid traceback, exit 1)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / name).write_bytes(b"junk\n")
    # Then reading it is a ConfigError naming the history and the file, for the backtest and the recorder
    with pytest.raises(ConfigError, match=f"history .*h: {name} is not a keeper history part"):
        list(read_blocks(tmp_path / "h"))
    with pytest.raises(ConfigError, match=f"{name} is not a keeper history part"):
        resume_block(tmp_path / "h", 150)  # before: "h ends at block 2; recording from 150 would leave blocks 3-149 out"
    with pytest.raises(ConfigError, match=f"{name} is not a keeper history part"):
        HistoryWriter(tmp_path / "h", META)


def test_given_a_later_part_that_is_junk_when_read_then_one_error_names_it(tmp_path: Path) -> None:
    # Given a good first part and a junk second one (a copy cut short)
    writer = HistoryWriter(tmp_path / "h", META, part_blocks=3)
    for b in range(10, 13):
        writer.append(_record(b))
    writer.flush()
    (tmp_path / "h" / "part-000000000013-000000000015.parquet").write_bytes(b"PAR1 cut short")
    # Then the blocks before it read, and reaching it is a ConfigError naming it
    with pytest.raises(ConfigError, match="part-000000000013-000000000015.parquet is not a keeper history part"):
        list(read_blocks(tmp_path / "h"))


def test_given_a_part_that_cannot_be_read_at_all_then_it_is_not_called_junk(tmp_path: Path) -> None:
    # A part the process cannot open (here a directory under a part's name; permissions or an I/O
    # error alike) is "cannot read", not "not a keeper history part", which invites deleting it
    (tmp_path / "h" / "part-000000000001-000000000002.parquet").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"history .*h: cannot read part-000000000001-000000000002.parquet \(") as raised:
        list(read_blocks(tmp_path / "h"))
    assert "not a keeper history part" not in str(raised.value)
