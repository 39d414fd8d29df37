"""`keeper scan` and `keeper stress` wait for the node as long as `chain.request_timeout_s` says
(before: a fixed 10 s whatever the config), and a node that never answers is one error line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def silent_node() -> Iterator[str]:
    """A node that takes the request and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("command", [["scan"], ["stress", "--account", "0x" + "11" * 20, "--collateral-usd", "1000"]])
def test_a_node_that_never_answers_is_given_the_configured_timeout(command: list[str], silent_node: str,
                                                                    tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    env.update(KEEPER_CHAIN__PRESET="optimism", KEEPER_CHAIN__REQUEST_TIMEOUT_S="0.3",
               KEEPER_MONITORING__JOURNAL=str(tmp_path / "journal.sqlite"))
    done = subprocess.run([sys.executable, "-m", "keeper", *command, "--rpc-url", silent_node], capture_output=True,
                          text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr  # a node that cannot be read: FatalError
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "read timeout=0.3" in errors[0], done.stderr
