"""Soak: the keeper's loop over many fast devnet blocks (2 s of chain time each), with resident
memory and journal size sampled as it goes; both should be flat once the journal's retention
window is full (warm-up). Bounded in time: it stops at `SOAK_BLOCKS` blocks or `SOAK_MAX_S`
seconds, whichever comes first, and says which (env BENCH_SOAK_BLOCKS / BENCH_SOAK_MAX_S).

The keeper runs in this process (dry run: no key), ticking on every block; the market driver
posts fresh oracle answers and moves the markets every 200 blocks so that markets stay readable.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.results import record
from bench.snapshot import markets_for
from keeper.chain.rpc import JsonRpc
from keeper.config import load_config
from keeper.devnet.activity import ActivityConfig, MarketActivity
from keeper.devnet.provision import provision_executor
from keeper.devnet.txs import DevSender
from keeper.devnet.world import prebuilt_state, start_world
from keeper.logs import configure_logging
from keeper.launch import build_runtime

SOAK_BLOCKS = int(os.environ.get("BENCH_SOAK_BLOCKS", "100000"))
SOAK_MAX_S = float(os.environ.get("BENCH_SOAK_MAX_S", "600"))
BLOCK_S = 2
RETENTION_DAYS = 0.05  # 72 min of chain time = 2,160 blocks
WARM_UP_BLOCKS = 10_000  # the retention window full and the WAL at its checkpoint size
DRIVE_EVERY = 200
REPORT_EVERY = 5_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def journal_mb(path: Path) -> tuple[float, float]:
    """(MB of pages in use, MB on disk with the WAL). The WAL file is reused after each
    checkpoint: on disk it grows to about 4 MB (SQLite's 1,000-page auto-checkpoint) and stays."""
    on_disk = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    return pages * page_size / 2**20, on_disk / 2**20


def main() -> None:
    print(f"== soak: up to {SOAK_BLOCKS:,} blocks of {BLOCK_S} s, at most {SOAK_MAX_S:.0f} s of wall time ==")
    configure_logging("ERROR")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # world.stop() runs
    world = start_world(load_state=prebuilt_state(markets_for(2)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "manifest.json"
            world.manifest.write(manifest)
            rpc = JsonRpc(world.node.rpc_url)
            executor = provision_executor(DevSender(rpc), world.manifest, world.manifest.accounts.keeper)
            journal = Path(tmp) / "journal.sqlite"
            settings = load_config(None, environ={}, overrides={
                "chain": {"rpc_url": world.node.rpc_url, "manifest": manifest},
                "account": {"executor": executor},
                "markets": {"enabled": [m.name for m in world.manifest.markets]},
                "monitoring": {"journal": journal, "log_level": "ERROR", "journal_retention_days": RETENTION_DAYS},
            })
            runtime = build_runtime(settings, dry_run=True)
            driver = MarketActivity(rpc, world.manifest, ActivityConfig(seed=5, step_s=BLOCK_S))
            rpc.call("anvil_setBlockTimestampInterval", [BLOCK_S])
            started = time.monotonic()
            samples: list[tuple[int, float, float, float, float]] = []
            blocks = 0
            mining_s = 0.0  # the bench's own share: making the block (the rest is the keeper's tick)
            while blocks < SOAK_BLOCKS and time.monotonic() - started < SOAK_MAX_S:
                mined_at = time.monotonic()
                if blocks % DRIVE_EVERY == 0:
                    driver.step()
                else:
                    rpc.call("evm_mine", [])
                mining_s += time.monotonic() - mined_at
                runtime.engine.tick()
                blocks += 1
                if blocks % REPORT_EVERY == 0 or blocks == 1_000:
                    used_mb, disk_mb = journal_mb(journal)
                    samples.append((blocks, rss_mb(), used_mb, disk_mb, time.monotonic() - started))
                    print(f"  block {blocks:>7,}: RSS {samples[-1][1]:6.1f} MB, journal {used_mb:5.2f} MB in use, "
                          f"{disk_mb:5.2f} MB on disk with the WAL, {samples[-1][4]:5.0f} s", flush=True)
            elapsed = time.monotonic() - started
            skips = runtime.engine.skip_log
            runtime.close()
        stopped = "all blocks" if blocks >= SOAK_BLOCKS else f"time bound ({SOAK_MAX_S:.0f} s)"
        per_block_ms = elapsed / max(blocks, 1) * 1000
        mining_ms = mining_s / max(blocks, 1) * 1000
        print(f"{blocks:,} blocks in {elapsed:.0f} s ({per_block_ms:.1f} ms per block+tick: {mining_ms:.1f} making the "
              f"block, {per_block_ms - mining_ms:.1f} the keeper's tick), stopped by {stopped}; skip rows written "
              f"{skips.written:,}, suppressed {skips.suppressed:,}")
        for name, value in (("soak_blocks", blocks), ("soak_s", elapsed), ("soak_ms_per_block", per_block_ms),
                            ("soak_mining_ms_per_block", mining_ms), ("soak_tick_ms_per_block", per_block_ms - mining_ms),
                            ("soak_skip_rows_written", skips.written), ("soak_skip_rows_suppressed", skips.suppressed)):
            record(name, value)
        warm = [s for s in samples if s[0] >= WARM_UP_BLOCKS]
        if len(warm) >= 2:
            print(f"after warm-up (block {warm[0][0]:,} -> {warm[-1][0]:,}): RSS {warm[0][1]:.1f} -> {warm[-1][1]:.1f} MB, "
                  f"journal in use {warm[0][2]:.2f} -> {warm[-1][2]:.2f} MB, on disk {warm[0][3]:.2f} -> {warm[-1][3]:.2f} MB")
            for i, at in ((0, "first"), (-1, "last")):
                record(f"soak_warm_{at}_block", warm[i][0])
                record(f"soak_warm_{at}_rss_mb", warm[i][1])
                record(f"soak_warm_{at}_journal_in_use_mb", warm[i][2])
                record(f"soak_warm_{at}_journal_on_disk_mb", warm[i][3])
        else:
            print("the run ended before the retention window filled: no after-warm-up figure")
    finally:
        world.stop()
