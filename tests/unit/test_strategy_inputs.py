"""The per-block inputs of the strategies (strategies/base.py): CostModel and RiskLimits refuse an
out-of-range field by name, whichever it is (their valid case is one combined test, the error
path the field-by-field checks)."""

from __future__ import annotations

import math

import pytest

from strategies.base import CostModel, RiskLimits

COSTS = dict(gas_price_wei=7, eth_price_usd=3000.0, gas_units_open=1, gas_units_close=2, gas_units_resize=3,
             l1_data_fee_wei=4, cost_of_capital_apr=0.05, holding_horizon_hours=24.0)
LIMITS = dict(max_notional_usd_per_market=1.0, remaining_total_notional_usd=2.0, max_leverage=3.0,
              free_collateral_usd=4.0, min_margin_ratio=0.1, max_residual_base_x18=5)


@pytest.mark.parametrize("name,bad", [("gas_price_wei", -1), ("eth_price_usd", 0.0), ("eth_price_usd", math.nan),
                                      ("gas_units_open", -1), ("gas_units_close", -1), ("gas_units_resize", -1),
                                      ("l1_data_fee_wei", -1), ("cost_of_capital_apr", -0.01),
                                      ("holding_horizon_hours", 0.0)])
def test_a_cost_model_names_the_field_out_of_range(name: str, bad: object) -> None:
    assert CostModel(**COSTS).gas_units_resize == 3  # the valid one is built
    with pytest.raises(ValueError, match=f"^{name} must be"):
        CostModel(**(COSTS | {name: bad}))


@pytest.mark.parametrize("name,bad", [("max_notional_usd_per_market", -1.0), ("remaining_total_notional_usd", -1.0),
                                      ("max_leverage", 0.0), ("free_collateral_usd", math.nan),
                                      ("min_margin_ratio", -0.1), ("max_residual_base_x18", -1)])
def test_risk_limits_name_the_field_out_of_range(name: str, bad: object) -> None:
    assert RiskLimits(**LIMITS).max_residual_base_x18 == 5
    with pytest.raises(ValueError, match=f"^{name} must be"):
        RiskLimits(**(LIMITS | {name: bad}))
