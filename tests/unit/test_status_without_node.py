"""`keeper status` with no node set names what to set to check the journal against the chain: the
node; account.executor only as needed (README: with it unset, status checks the executor the
journal's last live run on that chain traded through). Before: `set chain.rpc_url (or --rpc-url)
and account.executor`, though a journal of a live run on a devnet or fork needs only the node."""

from __future__ import annotations

from pathlib import Path

from keeper.config import load_config
from keeper.journal import Journal
from keeper.status import build_status


def test_status_without_a_node_asks_for_the_node_and_says_when_the_executor_is_needed(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    Journal(journal).close()
    settings = load_config(None, overrides={"monitoring": {"journal": journal}}, environ={})
    assert build_status(settings).chain_checked == (
        "no: set chain.rpc_url (or --rpc-url) to check the journal against the chain (and account.executor, "
        "unless the journal's last live run on that chain recorded its executor)")
    with_executor = load_config(None, environ={}, overrides={"monitoring": {"journal": journal},
                                                             "account": {"executor": "0x" + "ab" * 20}})
    assert build_status(with_executor).chain_checked == "no: set chain.rpc_url (or --rpc-url) to check the journal against the chain"
