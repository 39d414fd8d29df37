"""Paper trading on recorded snapshots: what the reference bots and the hindsight optimum share.

A paper trade is quoted exactly (keeper.quotes.quote_basis_trade, the keeper's own quote math) on
a recorded snapshot, and never sent: it does not move the chain, so later snapshots do not show
its price impact (the keeper's real trades do show in them). Its PnL uses the journal's
definitions (keeper/pnl_split.py), in USD x18 integers:

- trading: the trade's predicted netQuote18 (Perp quote after fee + USDC x 10**12);
- fees: Perp's fee (exact, from the quote) + the spot pool's fee (compute_spot_fee_x18);
- funding: while held, between recorded snapshots k and k+1, the position pays
  size x premium_k x (t_{k+1} - t_k) / 1 day, with premium_k = Perp's funding premium at k
  (market TWAP - index TWAP, clamped; positive: longs pay), rounded up (against the position):
  the rate at the start of each interval held over it, an approximation of Perp's continuous
  accrual that is exact for a constant premium;
- gas: fixed gas units per trade kind (what the executor's trades use on the devnet) x (the
  snapshot's base fee + the recorded priority fee), valued at the snapshot's ETH index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keeper.errors import SkipOpportunity
from keeper.pnl_split import TradeFees, compute_gas_usd_x18, compute_spot_fee_x18
from keeper.quotes import quote_basis_trade
from keeper.signals import spot_price
from keeper.types import (
    Q192,
    SECONDS_PER_DAY,
    SPOT_VENUES,
    Direction,
    MarketSnapshot,
    PerpMarketState,
    Position,
    Unavailable,
)
from keeper.venues.gas import TYPICAL_GAS_UNITS as PAPER_GAS_UNITS  # noqa: F401 - main's name, re-exported
from keeper.venues.gas import typical_gas_units
from keeper.venues.registry import spot_adapter
from keeper.venues.uniswap_v2_adapter import V2_FEE_PIPS

ONE_X18 = 10**18


@dataclass(frozen=True)
class PathPoint:
    """One market at one recorded snapshot: what a paper policy looks at."""

    block: int
    timestamp_s: int
    spread_bps: dict[str, float]  # by spot venue: (vAMM mid / spot mid - 1) x 10_000
    funding_premium_x18: int  # positive: longs pay
    index_price_x18: int
    gas_price_wei: int  # base fee + priority fee
    eth_price_x18: int  # ETH index, to value gas
    spot_mid_usd: dict[str, float] = field(default_factory=dict)  # by spot venue
    perp_mid_usd: float = 0.0  # the vAMM's mid
    l1_fee_wei: int = 0  # the L1 data fee of one executor transaction (OP-stack chains; 0 elsewhere)


@dataclass(frozen=True)
class AccountLimits:
    """What a paper trader may hold, as the keeper (strategies/pnl.py compute_size_cap), from the
    account at the run's first snapshot. Checked loosely (the smaller mid, no fee margin), so that
    whatever the keeper could open is allowed here too."""

    max_notional_usd: float  # per market: min(per-market cap, total cap, collateral x leverage, margin room)
    max_total_notional_usd: float
    spot_inventory_raw: Mapping[str, int] | None = None  # LONG_PERP sells at most this spot, by market
    spot_decimals: Mapping[str, int] = field(default_factory=dict)
    usdc_wallet_usd: float | None = None  # SHORT_PERP buys spot with at most this USDC

    def refusal(self, point: PathPoint, market: str, direction: Direction, venue: str, size_x18: int) -> str | None:
        """Why opening size_x18 at `point` breaks a limit; None when it does not."""
        spot_mid = point.spot_mid_usd.get(venue) or 0.0  # unknown: the quote itself fails
        prices = [p for p in (spot_mid, point.perp_mid_usd) if p > 0]
        notional = size_x18 / ONE_X18 * min(prices) if prices else 0.0
        if notional > self.max_notional_usd * (1 + 1e-9):
            return f"notional ${notional:,.0f} over the cap ${self.max_notional_usd:,.0f}"
        if direction is Direction.LONG_PERP and self.spot_inventory_raw is not None:
            held_x18 = self.spot_inventory_raw.get(market, 0) * 10 ** (18 - self.spot_decimals.get(market, 18))
            if size_x18 > held_x18:
                return f"spot inventory {held_x18 / ONE_X18:g} < size {size_x18 / ONE_X18:g}"
        if direction is Direction.SHORT_PERP and self.usdc_wallet_usd is not None:
            if size_x18 / ONE_X18 * spot_mid > self.usdc_wallet_usd * (1 + 1e-9):
                return f"executor USDC ${self.usdc_wallet_usd:,.0f} < spot cost"
        return None

    def capped_size_x18(self, point: PathPoint, market: str, direction: Direction, venue: str, size_x18: int) -> int:
        """size_x18, or the largest size the limits allow at `point` (0 when none)."""
        spot_mid = point.spot_mid_usd.get(venue) or 0.0
        prices = [p for p in (spot_mid, point.perp_mid_usd) if p > 0]
        caps = [size_x18]
        if prices and self.max_notional_usd < float("inf"):
            caps.append(int(self.max_notional_usd / min(prices) * ONE_X18))
        if direction is Direction.LONG_PERP and self.spot_inventory_raw is not None:
            caps.append(self.spot_inventory_raw.get(market, 0) * 10 ** (18 - self.spot_decimals.get(market, 18)))
        if direction is Direction.SHORT_PERP and self.usdc_wallet_usd is not None and spot_mid > 0:
            caps.append(int(self.usdc_wallet_usd / spot_mid * ONE_X18))
        scale = 10 ** (18 - self.spot_decimals.get(market, 18))
        return max(0, min(caps)) // scale * scale


UNLIMITED = AccountLimits(max_notional_usd=float("inf"), max_total_notional_usd=float("inf"))


@dataclass(frozen=True)
class PaperFill:
    perp_base_x18: int  # signed change
    spot_raw: int  # signed change
    net_quote_x18: int
    fees: TradeFees


class Quoter(Protocol):
    def open(self, k: int, market: str, direction: Direction, venue: str, size_x18: int) -> PaperFill | str: ...

    def close(self, k: int, market: str, direction: Direction, venue: str, perp_base_x18: int,
              spot_raw: int) -> PaperFill | str: ...


# ------------------------------------------------------------------------------ arithmetic
def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def compute_funding_paid_x18(perp_base_x18: int, premium_x18: int, dt_s: int) -> int:
    """Funding a position of perp_base_x18 (signed) pays over dt_s at a constant premium
    (positive: longs pay). Positive: paid. Rounded up (against the position)."""
    return _ceil_div(perp_base_x18 * premium_x18 * dt_s, SECONDS_PER_DAY * ONE_X18)


def compute_holding_funding_x18(points: Sequence[PathPoint], entry: int, exit_: int, perp_base_x18: int) -> int:
    """Funding paid holding from point `entry` to point `exit_` (exclusive of what follows)."""
    return sum(compute_funding_paid_x18(perp_base_x18, points[k].funding_premium_x18,
                                        points[k + 1].timestamp_s - points[k].timestamp_s)
               for k in range(entry, exit_))


def compute_paper_gas_x18(point: PathPoint, kind: str) -> int:
    """One paper trade's gas: fixed units at the point's gas price, plus the L1 data fee."""
    return compute_gas_usd_x18(typical_gas_units(kind) * point.gas_price_wei + point.l1_fee_wei, point.eth_price_x18)


def fixed_size_x18(notional_usd: float, index_price_x18: int) -> int:
    """The base size worth notional_usd at the index (rounded down)."""
    if index_price_x18 <= 0:
        return 0
    return int(notional_usd) * ONE_X18 * ONE_X18 // index_price_x18


def directed_spread_bps(spread_bps: float, direction: Direction) -> float:
    """The spread as the position sees it: positive = the perp is rich for a short perp (cheap
    for a long perp), the side the position earns from as it goes to zero."""
    return -direction.perp_sign * spread_bps


# ------------------------------------------------------------------------------ from snapshots
def path_points(snapshots: Sequence[MarketSnapshot], market: str, priority_fee_wei: Sequence[int],
                l1_fee_wei: Sequence[int] | None = None) -> list[PathPoint]:
    points = []
    l1_fees = l1_fee_wei if l1_fee_wei is not None else [0] * len(snapshots)
    for snapshot, tip, l1_fee in zip(snapshots, priority_fee_wei, l1_fees):
        view = snapshot.markets[market]
        perp = view.perp
        eth = snapshot.markets.get("ETH")
        eth_x18 = eth.perp.index_price_x18 if eth is not None and isinstance(eth.perp, PerpMarketState) else 0
        spreads: dict[str, float] = {}
        mids: dict[str, float] = {}
        premium = index_x18 = 0
        perp_mid = 0.0
        if isinstance(perp, PerpMarketState):
            premium, index_x18 = perp.funding_premium_x18, perp.index_price_x18
            perp_mid = perp.pool.sqrt_price_x96 * perp.pool.sqrt_price_x96 / Q192
            for venue in SPOT_VENUES:
                spot = spot_price(view, venue)
                if not isinstance(spot, Unavailable):
                    spreads[venue] = (perp_mid / spot - 1) * 1e4
                    mids[venue] = spot
        points.append(PathPoint(snapshot.block_number, snapshot.block_timestamp, spreads, premium, index_x18,
                                snapshot.base_fee_wei + tip, eth_x18, mids, perp_mid, l1_fee))
    return points


class SnapshotQuoter:
    """Exact quotes (keeper.quotes.quote_basis_trade) on recorded snapshots."""

    def __init__(self, snapshots: Sequence[MarketSnapshot]) -> None:
        self.snapshots = snapshots

    def _fill(self, k: int, market: str, quote) -> PaperFill:  # type: ignore[no-untyped-def]
        view = self.snapshots[k].markets[market]
        p = quote.predicted
        venue_fee_pips = spot_adapter(quote.spot_venue).fee_pips(view)
        fee_pips = V2_FEE_PIPS if venue_fee_pips is None else venue_fee_pips  # unreadable: the V2 fee
        fees = TradeFees(perp_fee_x18=quote.perp.fee_x18,
                         spot_fee_x18=compute_spot_fee_x18(p.spot_raw, p.usdc_raw, fee_pips))
        return PaperFill(p.perp_base_x18, p.spot_raw, p.net_quote_x18, fees)

    def open(self, k: int, market: str, direction: Direction, venue: str, size_x18: int) -> PaperFill | str:
        view = self.snapshots[k].markets[market]
        try:
            quote = quote_basis_trade(view, "open", direction, venue, size_x18)  # type: ignore[arg-type]
        except (SkipOpportunity, ValueError) as exc:
            return str(exc)
        return self._fill(k, market, quote)

    def close(self, k: int, market: str, direction: Direction, venue: str, perp_base_x18: int,
              spot_raw: int) -> PaperFill | str:
        view = self.snapshots[k].markets[market]
        position = Position(market=market, direction=direction, spot_venue=venue,  # type: ignore[arg-type]
                            perp_base_x18=perp_base_x18, spot_raw=spot_raw, entry_block=0, entry_timestamp_s=0,
                            entry_basis_bps=0.0, net_quote_x18=0)
        try:
            quote = quote_basis_trade(view, "close", direction, venue, 0, position)  # type: ignore[arg-type]
        except (SkipOpportunity, ValueError) as exc:
            return str(exc)
        if quote.perp.is_partial_close:
            return "Perp would close it only partly (price band)"
        return self._fill(k, market, quote)


# A stand-in for one executor transaction when asking an OP-stack chain's GasPriceOracle for the
# L1 data fee of a paper trade: an openBasis call is ~0.5 kB signed; non-zero bytes (the dearer kind).
PAPER_TX_BYTES = bytes(range(1, 256)) * 2


def compute_close_value_x18(snapshot: MarketSnapshot, positions: Iterable[Position], priority_fee_wei: int) -> int:
    """What closing `positions` at `snapshot` would add to their PnL to date: each close's exact
    quoted net quote minus its paper gas (a mark to market with exit costs). A position whose close
    cannot be quoted adds nothing (close_values_x18 names it)."""
    return sum(v for v in close_values_x18(snapshot, positions, priority_fee_wei).values() if v is not None)


def close_values_x18(snapshot: MarketSnapshot, positions: Iterable[Position],
                     priority_fee_wei: int) -> dict[str, int | None]:
    """Per position's market: what closing it at `snapshot` would add (compute_close_value_x18), or
    None when its close cannot be quoted (a market not in the snapshot, a partial fill at Perp's
    band, a leg that cannot be quoted)."""
    eth = snapshot.markets.get("ETH")
    eth_x18 = eth.perp.index_price_x18 if eth is not None and isinstance(eth.perp, PerpMarketState) else 0
    quoter = SnapshotQuoter([snapshot])
    values: dict[str, int | None] = {}
    gas_wei = typical_gas_units("close") * (snapshot.base_fee_wei + priority_fee_wei)
    for p in positions:
        if not p.perp_base_x18:
            continue
        fill = (quoter.close(0, p.market, p.direction, p.spot_venue, p.perp_base_x18, p.spot_raw)
                if p.market in snapshot.markets else None)
        values[p.market] = None if fill is None or isinstance(fill, str) else (
            fill.net_quote_x18 - compute_gas_usd_x18(gas_wei, eth_x18))
    return values
