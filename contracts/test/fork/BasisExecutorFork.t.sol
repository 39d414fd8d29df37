// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "forge-std/interfaces/IERC20.sol";
import {IBasisExecutor} from "../../src/interfaces/IBasisExecutor.sol";
import {IPerpClearingHouse} from "../../src/interfaces/IPerpV2.sol";
import {IUniswapV3SwapRouter} from "../../src/interfaces/IUniswapRouters.sol";
import {DevnetFork, IPerpVaultViews} from "./DevnetFork.sol";

interface IPerpAccountValue {
    function getAccountValue(address trader) external view returns (int256 accountValue18);
}

/// @notice The executor against the real Perp v2 (Curie) and Uniswap V2/V3 contracts on the devnet.
contract BasisExecutorForkTest is DevnetFork {
    uint256 internal constant COLLATERAL_RAW = 10_000e6;

    // ------------------------------------------------------------------------------ open + close
    function test_OpenOnV3ThenClose_HedgedWithinTolerance() public {
        _openThenClose(V3);
    }

    function test_OpenOnV2ThenClose_HedgedWithinTolerance() public {
        _openThenClose(V2);
    }

    /// @dev deposit + short 1 vETH + buy exactly 1 WETH, then close + sell exactly 1 WETH; bounds
    ///      from a simulation of each trade with 0.1% slack.
    function _openThenClose(IBasisExecutor.SpotVenue venue) internal {
        // Given the simulated fills of the open
        IBasisExecutor.PerpOrder memory perp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(venue, true, false, 1e18, NO_MAX);
        IBasisExecutor.Fills memory sim = _simulateOpen(COLLATERAL_RAW, perp, buy);
        perp.oppositeAmountBound18 = _minus(uint256(sim.perpQuote18), 10);
        buy.limitRaw = _plus(_abs(sim.usdcRaw), 10);
        uint256 usdcBefore = IERC20(usdc).balanceOf(address(ex));

        // When the keeper opens with those bounds
        vm.prank(keeper);
        IBasisExecutor.Fills memory opened = ex.openBasis(COLLATERAL_RAW, perp, buy, _bounds(0, sim.netQuote18 - 1e18));

        // Then both legs filled exactly 1 ETH, in opposite directions, at market prices
        assertEq(opened.perpBase18, -1e18);
        assertEq(opened.spotRaw, 1e18);
        assertEq(opened.residualBase18, 0);
        assertEq(opened.netQuote18, sim.netQuote18);
        assertApproxEqRel(uint256(opened.perpQuote18), 3000e18, 0.02e18);
        assertApproxEqRel(_abs(opened.usdcRaw), 3000e6, 0.02e18);
        assertEq(_position(address(ex), eth.baseToken), -1e18);
        assertEq(IPerpVaultViews(vault).getBalance(address(ex)), int256(COLLATERAL_RAW));
        assertEq(IERC20(usdc).balanceOf(address(ex)), usdcBefore - COLLATERAL_RAW - _abs(opened.usdcRaw));

        // Given the simulated close
        IBasisExecutor.PerpCloseOrder memory close = IBasisExecutor.PerpCloseOrder(eth.baseToken, NO_MAX, 0);
        IBasisExecutor.SpotOrder memory sell = _spot(venue, false, true, 1e18, 1);
        IBasisExecutor.Fills memory simClose = _simulateClose(close, sell);
        close.oppositeAmountBound18 = _plus(_abs(simClose.perpQuote18), 10);
        sell.limitRaw = _minus(uint256(simClose.usdcRaw), 10);
        // The keeper accepts a round-trip loss of at most 30 USD on 1 ETH (Perp's 0.1% fee twice, the
        // spot pool's fee twice: 0.05% on V3, 0.3% on V2, and price impact)
        int256 minRoundTrip18 = -30e18;

        // When it closes
        vm.prank(keeper);
        IBasisExecutor.Fills memory closed = ex.closeBasis(close, sell, _bounds(0, minRoundTrip18 - opened.netQuote18));

        // Then the position is flat, the spot sold, and the round trip's net quote is what the account
        // holds: USDC from the spot legs plus the Perp account's realized PnL
        assertEq(closed.perpBase18, 1e18);
        assertEq(closed.spotRaw, -1e18);
        assertEq(closed.residualBase18, 0);
        assertEq(closed.positionBase18After, 0);
        assertEq(_position(address(ex), eth.baseToken), 0);
        int256 roundTrip18 = opened.netQuote18 + closed.netQuote18;
        assertGe(roundTrip18, minRoundTrip18);
        assertLt(roundTrip18, 0);
        int256 perpPnl18 = IPerpAccountValue(clearingHouse).getAccountValue(address(ex)) - int256(COLLATERAL_RAW) * 1e12;
        // (the account value has the settlement token's 6 decimals: equal to within 1 raw USDC unit)
        assertApproxEqAbs(perpPnl18, opened.perpQuote18 + closed.perpQuote18, 1e12);
    }

    // ------------------------------------------------------------------------------ resize
    function test_Resize_DownUpAndWithinResidualTolerance() public {
        vm.startPrank(keeper);
        ex.openBasis(
            2 * COLLATERAL_RAW,
            _perp(eth.baseToken, true, true, 2e18, 5_900e18),
            _spot(V3, true, false, 2e18, 6_100e6),
            _anyProfit(0)
        );
        // Down by 1: buy back exactly 1 vETH, sell exactly 1 WETH on V2
        IBasisExecutor.Fills memory down = ex.resizeBasis(
            0, _perp(eth.baseToken, false, false, 1e18, 3_100e18), _spot(V2, false, true, 1e18, 2_900e6), _anyProfit(0)
        );
        assertEq(down.perpBase18, 1e18);
        assertEq(down.positionBase18After, -1e18);
        // Up by 0.5 on V2
        IBasisExecutor.Fills memory up = ex.resizeBasis(
            0,
            _perp(eth.baseToken, true, true, 0.5e18, 1_450e18),
            _spot(V2, true, false, 0.5e18, 1_550e6),
            _anyProfit(0)
        );
        assertEq(up.positionBase18After, -1.5e18);
        // Down by a quote amount (1500 vUSD buys ~0.5 vETH) against exactly 0.5 WETH: a small residual,
        // inside a 0.01 ETH tolerance
        IBasisExecutor.Fills memory byQuote = ex.resizeBasis(
            0,
            _perp(eth.baseToken, false, true, 1_500e18, 0.45e18),
            _spot(V3, false, true, 0.5e18, 1_450e6),
            _anyProfit(0.01e18)
        );
        vm.stopPrank();
        assertTrue(byQuote.residualBase18 != 0);
        assertLe(_abs(byQuote.residualBase18), 0.01e18);
        assertEq(byQuote.residualBase18, byQuote.perpBase18 - 0.5e18);
        assertEq(_position(address(ex), eth.baseToken), byQuote.positionBase18After);
        assertEq(byQuote.positionBase18After, -1.5e18 + byQuote.perpBase18);
    }

    function test_OpenEightDecimalSpot_WbtcIsScaledTo18() public {
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.openBasis(
            COLLATERAL_RAW,
            _perp(btc.baseToken, true, true, 0.05e18, 2_900e18),
            _spot(V3, true, false, 0.05e8, 3_100e6),
            _anyProfit(0)
        );
        assertEq(f.spotRaw, 0.05e8);
        assertEq(f.perpBase18, -0.05e18);
        assertEq(f.residualBase18, 0);
        assertEq(_position(address(ex), btc.baseToken), -0.05e18);
    }

    // ------------------------------------------------------------------------------ front-running
    function test_RevertWhen_FrontRunPerpTradeBreaksThePerpBound_NothingLost() public {
        // Given a simulated open and 0.2% bounds
        IBasisExecutor.PerpOrder memory perp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V3, true, false, 1e18, NO_MAX);
        IBasisExecutor.Fills memory sim = _simulateOpen(COLLATERAL_RAW, perp, buy);
        perp.oppositeAmountBound18 = _minus(uint256(sim.perpQuote18), 20);
        buy.limitRaw = _plus(_abs(sim.usdcRaw), 20);
        Holdings memory before = _holdings();
        // And a trader who shorts 300 vETH just before, pushing the vAMM price down
        vm.prank(traders[0]);
        IPerpClearingHouse(clearingHouse)
            .openPosition(
                IPerpClearingHouse.OpenPositionParams(
                    eth.baseToken, true, true, 300e18, 0, block.timestamp, 0, bytes32(0)
                )
            );
        // Then the keeper's open reverts with Perp's own reason, and nothing moved
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TLRS"));
        ex.openBasis(COLLATERAL_RAW, perp, buy, _anyProfit(0));
        _assertUnchanged(before);
    }

    function test_RevertWhen_FrontRunSpotBuyBreaksTheSpotMinOut_NothingLost() public {
        // Given a simulated open that buys WETH with exactly 3000 USDC, min out 0.2% under the simulation
        IBasisExecutor.PerpOrder memory perp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V3, true, true, 3_000e6, 1);
        IBasisExecutor.Fills memory sim = _simulateOpen(COLLATERAL_RAW, perp, buy);
        buy.limitRaw = _minus(uint256(sim.spotRaw), 20);
        Holdings memory before = _holdings();
        // And a trader who buys 1.5M USDC of WETH on the same V3 pool just before
        _traderBuysWethOnV3(1_500_000e6);
        // Then the open reverts on the spot leg (the perp leg already filled is undone too)
        vm.prank(keeper);
        vm.expectPartialRevert(IBasisExecutor.SpotSlippage.selector);
        ex.openBasis(COLLATERAL_RAW, perp, buy, _anyProfit(0.02e18));
        _assertUnchanged(before);
    }

    function test_RevertWhen_FrontRunSpotBuyBreaksTheMinNetQuote_NothingLost() public {
        // Given an open whose only tight bound is the net quote (basis locked in), 1 USD under the simulation
        IBasisExecutor.PerpOrder memory perp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V3, true, false, 1e18, NO_MAX);
        IBasisExecutor.Fills memory sim = _simulateOpen(COLLATERAL_RAW, perp, buy);
        Holdings memory before = _holdings();
        _traderBuysWethOnV3(1_500_000e6);
        vm.prank(keeper);
        vm.expectPartialRevert(IBasisExecutor.ProfitBelowMin.selector);
        ex.openBasis(COLLATERAL_RAW, perp, buy, _bounds(0, sim.netQuote18 - 1e18));
        _assertUnchanged(before);
    }

    function _traderBuysWethOnV3(uint256 usdcInRaw) internal {
        vm.prank(traders[1]);
        IUniswapV3SwapRouter(v3Router)
            .exactInputSingle(
                IUniswapV3SwapRouter.ExactInputSingleParams(
                    usdc, eth.spotToken, eth.v3FeePips, traders[1], block.timestamp, usdcInRaw, 0, 0
                )
            );
    }

    // ------------------------------------------------------------------------------ bounds, exact
    function test_RevertWhen_PerpBoundIsOneWeiTooTight_OnBothPerpDirections() public {
        // short, exact base in: the minimum quote out is one wei above what Perp pays
        IBasisExecutor.PerpOrder memory shortPerp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V3, true, false, 1e18, NO_MAX);
        IBasisExecutor.Fills memory sim = _simulateOpen(COLLATERAL_RAW, shortPerp, buy);
        shortPerp.oppositeAmountBound18 = uint256(sim.perpQuote18) + 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TLRS"));
        ex.openBasis(COLLATERAL_RAW, shortPerp, buy, _anyProfit(0));
        // long, exact base out: the maximum quote in is one wei below what Perp charges
        IBasisExecutor.PerpOrder memory longPerp = _perp(eth.baseToken, false, false, 1e18, NO_MAX);
        IBasisExecutor.SpotOrder memory sell = _spot(V3, false, true, 1e18, 1);
        sim = _simulateOpen(COLLATERAL_RAW, longPerp, sell);
        longPerp.oppositeAmountBound18 = _abs(sim.perpQuote18) - 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TMRL"));
        ex.openBasis(COLLATERAL_RAW, longPerp, sell, _anyProfit(0));
    }

    function test_RevertWhen_SpotBoundIsOneUnitTooTight_OnBothSpotDirections() public {
        // buy, exact out: the maximum USDC in is one unit below the real cost. The router gets that
        // maximum as its bound (V2 refuses with its own reason) and as its exact allowance (V3's
        // pool callback cannot pull more: STF)
        IBasisExecutor.PerpOrder memory shortPerp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V2, true, false, 1e18, NO_MAX);
        buy.limitRaw = _abs(_simulateOpen(COLLATERAL_RAW, shortPerp, buy).usdcRaw) - 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("UniswapV2Router: EXCESSIVE_INPUT_AMOUNT"));
        ex.openBasis(COLLATERAL_RAW, shortPerp, buy, _anyProfit(0));
        buy = _spot(V3, true, false, 1e18, NO_MAX);
        buy.limitRaw = _abs(_simulateOpen(COLLATERAL_RAW, shortPerp, buy).usdcRaw) - 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("STF"));
        ex.openBasis(COLLATERAL_RAW, shortPerp, buy, _anyProfit(0));
        // sell, exact in: the minimum USDC out is one unit above the real proceeds
        IBasisExecutor.PerpOrder memory longPerp = _perp(eth.baseToken, false, false, 1e18, NO_MAX);
        IBasisExecutor.SpotOrder memory sell = _spot(V3, false, true, 1e18, 1);
        uint256 proceedsRaw = uint256(_simulateOpen(COLLATERAL_RAW, longPerp, sell).usdcRaw);
        sell.limitRaw = proceedsRaw + 1;
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.SpotSlippage.selector, proceedsRaw, proceedsRaw + 1));
        ex.openBasis(COLLATERAL_RAW, longPerp, sell, _anyProfit(0));
    }

    function test_RevertWhen_ResidualDeltaTooLarge() public {
        // short 1 vETH, buy only 0.98 WETH: 0.02 ETH unhedged, 0.01 allowed
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(IBasisExecutor.ResidualDeltaTooLarge.selector, int256(-0.02e18), 0.01e18)
        );
        ex.openBasis(
            COLLATERAL_RAW,
            _perp(eth.baseToken, true, true, 1e18, 1),
            _spot(V3, true, false, 0.98e18, NO_MAX),
            _anyProfit(0.01e18)
        );
    }

    function test_RevertWhen_NoCollateral_PerpsReasonBubblesUp() public {
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_NEFCI"));
        ex.openBasis(0, _perp(eth.baseToken, true, true, 1e18, 1), _spot(V3, true, false, 1e18, NO_MAX), _anyProfit(0));
    }

    function test_RevertWhen_NotOperatorOrExpired() public {
        IBasisExecutor.PerpOrder memory perp = _perp(eth.baseToken, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory buy = _spot(V3, true, false, 1e18, NO_MAX);
        vm.prank(traders[0]);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NotOperator.selector, traders[0]));
        ex.openBasis(COLLATERAL_RAW, perp, buy, _anyProfit(0));
        IBasisExecutor.TradeBounds memory late = _anyProfit(0);
        late.deadline = block.timestamp - 1;
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.Expired.selector, late.deadline, block.timestamp));
        ex.openBasis(COLLATERAL_RAW, perp, buy, late);
    }

    function test_WithdrawCollateralAfterClose_ReturnsUsdcToTheExecutor() public {
        vm.prank(keeper);
        ex.depositCollateral(COLLATERAL_RAW);
        vm.prank(admin);
        ex.withdrawCollateral(COLLATERAL_RAW / 2);
        assertEq(IPerpVaultViews(vault).getBalance(address(ex)), int256(COLLATERAL_RAW / 2));
    }
}
