"""Every venue adapter, by name: the core looks a leg's venue up here (keeper/venues/adapter.py).
The spot names are keeper.types.SPOT_VENUES, the perp names keeper.types.PERP_VENUES."""

from __future__ import annotations

from types import MappingProxyType

from keeper.types import TradeLeg
from keeper.venues.adapter import PerpVenueAdapter, SpotVenueAdapter
from keeper.venues.chainlink import ChainlinkReads
from keeper.venues.perp_v2_adapter import PerpV2
from keeper.venues.uniswap_v2_adapter import UniswapV2Spot
from keeper.venues.uniswap_v3_adapter import UniswapV3Spot

SPOT_ADAPTERS = MappingProxyType({a.name: a for a in (UniswapV3Spot(), UniswapV2Spot())})
PERP_ADAPTERS = MappingProxyType({a.name: a for a in (PerpV2(),)})
# who reads each MarketView field, in the order of their calls in a snapshot's batch (recorded
# history files replay that order: append a new venue, never reorder; keeper/venues/snapshot_reads.py)
SNAPSHOT_READERS = (PERP_ADAPTERS["perp_v2"], ChainlinkReads(), SPOT_ADAPTERS["uniswap_v2"], SPOT_ADAPTERS["uniswap_v3"])


def spot_adapter(venue: str) -> SpotVenueAdapter:
    try:
        return SPOT_ADAPTERS[venue]
    except KeyError:
        raise ValueError(f"unknown spot venue {venue!r} (known: {', '.join(SPOT_ADAPTERS)})") from None


def leg_adapter(leg: TradeLeg) -> SpotVenueAdapter | PerpVenueAdapter:
    """The adapter of a trade leg's venue."""
    return spot_adapter(leg.venue) if leg.venue_kind == "spot" else perp_adapter(leg.venue)


def perp_adapter(venue: str) -> PerpVenueAdapter:
    try:
        return PERP_ADAPTERS[venue]
    except KeyError:
        raise ValueError(f"unknown perp venue {venue!r} (known: {', '.join(PERP_ADAPTERS)})") from None
