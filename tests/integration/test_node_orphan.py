"""An anvil the keeper started does not outlive it: killed with kill -9 (no orderly stop runs),
its node still goes (Linux's parent-death signal, keeper/devnet/node.py parent_death_prefix); a
fork that fails names its origin without the URL's path (a provider's key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keeper.devnet.node import AnvilNode, parent_death_prefix
from keeper.errors import FatalError

CHILD = """
import sys, time
from keeper.devnet.node import AnvilNode
node = AnvilNode()
node.start()
print(node.process.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())  # a zombie has exited


@pytest.mark.skipif(not parent_death_prefix(), reason="no setpriv with --pdeathsig here (README: Known limits)")
def test_an_anvil_whose_keeper_is_killed_with_sigkill_goes_too() -> None:
    keeper = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        anvil = int((keeper.stdout.readline() if keeper.stdout else "").strip())
        assert _alive(anvil)
        keeper.send_signal(signal.SIGKILL)
        keeper.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(anvil) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(anvil)
    finally:
        keeper.kill()


def test_a_fork_that_cannot_start_names_its_origin_without_the_key() -> None:
    node = AnvilNode(fork_url="http://127.0.0.1:9/v2/SECRETKEY123")
    with pytest.raises(FatalError) as raised:
        node.start()
    assert "anvil exited" in str(raised.value) and "SECRETKEY123" not in str(raised.value)
