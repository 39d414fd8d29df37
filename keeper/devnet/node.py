"""Start and stop a local anvil node; save and load its state (clock trap handled)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from keeper.artifacts import NODE_MODULES
from keeper.chain.rpc import JsonRpc
from keeper.errors import FatalError, KeeperError, ToolMissingError
from keeper.logs import redact_urls

DEVNET_CHAIN_ID = 31337
DEFAULT_BALANCE_ETH = 1_000_000
DEFAULT_ACCOUNTS = 10
HISTORY_STATES_KEPT = 128
BLOCK_GAS_LIMIT = 1_000_000_000  # room for a whole market-activity step in one block


def find_foundry_tool(tool: str) -> Path:
    """The anvil/forge/cast binary: $KEEPER_<TOOL> if set, else the pinned npm package, else PATH."""
    override = os.environ.get(f"KEEPER_{tool.upper()}")
    if override:
        return Path(override)
    for candidate in sorted(NODE_MODULES.glob(f"@foundry-rs/{tool}-*/bin/{tool}")):
        if os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which(tool)
    if on_path:
        return Path(on_path)
    raise ToolMissingError(f"{tool} not found: run `make deps` (installs @foundry-rs/{tool} from npm)")


def parent_death_prefix() -> list[str]:
    """The command prefix that makes the child get SIGTERM when this process dies, even by
    kill -9 (Linux's parent-death signal, set by util-linux's `setpriv`, which then execs the
    child: same pid, no shell between); [] where that is not available (not Linux, no setpriv),
    and off any thread but the main one (the signal follows the thread that started the child)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return []
    global _SETPRIV_PREFIX
    if _SETPRIV_PREFIX is None:
        found = _try_setpriv()
        if found is None:
            return []  # the try itself failed (a busy machine): no guard this time, asked again next time
        _SETPRIV_PREFIX = found
    return list(_SETPRIV_PREFIX)


_SETPRIV_PREFIX: tuple[str, ...] | None = None  # parent_death_prefix's answer, once it had a definite one


def _try_setpriv() -> tuple[str, ...] | None:
    """setpriv's prefix when it has --pdeathsig (util-linux >= 2.33; an older one refuses the option
    and anvil would never start), tried on `true`; () without it; None when the try could not run."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    prefix = (setpriv, "--pdeathsig", "TERM", "--")
    try:
        ran = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if ran.returncode == 0 else ()


def port_taken(port: int) -> bool:
    """Whether something already accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AnvilNode:
    """One anvil process on 127.0.0.1. Use as a context manager, or call start()/stop()."""

    port: int = 0
    chain_id: int = DEVNET_CHAIN_ID
    load_state: Path | None = None
    fork_url: str | None = None
    fork_block: int | None = None
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 20.0
    process: subprocess.Popen[bytes] | None = None
    rpc: JsonRpc | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(find_foundry_tool("anvil")),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--accounts", str(DEFAULT_ACCOUNTS),
            "--balance", str(DEFAULT_BALANCE_ETH),
            "--gas-limit", str(BLOCK_GAS_LIMIT),
            # Keep the last states in memory for historical reads and write none to disk: by
            # default anvil spills old states under ~/.foundry/anvil/tmp, tens of GB on long runs.
            "--prune-history", str(HISTORY_STATES_KEPT),
            "--silent",
        ]
        if self.fork_url:
            cmd += ["--fork-url", self.fork_url]
            if self.fork_block is not None:
                cmd += ["--fork-block-number", str(self.fork_block)]
        else:
            cmd += ["--chain-id", str(self.chain_id)]
        if self.load_state:
            cmd += ["--load-state", str(self.load_state)]
        return cmd + self.extra_args

    def start(self) -> JsonRpc:
        if self.port == 0:
            self.port = free_port()
        elif port_taken(self.port):  # else the poll below would take another node's answer for ours
            raise FatalError(f"port {self.port} on 127.0.0.1 is in use: another node or process listens there")
        self.process = subprocess.Popen(  # its own session (a Ctrl-C is ours to handle); it dies with us
            parent_death_prefix() + self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        rpc = JsonRpc(self.rpc_url, timeout_s=60.0)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                err = redact_urls(err)  # anvil names the fork URL it could not fetch from: not its key
                lines = [line.strip() for line in err.splitlines()  # one line; not anvil's own pointer at its --help
                         if line.strip() and not line.startswith("For more information")]
                raise FatalError(f"anvil exited with code {self.process.returncode}: {'; '.join(lines)[-800:]}")
            try:
                rpc.chain_id()
                break
            except KeeperError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise FatalError(f"anvil did not answer on {self.rpc_url} within {self.startup_timeout_s} s")
                time.sleep(0.01)
        self.rpc = rpc
        if self.load_state:
            reanchor_clock(rpc)
        return rpc

    def stop(self) -> None:
        if self.rpc:
            self.rpc.close()
            self.rpc = None
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def latest_block_timestamp(rpc: JsonRpc) -> int:
    return int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def reanchor_clock(rpc: JsonRpc) -> int:
    """After --load-state anvil would mine the next block at wall-clock time, dropping the
    evm_increaseTime offset the state was built with (trades then revert on TWAP underflow).
    Put the clock back one second after the saved head and mine one block. Returns the new time."""
    head_ts = latest_block_timestamp(rpc)
    rpc.call("anvil_setTime", [head_ts + 1])
    rpc.call("evm_mine", [])
    return latest_block_timestamp(rpc)


def dump_state(rpc: JsonRpc, path: Path) -> None:
    """Save the chain's state (anvil_dumpState is gzipped JSON, hex) as plain JSON for --load-state."""
    raw = bytes.fromhex(rpc.call("anvil_dumpState", [])[2:])
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    json.loads(data)  # refuse to write something anvil will not load
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
