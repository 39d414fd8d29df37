"""The gas table of the executor's trades, defined here once.

Gas units per kind of basis trade (the executor's openBasis / resizeBasis / closeBasis), measured on
the devnet fork: openBasis used 1.09-1.56M and closeBasis 0.72-1.28M, the first trade of a market
touching cold storage (a live devnet run of 2026-12-01 also saw a BTC open at 1.54M and an ETH resize
at 1.49M, above the `upper` column: that column is only the estimate before a market's first
receipt, and every real transaction's limit is estimated on chain). Two columns, one row per kind:

- `typical`: warm storage; what the planner's profit gate charges for this transaction and what the
  paper bots (baselines, hindsight optimum) pay per trade;
- `upper`: the upper end the devnet's runs used; the strategies' estimate before the chain has
  shown any (the engine replaces it with what this market's recent trades used on chain).

Pair trades (the executor's openPair / closePair: two Perp v2 legs in one transaction, keeper/pairs_plan.py)
have their own rows, measured on the devnet fork (tests/integration/test_pairs_desk.py and the pair
scenarios of the suite, 2026-11-30): openPair used 1.78-2.04M when it deposits and touches cold
storage (the first pair of an executor) and 1.53-1.61M warm; closePair 0.92-1.02M on the quiet devnet and
1.39-1.42M in the scenarios (the first close of a run). Same columns: the strategy's estimate is the
upper one, the planner's gate and the hindsight optimum's paper trades pay the typical one.

The sender estimates every real transaction's limit on chain before sending; these feed estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

TradeKind = Literal["open", "resize", "close"]
PairTradeKind = Literal["open", "close"]


@dataclass(frozen=True)
class TradeGasUnits:
    typical: int
    upper: int


EXECUTOR_GAS_UNITS = MappingProxyType({
    "open": TradeGasUnits(typical=1_100_000, upper=1_300_000),
    "resize": TradeGasUnits(typical=850_000, upper=1_000_000),
    "close": TradeGasUnits(typical=750_000, upper=1_300_000),
})


PAIR_GAS_UNITS = MappingProxyType({
    "open": TradeGasUnits(typical=1_600_000, upper=2_100_000),
    "close": TradeGasUnits(typical=1_100_000, upper=1_450_000),
})


# The typical column by kind, read-only (the names main used: keeper.plan.GAS_UNITS, keeper.simulate.paper.PAPER_GAS_UNITS).
TYPICAL_GAS_UNITS = MappingProxyType({kind: row.typical for kind, row in EXECUTOR_GAS_UNITS.items()})


def typical_gas_units(kind: str) -> int:
    return EXECUTOR_GAS_UNITS[kind].typical


def upper_gas_units(kind: str) -> int:
    return EXECUTOR_GAS_UNITS[kind].upper


def pair_typical_gas_units(kind: str) -> int:
    return PAIR_GAS_UNITS[kind].typical


def pair_upper_gas_units(kind: str) -> int:
    return PAIR_GAS_UNITS[kind].upper
