// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {BasisExecutor} from "../src/BasisExecutor.sol";
import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {MintableERC20} from "../src/MintableERC20.sol";
import {EthRefuser, ReturnsFalseToken} from "./mocks/AwkwardTokens.sol";
import {BasisExecutorBase} from "./BasisExecutorBase.sol";

/// @notice The executor's trading logic, against the mocks of BasisExecutorBase. Roles and access:
///         BasisExecutorRoles.t.sol; every bound of every entry point: BasisExecutorBounds.t.sol;
///         a stranger changes nothing: BasisExecutorInvariant.t.sol.
contract BasisExecutorTest is BasisExecutorBase {
    // ------------------------------------------------------------------------------------ wiring
    function test_ConstructorReadsVaultAccountBalanceAndUsdcFromTheClearingHouse() public view {
        assertEq(ex.operator(), keeper);
        assertEq(ex.admin(), admin);
        assertEq(ex.treasury(), treasury);
        assertFalse(ex.paused());
        assertEq(ex.clearingHouse(), address(ch));
        assertEq(ex.vault(), address(vault));
        assertEq(ex.accountBalance(), address(ch));
        assertEq(ex.usdc(), address(usdc));
        assertEq(ex.uniswapV2Router(), address(v2Router));
        assertEq(ex.uniswapV3Router(), address(v3Router));
        IBasisExecutor.SpotMarket memory btc = ex.spotMarket(VBTC);
        assertEq(btc.spotToken, address(wbtc));
        assertEq(btc.spotScaleTo18, 1e10);
        assertEq(btc.v3FeePips, 3000);
    }

    // ------------------------------------------------------------------------------------ open
    function test_OpenShortPerpBuySpotOnV3_IsHedgedAndEmitsTheFills() public {
        // Given a flat account; when it shorts 1 vETH at 3000 (0.1% fee) and buys 1 WETH on V3 at 2995
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.BasisOpened(VETH, V3, -1e18, 2997e18, 1e18, -2995e6, 0, 2e18, -1e18);
        IBasisExecutor.Fills memory f = _openShortOneEth(V3);
        // Then the legs offset exactly and the fills are the protocols' numbers
        assertEq(f.perpBase18, -1e18);
        assertEq(f.perpQuote18, 2997e18);
        assertEq(f.spotRaw, 1e18);
        assertEq(f.usdcRaw, -2995e6);
        assertEq(f.residualBase18, 0);
        assertEq(f.netQuote18, 2e18); // 2997 received on the perp - 2995 paid for spot
        assertEq(f.positionBase18After, -1e18);
        assertEq(ch.positions(address(ex), VETH), -1e18);
        assertEq(usdc.balanceOf(address(ex)), usdcBefore - 2995e6);
        assertEq(v3Router.swapCount(), 1);
        assertEq(v3Router.lastFeePips(), 500);
        assertEq(v2Router.swapCount(), 0);
    }

    function test_OpenOnV2_TradesOnlyOnTheV2Router() public {
        IBasisExecutor.Fills memory f = _openShortOneEth(V2);
        assertEq(f.usdcRaw, -3000e6);
        assertEq(f.netQuote18, -3e18); // the perp fee is not covered at equal prices
        assertEq(v2Router.swapCount(), 1);
        assertEq(v3Router.swapCount(), 0);
    }

    function test_OpenWithDeposit_MovesCollateralIntoTheVaultFirst() public {
        uint256 vaultBefore = vault.balanceOf(address(ex));
        vm.prank(keeper);
        ex.openBasis(
            25_000e6, _perp(VETH, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0)
        );
        assertEq(vault.balanceOf(address(ex)), vaultBefore + 25_000e6);
    }

    function test_OpenEightDecimalSpot_ScalesTheSpotLegTo18Decimals() public {
        // short 0.5 vBTC, buy 0.5 WBTC (5e7 raw): residual zero only if 8-decimal units are scaled by 1e10
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.openBasis(
            0, _perp(VBTC, true, true, 0.5e18, 1), _spot(V2, true, false, 0.5e8, type(uint256).max), _bounds(0)
        );
        assertEq(f.spotRaw, 0.5e8);
        assertEq(f.residualBase18, 0);
        assertEq(f.usdcRaw, -30_000e6);
    }

    function test_OpenReverseBasis_LongPerpSellsSpotInventory() public {
        // long 2 vETH (exact base out) + sell 2 WETH (exact in) on V2
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.openBasis(
            0, _perp(VETH, false, false, 2e18, type(uint256).max), _spot(V2, false, true, 2e18, 1), _bounds(0)
        );
        assertEq(f.perpBase18, 2e18);
        assertEq(f.perpQuote18, -6006e18); // 6000 + 0.1% fee paid
        assertEq(f.spotRaw, -2e18);
        assertEq(f.usdcRaw, 6000e6);
        assertEq(f.netQuote18, -6e18);
        assertEq(f.positionBase18After, 2e18);
    }

    function test_OpenPerpOnly_SkipsTheSpotLegWhenItsAmountIsZero() public {
        vm.prank(keeper);
        IBasisExecutor.Fills memory f =
            ex.openBasis(0, _perp(VETH, true, true, 0.01e18, 1), _spot(V3, true, true, 0, 0), _bounds(0.01e18));
        assertEq(f.spotRaw, 0);
        assertEq(f.usdcRaw, 0);
        assertEq(f.residualBase18, -0.01e18);
        assertEq(v3Router.swapCount() + v2Router.swapCount(), 0);
    }

    // ------------------------------------------------------------------------------ resize, close
    function test_ResizeDownThenUp_TracksThePositionAndEmits() public {
        vm.prank(keeper);
        ex.openBasis(0, _perp(VETH, true, true, 3e18, 1), _spot(V3, true, false, 3e18, type(uint256).max), _bounds(0));
        // When it buys back 1 vETH (exact base out) and sells 1 WETH
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.BasisResized(VETH, V2, 1e18, -3003e18, -1e18, 3000e6, 0, -3e18, -2e18);
        vm.prank(keeper);
        IBasisExecutor.Fills memory down = ex.resizeBasis(
            0, _perp(VETH, false, false, 1e18, type(uint256).max), _spot(V2, false, true, 1e18, 1), _bounds(0)
        );
        assertEq(down.positionBase18After, -2e18);
        // And grows it again by 0.5
        vm.prank(keeper);
        IBasisExecutor.Fills memory up = ex.resizeBasis(
            0, _perp(VETH, true, true, 0.5e18, 1), _spot(V3, true, false, 0.5e18, type(uint256).max), _bounds(0)
        );
        assertEq(up.positionBase18After, -2.5e18);
        assertEq(ch.positions(address(ex), VETH), -2.5e18);
    }

    function test_CloseBasis_FlattensThePerpAndSellsTheSpot() public {
        _openShortOneEth(V3);
        uint256 wethBefore = weth.balanceOf(address(ex));
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.BasisClosed(VETH, V3, 1e18, -3003e18, -1e18, 2995e6, 0, -8e18, 0);
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.closeBasis(
            IBasisExecutor.PerpCloseOrder(VETH, type(uint256).max, 0), _spot(V3, false, true, 1e18, 1), _bounds(0)
        );
        assertEq(f.positionBase18After, 0);
        assertEq(ch.positions(address(ex), VETH), 0);
        assertEq(weth.balanceOf(address(ex)), wethBefore - 1e18);
        // open +2, close -8: the round trip's trading PnL is the sum of the net quotes
        assertEq(f.netQuote18 + 2e18, -6e18);
    }

    function test_CloseLongBasis_SellsBaseAndBuysSpotBack() public {
        vm.prank(keeper);
        ex.openBasis(0, _perp(VETH, false, false, 1e18, type(uint256).max), _spot(V2, false, true, 1e18, 1), _bounds(0));
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.closeBasis(
            IBasisExecutor.PerpCloseOrder(VETH, 1, 0), _spot(V2, true, false, 1e18, type(uint256).max), _bounds(0)
        );
        assertEq(f.perpBase18, -1e18);
        assertEq(f.perpQuote18, 2997e18);
        assertEq(f.spotRaw, 1e18);
        assertEq(f.positionBase18After, 0);
    }

    // ------------------------------------------------------------------------------ collateral, admin
    function test_DepositAndWithdrawCollateral_MoveExactAmounts() public {
        uint256 before = usdc.balanceOf(address(ex));
        vm.prank(keeper);
        ex.depositCollateral(1234e6);
        assertEq(usdc.balanceOf(address(ex)), before - 1234e6);
        vm.prank(admin);
        ex.withdrawCollateral(101_234e6);
        assertEq(usdc.balanceOf(address(ex)), before + 100_000e6);
        assertEq(vault.balanceOf(address(ex)), 0);
        assertEq(_standingAllowances(), 0);
    }

    function test_WithdrawTokenAndEth_SendToTheTreasury() public {
        vm.deal(address(ex), 1 ether);
        vm.startPrank(admin);
        ex.withdrawToken(address(weth), 3e18);
        ex.withdrawEth(0.4 ether);
        vm.stopPrank();
        assertEq(weth.balanceOf(treasury), 3e18);
        assertEq(treasury.balance, 0.4 ether);
        assertEq(address(ex).balance, 0.6 ether);
        assertEq(weth.balanceOf(admin), 0);
    }

    function test_SetMarketWithZeroSpot_RemovesTheMarket() public {
        vm.prank(admin);
        ex.setMarket(VETH, address(0), 0);
        assertEq(ex.spotMarket(VETH).spotToken, address(0));
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, VETH));
        ex.openBasis(0, _perp(VETH, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0));
    }

    // ------------------------------------------------------------------------------ awkward tokens
    function test_NoBoolToken_TradesApprovesAndWithdraws() public {
        // A USDT-style 6-decimal spot token: the routers and the executor's own calls accept no return value
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.openBasis(
            0, _perp(VSOL, true, true, 10e18, 1), _spot(V2, true, false, 10e6, type(uint256).max), _bounds(0)
        );
        assertEq(f.residualBase18, 0);
        assertEq(f.usdcRaw, -1500e6);
        // Its approval was reset to zero after the exact-output swap, so the next one (USDT
        // refuses non-zero to non-zero) goes through too
        assertEq(sol.allowance(address(ex), address(v2Router)), 0);
        vm.prank(keeper);
        ex.resizeBasis(
            0, _perp(VSOL, true, true, 10e18, 1), _spot(V2, true, false, 10e6, type(uint256).max), _bounds(0)
        );
        vm.prank(admin);
        ex.withdrawToken(address(sol), 5e6);
        assertEq(sol.balanceOf(treasury), 5e6);
        assertEq(_standingAllowances(), 0);
    }

    function test_RevertWhen_FeeOnTransferSpotLeavesAResidual() public {
        // Buying exactly 100 FOT delivers 99: the measured balance change exposes the 1 missing
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.ResidualDeltaTooLarge.selector, int256(-1e18), 0));
        ex.openBasis(
            0, _perp(VFOT, true, true, 100e18, 1), _spot(V3, true, false, 100e18, type(uint256).max), _bounds(0)
        );
    }

    function test_RevertWhen_FeeOnTransferSpotMissesTheMinOut() public {
        // 100 USDC in quotes 100 FOT out, but 99 arrive: the min out is checked on what arrived
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.SpotSlippage.selector, 99e18, 100e18));
        ex.openBasis(0, _perp(VFOT, true, true, 100e18, 1), _spot(V3, true, true, 100e6, 100e18), _bounds(2e18));
    }

    function test_RevertWhen_TokenReturnsFalse() public {
        ReturnsFalseToken bad = new ReturnsFalseToken();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.TokenCallFailed.selector, address(bad)));
        ex.withdrawToken(address(bad), 1);
    }

    function test_RevertWhen_WithdrawTokenHasNoCode() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.TokenCallFailed.selector, address(0xDEAD)));
        ex.withdrawToken(address(0xDEAD), 1);
    }

    // ------------------------------------------------------------------------------ reverts: tokens
    function test_RevertWhen_MarketIsNotRegistered() public {
        address vDoge = address(0xD06E);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, vDoge));
        ex.openBasis(0, _perp(vDoge, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0));
    }

    function test_RevertWhen_SpotTokenIsUsdcOrHasMoreThan18Decimals() public {
        MintableERC20 tooFine = new MintableERC20("Too fine", "TF", 19);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, address(usdc)));
        ex.setMarket(VETH, address(usdc), 500);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, address(tooFine)));
        ex.setMarket(VETH, address(tooFine), 500);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, address(0)));
        ex.setMarket(address(0), address(weth), 500);
        vm.stopPrank();
    }

    function test_RevertWhen_PerpReverts_TheReasonBubblesUnchanged() public {
        ch.forceRevert("CH_NEFCI");
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_NEFCI"));
        ex.openBasis(0, _perp(VETH, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0));
    }

    function test_RevertWhen_VaultRefusesAWithdrawal_TheReasonBubblesUnchanged() public {
        vm.prank(admin);
        vm.expectRevert(bytes("V_NEFC"));
        ex.withdrawCollateral(100_000e6 + 1);
    }

    function test_RevertWhen_TreasuryRefusesEth() public {
        EthRefuser refuser = new EthRefuser();
        BasisExecutor refusing =
            new BasisExecutor(admin, address(refuser), keeper, address(ch), address(v2Router), address(v3Router));
        vm.deal(address(refusing), 1 ether);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.EthTransferFailed.selector, address(refuser), 1 ether));
        refusing.withdrawEth(1 ether);
    }

    // ------------------------------------------------------------------------------ fuzz
    /// @dev Market i: (perp base, spot token, spot scale to 18).
    function _market(uint256 i) internal view returns (address baseToken, MintableERC20 spotToken, uint256 scale) {
        i = i % 3;
        if (i == 0) return (VETH, weth, 1);
        if (i == 1) return (VBTC, wbtc, 1e10);
        return (VSOL, MintableERC20(address(sol)), 1e12);
    }

    function testFuzz_OpenIsHedgedForAnySizeDirectionVenueAndDecimals(
        uint256 sizeBase18,
        bool shortPerp,
        bool viaV3,
        uint8 marketIndex
    ) public {
        (address baseToken, MintableERC20 spotToken, uint256 scale) = _market(marketIndex);
        sizeBase18 = bound(sizeBase18, 1e13, 20e18);
        uint256 spotBefore = spotToken.balanceOf(address(ex));
        uint256 usdcBefore = usdc.balanceOf(address(ex));

        IBasisExecutor.Fills memory f = _openHedged(baseToken, scale, sizeBase18, shortPerp, viaV3 ? V3 : V2);

        int256 sign = shortPerp ? int256(1) : int256(-1);
        assertEq(f.perpBase18, -sign * int256(sizeBase18));
        assertEq(f.spotRaw, sign * int256(sizeBase18 / scale));
        assertEq(int256(spotToken.balanceOf(address(ex))) - int256(spotBefore), f.spotRaw);
        assertEq(int256(usdc.balanceOf(address(ex))) - int256(usdcBefore), f.usdcRaw);
        assertEq(f.residualBase18, f.perpBase18 + f.spotRaw * int256(scale));
        assertLt(f.residualBase18 >= 0 ? f.residualBase18 : -f.residualBase18, int256(scale));
        assertEq(f.netQuote18, f.perpQuote18 + f.usdcRaw * int256(USDC_SCALE_TO_18));
        assertEq(f.positionBase18After, ch.positions(address(ex), baseToken));
        assertEq((viaV3 ? v3Router : v2Router).swapCount(), 1);
    }

    /// @dev Short perp + buy spot, or long perp + sell spot, both exact in base units; the spot
    ///      amount is rounded down to raw units, so the residual is the dust below one raw unit.
    function _openHedged(
        address baseToken,
        uint256 scale,
        uint256 sizeBase18,
        bool shortPerp,
        IBasisExecutor.SpotVenue venue
    ) internal returns (IBasisExecutor.Fills memory) {
        uint256 spotAmountRaw = sizeBase18 / scale;
        IBasisExecutor.PerpOrder memory perp = shortPerp
            ? _perp(baseToken, true, true, sizeBase18, 1)  // sell exact base
            : _perp(baseToken, false, false, sizeBase18, type(uint256).max); // buy exact base
        IBasisExecutor.SpotOrder memory spot = shortPerp
            ? _spot(venue, true, false, spotAmountRaw, type(uint256).max)  // buy exact spot
            : _spot(venue, false, true, spotAmountRaw, 1); // sell exact spot
        vm.prank(keeper);
        return ex.openBasis(0, perp, spot, _bounds(scale - 1));
    }

    function testFuzz_ResidualBoundIsEnforcedExactly(uint256 perpBase18, uint256 spotBase18, uint256 maxResidualBase18)
        public
    {
        perpBase18 = bound(perpBase18, 1, 100e18);
        spotBase18 = bound(spotBase18, 1, 100e18);
        maxResidualBase18 = bound(maxResidualBase18, 0, 100e18);
        int256 residual = int256(spotBase18) - int256(perpBase18);
        uint256 residualAbs = residual >= 0 ? uint256(residual) : uint256(-residual);
        if (residualAbs > maxResidualBase18) {
            vm.expectRevert(
                abi.encodeWithSelector(IBasisExecutor.ResidualDeltaTooLarge.selector, residual, maxResidualBase18)
            );
        }
        vm.prank(keeper);
        IBasisExecutor.Fills memory f = ex.openBasis(
            0,
            _perp(VETH, true, true, perpBase18, 1),
            _spot(V2, true, false, spotBase18, type(uint256).max),
            _bounds(maxResidualBase18)
        );
        if (residualAbs <= maxResidualBase18) assertEq(f.residualBase18, residual);
    }

    function testFuzz_SpotMinOutIsEnforcedExactly(uint256 usdcInRaw, uint256 minWethOutRaw) public {
        usdcInRaw = bound(usdcInRaw, 1e6, 300_000e6);
        uint256 wethOutRaw = v3Router.quoteOut(address(usdc), address(weth), usdcInRaw);
        minWethOutRaw = bound(minWethOutRaw, 1, wethOutRaw * 2);
        if (wethOutRaw < minWethOutRaw) {
            vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.SpotSlippage.selector, wethOutRaw, minWethOutRaw));
        }
        vm.prank(keeper);
        ex.openBasis(
            0, _perp(VETH, true, true, wethOutRaw, 1), _spot(V3, true, true, usdcInRaw, minWethOutRaw), _bounds(0)
        );
    }

    function testFuzz_SpotMaxInIsEnforcedExactly(uint256 wethOutRaw, uint256 maxUsdcInRaw) public {
        wethOutRaw = bound(wethOutRaw, 1e12, 100e18);
        uint256 usdcInRaw = v2Router.quoteIn(address(usdc), address(weth), wethOutRaw);
        maxUsdcInRaw = bound(maxUsdcInRaw, 0, usdcInRaw * 2);
        if (usdcInRaw > maxUsdcInRaw) {
            // the router gets exactly the maximum (as its bound and its allowance) and refuses first
            vm.expectRevert(bytes("UniswapV2Router: EXCESSIVE_INPUT_AMOUNT"));
        }
        vm.prank(keeper);
        ex.openBasis(
            0, _perp(VETH, true, true, wethOutRaw, 1), _spot(V2, true, false, wethOutRaw, maxUsdcInRaw), _bounds(0)
        );
    }

    function testFuzz_RoundTripNetQuoteIsTheUsdcAndPerpPnl(uint256 sizeBase18, bool shortPerp) public {
        sizeBase18 = bound(sizeBase18, 1e15, 50e18);
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        uint256 wethBefore = weth.balanceOf(address(ex));
        vm.startPrank(keeper);
        IBasisExecutor.Fills memory opened = shortPerp
            ? ex.openBasis(
                0,
                _perp(VETH, true, true, sizeBase18, 1),
                _spot(V3, true, false, sizeBase18, type(uint256).max),
                _bounds(0)
            )
            : ex.openBasis(
                0,
                _perp(VETH, false, false, sizeBase18, type(uint256).max),
                _spot(V3, false, true, sizeBase18, 1),
                _bounds(0)
            );
        IBasisExecutor.Fills memory closed = shortPerp
            ? ex.closeBasis(
                IBasisExecutor.PerpCloseOrder(VETH, type(uint256).max, 0),
                _spot(V3, false, true, sizeBase18, 1),
                _bounds(0)
            )
            : ex.closeBasis(
                IBasisExecutor.PerpCloseOrder(VETH, 1, 0),
                _spot(V3, true, false, sizeBase18, type(uint256).max),
                _bounds(0)
            );
        vm.stopPrank();
        assertEq(closed.positionBase18After, 0);
        assertEq(opened.perpBase18 + closed.perpBase18, 0);
        assertEq(weth.balanceOf(address(ex)), wethBefore);
        // USDC moved only on the spot legs; the perp legs' quote is the Perp-side PnL
        assertEq(int256(usdc.balanceOf(address(ex))) - int256(usdcBefore), opened.usdcRaw + closed.usdcRaw);
        int256 perpPnl18 = opened.perpQuote18 + closed.perpQuote18;
        assertEq(opened.netQuote18 + closed.netQuote18, perpPnl18 + (opened.usdcRaw + closed.usdcRaw) * 1e12);
        assertLt(opened.netQuote18 + closed.netQuote18, 0); // fees and the V3 spread, no basis: a loss
    }
}
