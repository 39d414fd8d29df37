"""Market activity on the devnet: the index moves, oracles update, other traders move the perp and
spot pools, time passes. Deterministic for a given seed (block times are pinned, not wall-clock).

Model, per market and per step of `step_s` simulated seconds:
- index: geometric random walk, daily volatility `index_vol_daily`, optional jumps;
- perp premium (perp price / index - 1): an Ornstein-Uhlenbeck process that mean-reverts to 0
  with half-life `premium_half_life_s`, so basis opens and converges as it does on real venues;
  a trader moves the vAMM pool to index * (1 + premium) with a price-limited Perp v2 trade;
- spot pools: arbitrage flow moves Uniswap V3 and V2 to index * (1 + small noise);
- optionally (`shock_every_steps`, what `make demo` uses): every that many steps one market's
  premium jumps to +-`shock_premium` (the markets in turn, the sign flipping after each round),
  then decays like any premium, so a demo shows a dislocation the keeper can trade.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from keeper.chain.abi import ContractAbi
from keeper.chain.rpc import JsonRpc
from keeper.devnet.activity_config import ActivityConfig
from keeper.devnet.deploy import AGGREGATOR_DECIMALS, DEADLINE_NEVER, USDC_DECIMALS, Q96
from keeper.devnet.manifest import DevnetManifest, MarketAddresses
from keeper.devnet.node import latest_block_timestamp
from keeper.devnet.txs import DevSender, codec
from keeper.errors import TxRevertedError

SECONDS_PER_DAY = 86_400
MAX_PREMIUM = 0.06  # Perp v2 refuses trades that push the market more than 10% from the index
REFERRAL_NONE = b"\0" * 32


@dataclass(frozen=True)
class MarketTick:
    name: str
    index_price_usd: float
    perp_price_usd: float
    spot_v3_price_usd: float
    spot_v2_price_usd: float
    premium_target: float


@dataclass(frozen=True)
class StepReport:
    step: int
    block_number: int
    timestamp: int
    markets: tuple[MarketTick, ...]
    shock: tuple[str, float] | None = None  # (market, premium) of this step's scripted shock


def scripted_shock(step: int, config: ActivityConfig, names: list[str]) -> tuple[str, float] | None:
    """The scripted premium shock of step `step` (1-based), if it has one, as (market, premium):
    every `config.shock_every_steps` steps, the markets in the order given, the sign flipping after
    each round of them."""
    every = config.shock_every_steps
    if every <= 0 or step % every or not names:
        return None
    k = step // every - 1
    sign = 1.0 if (k // len(names)) % 2 == 0 else -1.0
    return names[k % len(names)], sign * config.shock_premium


@dataclass
class _MarketState:
    addresses: MarketAddresses
    answer: int  # aggregator answer, 8 decimals
    premium: float = 0.0
    spot_is_token0: bool = True


@dataclass
class MarketActivity:
    """Drives the devnet market. Call step() repeatedly; shock_premium()/set_index() for scenarios."""

    rpc: JsonRpc
    manifest: DevnetManifest
    config: ActivityConfig = field(default_factory=ActivityConfig)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.tx = DevSender(self.rpc)
        self.steps_done = 0
        self.last_shock: tuple[str, float] | None = None  # the scripted shock of the last step, if any
        self._trader_index = 0
        self.markets: dict[str, _MarketState] = {}
        for m in self.manifest.markets:
            answer = self.tx.read(m.aggregator, codec("MockV3Aggregator"), "latestAnswer")
            usdc = self.manifest.contracts["USDC"]
            self.markets[m.name] = _MarketState(m, answer, spot_is_token0=int(m.spot_token, 16) < int(usdc, 16))
        self.rpc.call("anvil_setBlockTimestampInterval", [self.config.block_interval_s])

    # ------------------------------------------------------------------ scenario hooks
    def shock_premium(self, market: str, premium: float) -> None:
        """Set the perp premium target now (e.g. +0.02: perp 2% over index); it then decays."""
        self.markets[market].premium = max(-MAX_PREMIUM, min(MAX_PREMIUM, premium))

    def set_index(self, market: str, price_usd: float) -> None:
        self.markets[market].answer = round(price_usd * 10**AGGREGATOR_DECIMALS)

    # ------------------------------------------------------------------ stepping
    def _next_trader(self) -> str:
        traders = self.manifest.accounts.traders
        self._trader_index = (self._trader_index + 1) % len(traders)
        return traders[self._trader_index]

    def advance_time(self, seconds: int) -> None:
        head = latest_block_timestamp(self.rpc)
        self.rpc.call("evm_setNextBlockTimestamp", [head + seconds])
        self.rpc.call("evm_mine", [])

    def step(self) -> StepReport:
        cfg = self.config
        if cfg.one_block_per_step:
            # The time jump and every trade of the step land in one block.
            self.rpc.call("evm_setNextBlockTimestamp", [latest_block_timestamp(self.rpc) + cfg.step_s])
            self.rpc.call("evm_setAutomine", [False])
            try:
                moved = self._step_markets()
                self.rpc.call("evm_mine", [])
                self.tx.settle()
            finally:
                self.rpc.call("evm_setAutomine", [True])
        else:
            self.advance_time(cfg.step_s)
            moved = self._step_markets()
        ticks = [self._report(state) for state in moved]
        self.steps_done += 1
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return StepReport(self.steps_done, int(head["number"], 16), int(head["timestamp"], 16), tuple(ticks),
                          self.last_shock)

    def queue_step(self) -> None:
        """One step's trades sent to the pool and not mined: with anvil's interval mining (and
        automine off) the node's own miner includes them in its next block; `settle()` the
        driver's sender after it to check they all succeeded."""
        if not self.config.one_block_per_step:
            raise ValueError("queue_step needs one_block_per_step (trades queued, not sent one by one)")
        self._step_markets()
        self.steps_done += 1

    def _step_markets(self) -> list[_MarketState]:
        cfg = self.config
        dt_days = cfg.step_s / SECONDS_PER_DAY
        decay = math.exp(-math.log(2) * cfg.step_s / cfg.premium_half_life_s)
        self.last_shock = scripted_shock(self.steps_done + 1, cfg, sorted(self.markets))
        if self.last_shock is not None:
            self.shock_premium(*self.last_shock)
        ticks = []
        for name in sorted(self.markets):
            state = self.markets[name]
            shock = cfg.index_vol_daily * math.sqrt(dt_days) * self.rng.gauss(0.0, 1.0)
            if cfg.jump_probability and self.rng.random() < cfg.jump_probability:
                shock += cfg.jump_size * (1 if self.rng.random() < 0.5 else -1)
            state.answer = max(1, round(state.answer * math.exp(shock)))
            state.premium = state.premium * decay + cfg.premium_vol_daily * math.sqrt(dt_days) * self.rng.gauss(0.0, 1.0)
            state.premium = max(-MAX_PREMIUM, min(MAX_PREMIUM, state.premium))
            spot_noise = cfg.spot_noise * self.rng.gauss(0.0, 1.0)
            self._apply(state, spot_noise)
            ticks.append(state)
        return ticks

    def _apply(self, state: _MarketState, spot_noise: float) -> None:
        m, deployer = state.addresses, self.manifest.accounts.deployer
        self._send(deployer, m.aggregator, codec("MockV3Aggregator"), "updateAnswer", state.answer)
        self._send(deployer, m.chainlink_price_feed, codec("ChainlinkPriceFeedV3"), "update")
        index_usd = state.answer / 10**AGGREGATOR_DECIMALS
        self._move_perp_pool(m, index_usd * (1 + state.premium))
        spot_target_usd = index_usd * (1 + spot_noise)
        self._move_v3_pool(state, spot_target_usd)
        self._move_v2_pair(state, spot_target_usd)

    def _report(self, state: _MarketState) -> MarketTick:
        m = state.addresses
        return MarketTick(m.name, state.answer / 10**AGGREGATOR_DECIMALS, self.perp_price_usd(m),
                          self.v3_price_usd(state), self.v2_price_usd(state), state.premium)

    def _send(self, sender: str, to: str, abi: ContractAbi, fn: str, *args: object,
              tolerate: tuple[str, ...] = ()) -> None:
        """One trade of the step; a revert whose reason is in `tolerate` is logged and kept in the
        sender's `tolerated`, not raised (keeper/devnet/txs.py)."""
        if self.config.one_block_per_step:
            self.tx.submit(sender, to, abi.encode(fn, *args), what=f"{abi.name}.{fn}", tolerate=tolerate)
            return
        try:
            self.tx.call_fn(sender, to, abi, fn, *args)
        except TxRevertedError as exc:
            self.tx.tolerate(exc, tolerate)

    # ------------------------------------------------------------------ prices (for reports)
    def perp_price_usd(self, m: MarketAddresses) -> float:
        sqrt_p = self.tx.read(m.perp_pool, codec("UniswapV3Pool"), "slot0")[0]
        return (sqrt_p / Q96) ** 2

    def _raw_to_usd(self, state: _MarketState, p_raw: float) -> float:
        p = p_raw if state.spot_is_token0 else 1 / p_raw
        return p * 10 ** (state.addresses.spot_token_decimals - USDC_DECIMALS)

    def _usd_to_sqrt_x96(self, state: _MarketState, price_usd: float) -> int:
        p = price_usd * 10 ** (USDC_DECIMALS - state.addresses.spot_token_decimals)
        p_raw = p if state.spot_is_token0 else 1 / p
        return int(math.sqrt(p_raw) * Q96)

    def v3_price_usd(self, state: _MarketState) -> float:
        sqrt_p = self.tx.read(state.addresses.uniswap_v3_pool, codec("UniswapV3Pool"), "slot0")[0]
        return self._raw_to_usd(state, (sqrt_p / Q96) ** 2)

    def v2_price_usd(self, state: _MarketState) -> float:
        r0, r1, _ = self.tx.read(state.addresses.uniswap_v2_pair, codec("UniswapV2Pair"), "getReserves")
        return self._raw_to_usd(state, r1 / r0)

    # ------------------------------------------------------------------ pool movers
    def _move_perp_pool(self, m: MarketAddresses, target_usd: float) -> None:
        current = self.perp_price_usd(m)
        if abs(target_usd / current - 1) < 1e-5:
            return
        is_long = target_usd > current  # buying vBase pushes the price up
        limit = math.isqrt(int(target_usd * 10**12) * Q96 * Q96 // 10**12)
        # Price-limited exact input: fills until the pool reaches the limit, never reverts on it.
        # Past the makers' liquidity (a long, volatile run can carry the vAMM there) the swap moves
        # nothing and Perp reverts it (CH_F0S, "forbidden 0 swap"): the vAMM then stays where it is
        # this step (a `devnet.tx_reverted` warning), and the run goes on.
        amount = 10**26 if is_long else 10**24  # quote in when long, base in when short
        self._send(self._next_trader(), self.manifest.contracts["ClearingHouse"], codec("ClearingHouse"),
                   "openPosition", (m.base_token, not is_long, True, amount, 0, DEADLINE_NEVER, limit, REFERRAL_NONE),
                   tolerate=("CH_F0S",))

    def _move_v3_pool(self, state: _MarketState, target_usd: float) -> None:
        m = state.addresses
        current = self.v3_price_usd(state)
        if abs(target_usd / current - 1) < 1e-5:
            return
        usdc = self.manifest.contracts["USDC"]
        buy_spot = target_usd > current
        token_in, token_out = (usdc, m.spot_token) if buy_spot else (m.spot_token, usdc)
        balance = self.tx.read(token_in, codec("MintableERC20"), "balanceOf", trader := self._next_trader())
        params = (token_in, token_out, m.uniswap_v3_fee_pips, trader, DEADLINE_NEVER, balance // 2, 0,
                  self._usd_to_sqrt_x96(state, target_usd))
        self._send(trader, self.manifest.contracts["SwapRouter"], codec("SwapRouter"), "exactInputSingle", params)

    def _move_v2_pair(self, state: _MarketState, target_usd: float) -> None:
        m = state.addresses
        r0, r1, _ = self.tx.read(m.uniswap_v2_pair, codec("UniswapV2Pair"), "getReserves")
        current = self._raw_to_usd(state, r1 / r0)
        if abs(target_usd / current - 1) < 1e-4:
            return
        usdc = self.manifest.contracts["USDC"]
        r_spot, r_usdc = (r0, r1) if state.spot_is_token0 else (r1, r0)
        # Constant product: reaching price P (usdc per spot, raw) needs the spot reserve at sqrt(k / P).
        p_raw = target_usd * 10 ** (USDC_DECIMALS - m.spot_token_decimals)
        spot_after = math.isqrt(int(r_spot * r_usdc / p_raw))
        if spot_after < r_spot:  # buy spot with USDC
            path, amount_in = [usdc, m.spot_token], int((r_spot * r_usdc / spot_after - r_usdc) * 1.003)
        else:  # sell spot for USDC
            path, amount_in = [m.spot_token, usdc], int((spot_after - r_spot) * 1.003)
        if amount_in <= 0:
            return
        self._send(self._next_trader(), self.manifest.contracts["UniswapV2Router02"], codec("UniswapV2Router02"),
                   "swapExactTokensForTokens", amount_in, 0, path, self._next_trader(), DEADLINE_NEVER)
