"""The runtime does not import the devnet: keeper/launch.py wires the embedded devnet in."""

from __future__ import annotations

import subprocess
import sys

import keeper.runtime

CHECK = ("import sys, {module}; "
         "print(','.join(sorted(m for m in sys.modules if m == 'keeper.devnet' or m.startswith('keeper.devnet.'))))")


def _devnet_modules_after_importing(module: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK.format(module=module)], capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.strip()


def test_importing_the_runtime_imports_no_devnet_module() -> None:
    assert _devnet_modules_after_importing("keeper.runtime") == ""


def test_the_launcher_is_where_the_devnet_comes_in() -> None:
    # the same check sees the devnet when it is there: the launcher imports it
    assert "keeper.devnet.world" in _devnet_modules_after_importing("keeper.launch").split(",")


def test_the_runtime_receives_its_chain_as_a_setup() -> None:
    setup = keeper.runtime.ChainSetup(rpc_url="http://127.0.0.1:1")
    assert setup.sources is None and setup.provision_executor is None and not setup.embedded
