"""`keeper simulate` writes the keeper's log into --out; a run stopped early (an error, Ctrl-C)
leaves only that log, so its last line says why: `simulate.failed` with the error's type and
message (before: the log ended at the last event before the error, which went to the terminal only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.simulate.command import _logs_to


@pytest.mark.parametrize(("raised", "error_type", "error"), [
    (ConfigError("scenario typo: events[1] (index_move).markets: unknown market 'DOGE'"), "ConfigError",
     "scenario typo: events[1] (index_move).markets: unknown market 'DOGE'"),
    (KeyboardInterrupt(), "KeyboardInterrupt", "interrupted (Ctrl-C)"),
])
def test_a_run_stopped_early_says_why_in_its_log(raised: BaseException, error_type: str, error: str,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "keeper.log"
    with pytest.raises(type(raised)), _logs_to(path, "INFO"):
        raise raised
    last = json.loads(path.read_text().splitlines()[-1])
    assert (last["event"], last["level"], last["error_type"], last["error"]) == ("simulate.failed", "error", error_type, error)
