"""Resolving pools and oracle feeds on chain gives exactly the addresses the devnet deployed."""

import pytest

from keeper.addressbook import book_from_manifest, resolve_sources
from keeper.collect import Sources
from keeper.errors import ChainMismatchError

from .conftest import Devnet


def test_on_chain_resolution_matches_the_manifest(devnet: Devnet) -> None:
    resolved = resolve_sources(devnet.rpc, book_from_manifest(devnet.manifest))
    assert resolved == Sources.from_manifest(devnet.manifest)


def test_a_book_for_another_chain_is_refused(devnet: Devnet) -> None:
    book = book_from_manifest(devnet.manifest)
    with pytest.raises(ChainMismatchError, match="chain 31337"):
        resolve_sources(devnet.rpc, book.__class__(**{**book.__dict__, "chain_id": 10}))


def test_a_wrong_base_token_fails_loudly(devnet: Devnet) -> None:
    book = book_from_manifest(devnet.manifest)
    bad_market = book.markets[0].__class__(**{**book.markets[0].__dict__, "base_token": devnet.contract("USDC")})
    with pytest.raises(ChainMismatchError, match="ETH: BaseToken.getPriceFeed failed"):
        resolve_sources(devnet.rpc, book.__class__(**{**book.__dict__, "markets": (bad_market, *book.markets[1:])}))
