// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "forge-std/interfaces/IERC20.sol";
import {IBasisExecutor} from "../../src/interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "../../src/interfaces/IPairExecutor.sol";
import {DevnetFork, IPerpVaultViews} from "./DevnetFork.sol";

/// @notice The pair entry points against the real Perp v2 (Curie) contracts on the devnet: long vETH
///         and short vBTC in one transaction, each leg's bound, the deadline and the net-exposure
///         bound set from a simulation at zero slack, so one wei tighter on any of them reverts and
///         leaves everything as it was.
contract BasisExecutorPairForkTest is DevnetFork {
    uint256 internal constant COLLATERAL_RAW = 20_000e6;
    uint256 internal constant ETH_BASE18 = 2e18; // ~6,000 USD
    uint256 internal constant BTC_BASE18 = 0.1e18; // ~6,000 USD
    uint256 internal constant BETA18 = 1e18;

    /// @dev Long 2 vETH (Q2B, exact base out: max quote in) and short 0.1 vBTC (B2Q, exact base in:
    ///      min quote out), bounds as given.
    function _legs(uint256 boundA18, uint256 boundB18)
        internal
        view
        returns (IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB)
    {
        legA = _perp(eth.baseToken, false, false, ETH_BASE18, boundA18);
        legB = _perp(btc.baseToken, true, true, BTC_BASE18, boundB18);
    }

    function _pairBounds(uint256 maxNetExposureQuote18) internal view returns (IPairExecutor.PairBounds memory) {
        return IPairExecutor.PairBounds(block.timestamp + 120, BETA18, maxNetExposureQuote18);
    }

    function _simulateOpenPair() internal returns (IPairExecutor.PairFills memory fills) {
        (IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB) = _legs(NO_MAX, 1);
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        fills = ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(NO_MAX));
        vm.revertToState(snapshot);
    }

    function _exactOpen()
        internal
        returns (
            IPairExecutor.PairFills memory sim,
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB
        )
    {
        sim = _simulateOpenPair();
        (legA, legB) = _legs(_abs(sim.perpQuote18A), uint256(sim.perpQuote18B));
    }

    /// @dev The documented formula, from the fills.
    function _netExposure(IPairExecutor.PairFills memory f) internal pure returns (int256) {
        int256 exposureA = f.positionBase18AfterA * int256(_abs(f.perpQuote18A)) / int256(_abs(f.perpBase18A));
        int256 exposureB = f.positionBase18AfterB * int256(_abs(f.perpQuote18B)) / int256(_abs(f.perpBase18B));
        return exposureA + exposureB * int256(BETA18) / 1e18;
    }

    struct PairHoldings {
        uint256 usdcRaw;
        int256 vaultUsdcRaw;
        int256 ethPositionBase18;
        int256 btcPositionBase18;
    }

    function _pairHoldings() internal view returns (PairHoldings memory h) {
        h.usdcRaw = IERC20(usdc).balanceOf(address(ex));
        h.vaultUsdcRaw = IPerpVaultViews(vault).getBalance(address(ex));
        h.ethPositionBase18 = _position(address(ex), eth.baseToken);
        h.btcPositionBase18 = _position(address(ex), btc.baseToken);
    }

    function _assertPairUnchanged(PairHoldings memory before) internal view {
        PairHoldings memory nowHeld = _pairHoldings();
        assertEq(nowHeld.usdcRaw, before.usdcRaw, "USDC moved");
        assertEq(nowHeld.vaultUsdcRaw, before.vaultUsdcRaw, "Vault balance moved");
        assertEq(nowHeld.ethPositionBase18, before.ethPositionBase18, "vETH position moved");
        assertEq(nowHeld.btcPositionBase18, before.btcPositionBase18, "vBTC position moved");
    }

    // ------------------------------------------------------------------------------ open + close
    function test_OpenPairThenClose_ExactBoundsHold_BothLegsInOneTransaction() public {
        // Given the simulated fills of the pair, and every bound set to them exactly
        (
            IPairExecutor.PairFills memory sim,
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB
        ) = _exactOpen();
        uint256 net = _abs(sim.netExposureQuote18);
        uint256 usdcBefore = IERC20(usdc).balanceOf(address(ex));

        // When the keeper opens the pair
        vm.prank(keeper);
        IPairExecutor.PairFills memory opened = ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(net));

        // Then both legs filled as simulated: long exactly 2 vETH, short exactly 0.1 vBTC, about
        // 6,000 USD each, and the net exposure is the documented formula
        assertEq(opened.perpBase18A, int256(ETH_BASE18));
        assertEq(opened.perpBase18B, -int256(BTC_BASE18));
        assertEq(opened.perpQuote18A, sim.perpQuote18A);
        assertEq(opened.perpQuote18B, sim.perpQuote18B);
        assertApproxEqRel(_abs(opened.perpQuote18A), 6_000e18, 0.05e18);
        assertApproxEqRel(uint256(opened.perpQuote18B), 6_000e18, 0.05e18);
        assertEq(opened.netExposureQuote18, _netExposure(opened));
        assertEq(_position(address(ex), eth.baseToken), int256(ETH_BASE18));
        assertEq(_position(address(ex), btc.baseToken), -int256(BTC_BASE18));
        assertEq(IERC20(usdc).balanceOf(address(ex)), usdcBefore - COLLATERAL_RAW);
        assertEq(IPerpVaultViews(vault).getBalance(address(ex)), int256(COLLATERAL_RAW));

        // Given the simulated close, its bounds exact
        IBasisExecutor.PerpCloseOrder memory closeA = IBasisExecutor.PerpCloseOrder(eth.baseToken, 1, 0);
        IBasisExecutor.PerpCloseOrder memory closeB = IBasisExecutor.PerpCloseOrder(btc.baseToken, NO_MAX, 0);
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        IPairExecutor.PairFills memory simClose = ex.closePair(closeA, closeB, _pairBounds(0));
        vm.revertToState(snapshot);
        closeA.oppositeAmountBound18 = uint256(simClose.perpQuote18A); // min quote out selling vETH
        closeB.oppositeAmountBound18 = _abs(simClose.perpQuote18B); // max quote in buying vBTC back

        // When it closes with a zero net-exposure bound
        vm.prank(keeper);
        IPairExecutor.PairFills memory closed = ex.closePair(closeA, closeB, _pairBounds(0));

        // Then both markets are flat, as simulated, and the round trip cost fees and impact
        assertEq(closed.perpBase18A, -int256(ETH_BASE18));
        assertEq(closed.perpBase18B, int256(BTC_BASE18));
        assertEq(closed.perpQuote18A, simClose.perpQuote18A);
        assertEq(closed.perpQuote18B, simClose.perpQuote18B);
        assertEq(closed.netExposureQuote18, 0);
        assertEq(_position(address(ex), eth.baseToken), 0);
        assertEq(_position(address(ex), btc.baseToken), 0);
        int256 roundTrip18 = opened.perpQuote18A + opened.perpQuote18B + closed.perpQuote18A + closed.perpQuote18B;
        assertLt(roundTrip18, 0);
        assertGt(roundTrip18, -50e18); // 0.1% Perp fee x 4 legs of ~6,000 USD, plus a little impact
    }

    // ------------------------------------------------------------------------------ bounds, exact
    function test_RevertWhen_OpenPairLegBoundsOneWeiTooTight_NothingChanges() public {
        (
            IPairExecutor.PairFills memory sim,
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB
        ) = _exactOpen();
        IPairExecutor.PairBounds memory bounds = _pairBounds(_abs(sim.netExposureQuote18));
        PairHoldings memory before = _pairHoldings();
        // leg A: max quote in one wei under what Perp charges for 2 vETH
        legA.oppositeAmountBound18 -= 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TMRL"));
        ex.openPair(COLLATERAL_RAW, legA, legB, bounds);
        _assertPairUnchanged(before);
        // leg B (after leg A filled in the same transaction): min quote out one wei over Perp's pay
        legA.oppositeAmountBound18 += 1;
        legB.oppositeAmountBound18 += 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TLRS"));
        ex.openPair(COLLATERAL_RAW, legA, legB, bounds);
        _assertPairUnchanged(before);
    }

    function test_RevertWhen_OpenPairNetExposureOneWeiTooTight_NothingChanges() public {
        (
            IPairExecutor.PairFills memory sim,
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB
        ) = _exactOpen();
        assertTrue(sim.netExposureQuote18 != 0);
        uint256 net = _abs(sim.netExposureQuote18);
        PairHoldings memory before = _pairHoldings();
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(IPairExecutor.NetExposureTooLarge.selector, sim.netExposureQuote18, net - 1)
        );
        ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(net - 1));
        _assertPairUnchanged(before);
    }

    function test_RevertWhen_ClosePairLegBoundsOneWeiTooTight_NothingChanges() public {
        (, IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB) = _exactOpen();
        vm.prank(keeper);
        ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(NO_MAX));
        IBasisExecutor.PerpCloseOrder memory closeA = IBasisExecutor.PerpCloseOrder(eth.baseToken, 1, 0);
        IBasisExecutor.PerpCloseOrder memory closeB = IBasisExecutor.PerpCloseOrder(btc.baseToken, NO_MAX, 0);
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        IPairExecutor.PairFills memory sim = ex.closePair(closeA, closeB, _pairBounds(0));
        vm.revertToState(snapshot);
        PairHoldings memory before = _pairHoldings();
        // leg A: min quote out selling vETH, one wei over
        closeA.oppositeAmountBound18 = uint256(sim.perpQuote18A) + 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TLRS"));
        ex.closePair(closeA, closeB, _pairBounds(0));
        _assertPairUnchanged(before);
        // leg B: max quote in buying vBTC back, one wei under
        closeA.oppositeAmountBound18 = uint256(sim.perpQuote18A);
        closeB.oppositeAmountBound18 = _abs(sim.perpQuote18B) - 1;
        vm.prank(keeper);
        vm.expectRevert(bytes("CH_TMRL"));
        ex.closePair(closeA, closeB, _pairBounds(0));
        _assertPairUnchanged(before);
    }

    function test_RevertWhen_PairExpiredPausedOrNotOperator_NothingChanges() public {
        (, IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB) = _exactOpen();
        PairHoldings memory before = _pairHoldings();
        IPairExecutor.PairBounds memory late = _pairBounds(NO_MAX);
        late.deadline = block.timestamp - 1;
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.Expired.selector, late.deadline, block.timestamp));
        ex.openPair(COLLATERAL_RAW, legA, legB, late);
        vm.prank(traders[0]);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NotOperator.selector, traders[0]));
        ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(NO_MAX));
        vm.prank(admin);
        ex.setPaused(true);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.IsPaused.selector));
        ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(NO_MAX));
        _assertPairUnchanged(before);
    }

    function test_RevertWhen_SetMarketWhileAPairHoldsIt() public {
        (, IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB) = _exactOpen();
        vm.prank(keeper);
        ex.openPair(COLLATERAL_RAW, legA, legB, _pairBounds(NO_MAX));
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IBasisExecutor.MarketHasPosition.selector, btc.baseToken, -int256(BTC_BASE18))
        );
        ex.setMarket(btc.baseToken, address(0), 0);
    }
}
