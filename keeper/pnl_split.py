"""Realized and to-date PnL of a basis position, split into funding, convergence, fees and gas.

Every amount is USD in 18 decimals (`_x18`), the unit of the executor's `netQuote18` and of Perp
v2's quote. USDC raw amounts convert exactly (x 10**12); gas (wei) converts at the ETH price
recorded with its transaction. Integers only: no float ever touches an amount here.

Definitions, per position (sums over its trades: the open, every resize, the close):

    trading     = sum(netQuote18)                       the executor's quote flow, fees included
    fees        = sum(perp fee + spot pool fee)         >= 0, what the venues charged
    convergence = trading + fees                        trading PnL before fees (basis captured,
                                                        price impact included)
    funding     = -(funding settled + funding pending)  positive: the position received funding
    gas         = sum(ceil(fee paid wei x ETH price x18 / 1e18)) over its transactions
    total       = funding + trading - gas               the realized (or to-date) PnL

The split sums exactly: funding + convergence - fees - gas = funding + (trading + fees) - fees
- gas = total, in integers, with no rounding inside the split. The only roundings happen before
it, once per input (gas per transaction, up; the spot fee's USD value, up), and each rounded
value is used on both sides. `PnlSplit` re-checks the identity whenever one is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from keeper.errors import FatalError
from keeper.frozen import quick_init

ONE_X18 = 10**18
USDC_RAW_TO_X18 = 10**12  # USDC has 6 decimals
ONE_HUNDRED_PERCENT_PIPS = 1_000_000


class PnlSplitMismatch(FatalError):
    """A PnL split whose parts do not add up to its total: the journal's books are inconsistent."""


