"""`keeper scan`: one row per market from contract state at the latest block, as a table, one
block per market on a narrow console, or JSON. Registered in keeper/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from keeper.cli_console import ConfigOption, check_options, fail, load_settings, out
from keeper.errors import FatalError, KeeperError, TransientError
from keeper.logs import redacted_url


def scan(
    config: ConfigOption = None,
    rpc_url: Annotated[Optional[str], typer.Option(help="JSON-RPC endpoint (overrides chain.rpc_url; on a devnet the addresses still come from the manifest, e.g. a fork of it).")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="Devnet manifest with chain_id and every address (overrides chain.manifest; default: where `keeper devnet` writes it).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (a list of rows) instead of a table.")] = False,
    history_blocks: Annotated[int, typer.Option(min=0, help="Past blocks read for the basis z-score (0: no z-score).")] = 30,
) -> None:
    """One row per market, from contract state at the latest block: spot (Uniswap V3 and V2),
    Perp v2 mark and index, basis, funding, carry, basis z-score, and the size that moves each
    venue's price by 1% and 2%. The chain is the config's (a devnet's manifest, or the Optimism
    preset's addresses resolved on chain)."""
    import json

    from keeper.addressbook import chain_url_source, config_chain, config_sources
    from keeper.chain.rpc import JsonRpc
    from keeper.scan import scan as run_scan

    try:
        check_options(urls={"--rpc-url": rpc_url})
        chain = {k: v for k, v in (("rpc_url", rpc_url), ("manifest", manifest)) if v}  # the options override the config
        settings = load_settings(config, overrides={"chain": chain} if chain else None)
        url, book = config_chain(settings)
        rpc = JsonRpc(url, timeout_s=settings.chain.request_timeout_s)
        try:
            rows = run_scan(rpc, config_sources(rpc, book), history_blocks)
        except TransientError as exc:
            raise FatalError(f"{chain_url_source(rpc_url, settings)} {redacted_url(url)}: {exc}") from exc
    except KeeperError as exc:
        raise fail(exc) from exc
    if json_output:
        out.print_json(json.dumps([r.as_json() for r in rows]))
        return
    _print_scan(rows)


SCAN_TABLE_MIN_WIDTH = 170


def _print_scan(rows: list) -> None:  # type: ignore[type-arg]
    """A table on a wide console; one block per market on a narrow one (pipes default to 80)."""
    from rich.table import Table

    block = rows[0].block_number if rows else "?"
    if out.width >= SCAN_TABLE_MIN_WIDTH:
        table = Table(title=f"markets at block {block}", title_justify="left")
        table.add_column("market", no_wrap=True, min_width=6)
        for column in rows[0].cells() if rows else ():
            table.add_column(column, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(r.market, *r.cells().values())
        out.print(table)
    else:
        out.print(f"markets at block {block}", highlight=False)
        for r in rows:
            out.print(f"[bold]{r.market}[/]")
            for key, value in r.cells().items():
                out.print(f"  {key:<30} {value}", highlight=False)
    for r in rows:
        for problem in r.unavailable:
            out.print(f"[yellow]{r.market} unavailable[/]: {problem}", highlight=False)
