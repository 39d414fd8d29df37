"""Our BasisExecutor contract: calldata for open / resize / close (basis) and for the pair trade
(openPair / resizePair / closePair: two Perp legs, IPairExecutor), and their fills back.

Encoding is from the exported ABI (abis/BasisExecutor.json); struct fields are in ABI order (see
contracts/src/interfaces/IBasisExecutor.sol for their meaning and units).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from keeper.artifacts import abi_codec
from keeper.chain.multicall import word_int
from keeper.types import PredictedFills, SpotVenue
from keeper.venues.registry import SPOT_ADAPTERS

EXECUTOR = abi_codec("BasisExecutor")
SPOT_VENUE_CODE = {name: adapter.executor_code for name, adapter in SPOT_ADAPTERS.items()}  # IBasisExecutor.SpotVenue
_FILL_EVENTS = {
    keccak(text=f"{name}(address,uint8,int256,int256,int256,int256,int256,int256,int256)"): name
    for name in ("BasisOpened", "BasisResized", "BasisClosed")
}
_PAIR_EVENTS = {
    keccak(text=f"{name}(address,address,int256,int256,int256,int256,int256,int256,int256)"): name
    for name in ("PairOpened", "PairResized", "PairClosed")
}
PAIR_FUNCTIONS = ("openPair", "resizePair", "closePair")


def perp_order(base_token: str, is_base_to_quote: bool, is_exact_input: bool, amount_x18: int,
               opposite_amount_bound_x18: int, sqrt_price_limit_x96: int = 0) -> tuple[Any, ...]:
    return (base_token, is_base_to_quote, is_exact_input, amount_x18, opposite_amount_bound_x18, sqrt_price_limit_x96)


def perp_close_order(base_token: str, opposite_amount_bound_x18: int, sqrt_price_limit_x96: int = 0) -> tuple[Any, ...]:
    return (base_token, opposite_amount_bound_x18, sqrt_price_limit_x96)


def spot_order(venue: SpotVenue, is_buy: bool, is_exact_input: bool, amount_raw: int, limit_raw: int) -> tuple[Any, ...]:
    return (SPOT_VENUE_CODE[venue], is_buy, is_exact_input, amount_raw, limit_raw)


def trade_bounds(deadline_s: int, max_residual_base_x18: int, min_net_quote_x18: int) -> tuple[int, int, int]:
    return (deadline_s, max_residual_base_x18, min_net_quote_x18)


def fills_from_words(words: tuple[int, ...]) -> PredictedFills:
    """Fills{perpBase18, perpQuote18, spotRaw, usdcRaw, residualBase18, netQuote18, positionBase18After}."""
    perp_base, perp_quote, spot, usdc, residual, net_quote, _ = words
    return PredictedFills(perp_base, perp_quote, spot, usdc, residual, net_quote)


def decode_fills_return(function: str, data: bytes) -> PredictedFills:
    """Fills from an eth_call of openBasis / resizeBasis / closeBasis (dry run, simulation)."""
    (fills,) = EXECUTOR.decode(function, data)
    return fills_from_words(tuple(fills))


def fills_from_receipt(receipt: dict[str, Any], executor: str) -> tuple[str, PredictedFills, int] | None:
    """(event name, fills, position base after) from a mined receipt's executor event, if any."""
    found = _find_event(receipt, executor, _FILL_EVENTS)
    if found is None:
        return None
    name, data = found
    # data: spotVenue, perpBase18, perpQuote18, spotRaw, usdcRaw, residualBase18, netQuote18, positionAfter
    values = tuple(word_int(data, i) for i in range(1, 8))
    return name, fills_from_words(values), values[6]


def _find_event(receipt: dict[str, Any], executor: str, events: dict[bytes, str]) -> tuple[str, bytes] | None:
    """(name, data) of the first log of `executor` whose topic0 is one of `events`."""
    for log in receipt.get("logs", []):
        if log["address"].lower() != executor.lower() or not log["topics"]:
            continue
        name = events.get(bytes.fromhex(log["topics"][0][2:]))
        if name is not None:
            return name, bytes.fromhex(log["data"][2:])
    return None


# ------------------------------------------------------------------------------ pair trades
@dataclass(frozen=True)
class PairFills:
    """IPairExecutor.PairFills, field for field (signed, executor's view; 18 decimals): what a pair
    trade did, or what keeper/quotes_pair.py predicts it will do."""

    perp_base_x18_a: int
    perp_quote_x18_a: int  # Perp's fee included
    position_base_x18_after_a: int
    perp_base_x18_b: int
    perp_quote_x18_b: int
    position_base_x18_after_b: int
    net_exposure_quote_x18: int  # exposure A + hedge ratio x exposure B (IPairExecutor notice)


def pair_bounds(deadline_s: int, hedge_ratio_x18: int, max_net_exposure_quote_x18: int) -> tuple[int, int, int]:
    """IPairExecutor.PairBounds."""
    return (deadline_s, hedge_ratio_x18, max_net_exposure_quote_x18)


def decode_pair_fills_return(function: str, data: bytes) -> PairFills:
    """PairFills from an eth_call of openPair / resizePair / closePair (dry run, simulation)."""
    if function not in PAIR_FUNCTIONS:
        raise ValueError(f"{function} is not a pair function ({', '.join(PAIR_FUNCTIONS)})")
    (fills,) = EXECUTOR.decode(function, data)
    return PairFills(*fills)


def pair_fills_from_receipt(receipt: dict[str, Any], executor: str) -> tuple[str, PairFills] | None:
    """(event name, fills) from a mined receipt's Pair* event of `executor`, if any."""
    found = _find_event(receipt, executor, _PAIR_EVENTS)
    if found is None:
        return None
    name, data = found
    # data: perpBase18A, perpQuote18A, perpBase18B, perpQuote18B, netExposure, positionAfterA, positionAfterB
    base_a, quote_a, base_b, quote_b, net, after_a, after_b = (word_int(data, i) for i in range(7))
    return name, PairFills(base_a, quote_a, after_a, base_b, quote_b, after_b, net)
