"""The scenario driver: keeper.devnet.activity.MarketActivity plus a scenario's events.

`ScenarioDriver` subclasses MarketActivity and keeps its model (seeded index random walk, OU
premium, oracle posts, arbitrage of the perp and spot pools, pinned block times); per step it
first applies the scenario's events for that step, then runs MarketActivity.step():

- premium_shock: MarketActivity.shock_premium (the target then decays with the half-life);
- index_move: the true price (the answer MarketActivity posts) moves by pct_per_step;
- oracle_pause: MarketActivity's oracle posts (aggregator.updateAnswer, price feed update) are
  muted for the market; the pools still follow the true price, so the index goes stale;
- liquidity_removal: the spot-liquidity account decreases its Uniswap V3 positions through the
  NonfungiblePositionManager (and collects) and burns V2 LP through the router;
- base_fee: after the step, the head block and the next one (the keeper's) get the base fee, with
  anvil_setNextBlockBaseFeePerGas; when the window ends the base fee goes back to its level before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keeper.chain.abi import ContractAbi
from keeper.devnet.activity import MarketActivity, StepReport, _MarketState
from keeper.devnet.deploy import DEADLINE_NEVER, MAX_UINT256
from keeper.devnet.txs import DevSender, codec
from keeper.errors import ConfigError
from keeper.logs import get_logger
from keeper.simulate.scenario import (
    BaseFee,
    IndexMove,
    LiquidityRemoval,
    OraclePause,
    PremiumShock,
    Scenario,
)

log = get_logger("keeper.simulate")
MAX_UINT128 = 2**128 - 1
GWEI = 10**9


@dataclass(frozen=True)
class LiquidityRemoved:
    market: str
    venue: str
    positions: int  # V3 positions decreased, or 1 for the V2 pair
    share: float


class _OracleMute:
    """A DevSender whose contract calls to the muted addresses (aggregators and price feeds of
    paused markets) are dropped; everything else goes through."""

    def __init__(self, tx: DevSender, muted: set[str]) -> None:
        self._tx = tx
        self._muted = {a.lower() for a in muted}

    def call_fn(self, sender: str, to: str, abi: ContractAbi, fn: str, *args: Any, value_wei: int = 0) -> dict[str, Any]:
        if to.lower() in self._muted:
            return {}
        return self._tx.call_fn(sender, to, abi, fn, *args, value_wei=value_wei)

    def submit(self, sender: str, to: str, data: bytes, value_wei: int = 0, what: str = "",
               tolerate: tuple[str, ...] = ()) -> str:
        if to.lower() in self._muted:
            return ""
        return self._tx.submit(sender, to, data, value_wei=value_wei, what=what, tolerate=tolerate)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


@dataclass
class ScenarioDriver(MarketActivity):
    scenario: Scenario | None = None
    removals: list[LiquidityRemoved] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scenario is None:
            raise ValueError("ScenarioDriver needs a scenario")
        for i, event in enumerate(self.scenario.events):  # the first unknown name, by its field
            unknown = [m for m in event.markets or () if m not in self.markets]
            if unknown:
                raise ConfigError(f"scenario {self.scenario.name}: events[{i}] ({event.kind}).markets: unknown market "
                                  f"{unknown[0]!r} (this chain has {', '.join(sorted(self.markets))})")
        self._paused: set[str] = set()
        self._normal_base_fee_wei: int | None = None
        self.scenario_step = 0  # scenario steps done (warm-up steps are not counted)

    def warm_up(self) -> StepReport:
        """One plain MarketActivity step, before the scenario's step 1 (no events)."""
        self._paused = set()
        return super().step()

    # ------------------------------------------------------------------ stepping
    def step(self) -> StepReport:
        assert self.scenario is not None
        n = self.scenario_step + 1
        events = self.scenario.events_at(n)
        self._paused = {m for e in events if isinstance(e, OraclePause) for m in self.markets if e.applies_to(m)}
        for event in events:
            if isinstance(event, PremiumShock):
                for name in self._targets(event):
                    self.shock_premium(name, event.premium)
            elif isinstance(event, IndexMove):
                for name in self._targets(event):
                    state = self.markets[name]
                    self.set_index(name, state.answer / 10**8 * (1 + event.pct_per_step))
            elif isinstance(event, LiquidityRemoval):
                for name in self._targets(event):
                    self.remove_liquidity(name, event.venues, event.fraction)
        report = super().step()
        self._apply_base_fee([e for e in events if isinstance(e, BaseFee)])
        self.scenario_step = n
        return report

    def _targets(self, event: Any) -> list[str]:
        return [name for name in sorted(self.markets) if event.applies_to(name)]

    def _apply(self, state: _MarketState, spot_noise: float) -> Any:
        if state.addresses.name not in self._paused:
            return super()._apply(state, spot_noise)
        real_tx = self.tx
        self.tx = _OracleMute(real_tx, {state.addresses.aggregator, state.addresses.chainlink_price_feed})  # type: ignore[assignment]
        try:
            return super()._apply(state, spot_noise)
        finally:
            self.tx = real_tx

    def end(self) -> None:
        """Undo what outlasts a step: the base fee goes back to its level before a spike."""
        self._apply_base_fee([])

    def _apply_base_fee(self, windows: list[BaseFee]) -> None:
        if windows:
            if self._normal_base_fee_wei is None:
                self._normal_base_fee_wei = self._head_base_fee_wei()
            wei = int(max(w.gwei for w in windows) * GWEI)
            # the head block (what the keeper's snapshot reads) and the block after it (where the
            # keeper's transaction lands) both carry the spiked base fee
            self.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(wei)])
            self.rpc.call("evm_mine", [])
            self.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(wei)])
        elif self._normal_base_fee_wei is not None:
            self.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(self._normal_base_fee_wei)])
            self.rpc.call("evm_mine", [])
            self._normal_base_fee_wei = None

    def _head_base_fee_wei(self) -> int:
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return int(head.get("baseFeePerGas", "0x0"), 16)

    # ------------------------------------------------------------------ liquidity
    def remove_liquidity(self, market: str, venues: list[str], fraction: float) -> list[LiquidityRemoved]:
        """The spot-liquidity account withdraws `fraction` of what it provides to the market's
        Uniswap pools (it must be an account the node lets us send from: a devnet dev account)."""
        done = []
        m = self.markets[market].addresses
        lp = self.manifest.accounts.liquidity
        c = self.manifest.contracts
        if "uniswap_v3" in venues:
            npm, npm_abi = c["NonfungiblePositionManager"], codec("NonfungiblePositionManager")
            pool_abi = codec("UniswapV3Pool")
            token0 = self.tx.read(m.uniswap_v3_pool, pool_abi, "token0").lower()
            token1 = self.tx.read(m.uniswap_v3_pool, pool_abi, "token1").lower()
            count = 0
            for i in range(self.tx.read(npm, npm_abi, "balanceOf", lp)):
                token_id = self.tx.read(npm, npm_abi, "tokenOfOwnerByIndex", lp, i)
                position = self.tx.read(npm, npm_abi, "positions", token_id)
                # positions(): nonce, operator, token0, token1, fee, tickLower, tickUpper, liquidity, ...
                if (position[2].lower(), position[3].lower(), position[4]) != (token0, token1, m.uniswap_v3_fee_pips):
                    continue
                liquidity = int(position[7] * fraction)
                if liquidity == 0:
                    continue
                self.tx.call_fn(lp, npm, npm_abi, "decreaseLiquidity", (token_id, liquidity, 0, 0, DEADLINE_NEVER))
                self.tx.call_fn(lp, npm, npm_abi, "collect", (token_id, lp, MAX_UINT128, MAX_UINT128))
                count += 1
            done.append(LiquidityRemoved(market, "uniswap_v3", count, fraction))
        if "uniswap_v2" in venues:
            pair_abi = codec("UniswapV2Pair")
            lp_tokens = int(self.tx.read(m.uniswap_v2_pair, pair_abi, "balanceOf", lp) * fraction)
            if lp_tokens:
                router = c["UniswapV2Router02"]
                self.tx.call_fn(lp, m.uniswap_v2_pair, pair_abi, "approve", router, MAX_UINT256)
                self.tx.call_fn(lp, router, codec("UniswapV2Router02"), "removeLiquidity", m.spot_token, c["USDC"],
                                lp_tokens, 0, 0, lp, DEADLINE_NEVER)
            done.append(LiquidityRemoved(market, "uniswap_v2", 1 if lp_tokens else 0, fraction))
        for removed in done:
            log.info("scenario.liquidity_removed", market=removed.market, venue=removed.venue,
                     positions=removed.positions, share=removed.share)
        self.removals.extend(done)
        return done
