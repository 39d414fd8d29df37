"""The tenth session's new-user audit of the command line: each bad input below used to pass
silently, print a traceback, exit 1, or name the wrong thing; now it is refused in one line naming
the option or key, exit code 2, before anything is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keeper.cli import app
from keeper.cli_console import run_app
from keeper.config import load_config
from keeper.errors import ConfigError, FatalError

NODE = "http://127.0.0.1:9"  # nothing listens there


def cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The command line in this process, for errors raised before a command's body runs."""
    monkeypatch.setattr(sys, "argv", ["keeper", *argv])
    code = run_app(app)
    return code, capsys.readouterr().err


def keeper(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line in its own process, for commands that configure logging."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    return subprocess.run([sys.executable, "-m", "keeper", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


def one_error_line(stderr: str, named: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("{")]  # JSON log lines aside
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], stderr
    assert "Traceback" not in stderr


# ---------------------------------------------------------------- seeds
@pytest.mark.parametrize("command", [
    ["run", "--dry-run", "--rpc-url", NODE],  # (the RPC: were the seed taken, it would be refused for that instead)
    ["simulate", "--fork-url", NODE, "--scenario", "calm", "--blocks", "2"],
    ["devnet", "--port", "0", "--drive", "--steps", "1", "--step-interval", "0"],  # (were it taken: one step, then stop)
])
def test_a_negative_seed_is_refused_it_would_be_the_same_path_as_its_absolute_value(
        command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # random.Random(-1) draws what random.Random(1) draws: --seed -1 silently repeated the run of seed 1
    monkeypatch.chdir(tmp_path)
    code, err = cli([*command, "--seed", "-1"], monkeypatch, capsys)
    assert code == 2
    one_error_line(err, "'--seed': Input should be greater than or equal to 0")


@pytest.mark.parametrize("text", ["1,,2", "", "1,2,", ",3"])
def test_seeds_with_an_empty_item_are_refused_not_skipped(text: str) -> None:
    from keeper.simulate.suite import parse_seeds

    with pytest.raises(ConfigError, match=f"--seeds: expected comma-separated integers like 1,2,3 \\(got '{text}'\\)"):
        parse_seeds(text)


def test_an_empty_seeds_option_is_refused_not_replaced_by_the_default(tmp_path: Path) -> None:
    result = keeper("simulate", "--fork-url", NODE, "--suite", "--seeds", "", "--out", str(tmp_path / "s"),
                    cwd=tmp_path)
    assert result.returncode == 2
    one_error_line(result.stderr, "--seeds: expected comma-separated integers like 1,2,3 (got '')")


# ---------------------------------------------------------------- backtest --sweep
def test_a_sweep_value_left_out_is_refused_not_skipped() -> None:
    from keeper.history.sweep import parse_sweep

    with pytest.raises(ConfigError, match=r"--sweep 'risk.max_leverage=1,,2': expected NAME=V1,V2,... \(an empty value\)"):
        parse_sweep(["risk.max_leverage=1,,2"], load_config(None, environ={}))


@pytest.mark.parametrize(("address", "said"), [
    ("notanaddress", "not a scheduler address"), ("tcp://127.0.0.1", "not a scheduler address"),
    ("foo://127.0.0.1:1", "not a scheduler address"), ("tls://127.0.0.1:9", "not a scheduler address"),
    ("tcp://127.0.0.1:9", "no scheduler answers there")])
def test_a_dask_address_dask_cannot_use_is_named_before_a_client_is_made(
        address: str, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Client whose start failed was closed by the garbage collector inside the next Client's
    # start, which deadlocked the unit tests (seen twice under load)
    import distributed

    from keeper.history.sweep import _execute

    def no_client(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a Client was made for a bad --dask address")

    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(ConfigError, match=f"--dask {address}: {said}"):
        _execute([], None, address, None)


# ---------------------------------------------------------------- files that are directories
def test_a_journal_path_that_is_a_directory_is_named_as_one(tmp_path: Path) -> None:
    from keeper.status import build_status

    settings = load_config(None, overrides={"monitoring": {"journal": tmp_path}}, environ={})
    with pytest.raises(ConfigError, match=f"monitoring.journal: {tmp_path} is a directory"):
        build_status(settings)


def test_a_scenario_path_that_is_a_directory_points_at_the_suite(tmp_path: Path) -> None:
    from keeper.simulate.scenario import scenario_path

    with pytest.raises(ConfigError, match="a directory, not a scenario file .*--suite --scenarios"):
        scenario_path(str(tmp_path))


def test_a_scenario_name_beside_a_directory_of_that_name_is_still_the_scenario(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keeper.simulate.scenario import SCENARIO_DIR, scenario_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "calm").mkdir()  # e.g. a suite's output directory for it
    assert scenario_path("calm") == SCENARIO_DIR / "calm.toml"
    with pytest.raises(ConfigError, match="scenario ./calm: a directory, not a scenario file"):
        scenario_path("./calm")


def test_a_load_state_that_is_a_directory_is_refused_before_anvil_starts(tmp_path: Path) -> None:
    from keeper.devnet.world import start_world

    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(ConfigError, match=f"--load-state {state}: a directory, not a state file"):
        start_world(load_state=state)


# ---------------------------------------------------------------- anvil's refusal
class _ExitedAnvil:
    returncode = 2

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        import io

        self.stderr = io.BytesIO(b"error: invalid value 's.json' for '--load-state <PATH>': failed to parse json file"
                                 b"\n\nFor more information, try '--help'.\n")

    def poll(self) -> int:
        return self.returncode


def test_anvil_refusing_to_start_is_one_line_without_its_pointer_at_its_own_help(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import keeper.devnet.node as node

    monkeypatch.setattr(node, "parent_death_prefix", lambda: [])
    monkeypatch.setattr(node.subprocess, "Popen", _ExitedAnvil)
    with pytest.raises(FatalError) as raised:
        node.AnvilNode(port=0).start()
    assert str(raised.value) == ("anvil exited with code 2: error: invalid value 's.json' for '--load-state <PATH>': "
                                 "failed to parse json file")


# ---------------------------------------------------------------- a node that is down
def test_executor_commands_name_the_rpc_option_when_its_node_is_down_and_exit_2() -> None:
    from keeper.executor_admin import connect

    settings = load_config(None, overrides={"chain": {"preset": "optimism", "rpc_url": NODE,
                                                      "request_timeout_s": 2.0}}, environ={})
    with pytest.raises(FatalError, match=r"^--rpc-url: RPC http://127.0.0.1:9 unreachable"):
        connect(settings, NODE)
    with pytest.raises(FatalError, match=r"^chain.rpc_url: RPC http://127.0.0.1:9 unreachable"):
        connect(settings)


def test_executor_commands_name_the_rpc_option_when_its_node_is_another_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from keeper.chain.rpc import JsonRpc
    from keeper.errors import ChainMismatchError
    from keeper.executor_admin import connect

    monkeypatch.setattr(JsonRpc, "chain_id", lambda self: 1)  # mainnet; the optimism preset's book is chain 10
    settings = load_config(None, overrides={"chain": {"preset": "optimism", "rpc_url": NODE}}, environ={})
    with pytest.raises(ChainMismatchError, match=r"^--rpc-url: the node is chain 1, the address book is for 10"):
        connect(settings, NODE)
    with pytest.raises(ChainMismatchError, match=r"^chain.rpc_url: the node is chain 1"):
        connect(settings)


def test_run_names_the_rpc_option_it_was_given_when_its_node_is_down(tmp_path: Path) -> None:
    config = tmp_path / "keeper.toml"
    config.write_text('[chain]\npreset = "optimism"\nstartup_retry_s = 0\n[monitoring]\nlive_panel = "off"\n')
    result = keeper("run", "--dry-run", "--rpc-url", NODE, "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    one_error_line(result.stderr, "error: --rpc-url: RPC http://127.0.0.1:9 unreachable")


# ---------------------------------------------------------------- help
def test_devnet_help_names_the_dump_states_manifest_file(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # the help is markdown: "(and <file>.manifest.json beside it)" was shown as "(and .manifest.json beside it)"
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["keeper", "devnet", "--help"])
    assert run_app(app) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--dump-state FILE Save the freshly deployed chain here (and its manifest beside it, as FILE.manifest.json)" \
        in help_text


def test_stress_refuses_a_notional_without_the_proposal_it_would_size(tmp_path: Path) -> None:
    from keeper.stress_report import stress_command

    with pytest.raises(ConfigError, match="--notional-usd: only with --market and --direction"):
        stress_command(config_path=None, manifest=tmp_path / "none.json", rpc_url=NODE, account=None, market=None,
                       direction=None, notional_usd=1000.0, collateral_usd=1000.0, json_output=False, console=None)


def test_the_record_progress_shows_no_rate_before_it_means_anything() -> None:
    from keeper.history.commands import rate_text

    assert rate_text(1, 1e-9) == "" and rate_text(1, 0.2) == ""  # was "1,000,000,000 blocks/s" under --follow
    assert rate_text(100, 2.0) == "50 blocks/s"


@pytest.mark.parametrize(("args", "named"), [
    (["--manifest", "m.json"], "--manifest: needs an RPC"),
    (["-c", "keeper.toml"], "chain.manifest: needs an RPC"),
])
def test_run_refuses_a_manifest_it_would_not_read_without_an_rpc(args: list[str], named: str, tmp_path: Path) -> None:
    # it used to start the embedded devnet and ignore the manifest of the devnet the user meant
    (tmp_path / "keeper.toml").write_text('[chain]\nmanifest = "m.json"\n')
    result = keeper("run", "--dry-run", "--blocks", "1", *args, cwd=tmp_path)
    assert result.returncode == 2
    one_error_line(result.stderr, named)


def test_status_asks_only_for_what_is_missing_to_check_the_chain(tmp_path: Path) -> None:
    from keeper.journal import Journal
    from keeper.status import build_status

    journal = tmp_path / "journal.sqlite"
    Journal(journal).close()
    settings = load_config(None, overrides={"monitoring": {"journal": journal}, "chain": {"rpc_url": NODE}},
                           environ={})
    assert build_status(settings).chain_checked == "no: set account.executor to check the journal against the chain"


@pytest.mark.parametrize(("toml", "named"), [
    ("[risk]\nmax_leverage = true\n", "risk.max_leverage: expected a number, not true/false"),  # was taken as 1.0
    ("[chain]\nchain_id = true\n", "chain.chain_id: expected a number, not true/false"),  # was chain 1
    ("[execution]\nconfirmations = false\n", "execution.confirmations: expected a number, not true/false"),
])
def test_a_bool_where_the_config_wants_a_number_is_refused(toml: str, named: str, tmp_path: Path) -> None:
    (tmp_path / "keeper.toml").write_text(toml)
    with pytest.raises(ConfigError, match=named):
        load_config(tmp_path / "keeper.toml", environ={})


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keeper.toml"
    path.write_bytes(b"\xef\xbb\xbf[risk]\nmax_leverage = 2.0\n")  # Notepad's UTF-8: was "not valid TOML" at 1:1
    assert load_config(path, environ={}).risk.max_leverage == 2.0
