"""One keeper per journal: a second `keeper run` on the same journal is refused before anything is
sent, and a lock whose holder died (even by kill -9) never blocks a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.journal.lock import JournalLock


def test_a_second_holder_is_refused_naming_the_journal_and_the_first_process(tmp_path: Path) -> None:
    journal = tmp_path / "j" / "journal.sqlite"
    first = JournalLock(journal).acquire()
    with pytest.raises(ConfigError, match=rf"monitoring.journal: {journal} is in use by another keeper \(process {os.getpid()}\)"):
        JournalLock(journal).acquire()
    first.release()
    JournalLock(journal).acquire().release()  # free again


def test_a_lock_whose_holder_was_killed_is_free(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from keeper.journal.lock import JournalLock; "
        f"JournalLock(Path({str(journal)!r})).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"process {holder.pid}"):
            JournalLock(journal).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    JournalLock(journal).acquire().release()  # the kernel dropped the dead holder's lock


def test_a_second_keeper_on_a_journal_is_refused_before_the_node_is_contacted(tmp_path: Path) -> None:
    from keeper.config import load_config
    from keeper.runtime import ChainSetup, assemble_runtime

    journal = tmp_path / "journal.sqlite"
    config = load_config(None, environ={}, overrides={"monitoring": {"journal": journal, "metrics_port": 0},
                                                      "chain": {"startup_retry_s": 0}})
    running = JournalLock(journal).acquire()  # as a first keeper holds it
    try:
        with pytest.raises(ConfigError, match="monitoring.journal"):  # not a connection error to the dead port
            assemble_runtime(config, ChainSetup(rpc_url="http://127.0.0.1:9"), dry_run=True)
    finally:
        running.release()
    with pytest.raises(Exception) as caught:  # free: this start goes on and meets the dead node
        assemble_runtime(config, ChainSetup(rpc_url="http://127.0.0.1:9"), dry_run=True)
    assert "monitoring.journal" not in str(caught.value)
    JournalLock(journal).acquire().release()  # and the failed start released the lock


def test_a_journal_path_that_cannot_be_a_file_is_refused_saying_why_and_leaves_no_lock_file(tmp_path: Path) -> None:
    folder = tmp_path / "journal.sqlite"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"monitoring.journal: .*journal.sqlite is a directory, not a file"):
        JournalLock(folder).acquire()
    assert not (tmp_path / "journal.sqlite.lock").exists()  # nothing left beside it
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    with pytest.raises(ConfigError, match=r"monitoring.journal: cannot create the lock file .* \(.*notes.txt is a file, "
                                          r"not a directory\)"):  # not "(File exists)"
        JournalLock(plain / "journal.sqlite").acquire()
