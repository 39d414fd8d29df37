"""What every `keeper` command module shares: the two consoles, the one-line error exit, logging
from the config, and the common options. keeper/cli.py and the command modules it registers
(devnet_cli.py, scan_cli.py, executor_cli.py) import them from here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from keeper.config import URL_SCHEMES, KeeperConfig, check_url, load_config, parse_address
from keeper.errors import ConfigError, FatalError, KeeperError
from keeper.logs import configure_logging, redact_urls
from keeper.out_paths import check_writable

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file (see keeper.example.toml). Env `KEEPER_<SECTION>__<KEY>` overrides it.")]


def load_settings(path: Path | None, overrides: dict[str, Any] | None = None,
                  secret_env: tuple[str, ...] = ()) -> KeeperConfig:
    """The config a command runs with (keeper.config.load_config), its strategies' names and
    parameters checked as `keeper run` builds them: every command that reads a config refuses a typo
    there the same way (a ConfigError naming the key), before it reaches out to a node."""
    from keeper.engine import load_strategy_slots  # the strategies' code: only once a command runs

    settings = load_config(path, overrides=overrides, secret_env=secret_env)
    load_strategy_slots(settings)
    return settings


def configure_logging_from(settings: KeeperConfig) -> None:
    fmt = settings.monitoring.log_format
    configure_logging(settings.monitoring.log_level, json_lines=None if fmt == "auto" else fmt == "json")


def run_app(app: typer.Typer) -> int:
    """Run the command line; a usage error (an unknown option, a value of the wrong type or out
    of range) is one line, `error: ...` naming the option, exit 2, like every other bad input."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `keeper`, `keeper executor`: the help is printed
            return exc.exit_code
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))}{escape(where)}", highlight=False)
        return exc.exit_code
    except typer.Abort:
        return 1
    return code if isinstance(code, int) else 0


def check_options(*, urls: Mapping[str, str | None] = {}, addresses: Mapping[str, str | None] = {},
                  schemes: set[str] = URL_SCHEMES, out_dirs: Mapping[str, Path | None] = {},
                  out_files: Mapping[str, Path | None] = {}) -> None:
    """URLs (of nodes: http(s), or `schemes`), addresses and output directories and files given on
    the command line, checked before anything starts (an output must be creatable and writable): a
    ConfigError naming the option (the caller's `fail` makes it one line, exit 2)."""
    for option, url in urls.items():
        if url is not None:
            check_url(url, option, schemes)
    for option, address in addresses.items():
        if address is not None:
            parse_address(address, option)
    for option, directory in out_dirs.items():
        if directory is not None:
            check_writable(directory, option, directory=True)
    for option, file in out_files.items():
        if file is not None:
            check_writable(file, option, directory=False)


def finite(value: float | None) -> float | None:
    """A float option's callback: inf and nan are refused (a usage error naming the option)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def fail(exc: KeeperError) -> typer.Exit:
    """One clear line on stderr; exit 2 for bad input or fatal set-up, 1 otherwise. Any URL in the
    message is shown as scheme://host:port only (the raise sites already do; this is the last net:
    a provider's key in a URL's path, query or user part never reaches the terminal)."""
    code = 2 if isinstance(exc, FatalError) else 1
    err.print(f"[bold red]error:[/] {escape(redact_urls(str(exc)))}", highlight=False)
    return typer.Exit(code)
