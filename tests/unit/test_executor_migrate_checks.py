"""`keeper executor migrate`'s pre-checks on a fake node: the market check compares what strands
inventory (the spot token), and the keys' gas is counted from what there is to move."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from eth_abi import decode, encode

import keeper.executor_admin as admin_module
from keeper.errors import ConfigError

ADMIN, TREASURY = "0x" + "01" * 20, "0x" + "0e" * 20
USDC, WETH, OTHER = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
BASE = "0x" + "09" * 20


def _view(address: str, treasury: str = TREASURY) -> admin_module.ExecutorView:
    return admin_module.ExecutorView(address, ADMIN, treasury, "0x" + "02" * 20, "0x" + "03" * 20, "0x" + "04" * 20,
                                     "0x" + "05" * 20, USDC, False)


OLD, NEW = _view("0x" + "aa" * 20), _view("0x" + "bb" * 20)


class FakeNode:
    """eth_call answers getBaseTokens (none open), the vault's free collateral and balanceOf;
    eth_getBalance each account's ETH; gas at 1 wei."""

    def __init__(self, free_raw: int = 0, balances: dict[str, int] | None = None, eth: dict[str, int] | None = None):
        self.free_raw, self.balances, self.eth = free_raw, balances or {}, eth or {}

    def eth_call(self, to: str, data: bytes) -> bytes:
        if to == OLD.account_balance:
            return encode(["address[]"], [[]])
        if to == OLD.vault:
            return encode(["uint256"], [self.free_raw])
        (account,) = decode(["address"], bytes(data)[4:36])
        return encode(["uint256"], [self.balances.get(to, 0) if account.lower() == OLD.address else 0])

    def call(self, method: str, params: list) -> str:
        if method == "eth_gasPrice":
            return "0x1"
        return hex(self.eth.get(params[0], 0))


@pytest.fixture(autouse=True)
def _executors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "fetch_executor_view", lambda rpc, address, option: OLD if address == OLD.address else NEW)


def _check(node: FakeNode, treasury: bool = True) -> None:
    admin_module.check_migration(node, SimpleNamespace(address=ADMIN), SimpleNamespace(address=TREASURY) if treasury else None,
                                 OLD.address, NEW.address, {BASE: "ETH"}, spot_tokens=[WETH])


def test_the_same_spot_token_under_another_fee_tier_is_no_reason_to_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "_spot_market",
                        lambda rpc, executor, base: (WETH, 1, 3000 if executor == OLD.address else 500))
    _check(FakeNode(balances={WETH: 10**18}, eth={ADMIN: 10**18, TREASURY: 10**18}))


def test_a_new_executor_without_the_spot_token_the_old_one_holds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "_spot_market",
                        lambda rpc, executor, base: (WETH if executor == OLD.address else OTHER, 1, 3000))
    with pytest.raises(ConfigError, match=r"^--to: .* has no market ETH with spot token .* holds 1000000000000000000 raw"):
        _check(FakeNode(balances={WETH: 10**18}, eth={ADMIN: 10**18, TREASURY: 10**18}))


def test_a_treasury_without_eth_is_not_refused_when_there_is_nothing_to_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "_spot_market", lambda rpc, executor, base: (WETH, 1, 3000))
    _check(FakeNode(eth={ADMIN: 10**18}))  # before: "up to 2 transfers" refused, though nothing moves


def test_a_treasury_without_eth_is_refused_for_the_transfers_there_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "_spot_market", lambda rpc, executor, base: (WETH, 1, 3000))
    with pytest.raises(ConfigError, match=r"^--treasury-key-env: .* \(0 wei; up to 2 transactions, 200,000 gas"):
        _check(FakeNode(free_raw=5 * 10**6, balances={WETH: 1}, eth={ADMIN: 10**18}))


def test_the_admins_gas_counts_its_calls_from_what_there_is_to_move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "_spot_market", lambda rpc, executor, base: (WETH, 1, 3000))
    monkeypatch.setattr(admin_module, "fetch_executor_view",
                        lambda rpc, address, option: _view(address, treasury=ADMIN))  # the admin is the treasury
    # the pause, collateral out and in, USDC and WETH withdrawn, ETH withdrawn: 6 calls; the admin is the treasury: 2 transfers
    with pytest.raises(ConfigError, match=r"^--admin-key-env: .* \(0 wei; up to 8 transactions, 2,000,000 gas"):
        _check(FakeNode(free_raw=5 * 10**6, balances={WETH: 1}, eth={OLD.address: 1}), treasury=False)


def test_usdc_held_and_free_collateral_are_one_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collateral withdrawn from the vault is USDC the old executor then holds: with USDC already
    held too, the treasury sends USDC once (and WETH): 2 transfers, not 3."""
    monkeypatch.setattr(admin_module, "_spot_market", lambda rpc, executor, base: (WETH, 1, 3000))
    with pytest.raises(ConfigError, match=r"^--treasury-key-env: .* \(0 wei; up to 2 transactions, 200,000 gas"):
        _check(FakeNode(free_raw=5 * 10**6, balances={USDC: 10**6, WETH: 1}, eth={ADMIN: 10**18}))
