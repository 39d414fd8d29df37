"""Exact Uniswap V2 amounts (UniswapV2Library.getAmountOut / getAmountIn, 0.3% fee), in ints.

Pure functions: reserves in, amounts out, rounded exactly as the router and the pair's
constant-product check do (down for amounts out, up by one for amounts in).
"""

from __future__ import annotations

from keeper.errors import SkipOpportunity

FEE_NUMERATOR = 997  # input kept after the 0.3% fee, per 1000
FEE_DENOMINATOR = 1000


class V2InsufficientLiquidity(SkipOpportunity):
    """The pair cannot do this swap (empty reserve, or the output would drain it): the
    router reverts with UniswapV2Library INSUFFICIENT_LIQUIDITY or a SafeMath underflow."""


def _check_reserves(reserve_in_raw: int, reserve_out_raw: int) -> None:
    if reserve_in_raw <= 0 or reserve_out_raw <= 0:
        raise V2InsufficientLiquidity(
            f"UniswapV2Library: INSUFFICIENT_LIQUIDITY (reserves {reserve_in_raw}, {reserve_out_raw})")


def quote_v2_exact_in(amount_in_raw: int, reserve_in_raw: int, reserve_out_raw: int) -> int:
    """getAmountOut: the output (raw units of the output token) for an exact input, fee included."""
    if amount_in_raw <= 0:
        raise ValueError(f"amount_in_raw must be positive, got {amount_in_raw}")
    _check_reserves(reserve_in_raw, reserve_out_raw)
    in_after_fee = amount_in_raw * FEE_NUMERATOR
    return in_after_fee * reserve_out_raw // (reserve_in_raw * FEE_DENOMINATOR + in_after_fee)


def quote_v2_exact_out(amount_out_raw: int, reserve_in_raw: int, reserve_out_raw: int) -> int:
    """getAmountIn: the input (raw units of the input token, fee included) for an exact output."""
    if amount_out_raw <= 0:
        raise ValueError(f"amount_out_raw must be positive, got {amount_out_raw}")
    _check_reserves(reserve_in_raw, reserve_out_raw)
    if amount_out_raw >= reserve_out_raw:
        raise V2InsufficientLiquidity(
            f"output {amount_out_raw} would drain the reserve {reserve_out_raw}")
    numerator = reserve_in_raw * amount_out_raw * FEE_DENOMINATOR
    denominator = (reserve_out_raw - amount_out_raw) * FEE_NUMERATOR
    return numerator // denominator + 1


def reserves_after_v2_swap(amount_in_raw: int, amount_out_raw: int, reserve_in_raw: int, reserve_out_raw: int) -> tuple[int, int]:
    """The pair's reserves (in, out) after a swap that paid amount_in_raw and took amount_out_raw."""
    return reserve_in_raw + amount_in_raw, reserve_out_raw - amount_out_raw
