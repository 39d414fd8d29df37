"""A fork that cannot be started, or a --fork-block past the origin's head, stops `keeper simulate`
(one run or a suite) with one line naming the option and leaves nothing in --out (the audit: the
suite booked every run as a failed "DEFECT" and wrote suite.json and index.html; a single run left
an empty .simulation-* directory in --out). A run that stops after its fork started leaves no
earlier run's report beside its own log (the audit: Ctrl-C on a re-run kept the old report.json)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from keeper.config import load_config
from keeper.errors import ConfigError, KeeperError
from keeper.simulate import command, suite
from keeper.simulate.fork import ForkStartError

SCENARIO = str(Path(__file__).resolve().parents[2] / "scenarios" / "calm.toml")


def _refused_fork(fork_url: str, fork_block: int | None = None) -> Any:
    raise ForkStartError(f"--fork-url {fork_url}: cannot fork it at --fork-block {fork_block}: pruned")


@pytest.fixture()
def origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "origin_head", lambda url: (31337, 500))
    monkeypatch.setattr(suite, "origin_head", lambda url: (31337, 500))
    monkeypatch.setattr(command, "start_fork", _refused_fork)


def test_one_run_whose_fork_fails_leaves_no_output(origin: None, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    with pytest.raises(ForkStartError, match="--fork-block 10"):
        command.run_simulation(load_config(None, environ={}), fork_url="http://127.0.0.1:1", fork_block=10, blocks=2,
                               scenario=SCENARIO, seed=1, out_dir=out)
    assert not out.exists()


def test_a_suite_whose_fork_fails_stops_at_its_first_run(origin: None, tmp_path: Path) -> None:
    out = tmp_path / "suite"
    with pytest.raises(ForkStartError, match="cannot fork it"):
        suite.run_suite(load_config(None, environ={}), fork_url="http://127.0.0.1:1", fork_block=10,
                        scenarios=[SCENARIO], seeds=[1, 2], out_dir=out, steps=2)
    assert not out.exists()


def test_a_suite_refuses_a_fork_block_past_the_head(origin: None, tmp_path: Path) -> None:
    out = tmp_path / "suite"
    ran: list[int] = []
    with pytest.raises(ConfigError, match=r"^--fork-block 999: must be between 0 and the origin's head, block 500$"):
        suite.run_suite(load_config(None, environ={}), fork_url="http://127.0.0.1:1", fork_block=999,
                        scenarios=[SCENARIO], seeds=[1], out_dir=out, steps=2, run=lambda *a, **k: ran.append(1))
    assert not out.exists() and ran == []


def test_a_run_that_stops_leaves_no_earlier_report_beside_its_log(origin: None, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an --out holding an earlier run's report, and a run stopped after its fork started
    out = tmp_path / "sim"
    out.mkdir()
    for name in ("report.json", "report.html", "keeper.log"):
        (out / name).write_text("earlier run")
    stopped: list[bool] = []
    node = SimpleNamespace(rpc=object(), rpc_url="http://127.0.0.1:2", stop=lambda: stopped.append(True))
    monkeypatch.setattr(command, "start_fork", lambda url, block=None: node)

    def interrupted(*args: Any) -> Any:
        raise KeeperError("stopped")

    monkeypatch.setattr(command, "prepare_world", interrupted)
    with pytest.raises(KeeperError, match="stopped"):
        command.run_simulation(load_config(None, environ={}), fork_url="http://127.0.0.1:1", fork_block=None, blocks=2,
                               scenario=SCENARIO, seed=1, out_dir=out)
    # Then only this run's log is there (no report of another run), the fork stopped, no work directory
    assert sorted(p.name for p in out.iterdir()) == ["keeper.log"] and stopped == [True]
    assert "earlier run" not in (out / "keeper.log").read_text()
