"""The pipeline's stage types (collect -> decide -> plan -> execute). Frozen; units in names.

Raw on-chain amounts are ints: `_raw` in the token's own decimals, `_x18` in 18 decimals (Perp v2
accounting), `_x96` Q64.96 fixed point, `_ppm` parts per million, `_wei` for ETH.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal, Union, get_args

from keeper.frozen import quick_init

if TYPE_CHECKING:
    from keeper.venues.uniswap_v3_math import V3PoolState

Q96 = 2**96
Q192 = 2**192
ONE_X18 = 10**18
SECONDS_PER_DAY = 86_400
SECONDS_PER_YEAR = 365 * SECONDS_PER_DAY
USDC_DECIMALS = 6
USDC_TO_X18 = 10 ** (18 - USDC_DECIMALS)  # a raw USDC amount as an x18 one


@dataclass(frozen=True)
class Unavailable:
    """A read that failed this block; the market (or venue) is skipped, with this reason."""

    reason: str


# ------------------------------------------------------------------------------ collect
@quick_init  # built per block (keeper/frozen.py)
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
    max_price_spread_ratio_ppm: int = 100_000  # MarketInfo.maxPriceSpreadRatio: the vAMM's band around the index
    # Exchange's per-block tick band, read at the snapshot's block (None: not read; the quotes then
    # assume it refreshed at the pool's tick): _lastUpdatedTickMap / _lastTickUpdatedTimestampMap
    # (storage, no getter) and getMaxTickCrossedWithinBlock.
    band_last_updated_tick: int | None = None
    band_last_updated_timestamp_s: int | None = None
    max_tick_crossed_within_block: int | None = None
    snapshot_timestamp_s: int | None = None

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
        if self.index_twap_x18 == 0:  # an oracle with no TWAP yet: no premium can be read
            return 0.0
        return self.funding_premium_x18 / self.index_twap_x18 / SECONDS_PER_DAY


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class V2PairState:
    pair: str
    reserve_spot_raw: int
    reserve_usdc_raw: int
    fee_pips: int = 3000  # Uniswap V2: 0.3%


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class OracleState:
    """Chainlink-style aggregator: latestRoundData."""

    answer_raw: int
    decimals: int
    updated_at_s: int

    def age_s(self, block_timestamp_s: int) -> int:
        return max(0, block_timestamp_s - self.updated_at_s)


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class PerpAccountMarket:
    position_size_x18: int  # taker position, signed (negative = short)
    open_notional_x18: int  # signed quote the position was opened for
    pending_funding_x18: int  # positive: the account owes funding


@quick_init  # built per block (keeper/frozen.py)
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


@quick_init  # built per block (keeper/frozen.py)
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
    wallet_raw: Mapping[str, int] = field(default_factory=dict)  # the account's token balances by token address

    def with_account(self, account: PerpAccountState | Unavailable | None) -> MarketSnapshot:
        """dataclasses.replace(self, account=account), for once per block (a backtest's paper
        account): a third of replace's cost (it looks up every field by name)."""
        return MarketSnapshot(self.block_number, self.block_timestamp, self.base_fee_wei, self.markets, account,
                              self.rpc_round_trips, self.wallet_raw)


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


# ------------------------------------------------------------------------------ decide
class Direction(str, Enum):
    """Which way a basis position leans."""

    SHORT_PERP = "short_perp"  # short perp + long spot: earns when the perp is rich, or funding > 0
    LONG_PERP = "long_perp"  # long perp + sell spot inventory: earns when the perp is cheap, or funding < 0

    @property
    def perp_sign(self) -> int:
        return -1 if self is Direction.SHORT_PERP else 1


# The spot venues, defined here once: every list of them (config, signals, strategies, scenarios,
# the paper bots) reads this one.
SpotVenue = Literal["uniswap_v3", "uniswap_v2"]
SPOT_VENUES: tuple[SpotVenue, ...] = get_args(SpotVenue)
PerpVenue = Literal["perp_v2"]
PERP_VENUES: tuple[PerpVenue, ...] = get_args(PerpVenue)
VenueKind = Literal["perp", "spot"]
IntentKind = Literal["open", "close", "resize"]
BASIS_PERP_VENUE: PerpVenue = "perp_v2"  # the perp leg of a basis trade


@dataclass(frozen=True)
class TradeLeg:
    """One leg of a trade: the kind of venue, the venue (its adapter: keeper/venues/registry.py)
    and the market. A basis trade is a perp leg and a spot leg; a pair trade two perp legs."""

    venue_kind: VenueKind
    venue: str
    market: str


