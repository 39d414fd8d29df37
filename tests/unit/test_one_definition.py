"""The spot-venue list and the executor gas table are each defined once; every user reads them."""

from __future__ import annotations

import re
from pathlib import Path

from keeper.config import KeeperConfig
from keeper.simulate.paper import PathPoint, compute_paper_gas_x18
from keeper.simulate.scenario import LiquidityRemoval
from keeper.types import SPOT_VENUES
from keeper.venues.gas import EXECUTOR_GAS_UNITS, PAIR_GAS_UNITS
from strategies import base

ROOT = Path(__file__).resolve().parents[2]
E18 = 10**18


def test_every_venue_list_is_the_one_definition() -> None:
    assert SPOT_VENUES == ("uniswap_v3", "uniswap_v2")
    assert tuple(KeeperConfig().markets.spot_venues) == SPOT_VENUES
    assert tuple(LiquidityRemoval(kind="liquidity_removal", at_step=1, fraction=0.5).venues) == SPOT_VENUES
    assert base.SPOT_VENUES is SPOT_VENUES


def test_no_module_spells_the_venue_list_out() -> None:
    # a literal list or tuple of both venue names, anywhere in the code, is a second definition
    pattern = re.compile(r"""[\[(]\s*["']uniswap_v[23]["']\s*,\s*["']uniswap_v[23]["']""")
    offenders = [str(p.relative_to(ROOT)) for d in ("keeper", "strategies") for p in (ROOT / d).rglob("*.py")
                 if pattern.search(p.read_text()) and p.name != "types.py"]
    assert offenders == []


def test_paper_bots_and_strategies_read_the_gas_table() -> None:
    point = PathPoint(block=1, timestamp_s=0, spread_bps={}, funding_premium_x18=0, index_price_x18=0,
                      gas_price_wei=10**9, eth_price_x18=3_000 * E18)
    for kind in ("open", "close"):
        expected = EXECUTOR_GAS_UNITS[kind].typical * 10**9 * 3_000 * E18 // E18
        assert compute_paper_gas_x18(point, kind) == expected
    assert base.GAS_UNITS_CLOSE == EXECUTOR_GAS_UNITS["close"].upper
    for row in EXECUTOR_GAS_UNITS.values():
        assert 0 < row.typical <= row.upper


def test_the_old_names_read_the_one_table() -> None:
    from keeper.plan import GAS_UNITS
    from keeper.simulate.paper import PAPER_GAS_UNITS

    assert GAS_UNITS is PAPER_GAS_UNITS
    assert dict(GAS_UNITS) == {kind: row.typical for kind, row in EXECUTOR_GAS_UNITS.items()}


def test_no_module_defines_gas_units_of_its_own() -> None:
    # a gas-units name (pair or basis) bound to a literal of 100k or more outside the table is a second definition
    pattern = re.compile(r"""(?i)^\s*\w*gas_units?\w*\s*(:[^=\n]*)?=[^\n]*\d[\d_]{5,}""", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for d in ("keeper", "strategies") for p in (ROOT / d).rglob("*.py")
                 if pattern.search(p.read_text()) and p.relative_to(ROOT).as_posix() != "keeper/venues/gas.py"]
    assert offenders == []
    assert pattern.search('PAIR_PAPER_GAS_UNITS = {"open": 1_800_000, "close": 1_100_000}')
    assert pattern.search("PAIR_GAS_UNITS = 1_300_000  # openPair / closePair")


def test_the_pair_planner_strategy_and_optimum_read_the_pair_rows() -> None:
    from keeper.simulate import pair_optimum
    from strategies import pairs_spread

    assert pairs_spread.PAIR_GAS_OPEN == PAIR_GAS_UNITS["open"].upper
    assert pairs_spread.PAIR_GAS_CLOSE == PAIR_GAS_UNITS["close"].upper
    point = PathPoint(block=1, timestamp_s=0, spread_bps={}, funding_premium_x18=0, index_price_x18=0,
                      gas_price_wei=10**9, eth_price_x18=3_000 * E18)
    for kind in ("open", "close"):
        assert pair_optimum._gas_x18(point, kind) == PAIR_GAS_UNITS[kind].typical * 10**9 * 3_000
    for row in PAIR_GAS_UNITS.values():
        assert 0 < row.typical <= row.upper
