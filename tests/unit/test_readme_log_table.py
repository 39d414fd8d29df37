"""README's "Reading the logs" table names the events the code emits: every event it lists is
logged somewhere in keeper/ or strategies/, and every event logged there is listed, whatever its
level (debug included) and however the call is spelled (`(log.debug if ... else log.info)("...")`,
`log.warning("a" if ... else "b")`), except the few internal debug events of DEBUG_ONLY.

The events are read from the code's syntax tree: a call whose callee is `log.<level>` (or picks
one) and whose first argument is a string (or picks one of two). A call that names its event any
other way is listed in DYNAMIC with the names it can take, so a new one fails here until listed."""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENT = r"[a-z_0-9]+(?:\.[a-z_0-9]+)+"
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg", "log"}
# calls that pass their event in a variable: the file and every name that reaches the call
DYNAMIC = {"keeper/kill_switch.py": {"kill_switch.unreadable", "kill_switch.unknown_markets"}}  # KillSwitch._alarm
# emitted at debug only and left out of the README, each with its reason
DEBUG_ONLY = {
    "devnet.deploy.step": "progress of `keeper devnet`'s deployment, step by step; devnet.ready has the total",
    "rpc.retry": "one retried RPC call inside chain/retry.py; a call that fails for good is logged by its caller",
    "rpc.head_unreadable": "one node's head not read while ranking nodes; rpc.endpoint_failed tells a failed node",
}


def readme_events() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Reading the logs"):text.index("\nThe journal (`monitoring.journal`")]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(rf"`({EVENT}|tick)`", line.split("|")[1]))
    return names


def _is_log_level(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and node.attr in LEVELS and isinstance(node.value, ast.Name) \
            and node.value.id == "log":
        return node.attr
    return None


@functools.cache  # the tests read it, none changes it
def emitted() -> tuple[dict[str, set[str]], dict[str, list[int]]]:
    """{event: the levels it is logged at}, {file: lines of calls whose event is not a literal}."""
    events: dict[str, set[str]] = defaultdict(set)
    dynamic: dict[str, list[int]] = defaultdict(list)
    for directory in ("keeper", "strategies"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                levels = {level for part in ast.walk(node.func) if (level := _is_log_level(part))}
                if not levels:
                    continue
                first = node.args[0] if node.args else None
                options = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
                if all(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in options):
                    for option in options:
                        events[option.value] |= levels  # type: ignore[union-attr]
                else:
                    dynamic[name].append(node.lineno)
    for name, names in DYNAMIC.items():
        for event in names:
            events[event].add("dynamic")
    return events, dynamic


def test_the_scan_finds_the_events_and_every_spelling_of_a_call() -> None:
    events, _ = emitted()
    assert len(events) > 100
    assert events["decision.skip"] == {"debug", "info"}  # (log.debug if repeated else log.info)("decision.skip", ...)
    assert "tx.superseded" in events and "tx.dropped" in events  # log.warning("tx.superseded" if ... else "tx.dropped")
    assert "critical" in events["keeper.fatal"]


def test_every_logger_is_named_log() -> None:
    """The scan reads `log.<level>(...)` calls only: a logger bound to another name would be missed."""
    others = []
    for directory in ("keeper", "strategies"):
        for path in (ROOT / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call) \
                        and ast.unparse(node.value.func).endswith("get_logger"):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    others += [f"{path.relative_to(ROOT)}: {ast.unparse(t)}" for t in targets
                               if not (isinstance(t, ast.Name) and t.id == "log")]
    assert not others, others


def test_every_call_that_names_its_event_in_a_variable_is_listed() -> None:
    _, dynamic = emitted()
    assert set(dynamic) == set(DYNAMIC), f"log calls whose event is not a literal: {dict(dynamic)}"
    for path, names in DYNAMIC.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        assert all(f'"{name}"' in text for name in names), path


def test_every_event_the_readme_lists_is_logged_by_the_code() -> None:
    events, _ = emitted()
    missing = sorted(readme_events() - set(events))
    assert not missing, f"README lists events no code logs: {missing}"


def test_every_event_the_code_logs_is_in_the_readme() -> None:
    events, _ = emitted()
    missing = sorted(set(events) - readme_events() - set(DEBUG_ONLY))
    assert not missing, f"events logged but not in README's log table: {missing}"


def test_the_debug_only_list_holds_debug_events_the_readme_leaves_out() -> None:
    events, _ = emitted()
    for name in DEBUG_ONLY:
        assert events.get(name) == {"debug"}, f"{name}: {events.get(name)}"
    assert not set(DEBUG_ONLY) & readme_events()


def test_every_reason_keeper_stopping_gives_is_in_its_row() -> None:
    reasons: set[str] = set()
    for directory in ("keeper", "strategies"):
        for path in (ROOT / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                        and node.args[0].value == "keeper.stopping" and _is_log_level(node.func):
                    reasons |= {k.value.value for k in node.keywords  # type: ignore[attr-defined]
                                if k.arg == "reason" and isinstance(k.value, ast.Constant)}
    assert {"blocks", "signal", "fatal"} <= reasons
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `keeper.started` / `keeper.stopping`"))
    missing = sorted(r for r in reasons if not re.search(rf"\b{r}\b", row.split("|")[3]))
    assert not missing, f"keeper.stopping reasons not in README's row: {missing}"
