"""Deploy the keeper's world on an empty anvil chain, from the official npm artifacts, unmodified.

Order and parameters follow ../shared/notes/perp-v2-devnet.md (verified on this machine):
tokens -> Uniswap V3 factory -> Perp v2 core -> one Perp market per asset (Chainlink-style
aggregator -> ChainlinkPriceFeedV3 -> PriceFeedDispatcher -> BaseToken -> vAMM pool) -> Uniswap V2
and V3 spot pools -> time travel for the 30-minute TWAP -> maker liquidity -> funded accounts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import to_checksum_address

from keeper.artifacts import load_artifact
from keeper.chain.rpc import JsonRpc
from keeper.devnet.manifest import Accounts, DevnetManifest, MarketAddresses
from keeper.devnet.txs import DevSender, codec, create_address

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
MAX_UINT256 = 2**256 - 1
DEADLINE_NEVER = MAX_UINT256
Q96 = 2**96

# Perp v2 parameters (ClearingHouseConfig defaults otherwise: IM 10%, MM 6.25%, max funding 10%).
PERP_POOL_FEE_PIPS = 3000  # vAMM pool fee tier; Perp charges its own exchange fee instead
PERP_TICK_SPACING = 60
PERP_EXCHANGE_FEE_RATIO_PPM = 1000  # 0.1% per trade
PERP_INSURANCE_FUND_FEE_RATIO_PPM = 100_000  # 10% of the exchange fee
PERP_MAX_TICK_CROSSED_WITHIN_BLOCK = 1000
PERP_OBSERVATION_CARDINALITY = 500
ORACLE_TIMEOUT_S = 2400
ORACLE_TWAP_INTERVAL_S = 900  # must equal ClearingHouseConfig's mark-price premium interval
AGGREGATOR_DECIMALS = 8
TWAP_WARMUP_S = 1800  # margin checks need a 30-minute pool TWAP

USDC_DECIMALS = 6
V3_TICK_SPACING = {500: 10, 3000: 60, 10000: 200}
# Concentrated ranges as (lower, upper) multiples of the price and the share of the pool's value.
SPOT_V3_RANGES = ((0.5, 2.0, 0.25), (0.85, 1.18, 0.35), (0.97, 1.03, 0.40))
PERP_MAKER_RANGES = ((0.7, 1.43, 0.4), (0.95, 1.05, 0.6))


@dataclass(frozen=True)
class MarketSpec:
    """One asset: a Perp v2 market and its spot pools against USDC. Values in USD."""

    name: str  # "ETH"
    spot_symbol: str  # "WETH"
    spot_decimals: int
    index_price_usd: int
    spot_v2_value_usd: int
    spot_v3_value_usd: int
    spot_v3_fee_pips: int
    perp_maker_value_usd: int


DEFAULT_MARKETS = (
    MarketSpec("ETH", "WETH", 18, 3_000, 3_000_000, 12_000_000, 500, 6_000_000),
    MarketSpec("BTC", "WBTC", 8, 60_000, 3_000_000, 12_000_000, 3000, 6_000_000),
)


def extra_market_specs(count: int) -> tuple[MarketSpec, ...]:
    """Additional synthetic markets (for benchmarks at many markets): 18-decimal tokens."""
    return tuple(
        MarketSpec(f"X{i:02d}", f"TKN{i:02d}", 18, 10 + i, 300_000, 1_200_000, 3000, 600_000) for i in range(count)
    )


# ---------------------------------------------------------------------------------------- math
def raw_price(price_usd: float, base_decimals: int, quote_decimals: int, base_is_token0: bool) -> float:
    """token1-per-token0 price in raw units, as a Uniswap pool stores it."""
    p = price_usd * 10**quote_decimals / 10**base_decimals
    return p if base_is_token0 else 1 / p


def sqrt_price_x96(p_raw: float) -> int:
    return int(math.sqrt(p_raw) * Q96)


def tick_range(p_lo_raw: float, p_hi_raw: float, spacing: int) -> tuple[int, int]:
    lo, hi = sorted((p_lo_raw, p_hi_raw))
    tick_lo = math.floor(math.log(lo, 1.0001) / spacing) * spacing
    tick_hi = math.ceil(math.log(hi, 1.0001) / spacing) * spacing
    return tick_lo, tick_hi


def range_amounts(p_raw: float, tick_lo: int, tick_hi: int, value_token1_raw: float) -> tuple[int, int]:
    """Token amounts (raw) for a position in [tick_lo, tick_hi] around price p worth the value."""
    sp, sa, sb = math.sqrt(p_raw), 1.0001 ** (tick_lo / 2), 1.0001 ** (tick_hi / 2)
    per_l0 = max(0.0, 1 / max(sp, sa) - 1 / sb)
    per_l1 = max(0.0, min(sp, sb) - sa)
    liquidity = value_token1_raw / (per_l0 * p_raw + per_l1)
    # Desired amounts with a small margin; the contracts take only what the liquidity needs.
    return int(liquidity * per_l0 * 1.001) + 1, int(liquidity * per_l1 * 1.001) + 1


# ---------------------------------------------------------------------------------------- deploy
ProgressFn = Callable[[str, int, int], None]


class WorldDeployer:
    """Deploys and wires everything; each public step is one progress unit."""

    def __init__(self, rpc: JsonRpc, markets: tuple[MarketSpec, ...], progress: ProgressFn | None = None) -> None:
        self.rpc = rpc
        self.tx = DevSender(rpc)
        self.specs = markets
        self.progress = progress or (lambda label, done, total: None)
        accounts = [to_checksum_address(a) for a in rpc.call("eth_accounts")]
        self.deployer, self.keeper, self.maker, self.liquidity = accounts[:4]
        self.traders = accounts[4:7]
        self.c: dict[str, str] = {}
        self.markets: list[MarketAddresses] = []

    # -------------------------------------------------------------- helpers
    def _do(self, sender: str, to_name: str, abi_name: str, fn: str, *args: object, value_wei: int = 0) -> None:
        self.tx.call_fn(sender, self.c[to_name], codec(abi_name), fn, *args, value_wei=value_wei)

    def _burn_nonce(self) -> None:
        self.tx.send(self.deployer, self.deployer, b"", what="nonce burn")

    def _deploy_below(self, name: str, ceiling: str, *args: object) -> str:
        """Deploy so that the new address sorts below `ceiling` (Perp needs base < quote)."""
        while int(create_address(self.deployer, self.tx.nonce(self.deployer)), 16) >= int(ceiling, 16):
            self._burn_nonce()
        return self.tx.deploy(self.deployer, name, *args)

    # -------------------------------------------------------------- steps
    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("tokens and Multicall3", self.deploy_tokens),
            ("Uniswap V2 and V3 factories, routers, quoter", self.deploy_uniswap),
            ("Perp v2 core (ClearingHouse, Vault, Exchange, ...)", self.deploy_perp_core),
        ]
        for spec in self.specs:
            steps.append((f"{spec.name}: oracle, vAMM pool, spot pools", lambda s=spec: self.deploy_market(s)))
        steps += [
            ("time travel for the 30-minute TWAP", self.warm_up_twap),
            ("Perp maker liquidity", self.add_maker_liquidity),
            ("fund keeper and traders", self.fund_accounts),
        ]
        return steps

    def run(self) -> DevnetManifest:
        steps = self.steps()
        for i, (label, step) in enumerate(steps):
            self.progress(label, i, len(steps))
            step()
        self.progress("done", len(steps), len(steps))
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return DevnetManifest(
            rpc_url=self.rpc.url,
            chain_id=self.rpc.chain_id(),
            deployed_block=int(head["number"], 16),
            deployed_timestamp=int(head["timestamp"], 16),
            accounts=Accounts(
                deployer=self.deployer, keeper=self.keeper, maker=self.maker, liquidity=self.liquidity, traders=self.traders
            ),
            contracts=dict(self.c),
            markets=self.markets,
        )

    def deploy_tokens(self) -> None:
        self.c["WETH9"] = self.tx.deploy(self.deployer, "WETH9")
        self.c["USDC"] = self.tx.deploy(self.deployer, "MintableERC20", "USD Coin (devnet)", "USDC", USDC_DECIMALS)
        for spec in self.specs:
            if spec.spot_symbol != "WETH":
                self.c[spec.spot_symbol] = self.tx.deploy(
                    self.deployer, "MintableERC20", f"{spec.spot_symbol} (devnet)", spec.spot_symbol, spec.spot_decimals
                )
        runtime = load_artifact("Multicall3").deployed_bytecode
        self.rpc.call("anvil_setCode", [MULTICALL3_ADDRESS, "0x" + runtime.hex()])
        self.c["Multicall3"] = MULTICALL3_ADDRESS

    def deploy_uniswap(self) -> None:
        d = self.deployer
        self.c["UniswapV2Factory"] = self.tx.deploy(d, "UniswapV2Factory", d)
        self.c["UniswapV2Router02"] = self.tx.deploy(d, "UniswapV2Router02", self.c["UniswapV2Factory"], self.c["WETH9"])
        self.c["UniswapV3Factory"] = self.tx.deploy(d, "UniswapV3Factory")
        self.c["SwapRouter"] = self.tx.deploy(d, "SwapRouter", self.c["UniswapV3Factory"], self.c["WETH9"])
        self.c["QuoterV2"] = self.tx.deploy(d, "QuoterV2", self.c["UniswapV3Factory"], self.c["WETH9"])
        # No token descriptor: tokenURI is not used by anyone here.
        self.c["NonfungiblePositionManager"] = self.tx.deploy(
            d, "NonfungiblePositionManager", self.c["UniswapV3Factory"], self.c["WETH9"], "0x" + "00" * 20
        )

    def deploy_perp_core(self) -> None:
        d = self.deployer
        # vUSD must sort above every vBase: push the deployer's nonce to a high address first.
        while int(create_address(d, self.tx.nonce(d)), 16) < 0xC0 << 152:
            self._burn_nonce()
        self.c["QuoteToken"] = self.tx.deploy(d, "QuoteToken")
        self._do(d, "QuoteToken", "QuoteToken", "initialize", "Perp Virtual USD", "vUSD")
        for name in ("ClearingHouseConfig", "MarketRegistry", "OrderBook", "AccountBalance", "Exchange",
                     "InsuranceFund", "Vault", "ClearingHouse"):
            self.c[name] = self.tx.deploy(d, name)
        c = self.c
        self._do(d, "ClearingHouseConfig", "ClearingHouseConfig", "initialize")
        self._do(d, "MarketRegistry", "MarketRegistry", "initialize", c["UniswapV3Factory"], c["QuoteToken"])
        self._do(d, "OrderBook", "OrderBook", "initialize", c["MarketRegistry"])
        self._do(d, "AccountBalance", "AccountBalance", "initialize", c["ClearingHouseConfig"], c["OrderBook"])
        self._do(d, "Exchange", "Exchange", "initialize", c["MarketRegistry"], c["OrderBook"], c["ClearingHouseConfig"])
        self._do(d, "Exchange", "Exchange", "setAccountBalance", c["AccountBalance"])
        self._do(d, "OrderBook", "OrderBook", "setExchange", c["Exchange"])
        self._do(d, "InsuranceFund", "InsuranceFund", "initialize", c["USDC"])
        self._do(d, "Vault", "Vault", "initialize", c["InsuranceFund"], c["ClearingHouseConfig"], c["AccountBalance"], c["Exchange"])
        self._do(d, "InsuranceFund", "InsuranceFund", "setVault", c["Vault"])
        self._do(d, "AccountBalance", "AccountBalance", "setVault", c["Vault"])
        self._do(d, "ClearingHouse", "ClearingHouse", "initialize", c["ClearingHouseConfig"], c["Vault"], c["QuoteToken"],
                 c["UniswapV3Factory"], c["Exchange"], c["AccountBalance"], c["InsuranceFund"])
        self._do(d, "ClearingHouseConfig", "ClearingHouseConfig", "setSettlementTokenBalanceCap", MAX_UINT256)
        self._do(d, "QuoteToken", "QuoteToken", "mintMaximumTo", c["ClearingHouse"])
        self._do(d, "QuoteToken", "QuoteToken", "addWhitelist", c["ClearingHouse"])
        for name in ("MarketRegistry", "OrderBook", "Exchange", "AccountBalance", "Vault"):
            self._do(d, name, name, "setClearingHouse", c["ClearingHouse"])

    def deploy_market(self, spec: MarketSpec) -> None:
        d, c, n = self.deployer, self.c, spec.name
        answer = spec.index_price_usd * 10**AGGREGATOR_DECIMALS
        aggregator = self.tx.deploy(d, "MockV3Aggregator", AGGREGATOR_DECIMALS, answer)
        feed = self.tx.deploy(d, "ChainlinkPriceFeedV3", aggregator, ORACLE_TIMEOUT_S, ORACLE_TWAP_INTERVAL_S)
        self.tx.call_fn(d, feed, codec("ChainlinkPriceFeedV3"), "update")
        dispatcher = self.tx.deploy(d, "PriceFeedDispatcher", feed)
        base = self._deploy_below("BaseToken", c["QuoteToken"])
        base_abi = codec("BaseToken")
        self.tx.call_fn(d, base, base_abi, "initialize", f"Perp Virtual {n}", f"v{n}", dispatcher)
        self.tx.call_fn(d, base, base_abi, "mintMaximumTo", c["ClearingHouse"])
        self.tx.call_fn(d, base, base_abi, "addWhitelist", c["ClearingHouse"])
        factory = codec("UniswapV3Factory")
        self.tx.call_fn(d, c["UniswapV3Factory"], factory, "createPool", base, c["QuoteToken"], PERP_POOL_FEE_PIPS)
        pool = self.tx.read(c["UniswapV3Factory"], factory, "getPool", base, c["QuoteToken"], PERP_POOL_FEE_PIPS)
        self.tx.call_fn(d, base, base_abi, "addWhitelist", pool)
        self._do(d, "QuoteToken", "QuoteToken", "addWhitelist", pool)
        pool_abi = codec("UniswapV3Pool")
        self.tx.call_fn(d, pool, pool_abi, "initialize", math.isqrt(spec.index_price_usd * Q96 * Q96))
        self.tx.call_fn(d, pool, pool_abi, "increaseObservationCardinalityNext", PERP_OBSERVATION_CARDINALITY)
        self._do(d, "MarketRegistry", "MarketRegistry", "addPool", base, PERP_POOL_FEE_PIPS)
        self._do(d, "MarketRegistry", "MarketRegistry", "setFeeRatio", base, PERP_EXCHANGE_FEE_RATIO_PPM)
        self._do(d, "MarketRegistry", "MarketRegistry", "setInsuranceFundFeeRatio", base, PERP_INSURANCE_FUND_FEE_RATIO_PPM)
        self._do(d, "Exchange", "Exchange", "setMaxTickCrossedWithinBlock", base, PERP_MAX_TICK_CROSSED_WITHIN_BLOCK)
        spot_token = c[spec.spot_symbol] if spec.spot_symbol != "WETH" else c["WETH9"]
        v2_pair, v3_pool = self._deploy_spot_pools(spec, spot_token)
        self.markets.append(MarketAddresses(
            name=n, base_token=base, perp_pool=pool, aggregator=aggregator, chainlink_price_feed=feed,
            price_feed_dispatcher=dispatcher, spot_token=spot_token, spot_token_decimals=spec.spot_decimals,
            uniswap_v2_pair=v2_pair, uniswap_v3_pool=v3_pool, uniswap_v3_fee_pips=spec.spot_v3_fee_pips,
        ))

    def _fund_liquidity_account(self, spec: MarketSpec, spot_token: str, spot_raw: int, usdc_raw: int) -> None:
        lp, c = self.liquidity, self.c
        self.tx.call_fn(self.deployer, c["USDC"], codec("MintableERC20"), "mint", lp, usdc_raw)
        if spot_token == c["WETH9"]:
            self.tx.call_fn(lp, spot_token, codec("WETH9"), "deposit", value_wei=spot_raw)
        else:
            self.tx.call_fn(self.deployer, spot_token, codec("MintableERC20"), "mint", lp, spot_raw)
        for spender in ("UniswapV2Router02", "NonfungiblePositionManager"):
            self.tx.call_fn(lp, spot_token, codec("MintableERC20"), "approve", c[spender], MAX_UINT256)
            self.tx.call_fn(lp, c["USDC"], codec("MintableERC20"), "approve", c[spender], MAX_UINT256)

    def _deploy_spot_pools(self, spec: MarketSpec, spot_token: str) -> tuple[str, str]:
        c, lp = self.c, self.liquidity
        unit = 10**spec.spot_decimals
        usdc_unit = 10**USDC_DECIMALS
        total_usd = spec.spot_v2_value_usd + spec.spot_v3_value_usd
        spot_raw = int(total_usd / spec.index_price_usd * unit * 1.01)
        self._fund_liquidity_account(spec, spot_token, spot_raw, total_usd * usdc_unit)
        # Uniswap V2: half the value on each side, at the index price.
        v2_usd = spec.spot_v2_value_usd // 2
        v2_spot_raw = v2_usd * unit // spec.index_price_usd
        self.tx.call_fn(lp, c["UniswapV2Router02"], codec("UniswapV2Router02"), "addLiquidity",
                        spot_token, c["USDC"], v2_spot_raw, v2_usd * usdc_unit, 0, 0, lp, DEADLINE_NEVER)
        v2_pair = self.tx.read(c["UniswapV2Factory"], codec("UniswapV2Factory"), "getPair", spot_token, c["USDC"])
        # Uniswap V3: several ranges so that realistic sizes cross initialized ticks.
        fee = spec.spot_v3_fee_pips
        factory = codec("UniswapV3Factory")
        self.tx.call_fn(self.deployer, c["UniswapV3Factory"], factory, "createPool", spot_token, c["USDC"], fee)
        v3_pool = self.tx.read(c["UniswapV3Factory"], factory, "getPool", spot_token, c["USDC"], fee)
        base_is_token0 = int(spot_token, 16) < int(c["USDC"], 16)
        token0, token1 = (spot_token, c["USDC"]) if base_is_token0 else (c["USDC"], spot_token)
        p_raw = raw_price(spec.index_price_usd, spec.spot_decimals, USDC_DECIMALS, base_is_token0)
        self.tx.call_fn(self.deployer, v3_pool, codec("UniswapV3Pool"), "initialize", sqrt_price_x96(p_raw))
        value_usdc_raw = spec.spot_v3_value_usd * usdc_unit
        for lo_mult, hi_mult, share in SPOT_V3_RANGES:
            lo_raw = raw_price(spec.index_price_usd * lo_mult, spec.spot_decimals, USDC_DECIMALS, base_is_token0)
            hi_raw = raw_price(spec.index_price_usd * hi_mult, spec.spot_decimals, USDC_DECIMALS, base_is_token0)
            tick_lo, tick_hi = tick_range(lo_raw, hi_raw, V3_TICK_SPACING[fee])
            # The range's value in token1 raw units: USDC when token1 is USDC, else the spot token.
            share_usdc_raw = value_usdc_raw * share
            value_token1 = share_usdc_raw if base_is_token0 else share_usdc_raw / spec.index_price_usd / usdc_unit * unit
            amount0, amount1 = range_amounts(p_raw, tick_lo, tick_hi, value_token1)
            self.tx.call_fn(lp, c["NonfungiblePositionManager"], codec("NonfungiblePositionManager"), "mint",
                            (token0, token1, fee, tick_lo, tick_hi, amount0, amount1, 0, 0, lp, DEADLINE_NEVER))
        return v2_pair, v3_pool

    def warm_up_twap(self) -> None:
        self.rpc.call("evm_increaseTime", [TWAP_WARMUP_S])
        self.rpc.call("evm_mine", [])
        self.refresh_oracles()

    def refresh_oracles(self) -> None:
        """Re-post each aggregator's answer (fresh updatedAt) and let the Perp feed cache it."""
        for spec, market in zip(self.specs, self.markets):
            self.tx.call_fn(self.deployer, market.aggregator, codec("MockV3Aggregator"), "updateAnswer",
                            spec.index_price_usd * 10**AGGREGATOR_DECIMALS)
            self.tx.call_fn(self.deployer, market.chainlink_price_feed, codec("ChainlinkPriceFeedV3"), "update")

    def _deposit_to_perp_vault(self, account: str, usdc_raw: int) -> None:
        c = self.c
        erc20 = codec("MintableERC20")
        self.tx.call_fn(self.deployer, c["USDC"], erc20, "mint", account, usdc_raw)
        self.tx.call_fn(account, c["USDC"], erc20, "approve", c["Vault"], MAX_UINT256)
        self.tx.call_fn(account, c["Vault"], codec("Vault"), "deposit", c["USDC"], usdc_raw)

    def add_maker_liquidity(self) -> None:
        total_usd = sum(s.perp_maker_value_usd for s in self.specs)
        self._deposit_to_perp_vault(self.maker, total_usd * 10**USDC_DECIMALS)
        ch = codec("ClearingHouse")
        for spec, market in zip(self.specs, self.markets):
            p = float(spec.index_price_usd)
            for lo_mult, hi_mult, share in PERP_MAKER_RANGES:
                tick_lo, tick_hi = tick_range(p * lo_mult, p * hi_mult, PERP_TICK_SPACING)
                base_raw, quote_raw = range_amounts(p, tick_lo, tick_hi, spec.perp_maker_value_usd * share * 10**18)
                self.tx.call_fn(self.maker, self.c["ClearingHouse"], ch, "addLiquidity",
                                (market.base_token, base_raw, quote_raw, tick_lo, tick_hi, 0, 0, False, DEADLINE_NEVER))

    def fund_accounts(self) -> None:
        c = self.c
        erc20 = codec("MintableERC20")
        weth = codec("WETH9")
        usdc_unit = 10**USDC_DECIMALS
        # The keeper: gas money and inventory on both sides.
        self.rpc.call("anvil_setBalance", [self.keeper, hex(1_000 * 10**18)])
        self.tx.call_fn(self.deployer, c["USDC"], erc20, "mint", self.keeper, 1_000_000 * usdc_unit)
        self.tx.call_fn(self.keeper, c["WETH9"], weth, "deposit", value_wei=100 * 10**18)
        for spec in self.specs:
            if spec.spot_symbol != "WETH":
                amount = (300_000 * 10**spec.spot_decimals) // spec.index_price_usd
                self.tx.call_fn(self.deployer, c[spec.spot_symbol], erc20, "mint", self.keeper, amount)
        # Traders (market activity): USDC in the Perp vault, spot inventory, router approvals.
        for trader in self.traders:
            self._deposit_to_perp_vault(trader, 20_000_000 * usdc_unit)
            self.tx.call_fn(self.deployer, c["USDC"], erc20, "mint", trader, 20_000_000 * usdc_unit)
            self.tx.call_fn(trader, c["WETH9"], weth, "deposit", value_wei=5_000 * 10**18)
            tokens = [c["USDC"], c["WETH9"]]
            for spec in self.specs:
                if spec.spot_symbol != "WETH":
                    amount = (15_000_000 * 10**spec.spot_decimals) // spec.index_price_usd
                    self.tx.call_fn(self.deployer, c[spec.spot_symbol], erc20, "mint", trader, amount)
                    tokens.append(c[spec.spot_symbol])
            for token in tokens:
                for spender in ("UniswapV2Router02", "SwapRouter"):
                    self.tx.call_fn(trader, token, erc20, "approve", c[spender], MAX_UINT256)


def deploy_world(
    rpc: JsonRpc, markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS, progress: ProgressFn | None = None
) -> DevnetManifest:
    """Deploy everything on an empty anvil chain; returns the manifest."""
    return WorldDeployer(rpc, markets, progress).run()
