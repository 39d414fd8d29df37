"""The history file: a Parquet dataset (a directory of part files, one row per block).

Each row is what the keeper's collector read at that block, raw: every Multicall3 aggregate3
calldata it sent and the node's return bytes (`reads`), the bitmap-window centres the collector
used to build its calldata (`window_ticks`, so that a replay rebuilds the identical calls), the
block header fields, the base fee, and the OP-stack L1-fee inputs where the chain has the
GasPriceOracle. The static facts every block shares (chain id, addresses, pool fees and tick
spacings, oracle decimals, Perp's config) are in each part's schema metadata.

Why Parquet (pyarrow) and not SQLite: the backtest reads whole columns in block order, which is
what a columnar file is for (one sequential read per column, zstd-compressed; the calldata,
identical in most blocks, is dictionary-encoded to almost nothing), and parts written atomically
(temporary name, then rename) make the recording resumable: a stopped `keeper record` loses at
most the part in progress, and a restart continues after the last block on disk.

A reorg drops the orphaned blocks (truncate_history) in steps that each leave a history a restart
resumes: the parts past the new end are deleted last first, then the part the new end falls in is
rewritten under its shorter name, then the longer one is deleted. Two parts that start at the same
block are a truncation stopped between those two steps: the shorter one is the history's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from keeper.errors import ConfigError
from keeper.frozen import quick_init

FORMAT_VERSION = 2  # 2: l1_fee_wei
META_KEY = b"keeper.history"
SCHEMA = pa.schema([
    ("block", pa.int64()),
    ("timestamp", pa.int64()),
    ("hash", pa.binary()),
    ("parent_hash", pa.binary()),
    ("base_fee_wei", pa.int64()),
    ("gas_used", pa.int64()),
    ("gas_limit", pa.int64()),
    ("l1_base_fee_wei", pa.int64()),  # null: no GasPriceOracle on this chain
    ("l1_blob_base_fee_wei", pa.int64()),
    ("l1_base_fee_scalar", pa.int64()),
    ("l1_blob_base_fee_scalar", pa.int64()),
    ("l1_fee_wei", pa.int64()),  # GasPriceOracle.getL1Fee of a typical executor trade (simulate's PAPER_TX_BYTES)
    ("window_ticks", pa.string()),  # JSON {pool: tick}: the collector's bitmap-window centres
    ("reads", pa.list_(pa.struct([("calldata", pa.binary()), ("result", pa.binary())]))),
])


@quick_init  # one per recorded block read (keeper/frozen.py)
@dataclass(frozen=True)
class BlockRecord:
    block: int
    timestamp: int
    hash: bytes
    parent_hash: bytes
    base_fee_wei: int
    gas_used: int
    gas_limit: int
    l1: tuple[int | None, ...] | None  # l1 base fee, blob base fee, base fee scalar, blob base fee scalar, L1 fee
    window_ticks: Mapping[str, int]
    reads: Sequence[tuple[bytes, bytes]]  # (aggregate3 calldata, return bytes), in the order sent

    def row(self) -> dict[str, Any]:
        l1 = self.l1 or (None, None, None, None, None)
        return {"block": self.block, "timestamp": self.timestamp, "hash": self.hash, "parent_hash": self.parent_hash,
                "base_fee_wei": self.base_fee_wei, "gas_used": self.gas_used, "gas_limit": self.gas_limit,
                "l1_base_fee_wei": l1[0], "l1_blob_base_fee_wei": l1[1], "l1_base_fee_scalar": l1[2],
                "l1_blob_base_fee_scalar": l1[3], "l1_fee_wei": l1[4], "window_ticks": json.dumps(dict(self.window_ticks)),
                "reads": [{"calldata": c, "result": r} for c, r in self.reads]}


class HistoryWriter:
    """Appends blocks to a history directory in parts of `part_blocks` rows (or what came in
    `flush_every_s`), each written atomically. `meta` (static facts) must match an existing history's."""

    def __init__(self, path: Path, meta: Mapping[str, Any], part_blocks: int = 2_000, flush_every_s: float = 60.0) -> None:
        self.path = path
        self.flush_every_s = flush_every_s  # following the head: a part at least every minute
        self._flushed_at = time.monotonic()
        self.meta = json.loads(json.dumps(dict(meta, format_version=FORMAT_VERSION)))  # as stored
        self.part_blocks = part_blocks
        self._rows: list[dict[str, Any]] = []
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path}: exists and is not a history directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {path}: cannot create it ({exc.strerror or exc})") from exc
        existing = read_meta(path) if _parts(path) else None
        if existing is not None and _comparable(existing) != _comparable(self.meta | {"account": existing.get("account")}):
            raise ConfigError(f"--out {path}: holds a history of other contracts or another chain "
                              f"(chain {existing.get('chain_id')}); choose another --out")
        if existing is not None and str(existing.get("account")).lower() != str(self.meta.get("account")).lower():
            raise ConfigError(f"--account: {path} was recorded {_with_account(existing)}, this recording has "
                              f"{self.meta.get('account') or 'none'}; choose another --out (or record with its account)")

    def recorded_hash(self, block: int) -> bytes | None:
        """Block `block`'s recorded hash, unflushed or on disk (None: not recorded)."""
        first = self._rows[0]["block"] if self._rows else None
        if first is not None and first <= block <= self._rows[-1]["block"]:
            return self._rows[block - first]["hash"]  # type: ignore[no-any-return]
        return recorded_hashes(self.path, block, block).get(block)

    def first_block(self) -> int | None:
        """The history's first block, unflushed or on disk (None: none yet)."""
        parts = _parts(self.path)
        return _span(parts[0])[0] if parts else (self._rows[0]["block"] if self._rows else None)

    def first_parent_hash(self) -> bytes:
        """The parent hash recorded with the history's first block (unflushed or on disk)."""
        parts = _parts(self.path)
        if not parts:
            return self._rows[0]["parent_hash"]  # type: ignore[no-any-return]
        first = _span(parts[0])[0]
        return recorded_hashes(self.path, first, first, column="parent_hash")[first]

    def drop_after(self, block: int) -> None:
        """Forget the unflushed blocks after `block` (a reorg orphaned them)."""
        self._rows = [row for row in self._rows if row["block"] <= block]

    def append(self, record: BlockRecord) -> None:
        self._rows.append(record.row())
        if len(self._rows) >= self.part_blocks or time.monotonic() - self._flushed_at >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        if not self._rows:
            return
        schema = SCHEMA.with_metadata({META_KEY: json.dumps(self.meta).encode()})
        table = pa.Table.from_pylist(self._rows, schema=schema)
        first, last = self._rows[0]["block"], self._rows[-1]["block"]
        final = self.path / f"part-{first:012d}-{last:012d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, final)
        self._rows = []


