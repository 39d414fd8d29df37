"""Where one market's state lives, and the static facts read once about it (prepare()).

Chain-agnostic: built from a devnet manifest or a preset (keeper/collect.py). A history file keeps
these as JSON (keeper/history/replay.py), so their fields are a file format: add, never rename.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class MarketSource:
    name: str
    base_token: str  # Perp v2 BaseToken
    aggregator: str
    spot_token: str
    spot_token_decimals: int
    usdc: str
    uniswap_v2_pair: str | None
    uniswap_v3_pool: str | None

    @staticmethod
    def pooled(markets: Iterable[MarketSource]) -> frozenset[tuple[str, str]]:
        """The (market, spot venue) pairs with a pool at all (SPOT_VENUES names): static, one set per keeper."""
        return frozenset((m.name, venue) for m in markets
                         for venue, pool in (("uniswap_v2", m.uniswap_v2_pair), ("uniswap_v3", m.uniswap_v3_pool))
                         if pool is not None)

    @cached_property  # asked for every market every block (the snapshot's MarketView); kept in the instance dict
    def spot_is_token0(self) -> bool:
        return int(self.spot_token, 16) < int(self.usdc, 16)


@dataclass(frozen=True)
class PoolStatic:
    """A concentrated-liquidity (Uniswap V3 style) pool's fixed facts."""

    address: str
    fee_pips: int
    tick_spacing: int


@dataclass(frozen=True)
class MarketStatic:
    source: MarketSource
    perp_pool: PoolStatic
    spot_v3_pool: PoolStatic | None
    oracle_decimals: int
