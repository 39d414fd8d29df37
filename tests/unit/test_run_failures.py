"""How `keeper run` fails, told in the log: a start that fails logs `keeper.start_failed` with its
error_type; an error outside a tick stops the loop in order (`keeper.fatal` where "loop",
`keeper.stopping` reason "fatal", `keeper.stopped`) and the process exits 1, URLs redacted (the
thirteenth session's operations audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from keeper import launch
from keeper.cli import app
from keeper.config import load_config
from keeper.errors import ChainMismatchError, ConfigError, FatalError
from keeper.runtime import run_loop
from tests.unit.test_runtime_fatal import FatalAfter, Heads, _runtime

SECRET_URL = "https://node.example:8545/v3/0123456789abcdef"


@pytest.fixture(autouse=True)
def _logging_restored() -> Any:
    """`keeper run` configures logging onto the runner's stderr, closed after it: later tests log as before."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _journal_fails(_since_s: float) -> None:
    raise FatalError(f"journal read failed at {SECRET_URL}")


def test_an_error_outside_a_tick_stops_the_loop_in_order() -> None:
    # Given the loop's own journal read (the PnL metric) failing fatally after the start
    engine = FatalAfter()
    runtime = _runtime(engine, Heads())
    runtime.journal.realized_since = _journal_fails
    # When the loop runs, then it returns (no exception), the error kept for the CLI
    with capture_logs() as logs:
        run_loop(runtime, blocks=None)
    assert isinstance(runtime.loop_fatal, FatalError) and engine.ticks == 0
    events = [e for e in logs if e["event"] in ("keeper.fatal", "keeper.stopping", "keeper.stopped")]
    assert [e["event"] for e in events] == ["keeper.fatal", "keeper.stopping", "keeper.stopped"]
    assert (events[0]["where"], events[0]["error_type"]) == ("loop", "FatalError")
    assert events[1]["reason"] == "fatal"


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build: Any) -> Any:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("KEEPER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KEEPER_MONITORING__LIVE_PANEL", "off")
    monkeypatch.setenv("KEEPER_MONITORING__LOG_FORMAT", "json")
    monkeypatch.setattr(launch, "build_runtime", build)
    return CliRunner().invoke(app, ["run", "--rpc-url", "http://127.0.0.1:8545", "--manifest", "m.json"])


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_keeper_run_exits_1_after_an_error_outside_a_tick_with_the_url_redacted(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = FatalAfter()
    runtime = _runtime(engine, Heads())
    runtime.journal.realized_since = _journal_fails
    runtime.close = lambda: None
    result = _cli(monkeypatch, tmp_path, lambda *_a, **_k: runtime)
    assert result.exit_code == 1, result.output
    assert "error: journal read failed at https://node.example:8545/..." in result.output
    assert "0123456789abcdef" not in result.output
    names = [e["event"] for e in _events(result.output)]
    assert names[-3:] == ["keeper.fatal", "keeper.stopping", "keeper.stopped"]


def test_a_start_that_fails_logs_keeper_start_failed_with_its_error_type_but_bad_input_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a start refused on the chain, and one refused for bad input (a journal that is a directory)
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise ChainMismatchError("account.executor: no contract code at 0xdead on chain 10")

    config = load_config(None, environ={}, overrides={"monitoring": {"journal": tmp_path / "journal.sqlite"}})
    bad_input = load_config(None, environ={}, overrides={"monitoring": {"journal": tmp_path}})
    monkeypatch.setattr(launch, "_chain_setup", lambda *_a: None)
    monkeypatch.setattr(launch, "assemble_runtime", refuse)
    # When each starts
    with capture_logs() as logs:
        with pytest.raises(ChainMismatchError):
            launch.build_runtime(config, dry_run=True)
        with pytest.raises(ConfigError):
            launch.build_runtime(bad_input, dry_run=True)
    # Then the chain's refusal is an event with its type; bad input is only its one error line
    assert [e["error_type"] for e in logs if e["event"] == "keeper.start_failed"] == ["ChainMismatchError"]


def test_keeper_run_logs_a_start_failure_then_its_one_error_line(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    # Given a start refused on the chain (the journal locked and opened, then the chain checks fail)
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise ChainMismatchError(f"account.executor: no contract code at 0xdead on chain 10 ({SECRET_URL})")

    monkeypatch.setattr(launch, "_chain_setup", lambda *_a: None)
    monkeypatch.setattr(launch, "assemble_runtime", refuse)
    # When `keeper run` starts, then the failure is an event with its type, and one error line, exit 2
    result = _cli(monkeypatch, tmp_path, launch.build_runtime)
    assert result.exit_code == 2, result.output
    failed = [e for e in _events(result.output) if e["event"] == "keeper.start_failed"]
    assert [e["error_type"] for e in failed] == ["ChainMismatchError"]
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        "error: account.executor: no contract code at 0xdead on chain 10 (https://node.example:8545/...)"]
    assert "0123456789abcdef" not in result.output
