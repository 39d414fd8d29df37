"""How much USDC a start moves into the Perp vault: the account value's shortfall of
account.collateral_usdc, at most what the executor's wallet holds."""

from __future__ import annotations

from keeper.collateral import start_deposit_raw
from keeper.types import PerpAccountState

USDC = 10**6


def _account(value_usd: int) -> PerpAccountState:
    return PerpAccountState(account="0x" + "11" * 20, account_value_x18=value_usd * 10**18, free_collateral_raw=0,
                            total_abs_position_value_x18=0, margin_requirement_for_liquidation_x18=0, markets={})


def test_the_shortfall_is_deposited_capped_by_the_wallet() -> None:
    assert start_deposit_raw(_account(0), 100_000 * USDC, 50_000) == 50_000 * USDC
    assert start_deposit_raw(_account(20_000), 100_000 * USDC, 50_000) == 30_000 * USDC
    assert start_deposit_raw(_account(0), 12_345 * USDC, 50_000) == 12_345 * USDC  # all the wallet has
    assert start_deposit_raw(_account(-5_000), 100_000 * USDC, 50_000) == 50_000 * USDC  # a loss past zero: the target


def test_nothing_when_the_vault_holds_enough_or_the_wallet_is_empty() -> None:
    assert start_deposit_raw(_account(50_000), 100_000 * USDC, 50_000) == 0
    assert start_deposit_raw(_account(80_000), 100_000 * USDC, 50_000) == 0
    assert start_deposit_raw(_account(0), 0, 50_000) == 0
    assert start_deposit_raw(_account(0), 100_000 * USDC, 0) == 0  # collateral_usdc = 0: never deposit
