"""How much USDC a start moves into the Perp vault: the account value's shortfall of
account.collateral_usdc, at most what the executor's wallet holds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from keeper.collateral import fund_vault, start_deposit_raw
from keeper.errors import FatalError, TransientError
from keeper.types import MarketSnapshot, PerpAccountState

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


def test_a_shortfall_under_one_percent_of_the_target_is_not_worth_a_transaction() -> None:
    assert start_deposit_raw(_account(49_600), 100_000 * USDC, 50_000) == 0  # $400 short of $50,000
    assert start_deposit_raw(_account(49_400), 100_000 * USDC, 50_000) == 600 * USDC


# ----------------------------------------------------------------- fund_vault with a fake sender

USDC_TOKEN = "0x" + "0c" * 20
EXECUTOR = "0x" + "e7" * 20


class FakeSender:
    def __init__(self, tracked: list[object] = (), wait_error: Exception | None = None) -> None:  # type: ignore[assignment]
        self._tracked, self.wait_error, self.submitted = list(tracked), wait_error, []

    def tracked(self) -> list[object]:
        return self._tracked

    def submit(self, request: object) -> object:
        self.submitted.append(request)
        return SimpleNamespace(tx_hash="0x" + "ab" * 32)

    def wait(self, pending: object) -> object:
        if self.wait_error is not None:
            raise self.wait_error
        return SimpleNamespace(status="included", revert_reason=None, nonce=4, tx_hash="0x" + "ab" * 32,
                               block_number=9, gas_used=80_000, fee_paid_wei=10**12)

    def acknowledge(self, nonce: int) -> None:
        self.acknowledged = nonce


def _snapshot(value_usd: int, wallet_raw: dict[str, int]) -> MarketSnapshot:
    return MarketSnapshot(block_number=9, block_timestamp=1_700_000_000, base_fee_wei=1, markets={},
                          account=_account(value_usd), rpc_round_trips=1, wallet_raw=wallet_raw)


def test_a_start_with_a_transaction_in_flight_deposits_nothing() -> None:
    sender = FakeSender(tracked=[SimpleNamespace(entry=SimpleNamespace(label="collateral deposit", nonce=3))])
    assert fund_vault(_snapshot(0, {USDC_TOKEN: 80_000 * USDC}), USDC_TOKEN, EXECUTOR, 50_000, sender) == 0  # type: ignore[arg-type]
    assert sender.submitted == []


def test_a_deposit_whose_outcome_is_unknown_is_fatal_not_retried() -> None:
    sender = FakeSender(wait_error=TransientError("receipt poll failed"))
    with pytest.raises(FatalError, match="account.collateral_usdc: .* outcome unknown"):
        fund_vault(_snapshot(0, {USDC_TOKEN: 80_000 * USDC}), USDC_TOKEN, EXECUTOR, 50_000, sender)  # type: ignore[arg-type]
    assert len(sender.submitted) == 1


def test_a_deposit_lands_for_the_shortfall_and_an_unreadable_wallet_sends_nothing() -> None:
    sender = FakeSender()
    assert fund_vault(_snapshot(20_000, {USDC_TOKEN: 80_000 * USDC}), USDC_TOKEN, EXECUTOR, 50_000, sender) == 30_000 * USDC  # type: ignore[arg-type]
    assert sender.acknowledged == 4
    unread = FakeSender()
    assert fund_vault(_snapshot(0, {}), USDC_TOKEN, EXECUTOR, 50_000, unread) == 0  # type: ignore[arg-type]
    assert unread.submitted == []
