"""The chain's positions as the journal reconciles them (the chain wins), with the spot leg of an
adopted position taken from what the executor really holds.

A position the journal does not know (adopted: opened before the journal, or by a trade it never
booked) gets as spot leg the executor's balance of the spot token, up to the size that hedges the
perp leg: for a short perp, the spot it holds; for a long perp, the spot it sold cannot be read
back, so the hedge is the perp size itself (what a close buys back). Markets with a transaction
in flight are left as the journal has them until it is booked.
"""

from __future__ import annotations

from collections.abc import Mapping

from keeper.collect import Sources
from keeper.journal import ChainPosition
from keeper.types import MarketSnapshot, PerpAccountState, Position


def chain_positions(snapshot: MarketSnapshot, sources: Sources, journal_positions: Mapping[str, Position],
                    in_flight: set[str] = frozenset()) -> dict[str, ChainPosition]:  # type: ignore[assignment]
    """Every market of the executor's Perp account and of the journal, as `Journal.reconcile` takes them."""
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        raise ValueError(f"Perp account unreadable: {getattr(account, 'reason', account)}")
    held = {name: state.position_size_x18 for name, state in account.markets.items()}
    out: dict[str, ChainPosition] = {}
    for source in sources.markets:
        if source.name not in held and source.name not in journal_positions:
            continue
        known = journal_positions.get(source.name)
        if source.name in in_flight:
            if known is not None:
                out[source.name] = ChainPosition(known.perp_base_x18)
            continue
        perp = held.get(source.name, 0)
        spot = None if known is not None else adopted_spot_raw(perp, snapshot.wallet_raw.get(source.spot_token, 0),
                                                               source.spot_token_decimals)
        out[source.name] = ChainPosition(perp, spot)
    for market, known in journal_positions.items():  # a journal market the sources do not list
        out.setdefault(market, ChainPosition(held.get(market, 0)))
    return out


def adopted_spot_raw(perp_base_x18: int, wallet_spot_raw: int, spot_decimals: int) -> int:
    """The spot leg of an adopted position, in the spot token's raw units (signed like Position.spot_raw)."""
    if perp_base_x18 == 0:
        return 0
    scale = 10 ** (18 - spot_decimals)
    hedge_raw = abs(perp_base_x18) // scale
    if perp_base_x18 < 0:  # short perp: long spot, what the executor holds of it
        return min(wallet_spot_raw, hedge_raw)
    return -hedge_raw  # long perp: spot sold; a close buys the hedge back
