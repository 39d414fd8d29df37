"""A dry run's opens are simulated with eth_call; its closes and resizes act on positions only the
dry run imagines, so they are priced by the plan's exact quote, never sent to the node (where
Perp would revert them: no position)."""

from __future__ import annotations

from typing import Any

from keeper.errors import RpcError
from keeper.execute import DryRunExecutor
from tests.unit.journal_builders import make_fills, make_intent, make_plan


class NoPosition:
    """A node on which the executor holds nothing: every trade call reverts as Perp's would."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        raise RpcError(method, 3, "execution reverted: CH_PSZ")


def test_a_close_or_resize_of_a_virtual_position_takes_the_exact_quote_and_asks_the_node_nothing() -> None:
    rpc = NoPosition()
    executor = DryRunExecutor(rpc, "0x" + "11" * 20)  # type: ignore[arg-type]
    for kind in ("close", "resize"):
        fills = make_fills(perp_base_x18=10**18, net_quote_x18=-7 * 10**18)
        outcome = executor.execute(make_plan(make_intent(kind), fills))
        assert outcome.status == "dry_run" and outcome.fills == fills
        assert f"would {kind} ETH" in outcome.detail and "exact quote" in outcome.detail
    assert rpc.calls == []


def test_an_open_is_still_simulated_on_the_node() -> None:
    rpc = NoPosition()
    outcome = DryRunExecutor(rpc, "0x" + "11" * 20).execute(make_plan(make_intent("open")))  # type: ignore[arg-type]
    assert rpc.calls == ["eth_call"] and outcome.status == "simulation_reverted"
