"""Start-up retries transient errors with bounded backoff (fatal ones at once, and an HTTP status
that says the URL or key is wrong); an adopted
position's spot leg is what the executor really holds, so its close can be quoted."""

from __future__ import annotations

import pytest

from keeper.adopt import adopted_spot_raw
from keeper.boundary import unquotable
from keeper.errors import ChainMismatchError, HttpStatusError, TransientError, TransientRpcError, UrlRefusedError
from keeper.startup import retry_transient
from keeper.types import Direction, Position


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def __call__(self) -> float:
        return self.now


def test_given_transient_errors_at_start_then_it_retries_with_growing_backoff_until_it_works() -> None:
    clock = FakeClock()
    failures = [TransientRpcError("eth_chainId", -32005, "rate limited"), TransientError("timed out"),
                TransientError("HTTP 503")]

    def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "runtime"

    assert retry_transient(attempt, budget_s=30, backoff_max_s=0.6, sleep=clock.sleep, clock=clock) == "runtime"
    assert clock.sleeps == [0.25, 0.5, 0.6]  # doubling, capped


def test_given_the_budget_runs_out_then_the_last_transient_error_is_raised() -> None:
    clock = FakeClock()

    def attempt() -> None:
        raise TransientError("connection refused")

    with pytest.raises(TransientError):
        retry_transient(attempt, budget_s=5, backoff_max_s=1, sleep=clock.sleep, clock=clock)
    assert 4 <= sum(clock.sleeps) <= 5


def test_given_a_configuration_or_chain_error_then_it_is_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise ChainMismatchError("chain.chain_id: the node is chain 1")

    with pytest.raises(ChainMismatchError):
        retry_transient(attempt, budget_s=30, backoff_max_s=1, sleep=clock.sleep, clock=clock)
    assert calls == [1] and clock.sleeps == []


@pytest.mark.parametrize(("status", "fatal"), [(401, True), (404, True), (405, True), (403, False), (429, False),
                                               (503, False), (None, False)])
def test_an_http_status_that_says_the_url_or_key_is_wrong_is_fatal_at_once_others_are_retried(
        status: int | None, fatal: bool) -> None:
    clock = FakeClock()
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise HttpStatusError(f"RPC https://node.example.com/... answered HTTP {status}", status)
        return "runtime"

    if fatal:
        with pytest.raises(UrlRefusedError, match=f"^RPC https://node.example.com/... answered HTTP {status}: "
                                                  "the node refuses the URL"):
            retry_transient(attempt, budget_s=30, backoff_max_s=1, sleep=clock.sleep, clock=clock)
        assert calls == [1] and clock.sleeps == []
    else:
        assert retry_transient(attempt, budget_s=30, backoff_max_s=1, sleep=clock.sleep, clock=clock) == "runtime"
        assert calls == [1, 1] and clock.sleeps == [0.25]


def test_given_an_adopted_short_perp_then_its_spot_is_the_held_inventory_up_to_the_hedge() -> None:
    # -2 WBTC-equivalent perp (x18), WBTC has 8 decimals
    assert adopted_spot_raw(-2 * 10**18, wallet_spot_raw=5 * 10**8, spot_decimals=8) == 2 * 10**8
    assert adopted_spot_raw(-2 * 10**18, wallet_spot_raw=10**8, spot_decimals=8) == 10**8
    assert adopted_spot_raw(0, wallet_spot_raw=10**8, spot_decimals=8) == 0


def test_given_an_adopted_long_perp_then_its_spot_is_the_sold_hedge_and_its_close_is_quotable() -> None:
    spot = adopted_spot_raw(3 * 10**17, wallet_spot_raw=0, spot_decimals=8)
    assert spot == -3 * 10**7
    position = Position("BTC", Direction.LONG_PERP, "uniswap_v3", 3 * 10**17, spot, 1, 1, 0.0, 0)
    assert unquotable(position) is None
