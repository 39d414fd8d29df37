"""The executor's markets, checked at start: every enabled market registered with the address
book's spot token and the V3 fee tier of the pool the keeper quotes.

An executor without a market reverts every open to it in simulation (the keeper never trades it);
one with another fee tier swaps through another pool than the one quoted (its fills are not the
predicted ones). Either refuses a live or a dry start (a dry run that cannot trade a market
measures nothing). All markets are read in one Multicall3 call.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import to_checksum_address

from keeper.chain.multicall import Call, Multicall
from keeper.errors import ConfigError
from keeper.venues.executor import EXECUTOR
from keeper.venues.sources import MarketStatic


def check_executor_markets(multicall: Multicall, executor: str, statics: Sequence[MarketStatic],
                           enabled: Sequence[str]) -> None:
    """Refuse (ConfigError naming account.executor) an executor whose registration of an enabled
    market differs from the book's: none, another spot token, or another V3 fee tier (checked when
    the book quotes a V3 pool)."""
    markets = [s for s in statics if s.source.name in enabled]
    if not markets:
        return
    results = multicall.run_calls([Call(executor, EXECUTOR.encode("spotMarket", s.source.base_token),
                                        f"{s.source.name}.spotMarket") for s in markets])
    wrong = {s.source.name: why for s, r in zip(markets, results) if (why := _difference(s, r.success, r.return_data))}
    if wrong:
        names = list(wrong)
        raise ConfigError(
            f"account.executor: {executor} cannot trade as the keeper quotes: {'; '.join(wrong.values())}; register "
            f"{'it' if len(names) == 1 else 'them'} (a new executor: `keeper executor deploy --markets "
            f"{','.join(names)}`; this one: its admin's setMarket(baseToken, spotToken, v3FeePips)), "
            f"or drop {', '.join(names)} from markets.enabled")


def _difference(static: MarketStatic, success: bool, data: bytes) -> str | None:
    """What the executor has for this market that the book does not (None: the same)."""
    m = static.source
    book = f"spot token {to_checksum_address(m.spot_token)}" + (
        f", V3 fee {static.spot_v3_pool.fee_pips}" if static.spot_v3_pool is not None else "")
    if not success or not data:
        return f"{m.name}: its spotMarket({m.base_token}) reverted (the book's: {book})"
    spot, _scale, fee = EXECUTOR.decode("spotMarket", data)[0]
    if int(spot, 16) == 0:
        return f"{m.name}: no market registered (the book's: {book})"
    if spot.lower() != m.spot_token.lower():
        return (f"{m.name}: spot token {to_checksum_address(spot)}, the book's spot token is "
                f"{to_checksum_address(m.spot_token)}")
    if static.spot_v3_pool is not None and int(fee) != static.spot_v3_pool.fee_pips:
        return (f"{m.name}: V3 fee {int(fee)} (its swaps would go through another pool), the book's V3 pool has "
                f"fee {static.spot_v3_pool.fee_pips} ({to_checksum_address(static.spot_v3_pool.address)})")
    return None