def require_int(value: object, name: str) -> int:
    """Amounts are ints end to end; a float (or bool) here is a bug upstream."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True)
class TradeFees:
    """What the venues charged on one trade, USD x18, each >= 0.

    perp_fee_x18: Perp v2's exchange fee in quote, exact: `ClearingHouse.PositionChanged.fee`
                  of the trade's receipt (closePosition emits PositionChanged too).
    spot_fee_x18: the Uniswap pool fee, in USD x18: exact when USDC went in (fee raw x 10**12),
                  valued at the trade's own price when the spot token went in
                  (see `compute_spot_fee_x18`).
    """

    perp_fee_x18: int = 0
    spot_fee_x18: int = 0

    def __post_init__(self) -> None:
        for name in ("perp_fee_x18", "spot_fee_x18"):
            if require_int(getattr(self, name), name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def total_x18(self) -> int:
        return self.perp_fee_x18 + self.spot_fee_x18


def compute_gas_usd_x18(fee_paid_wei: int, eth_price_x18: int) -> int:
    """Gas paid in USD x18, rounded up (a cost)."""
    require_int(fee_paid_wei, "fee_paid_wei")
    require_int(eth_price_x18, "eth_price_x18")
    if fee_paid_wei < 0 or eth_price_x18 < 0:
        raise ValueError(f"fee paid ({fee_paid_wei} wei) and ETH price ({eth_price_x18}) must be >= 0")
    return _ceil_div(fee_paid_wei * eth_price_x18, ONE_X18)


def compute_spot_fee_x18(spot_raw: int, usdc_raw: int, fee_pips: int) -> int:
    """The spot pool's fee on one trade, USD x18, from the trade's fills (signed, executor's view).

    The pool takes `fee_pips` of the input. USDC in (a buy, usdc_raw < 0): ceil(|usdc| x fee)
    USDC, exact up to Uniswap's per-step rounding. Spot in (a sell, spot_raw < 0): ceil(|spot| x
    fee) spot units, valued at the trade's average price |usdc| / |spot|, rounded up. A trade
    without a spot leg pays nothing."""
    for name, value in (("spot_raw", spot_raw), ("usdc_raw", usdc_raw), ("fee_pips", fee_pips)):
        require_int(value, name)
    if not 0 <= fee_pips < ONE_HUNDRED_PERCENT_PIPS:
        raise ValueError(f"fee_pips must be in [0, 1e6), got {fee_pips}")
    if spot_raw == 0 or usdc_raw == 0:
        return 0
    if usdc_raw < 0:
        fee_usdc_raw = _ceil_div(-usdc_raw * fee_pips, ONE_HUNDRED_PERCENT_PIPS)
        return fee_usdc_raw * USDC_RAW_TO_X18
    fee_spot_raw = _ceil_div(-spot_raw * fee_pips, ONE_HUNDRED_PERCENT_PIPS)
    return _ceil_div(fee_spot_raw * abs(usdc_raw) * USDC_RAW_TO_X18, abs(spot_raw))


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class PnlSplit:
    """A PnL in USD x18 and its parts; total = funding + convergence - fees - gas, exactly."""

    funding_x18: int  # received (+) or paid (-)
    convergence_x18: int  # trading PnL before fees
    fees_x18: int  # charged by Perp and the spot pool (>= 0 in practice)
    gas_x18: int  # paid (>= 0 in practice)
    total_x18: int

    def __post_init__(self) -> None:
        for name in ("funding_x18", "convergence_x18", "fees_x18", "gas_x18", "total_x18"):
            require_int(getattr(self, name), name)
        parts = self.funding_x18 + self.convergence_x18 - self.fees_x18 - self.gas_x18
        if parts != self.total_x18:
            raise PnlSplitMismatch(
                f"PnL split does not sum: funding {self.funding_x18} + convergence {self.convergence_x18} "
                f"- fees {self.fees_x18} - gas {self.gas_x18} = {parts}, total says {self.total_x18}")

    @property
    def trading_x18(self) -> int:
        """Sum of the trades' netQuote18: convergence after fees."""
        return self.convergence_x18 - self.fees_x18

    def __add__(self, other: PnlSplit) -> PnlSplit:
        return PnlSplit(self.funding_x18 + other.funding_x18, self.convergence_x18 + other.convergence_x18,
                        self.fees_x18 + other.fees_x18, self.gas_x18 + other.gas_x18,
                        self.total_x18 + other.total_x18)

    def to_json_dict(self) -> dict[str, Any]:
        """Amounts as decimal strings (they exceed what a JSON double holds exactly)."""
        return {"funding_x18": str(self.funding_x18), "convergence_x18": str(self.convergence_x18),
                "fees_x18": str(self.fees_x18), "gas_x18": str(self.gas_x18),
                "trading_x18": str(self.trading_x18), "total_x18": str(self.total_x18)}


ZERO_PNL = PnlSplit(0, 0, 0, 0, 0)


def sum_pnl(splits: Iterable[PnlSplit]) -> PnlSplit:
    total = ZERO_PNL
    for split in splits:
        total = total + split
    return total


def compute_pnl_split(net_quotes_x18: Iterable[int], fees: Iterable[TradeFees], funding_paid_x18: int,
                      gas_usd_x18: Iterable[int]) -> PnlSplit:
    """The split of one position from its trades' netQuote18, their fees, the funding it paid
    (settled + pending; positive = paid) and the USD gas of its transactions.

    The total is computed from the ledger (funding + trading - gas) independently of the split,
    and PnlSplit checks that the parts add up to it."""
    trading_x18 = sum(require_int(q, "net_quote_x18") for q in net_quotes_x18)
    fees_x18 = sum(f.total_x18 for f in fees)
    funding_x18 = -require_int(funding_paid_x18, "funding_paid_x18")
    gas_x18 = sum(require_int(g, "gas_usd_x18") for g in gas_usd_x18)
    return PnlSplit(
        funding_x18=funding_x18,
        convergence_x18=trading_x18 + fees_x18,
        fees_x18=fees_x18,
        gas_x18=gas_x18,
        total_x18=funding_x18 + trading_x18 - gas_x18,
    )
