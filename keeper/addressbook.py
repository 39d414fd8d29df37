"""Where a chain's contracts are: presets, and on-chain resolution of pools and oracle feeds.

- devnet: every address from the devnet manifest (`keeper devnet` writes it).
- optimism: Perp v2 (Curie) system contracts, base tokens and collateral token from the npm
  package @perp/curie-deployments (exported to keeper/data/optimism.json by
  `python -m keeper.addressbook export`), plus the spot side (WBTC, Uniswap routers/factories).
Pools and aggregators are resolved on chain at start, from the factories and from each Perp base
token's own price feed (BaseToken.getPriceFeed -> PriceFeedDispatcher -> ChainlinkPriceFeedV3 ->
aggregator), so a wrong or moved address fails loudly at start instead of trading blind.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keeper.artifacts import NODE_MODULES, abi_codec
from keeper.chain.multicall import Call, Multicall, word_address, word_uint
from keeper.chain.rpc import JsonRpc
from keeper.collect import MarketSource, Sources
from keeper.errors import ChainMismatchError, ConfigError
from keeper.logs import redacted_url
from keeper.venues.perp_v2 import PerpAddresses

if TYPE_CHECKING:
    from keeper.config import KeeperConfig
    from keeper.devnet.manifest import DevnetManifest

DATA_DIR = Path(__file__).resolve().parent / "data"
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class MarketBook:
    name: str
    base_token: str
    spot_token: str
    uniswap_v3_fee_pips: int


@dataclass(frozen=True)
class AddressBook:
    chain_id: int
    perp: PerpAddresses
    usdc: str
    weth: str
    multicall3: str
    uniswap_v3_factory: str
    uniswap_v3_swap_router: str
    uniswap_v2_factory: str | None
    uniswap_v2_router: str | None
    markets: tuple[MarketBook, ...]


def optimism_book() -> AddressBook:
    data = json.loads((DATA_DIR / "optimism.json").read_text())
    return AddressBook(
        chain_id=data["chain_id"], perp=PerpAddresses(**data["perp"]), usdc=data["usdc"], weth=data["weth"],
        multicall3=data["multicall3"], uniswap_v3_factory=data["uniswap_v3_factory"],
        uniswap_v3_swap_router=data["uniswap_v3_swap_router"], uniswap_v2_factory=data.get("uniswap_v2_factory"),
        uniswap_v2_router=data.get("uniswap_v2_router"),
        markets=tuple(MarketBook(**m) for m in data["markets"]),
    )


def book_from_manifest(manifest) -> AddressBook:  # type: ignore[no-untyped-def]
    """The devnet as an address book (used to test on-chain resolution against known answers)."""
    c = manifest.contracts
    return AddressBook(
        chain_id=manifest.chain_id,
        perp=PerpAddresses(c["ClearingHouse"], c["ClearingHouseConfig"], c["Exchange"], c["AccountBalance"],
                           c["MarketRegistry"], c["Vault"]),
        usdc=c["USDC"], weth=c["WETH9"], multicall3=c["Multicall3"], uniswap_v3_factory=c["UniswapV3Factory"],
        uniswap_v3_swap_router=c["SwapRouter"], uniswap_v2_factory=c["UniswapV2Factory"],
        uniswap_v2_router=c["UniswapV2Router02"],
        markets=tuple(MarketBook(m.name, m.base_token, m.spot_token, m.uniswap_v3_fee_pips) for m in manifest.markets),
    )


def resolve_sources(rpc: JsonRpc, book: AddressBook) -> Sources:
    """Pools, pairs, aggregators and decimals from chain state; one Multicall3 batch per hop."""
    chain_id = rpc.chain_id()
    if chain_id != book.chain_id:
        raise ChainMismatchError(f"RPC {redacted_url(rpc.url)} is chain {chain_id}, the address book is for chain {book.chain_id}")
    if not rpc.get_code(book.multicall3):
        raise ChainMismatchError(f"no Multicall3 at {book.multicall3} on chain {chain_id}")
    mc = Multicall(rpc, book.multicall3)
    base, dispatcher, feed = abi_codec("BaseToken"), abi_codec("PriceFeedDispatcher"), abi_codec("ChainlinkPriceFeedV3")
    v3f, v2f, erc20 = abi_codec("UniswapV3Factory"), abi_codec("UniswapV2Factory"), abi_codec("MintableERC20")

    def run(calls: list[Call]) -> list[bytes]:
        results = mc.run_calls(calls)
        bad = [c.label for c, r in zip(calls, results) if not r.success or not r.return_data]
        if bad:
            raise ChainMismatchError(f"address book does not match chain {chain_id}: {', '.join(bad)} failed")
        return [r.return_data for r in results]

    feeds = run([Call(m.base_token, base.encode("getPriceFeed"), f"{m.name}: BaseToken.getPriceFeed") for m in book.markets])
    dispatchers = [word_address(f) for f in feeds]
    chainlink = run([Call(d, dispatcher.encode("getChainlinkPriceFeedV3"), f"{m.name}: getChainlinkPriceFeedV3")
                     for m, d in zip(book.markets, dispatchers)])
    aggregators = run([Call(word_address(c), feed.encode("getAggregator"), f"{m.name}: getAggregator")
                       for m, c in zip(book.markets, chainlink)])
    pool_calls = [Call(book.uniswap_v3_factory, v3f.encode("getPool", m.spot_token, book.usdc, m.uniswap_v3_fee_pips),
                       f"{m.name}: UniswapV3Factory.getPool") for m in book.markets]
    if book.uniswap_v2_factory:
        pool_calls += [Call(book.uniswap_v2_factory, v2f.encode("getPair", m.spot_token, book.usdc),
                            f"{m.name}: UniswapV2Factory.getPair") for m in book.markets]
    pools = run(pool_calls)
    decimals = run([Call(m.spot_token, erc20.encode("decimals"), f"{m.name}: spot decimals") for m in book.markets])
    n = len(book.markets)
    markets = []
    for i, m in enumerate(book.markets):
        v3 = word_address(pools[i])
        v2 = word_address(pools[n + i]) if book.uniswap_v2_factory else ZERO_ADDRESS
        if v3 == ZERO_ADDRESS and v2 == ZERO_ADDRESS:
            raise ChainMismatchError(f"market {m.name}: no Uniswap pool for {m.spot_token}/USDC on chain {chain_id}")
        markets.append(MarketSource(
            name=m.name, base_token=m.base_token, aggregator=_checksum(word_address(aggregators[i])),
            spot_token=m.spot_token, spot_token_decimals=word_uint(decimals[i]), usdc=book.usdc,
            uniswap_v2_pair=None if v2 == ZERO_ADDRESS else _checksum(v2),
            uniswap_v3_pool=None if v3 == ZERO_ADDRESS else _checksum(v3)))
    return Sources(chain_id, book.perp, book.multicall3, tuple(markets))


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)


# ------------------------------------------------------------------------------ export
_OPTIMISM_SPOT = {
    # Not in @perp/curie-deployments; checked at start (code must exist, pools must resolve).
    "WBTC": "0x68f180fcCe6836688e9084f035309E29Bf0A2095",
    "uniswap_v3_swap_router": "0xE592427A0AEce92De3Edee1F18E0157C05861564",
    "uniswap_v2_factory": "0x0c3c1c532F1e39EdF36BE9Fe0bE1410313E074Bf",
    "uniswap_v2_router": "0x4A7b5Da61326A6379179b40d00F57E5bbDC962c2",
    "multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
}
_OPTIMISM_MARKETS = (("ETH", "vETH", "WETH", 500), ("BTC", "vBTC", "WBTC", 3000))


def export_optimism(target: Path = DATA_DIR / "optimism.json") -> Path:
    meta_path = NODE_MODULES / "@perp/curie-deployments/optimism/core/metadata.json"
    if not meta_path.exists():
        raise ConfigError(f"{meta_path} not found: run `make deps`")
    meta = json.loads(meta_path.read_text())
    c, ext = meta["contracts"], meta["externalContracts"]
    bases = {p["baseSymbol"]: p["baseAddress"] for p in meta["pools"]}
    tokens = {"WETH": ext["WETH9"], "WBTC": _OPTIMISM_SPOT["WBTC"]}
    book = {
        "source": "@perp/curie-deployments optimism/core/metadata.json; spot side: keeper/addressbook.py _OPTIMISM_SPOT",
        "chain_id": meta["chainId"],
        "perp": {"clearing_house": c["ClearingHouse"]["address"], "clearing_house_config": c["ClearingHouseConfig"]["address"],
                 "exchange": c["Exchange"]["address"], "account_balance": c["AccountBalance"]["address"],
                 "market_registry": c["MarketRegistry"]["address"], "vault": c["Vault"]["address"]},
        "usdc": ext["USDC"], "weth": ext["WETH9"], "uniswap_v3_factory": ext["UniswapV3Factory"],
        **{k: v for k, v in _OPTIMISM_SPOT.items() if k != "WBTC"},
        "markets": [{"name": name, "base_token": bases[vbase], "spot_token": tokens[spot], "uniswap_v3_fee_pips": fee}
                    for name, vbase, spot, fee in _OPTIMISM_MARKETS],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(book, indent=2) + "\n")
    return target


def config_chain(config: KeeperConfig) -> tuple[str, DevnetManifest | None]:
    """The node URL `config` names, and the devnet manifest when its preset is the devnet
    (chain.manifest, else where `keeper devnet` writes it): chain.rpc_url, else the manifest's."""
    from keeper.devnet.manifest import DEFAULT_MANIFEST, DevnetManifest

    manifest = DevnetManifest.read(config.chain.manifest or DEFAULT_MANIFEST) if config.chain.preset == "devnet" else None
    url = config.chain.rpc_url or (manifest.rpc_url if manifest is not None else None)
    if url is None:
        raise ConfigError("chain.rpc_url: required with preset 'optimism'")
    return url, manifest


def chain_url_source(rpc_url_option: str | None, config: KeeperConfig) -> str:
    """Where config_chain's URL came from, for an error naming it: the option, the key (after the
    environment variable that holds it, if one does) or the manifest."""
    return ("--rpc-url" if rpc_url_option else config.where("chain", "rpc_url") if config.chain.rpc_url
            else "the devnet manifest's rpc_url")


def config_sources(rpc: JsonRpc, manifest: DevnetManifest | None) -> Sources:
    """The markets' addresses: a devnet's from its manifest, a real chain's resolved on chain from
    the Optimism address book."""
    if manifest is not None:
        return Sources.from_manifest(manifest.with_rpc_url(rpc.url))
    return resolve_sources(rpc, optimism_book())


if __name__ == "__main__":
    if sys.argv[1:] != ["export"]:
        print("usage: python -m keeper.addressbook export", file=sys.stderr)
        raise SystemExit(2)
    print(export_optimism())

