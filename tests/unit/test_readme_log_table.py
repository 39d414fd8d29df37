"""README's "Reading the logs" table names the events `keeper run` emits: every event it lists is
logged somewhere in the code, and every event the keeper's own modules log at info or louder is
listed (the devnet's, the simulations' and the chaos run's own events are theirs to document)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_KEEPER_RUN = ("keeper/devnet/", "keeper/simulate/", "keeper/chaos/")
EVENT = r"[a-z_0-9]+(?:\.[a-z_0-9]+)+"


def readme_events() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Reading the logs"):text.index("\nThe journal (`monitoring.journal`")]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(rf"`({EVENT}|tick)`", line.split("|")[1]))
    return names


def sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for d in ("keeper", "strategies") for p in (ROOT / d).rglob("*.py")}


def test_every_event_the_readme_lists_is_logged_by_the_code() -> None:
    code = "\n".join(sources().values())
    missing = sorted(name for name in readme_events() if f'"{name}"' not in code)
    assert not missing, f"README lists events no code logs: {missing}"


def test_every_event_the_keeper_logs_at_info_or_louder_is_in_the_readme() -> None:
    logged = {(path, name) for path, text in sources().items() if not path.startswith(NOT_KEEPER_RUN)
              for name in re.findall(rf'\blog\.(?:info|warning|error|exception)\(\s*"({EVENT})"', text)}
    assert len(logged) > 50  # the pattern still finds the keeper's events
    missing = sorted(f"{name} ({path})" for path, name in logged if name not in readme_events())
    assert not missing, f"events logged but not in README's log table: {missing}"
