"""MarketSnapshot.with_account is dataclasses.replace(snapshot, account=...) (every other field kept)."""

from __future__ import annotations

import dataclasses

from keeper.types import MarketSnapshot, Unavailable


def test_with_account_equals_replace_and_keeps_every_other_field() -> None:
    snapshot = MarketSnapshot(7, 1_700_000_000, 3, {"ETH": None}, None, 2, {"0xusdc": 5})  # type: ignore[dict-item]
    account = Unavailable("no account")
    moved = snapshot.with_account(account)
    assert moved == dataclasses.replace(snapshot, account=account)
    assert moved.account is account and snapshot.account is None
    for f in dataclasses.fields(MarketSnapshot):
        if f.name != "account":
            assert getattr(moved, f.name) is getattr(snapshot, f.name), f.name