def _with_account(meta: Mapping[str, Any]) -> str:
    return f"with account {meta['account']}" if meta.get("account") else "without an account"


def _comparable(meta: Mapping[str, Any]) -> Any:
    return {k: v for k, v in meta.items() if k not in ("format_version", "rpc_url")}


def _parts(path: Path) -> list[Path]:
    """The history's parts in block order; of two that start at the same block (a truncation
    stopped halfway, see the module notes) the shorter one."""
    kept: dict[int, Path] = {}
    for part in sorted(path.glob("part-*.parquet"), reverse=True):
        try:
            kept[_span(part)[0]] = part  # names sort by first, then last: the shorter comes last
        except ValueError:
            raise _not_a_part(path, part, "expected part-<first block>-<last block>.parquet") from None
    return [kept[first] for first in sorted(kept)]


def _superseded(path: Path) -> list[Path]:
    """Parts a truncation stopped halfway left behind (the longer of two that start at one block)."""
    kept = set(_parts(path))
    return [part for part in sorted(path.glob("part-*.parquet")) if part not in kept]


def _span(part: Path) -> tuple[int, int]:
    """A part's first and last block, from its name (part-<first>-<last>.parquet)."""
    _, first, last = part.stem.split("-")
    return int(first), int(last)


def _not_a_part(path: Path, part: Path, why: str) -> ConfigError:
    return ConfigError(f"history {path}: {part.name} is not a keeper history part ({why})")


def _read_part(path: Path, part: Path, read: Callable[[], Any]) -> Any:
    """read(), a part's file that pyarrow cannot read one error naming it: not a part (cut short,
    not Parquet), or a file that cannot be read at all (permissions, an I/O error: not called junk)."""
    try:
        return read()
    except (pa.ArrowException, OSError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, pa.ArrowInvalid):
            raise _not_a_part(path, part, why) from exc
        raise ConfigError(f"history {path}: cannot read {part.name} ({why})") from exc


