"""Signals while `keeper run` starts (keeper/stop_signals.py): a SIGINT or SIGTERM stops the start,
logged as keeper.stopping / keeper.stopped with phase "start", exit 130, nothing sent after it; a
SIGUSR1 pulls the kill switch instead of killing the process. The start is held in its retries of
a node that does not answer yet (a port where nothing listens), then, for SIGUSR1, the port starts
forwarding to the devnet (the thirteenth session's operations audit)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from keeper.chain.rpc import JsonRpc
from keeper.devnet.world import World, prebuilt_state, start_world


@pytest.fixture()
def world() -> Iterator[World]:
    w = start_world(load_state=prebuilt_state())
    yield w
    w.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Keeper:
    """`keeper run --dry-run` against a port where nothing listens yet (its start retries)."""

    def __init__(self, tmp: Path, world: World, port: int) -> None:
        manifest = tmp / "manifest.json"
        world.manifest.write(manifest)
        self.log_path = tmp / "keeper.log"
        self._log = self.log_path.open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
        env.update(KEEPER_MONITORING__JOURNAL=str(tmp / "journal.sqlite"), KEEPER_CHAIN__POLL_INTERVAL_S="0.05",
                   KEEPER_CHAIN__HEADS="poll", KEEPER_CHAIN__STARTUP_RETRY_S="120",
                   KEEPER_CHAIN__STARTUP_BACKOFF_MAX_S="0.5", KEEPER_RISK__KILL_SWITCH_FILE=str(tmp / "kill"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keeper", "run", "--dry-run", "--rpc-url", f"http://127.0.0.1:{port}",
             "--manifest", str(manifest)], stdout=self._log, stderr=subprocess.STDOUT, env=env, text=True)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def wait_for(self, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [e for e in self.events() if e.get("event") == event]
            if found:
                return found[0]
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"no {event} within {timeout_s} s:\n{self.log_path.read_text()[-3000:]}")

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._log.close()


def _forward(port: int, target: str) -> ThreadingHTTPServer:
    """From now on, the port answers: every JSON-RPC POST is forwarded to `target`."""

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = urllib.request.Request(target, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = response.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", port), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_during_the_start_is_logged_with_phase_start_and_exits_130(
        world: World, tmp_path: Path, signum: signal.Signals) -> None:
    # Given a keeper whose start retries a node that does not answer
    keeper = Keeper(tmp_path, world, _free_port())
    keeper.wait_for("keeper.start_retry")
    # When it gets the signal
    keeper.proc.send_signal(signum)
    # Then it exits 130, the stop told (phase "start", no tick) and nothing after it
    assert keeper.wait() == 130, keeper.log_path.read_text()[-3000:]
    events = keeper.events()
    names = [e["event"] for e in events]
    assert names[-2:] == ["keeper.stopping", "keeper.stopped"], names
    stopping, stopped = events[-2], events[-1]
    assert (stopping["reason"], stopping["signal"], stopping["phase"], stopping["ticks"]) == (
        "signal", signum.name, "start", 0)
    assert (stopped["phase"], stopped["ticks"]) == ("start", 0)
    assert "keeper.started" not in names


def test_sigusr1_during_the_start_pulls_the_kill_switch_and_the_keeper_starts(world: World, tmp_path: Path) -> None:
    # Given a keeper whose start retries a node that does not answer
    port = _free_port()
    keeper = Keeper(tmp_path, world, port)
    server = None
    try:
        keeper.wait_for("keeper.start_retry")
        # When it gets SIGUSR1, and then the node answers
        keeper.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        server = _forward(port, world.node.rpc_url)
        # Then it starts (alive), tells the signal (phase "start") and its first tick pulls the kill switch
        keeper.wait_for("keeper.started")
        told = keeper.wait_for("kill_switch.signal")
        assert (told["phase"], told["action"]) == ("start", "unwind")
        JsonRpc(world.node.rpc_url).call("evm_mine", [])
        pulled = keeper.wait_for("kill_switch.pulled")
        assert pulled["source"] == "SIGUSR1"
        # And a SIGTERM in the loop stops it in order (phase "loop"), the same tick count twice
        keeper.proc.send_signal(signal.SIGTERM)
        assert keeper.wait() == 0, keeper.log_path.read_text()[-3000:]
    finally:
        if keeper.proc.poll() is None:
            keeper.proc.kill()
        if server is not None:
            server.shutdown()
    events = keeper.events()
    stopping = next(e for e in events if e["event"] == "keeper.stopping")
    stopped = next(e for e in events if e["event"] == "keeper.stopped")
    assert (stopping["reason"], stopping["signal"], stopping["phase"]) == ("signal", "SIGTERM", "loop")
    assert stopped["phase"] == "loop" and stopped["ticks"] == stopping["ticks"] >= 1
