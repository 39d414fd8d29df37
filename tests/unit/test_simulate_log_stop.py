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


def test_an_error_in_the_run_loop_is_told_once_in_the_log(tmp_path: Path) -> None:
    """The loop's `keeper.stopping` says that the keeper stopped (reason fatal, its ticks), as a live
    run's does; `simulate.failed`, the last line, says why: the error is not told twice."""
    from keeper.simulate.command import logged_stop

    path = tmp_path / "keeper.log"
    with pytest.raises(RuntimeError), _logs_to(path, "INFO"), logged_stop(lambda: 4, steps=20):
        raise RuntimeError("node gone")
    logged = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["event"], e.get("reason")) for e in logged] == [
        ("keeper.stopping", "fatal"), ("keeper.stopped", None), ("simulate.failed", None)]
    assert [e for e in logged if "node gone" in json.dumps(e)] == [logged[-1]]
    assert logged[0]["ticks"] == 4 and "error_type" not in logged[0]