def read_meta(path: Path) -> dict[str, Any]:
    parts = _parts(path) if path.is_dir() else []
    if not parts:
        raise ConfigError(f"history {path}: no recorded blocks (expected a directory written by `keeper record`)")
    raw = _read_part(path, parts[0], lambda: pq.read_schema(parts[0]).metadata) or {}
    if META_KEY not in raw:
        raise _not_a_part(path, parts[0], "no keeper.history metadata")
    meta = json.loads(raw[META_KEY])
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"history {path}: format version {meta.get('format_version')}, this keeper reads {FORMAT_VERSION}")
    return meta


def last_recorded_block(path: Path) -> int | None:
    parts = _parts(path) if path.is_dir() else []
    return _span(parts[-1])[1] if parts else None


def recorded_gaps(path: Path, from_block: int | None = None, to_block: int | None = None) -> list[tuple[int, int]]:
    """The blocks missing between recorded parts, as (first, last) ranges, those that meet
    [from_block, to_block] (from the parts' names: a part is written by one recording, block by
    block, so a hole can only lie between two parts)."""
    spans = [_span(part) for part in _parts(path)]
    gaps = [(prev_last + 1, first - 1) for (_, prev_last), (first, _) in zip(spans, spans[1:]) if first > prev_last + 1]
    return [(a, b) for a, b in gaps
            if (from_block is None or b >= from_block) and (to_block is None or a <= to_block)]


def require_within(path: Path, from_block: int | None = None, to_block: int | None = None) -> None:
    """A ConfigError naming --from-block / --to-block when they are reversed or lie outside the
    recorded blocks (a range past the history's end is not cut short silently: those blocks were
    never recorded)."""
    if from_block is None and to_block is None:
        return
    if from_block is not None and to_block is not None and from_block > to_block:
        raise ConfigError(f"--from-block {from_block} is after --to-block {to_block}")
    first, last = recorded_range(path)
    if from_block is not None and not first <= from_block <= last:
        raise ConfigError(f"--from-block {from_block}: history {path} holds blocks {first}-{last}")
    if to_block is not None and not first <= to_block <= last:
        raise ConfigError(f"--to-block {to_block}: history {path} holds blocks {first}-{last}")


def require_contiguous(path: Path, from_block: int | None = None, to_block: int | None = None) -> None:
    """A ConfigError naming the first hole in [from_block, to_block]: a backtest never runs across
    blocks nobody recorded (each side of a hole can be run on its own)."""
    gaps = recorded_gaps(path, from_block, to_block)
    if gaps:
        a, b = gaps[0]
        more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
        raise ConfigError(f"history {path}: blocks {a}-{b} were never recorded{more}; run a range on one side of "
                          f"the gap (--to-block {a - 1} or --from-block {b + 1})")


def read_blocks(path: Path, from_block: int | None = None, to_block: int | None = None) -> Iterator[BlockRecord]:
    """The recorded blocks in order, within [from_block, to_block] (parts outside are not read).

    The calldata and result bytes are read dictionary-encoded, as they are stored: a part's
    identical answers (the same calldata every block, a quiet pool's unchanged reads) come back as
    one bytes object, so the replay compares and hashes them once. No pyarrow.compute on this
    path (its import alone is 50 ms, a tenth of a 2,000-block backtest). A hole between the
    recorded blocks in that range is refused (require_contiguous), before the first block."""
    read_meta(path)
    require_contiguous(path, from_block, to_block)
    return _read_blocks(path, from_block, to_block)


def _read_blocks(path: Path, from_block: int | None, to_block: int | None) -> Iterator[BlockRecord]:
    for part in _parts(path):
        first, last = _span(part)
        if (to_block is not None and first > to_block) or (from_block is not None and last < from_block):
            continue
        table = _read_part(path, part, lambda part=part: pq.ParquetFile(  # not read_table: no dataset layer (140 ms to import)
            part, read_dictionary=_DICTIONARY_COLUMNS).read(use_threads=False))
        columns = {name: table.column(name).to_pylist() for name in table.column_names if name != "reads"}
        reads = table.column("reads").combine_chunks()  # one list array: offsets into one struct array
        offsets, pairs = reads.offsets.to_pylist(), reads.values
        calldata, results = _bytes_list(pairs.field("calldata")), _bytes_list(pairs.field("result"))
        windows: dict[str, Mapping[str, int]] = {}  # the same centres block after block: parsed once (read only)
        rows = zip(*(columns[name] for name in _ROW_COLUMNS), offsets, offsets[1:])  # a block's fields, in SCHEMA order
        for (block, timestamp, hash_, parent_hash, base_fee_wei, gas_used, gas_limit, l1_base_fee, l1_blob_base_fee,
             l1_base_fee_scalar, l1_blob_base_fee_scalar, l1, window_ticks, lo, hi) in rows:
            if (from_block is not None and block < from_block) or (to_block is not None and block > to_block):
                continue
            yield BlockRecord(  # positional, in the field order (one a block: keywords cost more)
                block, timestamp, hash_, parent_hash, base_fee_wei, gas_used, gas_limit,
                None if l1 is None else (l1_base_fee, l1_blob_base_fee, l1_base_fee_scalar, l1_blob_base_fee_scalar, l1),
                _parsed(windows, window_ticks), list(zip(calldata[lo:hi], results[lo:hi])))


