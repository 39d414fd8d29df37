"""The forge fork tests (contracts/test/fork) on the session devnet: the BasisExecutor against the
real Perp v2 and Uniswap V2/V3 contracts. forge forks the devnet's head, so the chain is not changed.

The manifest goes to a temporary file under build/ (foundry.toml's fs_permissions let forge read
there) and its path to the tests in DEVNET_MANIFEST."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from keeper.artifacts import PROJECT_ROOT
from keeper.devnet.node import find_foundry_tool
from keeper.devnet.world import World
from keeper.venues.gas import EXECUTOR_GAS_UNITS, PAIR_GAS_UNITS

FORK_TESTS = "contracts/test/fork/*"
# BasisExecutorFork.t.sol (13) + BasisExecutorPairFork.t.sol (6) + BasisExecutorGas.t.sol (2)
EXPECTED_PASSED = 21
FORGE_TIMEOUT_S = 900  # a cold cache compiles everything with solc-js first
# BasisExecutorGas.t.sol prints each call's gas: "<what> (...)" then "  through the executor: <gas>"
GAS_REPORT = re.compile(r"^\s*(open|resize|close|openPair|closePair)\s+\(.*\n(?:.*\n)*?\s*through the executor: (\d+)",
                        re.MULTILINE)
SUMMARY = re.compile(r"(\d+) tests passed, (\d+) failed, (\d+) skipped \((\d+) total tests\)")


def _run_forge_fork_tests(rpc_url: str, manifest_json: str) -> subprocess.CompletedProcess[str]:
    manifest_dir = PROJECT_ROOT / "build" / "forge-fork"
    manifest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="manifest-", dir=manifest_dir, delete=False) as f:
        f.write(manifest_json)
        manifest_path = Path(f.name)
    try:
        return subprocess.run(
            [str(find_foundry_tool("forge")), "test", "--fork-url", rpc_url, "--no-storage-caching",
             "--match-path", FORK_TESTS, "-vv"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DEVNET_MANIFEST": str(manifest_path)},
            capture_output=True,
            text=True,
            timeout=FORGE_TIMEOUT_S,
            check=False,
        )
    finally:
        manifest_path.unlink(missing_ok=True)


def test_forge_fork_suite_passes_against_the_real_protocols(devnet_world: World) -> None:
    # Given the session devnet (real Perp v2 + Uniswap) and its manifest
    manifest_json = devnet_world.manifest.model_dump_json(indent=2)
    # When forge runs the fork tests against it
    result = _run_forge_fork_tests(devnet_world.node.rpc_url, manifest_json)
    output = f"$ forge test --fork-url ... --match-path '{FORK_TESTS}'\n{result.stdout}\n{result.stderr}"
    print(output)  # pytest shows it when the test fails
    # Then every fork test ran and passed (none skipped: the manifest was found and read)
    assert result.returncode == 0, f"forge exited with {result.returncode}\n{output}"
    summaries = SUMMARY.findall(result.stdout)
    assert summaries, f"no forge summary line in the output\n{output}"
    passed, failed, skipped, total = (int(n) for n in summaries[-1])
    assert (passed, failed, skipped, total) == (EXPECTED_PASSED, 0, 0, EXPECTED_PASSED), output
    # And the keeper's gas table still prices the executor's calls as measured here
    assert gas_table_misses(result.stdout) == [], output


def gas_table_misses(forge_stdout: str) -> list[str]:
    """The fork-measured gas of each executor call against the keeper's gas table
    (keeper/venues/gas.py): never above its upper column, and a pair trade within 10% of its
    typical one (the planner's gate charges that; the basis rows were measured on other trades)."""
    measured = {what: int(gas) for what, gas in GAS_REPORT.findall(forge_stdout)}
    misses = [f"{what}: not measured" for what in ("open", "resize", "close", "openPair", "closePair") if what not in measured]
    for what, gas in measured.items():
        row = PAIR_GAS_UNITS[what.removesuffix("Pair")] if what.endswith("Pair") else EXECUTOR_GAS_UNITS[what]
        if gas > row.upper:
            misses.append(f"{what}: {gas:,} gas > the table's upper {row.upper:,}")
        if what.endswith("Pair") and abs(gas - row.typical) > row.typical // 10:
            misses.append(f"{what}: {gas:,} gas is not within 10% of the table's typical {row.typical:,}")
    return misses
