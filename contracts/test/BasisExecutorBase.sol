// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {BasisExecutor} from "../src/BasisExecutor.sol";
import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {MintableERC20} from "../src/MintableERC20.sol";
import {MockClearingHouse, MockPerpVault} from "./mocks/MockPerp.sol";
import {MockSwapRouter} from "./mocks/MockSwapRouter.sol";
import {FeeOnTransferToken, NoBoolToken} from "./mocks/AwkwardTokens.sol";
import {ExecutorOrders} from "./ExecutorOrders.sol";

/// @notice The executor against mocks of Perp v2 and the Uniswap routers (fixed prices, so every
///         fill is known exactly), with its three roles: `keeper` (operator), `admin`, `treasury`.
///         Shared by the unit, role, bound and invariant tests. The real protocols are exercised in
///         fork/BasisExecutorFork.t.sol.
abstract contract BasisExecutorBase is Test, ExecutorOrders {
    // Perp base tokens: the mock ClearingHouse only needs distinct addresses.
    address internal constant VETH = address(0xE7E7);
    address internal constant VBTC = address(0xB7C0);
    address internal constant VSOL = address(0x5017);
    address internal constant VFOT = address(0xF07);

    uint256 internal constant ETH_PRICE_USD = 3000;
    uint256 internal constant V3_ETH_PRICE_USD = 2995; // the V3 pool is a little cheaper: venues differ
    uint256 internal constant BTC_PRICE_USD = 60_000;
    uint256 internal constant SOL_PRICE_USD = 150;
    uint256 internal constant USDC_SCALE_TO_18 = 1e12;

    IBasisExecutor.SpotVenue internal constant V2 = IBasisExecutor.SpotVenue.UniswapV2;
    IBasisExecutor.SpotVenue internal constant V3 = IBasisExecutor.SpotVenue.UniswapV3;

    address internal keeper = makeAddr("keeper"); // the operator (hot key)
    address internal admin = makeAddr("admin"); // the cold key
    address internal treasury = makeAddr("treasury");
    address internal stranger = makeAddr("stranger");

    MintableERC20 internal usdc;
    MintableERC20 internal weth;
    MintableERC20 internal wbtc;
    NoBoolToken internal sol; // USDT-style spot token with 6 decimals
    FeeOnTransferToken internal fot; // 1% fee on every transfer
    MockPerpVault internal vault;
    MockClearingHouse internal ch;
    MockSwapRouter internal v2Router;
    MockSwapRouter internal v3Router;
    BasisExecutor internal ex;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        usdc = new MintableERC20("USD Coin", "USDC", 6);
        weth = new MintableERC20("Wrapped Ether", "WETH", 18);
        wbtc = new MintableERC20("Wrapped BTC", "WBTC", 8);
        sol = new NoBoolToken(6);
        fot = new FeeOnTransferToken(18, 100);
        vault = new MockPerpVault(usdc);
        ch = new MockClearingHouse(vault);
        ch.setPrice(VETH, ETH_PRICE_USD * 1e18);
        ch.setPrice(VBTC, BTC_PRICE_USD * 1e18);
        ch.setPrice(VSOL, SOL_PRICE_USD * 1e18);
        ch.setPrice(VFOT, 1e18);
        v2Router = new MockSwapRouter();
        v3Router = new MockSwapRouter();
        _listSpot(v2Router, address(weth), 1e18, ETH_PRICE_USD);
        _listSpot(v3Router, address(weth), 1e18, V3_ETH_PRICE_USD);
        _listSpot(v2Router, address(wbtc), 1e8, BTC_PRICE_USD);
        _listSpot(v3Router, address(wbtc), 1e8, BTC_PRICE_USD);
        _listSpot(v2Router, address(sol), 1e6, SOL_PRICE_USD);
        _listSpot(v3Router, address(sol), 1e6, SOL_PRICE_USD);
        _listSpot(v3Router, address(fot), 1e18, 1);

        ex = new BasisExecutor(admin, treasury, keeper, address(ch), address(v2Router), address(v3Router));
        usdc.mint(address(ex), 10_000_000e6);
        weth.mint(address(ex), 1_000e18);
        wbtc.mint(address(ex), 50e8);
        sol.mint(address(ex), 1_000_000e6);
        fot.mint(address(ex), 1_000e18);

        vm.startPrank(admin);
        ex.setMarket(VETH, address(weth), 500);
        ex.setMarket(VBTC, address(wbtc), 3000);
        ex.setMarket(VSOL, address(sol), 3000);
        ex.setMarket(VFOT, address(fot), 10000);
        vm.stopPrank();
        vm.prank(keeper);
        ex.depositCollateral(100_000e6);
    }

    /// @dev Both directions against USDC at `priceUsd` per whole token; the router holds inventory.
    function _listSpot(MockSwapRouter router, address token, uint256 unitRaw, uint256 priceUsd) internal {
        router.setRate(address(usdc), token, unitRaw, priceUsd * 1e6);
        router.setRate(token, address(usdc), priceUsd * 1e6, unitRaw);
        usdc.mint(address(router), 1e15);
        (bool ok,) = token.call(abi.encodeWithSignature("mint(address,uint256)", address(router), 1e30));
        require(ok, "mint");
    }

    // ------------------------------------------------------------------------------ order builders

    function _bounds(uint256 maxResidualBase18) internal view returns (IBasisExecutor.TradeBounds memory) {
        return IBasisExecutor.TradeBounds(block.timestamp + 60, maxResidualBase18, type(int256).min);
    }

    /// @dev short 1 vETH (exact base in) + buy exactly 1 WETH: the canonical hedged open.
    function _openShortOneEth(IBasisExecutor.SpotVenue venue) internal returns (IBasisExecutor.Fills memory) {
        vm.prank(keeper);
        return ex.openBasis(
            0, _perp(VETH, true, true, 1e18, 1), _spot(venue, true, false, 1e18, type(uint256).max), _bounds(0)
        );
    }

    /// @dev Every allowance the executor could have given: USDC and each spot token, to the Vault
    ///      and both routers, summed (zero when none stands).
    function _standingAllowances() internal view returns (uint256 total) {
        address[5] memory tokens = [address(usdc), address(weth), address(wbtc), address(sol), address(fot)];
        address[3] memory spenders = [address(vault), address(v2Router), address(v3Router)];
        for (uint256 t; t < tokens.length; t++) {
            for (uint256 s; s < spenders.length; s++) {
                (, bytes memory ret) = tokens[t].staticcall(
                    abi.encodeWithSignature("allowance(address,address)", address(ex), spenders[s])
                );
                total += abi.decode(ret, (uint256));
            }
        }
    }
}
