"""A BasisExecutor on the devnet, operated and funded by the keeper account (anvil dev account #1),
set up as contracts/test/fork/DevnetFork.sol does: deploy (admin and treasury: the deployer account;
operator: the keeper; ClearingHouse, V2 Router02, V3 SwapRouter), register every market, move
inventory from the keeper into the executor, deposit collateral. Plus order encoding from a BasisTradeQuote and
decoding of the executor's Fills (return value and events), for tests that trade through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import keccak

from keeper.artifacts import load_artifact
from keeper.chain.abi import ContractAbi
from keeper.devnet.deploy import MAX_UINT256
from keeper.devnet.provision import ExecutorRoles
from keeper.devnet.provision import deploy_executor as deploy_roles
from keeper.devnet.txs import codec
from keeper.plan import trade_call as plan_trade_call
from keeper.quote_bounds import BasisTradeBounds
from keeper.quotes import BasisTradeQuote
from keeper.types import PredictedFills

from .conftest import Devnet

ERC20 = codec("MintableERC20")
FILLS_EVENT_TYPES = ["uint8"] + ["int256"] * 7  # spotVenue, then Fills' seven fields
_EVENT_SIGNATURE = "({name})(address,uint8,int256,int256,int256,int256,int256,int256,int256)"
EVENT_TOPICS = {name: keccak(text=_EVENT_SIGNATURE.replace("({name})", name))
                for name in ("BasisOpened", "BasisResized", "BasisClosed")}


@dataclass(frozen=True)
class ExecutorFills:
    """IBasisExecutor.Fills as the contract reports it."""

    perp_base_x18: int
    perp_quote_x18: int
    spot_raw: int
    usdc_raw: int
    residual_base_x18: int
    net_quote_x18: int
    position_base_x18_after: int

    def as_predicted(self) -> PredictedFills:
        """The six fields a PredictedFills holds (all but the position after)."""
        return PredictedFills(self.perp_base_x18, self.perp_quote_x18, self.spot_raw, self.usdc_raw,
                              self.residual_base_x18, self.net_quote_x18)


@dataclass(frozen=True)
class Executor:
    address: str
    owner: str  # the operator: the only account that trades
    abi: ContractAbi
    admin: str = ""


def deploy_executor(
    devnet: Devnet,
    *,
    usdc_raw: int = 400_000 * 10**6,
    spot_raw_by_market: dict[str, int] | None = None,
    collateral_usdc_raw: int = 100_000 * 10**6,
) -> Executor:
    """Deploy and fund an executor operated by the keeper account (admin: the deployer). Inventory defaults: 400k USDC,
    20 WETH, 1 WBTC (from the keeper's 1M USDC, 100 WETH, 5 WBTC); collateral_usdc_raw of the
    USDC is deposited into the executor's Perp Vault account."""
    keeper = devnet.manifest.accounts.keeper
    c = devnet.manifest.contracts
    admin = devnet.manifest.accounts.deployer
    address = deploy_roles(devnet.tx, ExecutorRoles(admin, admin, keeper), c["ClearingHouse"], c["UniswapV2Router02"],
                           c["SwapRouter"], ((m.base_token, m.spot_token, m.uniswap_v3_fee_pips)
                                             for m in devnet.manifest.markets))
    abi = load_artifact("BasisExecutor").codec
    ex = Executor(address, keeper, abi, admin)
    inventory = spot_raw_by_market if spot_raw_by_market is not None else {"ETH": 20 * 10**18, "BTC": 1 * 10**8}
    devnet.tx.call_fn(keeper, c["USDC"], ERC20, "transfer", address, usdc_raw)
    for market, amount in inventory.items():
        devnet.tx.call_fn(keeper, devnet.manifest.market(market).spot_token, ERC20, "transfer", address, amount)
    if collateral_usdc_raw:
        devnet.tx.call_fn(keeper, address, abi, "depositCollateral", collateral_usdc_raw)
    return ex


# ------------------------------------------------------------------------------ orders
def trade_call(quote: BasisTradeQuote, bounds: BasisTradeBounds, deposit_usdc_raw: int = 0) -> tuple[str, tuple[Any, ...]]:
    """(function name, arguments) of the executor call that runs the quoted trade (the planner's
    own builder, with no deadline)."""
    return plan_trade_call(quote, bounds, MAX_UINT256, deposit_usdc_raw)


# ------------------------------------------------------------------------------ fills
def simulate_trade(devnet: Devnet, ex: Executor, fn: str, args: tuple[Any, ...]) -> ExecutorFills:
    """The Fills an eth_call of the trade returns (the keeper's "simulate, then send")."""
    out = ex.abi.decode(fn, devnet.rpc.eth_call(ex.address, ex.abi.encode(fn, *args), sender=ex.owner), len(args))
    return ExecutorFills(*out[0])


def send_trade(devnet: Devnet, ex: Executor, fn: str, args: tuple[Any, ...]) -> ExecutorFills:
    """Send the trade from the owner and return the Fills of its event."""
    receipt = devnet.tx.call_fn(ex.owner, ex.address, ex.abi, fn, *args)
    return fills_from_receipt(receipt, ex.address)


def fills_from_receipt(receipt: dict[str, Any], executor: str) -> ExecutorFills:
    found = []
    for log in receipt["logs"]:
        if log["address"].lower() != executor.lower():
            continue
        if bytes.fromhex(log["topics"][0][2:]) in EVENT_TOPICS.values():
            values = decode(FILLS_EVENT_TYPES, bytes.fromhex(log["data"][2:]))
            found.append(ExecutorFills(*values[1:]))
    if len(found) != 1:
        raise AssertionError(f"expected one Basis* event from {executor}, found {len(found)}")
    return found[0]


def token_balance(devnet: Devnet, token: str, account: str) -> int:
    return int(devnet.tx.read(token, ERC20, "balanceOf", account))
