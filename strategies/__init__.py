"""Pluggable strategies: pure functions of a StrategyContext to Intents and Skips (no web3, no I/O).

    strategy = load_strategy("basis_convergence", {"entry_z": 2.5})
    decisions = strategy.decide(ctx)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strategies.base import (
    BasisStats,
    CostModel,
    RiskLimits,
    Skip,
    Strategy,
    StrategyContext,
)
from strategies.basis_convergence import BasisConvergence, BasisConvergenceParams
from strategies.funding_carry import FundingCarry, FundingCarryParams
from strategies.pairs_spread import PairsSpread, PairsSpreadParams

STRATEGIES: Mapping[str, Callable[[Mapping[str, Any]], Strategy]] = {
    BasisConvergence.name: BasisConvergence.from_params,
    FundingCarry.name: FundingCarry.from_params,
    PairsSpread.name: PairsSpread.from_params,
}


def load_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy registered under `name`, built from `params` (defaults for any not given).
    An unknown name, an unknown parameter or a bad value raises ValueError naming it."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(sorted(STRATEGIES))})")
    return factory(params or {})


__all__ = [
    "STRATEGIES",
    "BasisConvergence",
    "BasisConvergenceParams",
    "BasisStats",
    "CostModel",
    "FundingCarry",
    "FundingCarryParams",
    "PairsSpread",
    "PairsSpreadParams",
    "RiskLimits",
    "Skip",
    "Strategy",
    "StrategyContext",
    "load_strategy",
]
