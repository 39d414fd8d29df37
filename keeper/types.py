"""The pipeline's stage types (collect -> decide -> plan -> execute). Frozen; units in names.

Raw on-chain amounts are ints: `_raw` in the token's own decimals, `_x18` in 18 decimals (Perp v2
accounting), `_x96` Q64.96 fixed point, `_ppm` parts per million, `_wei` for ETH.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from keeper.venues.uniswap_v3_math import V3PoolState

Q96 = 2**96
Q192 = 2**192
ONE_X18 = 10**18
SECONDS_PER_DAY = 86_400
SECONDS_PER_YEAR = 365 * SECONDS_PER_DAY
USDC_DECIMALS = 6


@dataclass(frozen=True)
class Unavailable:
    """A read that failed this block; the market (or venue) is skipped, with this reason."""

    reason: str


# ------------------------------------------------------------------------------ collect
@dataclass(frozen=True)
class PerpMarketState:
    """Perp v2 market state at one block (all 18 decimals unless named otherwise)."""

    base_token: str
    pool: V3PoolState  # the vAMM: a Uniswap V3 pool vBase/vUSD (base is token0)
    mark_price_x18: int  # AccountBalance.getMarkPrice: median(15 s market TWAP, 30 min TWAP, index + premium)
    index_price_x18: int  # BaseToken.getIndexPrice(0)
    index_twap_x18: int  # BaseToken.getIndexPrice(twap_interval_s)
    market_twap_x18: int  # from Exchange.getSqrtMarketTwapX96(base, twap_interval_s)
    exchange_fee_ratio_ppm: int
    uniswap_fee_ratio_ppm: int
    insurance_fund_fee_ratio_ppm: int
    max_funding_rate_ppm: int
    twap_interval_s: int

    @property
    def funding_premium_x18(self) -> int:
        """market TWAP - index TWAP, clamped to +-index TWAP x max funding rate, as Exchange does.
        Positive: longs pay shorts."""
        cap = self.index_twap_x18 * self.max_funding_rate_ppm // 1_000_000
        return max(-cap, min(cap, self.market_twap_x18 - self.index_twap_x18))

    @property
    def funding_rate_per_s(self) -> float:
        """Fraction of notional paid per second by longs (negative: shorts pay). Perp v2 pays
        premium x time / 1 day, settled continuously."""
        return self.funding_premium_x18 / self.index_twap_x18 / SECONDS_PER_DAY


@dataclass(frozen=True)
class V2PairState:
    pair: str
    reserve_spot_raw: int
    reserve_usdc_raw: int
    fee_pips: int = 3000  # Uniswap V2: 0.3%


@dataclass(frozen=True)
class OracleState:
    """Chainlink-style aggregator: latestRoundData."""

    answer_raw: int
    decimals: int
    updated_at_s: int

    def age_s(self, block_timestamp_s: int) -> int:
        return max(0, block_timestamp_s - self.updated_at_s)


@dataclass(frozen=True)
class PerpAccountMarket:
    position_size_x18: int  # taker position, signed (negative = short)
    open_notional_x18: int  # signed quote the position was opened for
    pending_funding_x18: int  # positive: the account owes funding


@dataclass(frozen=True)
class PerpAccountState:
    account: str
    account_value_x18: int  # ClearingHouse.getAccountValue
    free_collateral_raw: int  # Vault.getFreeCollateral, USDC decimals
    total_abs_position_value_x18: int
    margin_requirement_for_liquidation_x18: int
    markets: Mapping[str, PerpAccountMarket]

    @property
    def margin_ratio(self) -> float | None:
        """account value / total absolute position value; None with no position."""
        if self.total_abs_position_value_x18 == 0:
            return None
        return self.account_value_x18 / self.total_abs_position_value_x18


@dataclass(frozen=True)
class MarketView:
    """Everything read about one asset at one block."""

    name: str
    spot_token_decimals: int
    spot_is_token0: bool  # in the spot pools, is the spot token token0 (USDC token1)?
    perp: PerpMarketState | Unavailable
    spot_v2: V2PairState | Unavailable
    spot_v3: V3PoolState | Unavailable
    oracle: OracleState | Unavailable


@dataclass(frozen=True)
class MarketSnapshot:
    """All markets at one block, from at most two eth_calls in steady state."""

    block_number: int
    block_timestamp: int
    base_fee_wei: int
    markets: Mapping[str, MarketView]
    account: PerpAccountState | Unavailable | None
    rpc_round_trips: int


SnapshotPart = Union[PerpMarketState, V2PairState, "V3PoolState", OracleState, Unavailable]


# ------------------------------------------------------------------------------ prices
def perp_price_from_sqrt_x96(sqrt_price_x96: int) -> int:
    """Price x18 from a sqrt price, rounded as Perp v2 does (to X96, then to 18 decimals)."""
    price_x96 = sqrt_price_x96 * sqrt_price_x96 // Q96
    return price_x96 * ONE_X18 // Q96


def spot_price_usd(sqrt_price_x96: int, spot_decimals: int, spot_is_token0: bool) -> float:
    """USDC per spot token from a Uniswap V3 sqrt price (float: for signals, not for amounts)."""
    p_raw = sqrt_price_x96 * sqrt_price_x96 / Q192
    p = p_raw if spot_is_token0 else 1 / p_raw
    return p * 10 ** (spot_decimals - USDC_DECIMALS)


def v2_price_usd(pair: V2PairState, spot_decimals: int) -> float:
    return pair.reserve_usdc_raw / pair.reserve_spot_raw * 10 ** (spot_decimals - USDC_DECIMALS)
