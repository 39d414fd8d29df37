"""Our BasisExecutor contract: calldata for open / resize / close, and its Fills back.

Encoding is from the exported ABI (abis/BasisExecutor.json); struct fields are in ABI order (see
contracts/src/interfaces/IBasisExecutor.sol for their meaning and units).
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from keeper.artifacts import abi_codec
from keeper.chain.multicall import word_int
from keeper.types import PredictedFills, SpotVenue

EXECUTOR = abi_codec("BasisExecutor")
SPOT_VENUE_CODE = {"uniswap_v2": 0, "uniswap_v3": 1}
_FILL_EVENTS = {
    keccak(text=f"{name}(address,uint8,int256,int256,int256,int256,int256,int256,int256)"): name
    for name in ("BasisOpened", "BasisResized", "BasisClosed")
}


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
    for log in receipt.get("logs", []):
        if log["address"].lower() != executor.lower() or not log["topics"]:
            continue
        name = _FILL_EVENTS.get(bytes.fromhex(log["topics"][0][2:]))
        if name is None:
            continue
        data = bytes.fromhex(log["data"][2:])
        # data: spotVenue, perpBase18, perpQuote18, spotRaw, usdcRaw, residualBase18, netQuote18, positionAfter
        values = tuple(word_int(data, i) for i in range(1, 8))
        return name, fills_from_words(values), values[6]
    return None
