"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keeper.journal import Journal


@pytest.fixture()
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal file in the test's temporary directory."""
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j
