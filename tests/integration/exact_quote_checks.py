"""What the exact-quote tests (test_quotes_exact_spot.py, test_quotes_exact_perp.py) share: the
hypothesis settings, an evm_snapshot / evm_revert around each example (examples start from the same
devnet and never see each other's trades), trade sizes, and tick prices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from keeper.venues.uniswap_v3_libraries import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick

from .conftest import Devnet

examples = settings(
    max_examples=50, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def isolated(d: Devnet) -> Iterator[None]:
    snapshot = d.rpc.call("evm_snapshot")
    try:
        yield
    finally:
        assert d.rpc.call("evm_revert", [snapshot]) is True


def sizes(max_move_ticks: int, max_raw: int = 10**6) -> st.SearchStrategy[tuple[str, int, int]]:
    """("raw", amount, 0): dust; or ("ticks", n, nudge): the size that moves the price n ticks,
    give or take `nudge` raw units (the rounding edges around a tick)."""
    # sampled_from draws the move uniformly (integers() favours small values)
    moves = st.tuples(st.just("ticks"), st.sampled_from(range(1, max_move_ticks + 1)),
                      st.integers(min_value=-1000, max_value=1000))
    return st.one_of(st.tuples(st.just("raw"), st.integers(min_value=1, max_value=max_raw), st.just(0)), moves, moves)


def tick_price(tick: int) -> int:
    return get_sqrt_ratio_at_tick(max(MIN_TICK + 1, min(MAX_TICK - 1, tick)))
