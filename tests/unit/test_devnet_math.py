import json
import math

import pytest

from keeper.devnet.deploy import range_amounts, raw_price, sqrt_price_x96, tick_range
from keeper.devnet.manifest import DevnetManifest
from keeper.errors import ConfigError


def test_given_usdc_as_token1_when_pricing_then_raw_price_scales_by_decimals() -> None:
    # 1 WETH (1e18 raw) = 3000 USDC (3000e6 raw)
    assert raw_price(3000, 18, 6, base_is_token0=True) == pytest.approx(3000e6 / 1e18)
    assert raw_price(3000, 18, 6, base_is_token0=False) == pytest.approx(1e18 / 3000e6)
    assert sqrt_price_x96(1.0) == 2**96


def test_given_a_price_band_when_aligning_ticks_then_they_are_on_spacing_and_bracket_the_band() -> None:
    lo, hi = tick_range(0.9, 1.1, 60)
    assert lo % 60 == 0 and hi % 60 == 0
    assert 1.0001**lo <= 0.9 and 1.0001**hi >= 1.1


def test_given_price_inside_range_when_sizing_then_value_matches_and_both_sides_are_funded() -> None:
    p = 3000.0
    lo, hi = tick_range(2700, 3300, 60)
    amount0, amount1 = range_amounts(p, lo, hi, 1_000_000.0)
    assert amount0 > 0 and amount1 > 0
    # Each amount is rounded up by at most one raw unit.
    assert amount0 * p + amount1 == pytest.approx(1_000_000.0 * 1.001, abs=p + 1)


def test_given_price_below_range_when_sizing_then_only_token0_is_needed() -> None:
    lo, hi = tick_range(3300, 3600, 60)
    amount0, amount1 = range_amounts(3000.0, lo, hi, 1_000_000.0)
    assert amount1 <= 1 and amount0 > 0
    assert math.isfinite(amount0)


def test_given_a_manifest_with_an_unknown_key_when_read_then_it_names_the_field(tmp_path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"rpc_url": "x", "chain_id": 1, "deployed_block": 1, "deployed_timestamp": 1,
                                "accounts": {"deployer": "0x" + "11" * 20, "keeper": "0x" + "11" * 20,
                                             "maker": "0x" + "11" * 20, "liquidity": "0x" + "11" * 20, "traders": []},
                                "contracts": {}, "markets": [], "extra": 1}))
    with pytest.raises(ConfigError, match="field extra"):
        DevnetManifest.read(path)


def test_given_a_bad_address_in_a_manifest_when_read_then_the_error_names_it(tmp_path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"rpc_url": "x", "chain_id": 1, "deployed_block": 1, "deployed_timestamp": 1,
                                "accounts": {"deployer": "0x1234", "keeper": "0x" + "11" * 20,
                                             "maker": "0x" + "11" * 20, "liquidity": "0x" + "11" * 20, "traders": []},
                                "contracts": {}, "markets": []}))
    with pytest.raises(ConfigError, match="accounts.deployer"):
        DevnetManifest.read(path)
