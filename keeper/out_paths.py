"""Output paths checked before any long work: a directory or file the keeper will write must be
creatable there. Nothing is created by the check: the nearest existing ancestor must be a directory
in which a file can be written (a probe file, removed at once). A ConfigError names `where` (an
option or a config key), so the CLI prints one line and exits 2."""

from __future__ import annotations

import tempfile
from pathlib import Path

from keeper.errors import ConfigError


def check_writable(path: Path, where: str, *, directory: bool) -> None:
    """`path` (a directory when `directory`, else a file) can be written or created."""
    kind = "a directory" if directory else "a file"
    if path.exists():
        if path.is_dir() != directory:
            raise ConfigError(f"{where} {path}: exists and is not {kind}")
        base = path if directory else path.parent
    else:
        base = path.parent
        while not base.exists() and base != base.parent:
            base = base.parent
        if not base.is_dir():
            raise ConfigError(f"{where} {path}: cannot be created ({base} is not a directory)")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ConfigError(f"{where} {path}: cannot write in {base} ({exc.strerror or exc})") from exc