_ROW_COLUMNS = [name for name in SCHEMA.names if name != "reads"]


def _parsed(known: dict[str, Mapping[str, int]], text: str) -> Mapping[str, int]:
    found = known.get(text)
    if found is None:
        found = known[text] = json.loads(text)
    return found


_DICTIONARY_COLUMNS = ["reads.list.element.calldata", "reads.list.element.result"]


def _bytes_list(column: Any) -> list[bytes]:
    """A binary column's values as Python bytes, each distinct value one object (from its
    dictionary when it was read as one)."""
    if not isinstance(column, pa.DictionaryArray):
        return column.to_pylist()  # type: ignore[no-any-return]
    values = column.dictionary.to_pylist()
    return [values[j] for j in column.indices.to_pylist()] if column.null_count == 0 else \
        [None if j is None else values[j] for j in column.indices.to_pylist()]


def recorded_hashes(path: Path, from_block: int, to_block: int, column: str = "hash") -> dict[int, bytes]:
    """The recorded blocks' hashes (or parent hashes) in [from_block, to_block] (only the parts there, two columns)."""
    found: dict[int, bytes] = {}
    for part in _parts(path) if path.is_dir() else []:
        first, last = _span(part)
        if first > to_block or last < from_block:
            continue
        table = _read_part(path, part, lambda part=part: pq.ParquetFile(part).read(columns=["block", column], use_threads=False))
        found.update((b, h) for b, h in zip(table.column("block").to_pylist(), table.column(column).to_pylist())
                     if from_block <= b <= to_block)
    return found


def truncation_steps(path: Path, last_kept: int) -> list[Callable[[], None]]:
    """The steps that drop every recorded block after `last_kept`, in order; a history stopped
    after any of them is whole (module notes): a restart finds its last block, checks its hash
    against the node's and truncates again if it is still orphaned."""
    steps: list[Callable[[], None]] = [part.unlink for part in _superseded(path)]
    parts = _parts(path)
    steps += [part.unlink for part in reversed(parts) if _span(part)[0] > last_kept]
    for part in parts:
        first, last = _span(part)
        if first <= last_kept < last:
            shorter = path / f"part-{first:012d}-{last_kept:012d}.parquet"
            steps += [lambda part=part, shorter=shorter: _write_head(part, shorter, last_kept), part.unlink]
    return steps


def truncate_history(path: Path, last_kept: int) -> None:
    """Drop the recorded blocks after `last_kept` (a reorg orphaned them), crash-safely."""
    for step in truncation_steps(path, last_kept):
        step()


def _write_head(part: Path, shorter: Path, last_kept: int) -> None:
    """`part`'s blocks up to `last_kept` as the part `shorter`, written atomically."""
    table = pq.ParquetFile(part).read(use_threads=False)
    kept = table.slice(0, last_kept - _span(part)[0] + 1)
    temporary = shorter.with_suffix(".tmp")
    pq.write_table(kept, temporary, compression="zstd")
    os.replace(temporary, shorter)


def count_blocks(path: Path, from_block: int | None = None, to_block: int | None = None) -> int:
    """How many recorded blocks fall in [from_block, to_block] (from the parts' names)."""
    total = 0
    for part in _parts(path):
        first, last = _span(part)
        lo = max(first, from_block) if from_block is not None else first
        hi = min(last, to_block) if to_block is not None else last
        total += max(0, hi - lo + 1)
    return total


def recorded_range(path: Path) -> tuple[int, int]:
    """First and last recorded block."""
    parts = _parts(path) if path.is_dir() else []
    if not parts:
        raise ConfigError(f"history {path}: no recorded blocks")
    return _span(parts[0])[0], _span(parts[-1])[1]
