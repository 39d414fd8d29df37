"""One keeper per journal: `keeper run` holds an exclusive lock beside the journal file
(`<journal>.lock`, flock) from its start, before anything is sent, to its stop; a live one also
locks its key's pending-transaction store (`pending-<chain>-<address>.json.lock`), which two
keepers with different journals in one directory would otherwise share. Two keepers on one
journal or one key would both plan the same trade and race each other's nonces. A second one is
refused, naming the file and the first one's process id.

The lock is the kernel's: it is released when the holding process exits, however it exits
(kill -9 included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from keeper.errors import ConfigError


class JournalLock:
    """An exclusive lock on `<path>.lock` (the path resolved: a symlink to it is the same file);
    `what` names it in the refusal (the journal's config key by default)."""

    def __init__(self, journal: Path, what: str = "monitoring.journal") -> None:
        self.journal = Path(journal).resolve()
        self.what = what
        self.path = self.journal.with_name(self.journal.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> JournalLock:
        """Takes the lock, or raises ConfigError (exit 2) when another process holds it, or when
        the journal's path cannot be a file (a directory; under a file): nothing created then."""
        if self.journal.is_dir():
            raise ConfigError(directory_refusal(self.journal, self.what))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is a file, not a directory" if blocker else exc.strerror or exc
            raise ConfigError(f"{self.what}: cannot create the lock file {self.path} ({why})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"{self.what}: {self.journal} is in use by another keeper "
                              f"(process {holder}); stop it first, or give this one its own journal") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock; the file stays (harmless)


def directory_refusal(path: Path, what: str = "monitoring.journal") -> str:
    """The one-line refusal of a path that is a directory (the lock's, for the journal or the
    pending store, and the journal's own)."""
    return f"{what}: {path} is a directory, not a file"