def basis_legs(market: str, spot_venue: str) -> tuple[TradeLeg, TradeLeg]:
    """A basis trade's legs: the perp leg, then the spot leg (the journal's leg 0 and 1)."""
    return (TradeLeg("perp", BASIS_PERP_VENUE, market), TradeLeg("spot", spot_venue, market))


@quick_init  # built per size quoted (keeper/frozen.py)
@dataclass(frozen=True)
class Position:
    """The keeper's open basis position in one market (journal, checked against the chain)."""

    market: str
    direction: Direction
    spot_venue: SpotVenue
    perp_base_x18: int  # signed, as Perp holds it (negative = short)
    spot_raw: int  # signed spot-token change held against it (positive = bought), token decimals
    entry_block: int
    entry_timestamp_s: int
    entry_basis_bps: float
    net_quote_x18: int  # sum of the executor's netQuote18 over open and resizes (trading PnL so far)
    funding_paid_x18: int = 0  # funding settled + pending since open; positive = the position paid

    @property
    def legs(self) -> tuple[TradeLeg, ...]:
        return basis_legs(self.market, self.spot_venue)


@quick_init  # built per size quoted (keeper/frozen.py)
@dataclass(frozen=True)
class PnlEstimate:
    """Expected PnL of a decision over its horizon, in USD (floats: decision only, never amounts).
    net = convergence + funding - fees - price impact - gas - cost of capital."""

    convergence_usd: float
    funding_usd: float
    fees_usd: float
    price_impact_usd: float
    gas_usd: float  # every transaction the decision implies (an open: open and close)
    capital_cost_usd: float
    close_gas_usd: float = 0.0  # the part of gas_usd that is the later close (the planner prices the open)

    @property
    def net_usd(self) -> float:
        return (self.convergence_usd + self.funding_usd - self.fees_usd - self.price_impact_usd
                - self.gas_usd - self.capital_cost_usd)


@dataclass(frozen=True)
class Intent:
    """What a strategy wants done; sizes in raw units. The plan stage re-quotes it exactly."""

    strategy: str
    kind: IntentKind
    market: str
    direction: Direction
    spot_venue: SpotVenue
    perp_base_x18: int  # size of the perp leg, > 0 (for close: the position's whole size; resize: signed change)
    reason: str  # why, in words, with the deciding numbers
    expected: PnlEstimate
    created_block: int
    valid_until_block: int
    deposit_usdc_raw: int = 0  # collateral moved from the executor's USDC into Perp with the trade (open/resize)

    @property
    def legs(self) -> tuple[TradeLeg, ...]:
        return basis_legs(self.market, self.spot_venue)


# ------------------------------------------------------------------------------ plan / execute
@quick_init  # built per size quoted (keeper/frozen.py)
@dataclass(frozen=True)
class PredictedFills:
    """What the executor's Fills will be if the chain is as in the snapshot (exact)."""

    perp_base_x18: int  # signed change
    perp_quote_x18: int  # signed change, after Perp's fee
    spot_raw: int  # signed spot-token change
    usdc_raw: int  # signed USDC change on the spot leg
    residual_base_x18: int
    net_quote_x18: int


@dataclass(frozen=True)
class TxPlan:
    intent: Intent
    to: str
    calldata: bytes
    value_wei: int
    predicted: PredictedFills
    perp_opposite_amount_bound_x18: int
    spot_limit_raw: int
    max_residual_base_x18: int
    min_net_quote_x18: int
    deadline_s: int
    gas_limit: int
    gas_cost_wei: int  # predicted: typical gas units x gas_price_wei + L1 data fee
    gas_cost_usd: float
    expected_net_usd: float
    gas_price_wei: int = 0  # predicted per gas: the snapshot's base fee + the sender's tip (0: unknown)


OutcomeStatus = Literal["included", "reverted", "dropped", "replaced", "dry_run", "simulation_reverted"]


@dataclass(frozen=True)
class Outcome:
    plan: TxPlan
    status: OutcomeStatus
    tx_hash: str | None
    block_number: int | None
    gas_used: int
    fee_paid_wei: int
    fills: PredictedFills | None  # actual fills (from the executor's event) when included
    detail: str  # revert reason, or what a dry run would have done
    # From the receipt, when included (the journal books these):
    nonce: int | None = None
    block_timestamp_s: int | None = None
    position_base_after_x18: int | None = None  # the executor event's positionBase18After
    perp_fee_x18: int = 0  # Perp's PositionChanged.fee
    settled_funding_x18: int = 0  # Perp's FundingPaymentSettled (positive: the trader paid)
    attempt_hashes: tuple[str, ...] = ()
    effective_gas_price_wei: int = 0  # the receipt's effectiveGasPrice (0: not included or unknown)
