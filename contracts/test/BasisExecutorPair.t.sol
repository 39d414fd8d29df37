// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "../src/interfaces/IPairExecutor.sol";
import {BasisExecutorBase} from "./BasisExecutorBase.sol";

/// @notice The pair entry points (openPair, resizePair, closePair) against the mocks: every bound
///         gets one test_RevertWhen_ per entry point, from a pair that passes (test_GoodPairPasses_*)
///         with exactly one field moved past its bound; a reverted pair changes nothing.
///         The pair: long 20 vETH (3000, Q2B exact base out) and short 1 vBTC (60,000, B2Q exact base
///         in), 0.1% Perp fee, dollar-neutral (hedge ratio 1): leg A pays 60,060 quote, leg B gets
///         59,940, so the exposures at the fee-inclusive fill prices are +60,060 and -59,940 USD and
///         the net exposure is +120 USD.
contract BasisExecutorPairTest is BasisExecutorBase {
    enum Entry {
        Open,
        Resize,
        Close
    }

    struct Pair {
        address baseTokenA;
        uint256 boundA18;
        address baseTokenB;
        uint256 boundB18;
        uint160 closeLimitX96; // close only: a price limit closes half of each leg (the mock)
        IPairExecutor.PairBounds bounds;
    }

    address internal constant VDOGE = address(0xD06E); // never registered
    uint256 internal constant ONE = 1e18;
    int256 internal constant NET_OPEN18 = 120e18; // 60,060 - 59,940

    function _good(Entry e) internal returns (Pair memory p) {
        if (e != Entry.Open) _openGoodPair(); // resize and close need the pair
        p.baseTokenA = VETH;
        p.baseTokenB = VBTC;
        if (e == Entry.Close) {
            p.boundA18 = 59_940e18; // closing the long: min quote out
            p.boundB18 = 60_060e18; // closing the short: max quote in
            p.bounds = IPairExecutor.PairBounds(block.timestamp + 60, ONE, 0);
        } else {
            p.boundA18 = 60_060e18; // long: max quote in
            p.boundB18 = 59_940e18; // short: min quote out
            // resize doubles both legs at the same prices: the net doubles too
            p.bounds = IPairExecutor.PairBounds(
                block.timestamp + 60, ONE, uint256(e == Entry.Open ? NET_OPEN18 : 2 * NET_OPEN18)
            );
        }
    }

    function _openGoodPair() internal {
        Pair memory p = _good(Entry.Open);
        _send(Entry.Open, p, 0);
    }

    function _send(Entry e, Pair memory p, uint256 depositUsdcRaw) internal returns (IPairExecutor.PairFills memory) {
        vm.prank(keeper);
        if (e == Entry.Close) {
            return ex.closePair(
                IBasisExecutor.PerpCloseOrder(p.baseTokenA, p.boundA18, p.closeLimitX96),
                IBasisExecutor.PerpCloseOrder(p.baseTokenB, p.boundB18, p.closeLimitX96),
                p.bounds
            );
        }
        IBasisExecutor.PerpOrder memory legA = _perp(p.baseTokenA, false, false, 20e18, p.boundA18);
        IBasisExecutor.PerpOrder memory legB = _perp(p.baseTokenB, true, true, 1e18, p.boundB18);
        return e == Entry.Open
            ? ex.openPair(depositUsdcRaw, legA, legB, p.bounds)
            : ex.resizePair(depositUsdcRaw, legA, legB, p.bounds);
    }

    /// @dev A pair that reverts changes nothing (the caller checks the reason first).
    function _sendExpectingNoChange(Entry e, Pair memory p, bytes memory revertData) internal {
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        uint256 vaultBefore = vault.balanceOf(address(ex));
        int256 ethBefore = ch.positions(address(ex), VETH);
        int256 btcBefore = ch.positions(address(ex), VBTC);
        vm.expectRevert(revertData);
        _send(e, p, 1_000e6);
        assertEq(usdc.balanceOf(address(ex)), usdcBefore);
        assertEq(vault.balanceOf(address(ex)), vaultBefore);
        assertEq(ch.positions(address(ex), VETH), ethBefore);
        assertEq(ch.positions(address(ex), VBTC), btcBefore);
        assertEq(_standingAllowances(), 0);
    }

    // ------------------------------------------------------------------------------ the good pairs
    function test_GoodPairPasses_Open() public {
        Pair memory p = _good(Entry.Open);
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        uint256 vaultBefore = vault.balanceOf(address(ex));
        vm.expectEmit(address(ex));
        emit IBasisExecutor.CollateralDeposited(keeper, 5_000e6);
        vm.expectEmit(true, true, false, true, address(ex));
        emit IPairExecutor.PairOpened(VETH, VBTC, 20e18, -60_060e18, -1e18, 59_940e18, NET_OPEN18, 20e18, -1e18);
        IPairExecutor.PairFills memory f = _send(Entry.Open, p, 5_000e6);
        assertEq(f.perpBase18A, 20e18);
        assertEq(f.perpQuote18A, -60_060e18);
        assertEq(f.positionBase18AfterA, 20e18);
        assertEq(f.perpBase18B, -1e18);
        assertEq(f.perpQuote18B, 59_940e18);
        assertEq(f.positionBase18AfterB, -1e18);
        assertEq(f.netExposureQuote18, NET_OPEN18);
        assertEq(ch.positions(address(ex), VETH), 20e18);
        assertEq(ch.positions(address(ex), VBTC), -1e18);
        // the deposit moved exactly its amount and left no allowance
        assertEq(usdc.balanceOf(address(ex)), usdcBefore - 5_000e6);
        assertEq(vault.balanceOf(address(ex)), vaultBefore + 5_000e6);
        assertEq(_standingAllowances(), 0);
    }

    function test_GoodPairPasses_Resize() public {
        Pair memory p = _good(Entry.Resize);
        vm.expectEmit(true, true, false, true, address(ex));
        emit IPairExecutor.PairResized(VETH, VBTC, 20e18, -60_060e18, -1e18, 59_940e18, 2 * NET_OPEN18, 40e18, -2e18);
        IPairExecutor.PairFills memory f = _send(Entry.Resize, p, 0);
        assertEq(f.positionBase18AfterA, 40e18);
        assertEq(f.positionBase18AfterB, -2e18);
        assertEq(f.netExposureQuote18, 2 * NET_OPEN18);
    }

    function test_GoodPairPasses_Close() public {
        Pair memory p = _good(Entry.Close);
        vm.expectEmit(true, true, false, true, address(ex));
        emit IPairExecutor.PairClosed(VETH, VBTC, -20e18, 59_940e18, 1e18, -60_060e18, 0, 0, 0);
        IPairExecutor.PairFills memory f = _send(Entry.Close, p, 0);
        assertEq(f.netExposureQuote18, 0);
        assertEq(ch.positions(address(ex), VETH), 0);
        assertEq(ch.positions(address(ex), VBTC), 0);
    }

    /// @dev A close stopped at a price limit on both legs (half of each): the half left over is
    ///      still dollar-neutral up to the fees, +10 vETH at 2997 and -0.5 vBTC at 60,060.
    function test_PartialClose_LeavesTheExposureItReports() public {
        Pair memory p = _good(Entry.Close);
        p.closeLimitX96 = 1;
        p.boundA18 = 29_970e18; // min quote out for the half
        p.bounds.maxNetExposureQuote18 = 60e18;
        IPairExecutor.PairFills memory f = _send(Entry.Close, p, 0);
        assertEq(f.positionBase18AfterA, 10e18);
        assertEq(f.positionBase18AfterB, -0.5e18);
        assertEq(f.netExposureQuote18, 29_970e18 - 30_030e18);
    }

    // ------------------------------------------------------------------------------ roles, pause, deadline
    function testFuzz_RevertWhen_NotOperator_Pair(address caller, uint8 entry) public {
        vm.assume(caller != keeper);
        Entry e = Entry(bound(entry, 0, 2));
        Pair memory p = _good(e);
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NotOperator.selector, caller));
        if (e == Entry.Close) {
            ex.closePair(
                IBasisExecutor.PerpCloseOrder(VETH, p.boundA18, 0),
                IBasisExecutor.PerpCloseOrder(VBTC, p.boundB18, 0),
                p.bounds
            );
        } else if (e == Entry.Open) {
            ex.openPair(
                1_000e6,
                _perp(VETH, false, false, 20e18, p.boundA18),
                _perp(VBTC, true, true, 1e18, p.boundB18),
                p.bounds
            );
        } else {
            ex.resizePair(
                1_000e6,
                _perp(VETH, false, false, 20e18, p.boundA18),
                _perp(VBTC, true, true, 1e18, p.boundB18),
                p.bounds
            );
        }
        assertEq(usdc.balanceOf(address(ex)), usdcBefore);
    }

    function _checkPaused(Entry e) internal {
        Pair memory p = _good(e);
        vm.prank(admin);
        ex.setPaused(true);
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IBasisExecutor.IsPaused.selector));
    }

    function test_RevertWhen_Paused_OpenPair() public {
        _checkPaused(Entry.Open);
    }

    function test_RevertWhen_Paused_ResizePair() public {
        _checkPaused(Entry.Resize);
    }

    function test_RevertWhen_Paused_ClosePair() public {
        _checkPaused(Entry.Close);
    }

    function _checkExpired(Entry e) internal {
        Pair memory p = _good(e);
        p.bounds.deadline = block.timestamp - 1;
        _sendExpectingNoChange(
            e, p, abi.encodeWithSelector(IBasisExecutor.Expired.selector, block.timestamp - 1, block.timestamp)
        );
    }

    function test_RevertWhen_Expired_OpenPair() public {
        _checkExpired(Entry.Open);
    }

    function test_RevertWhen_Expired_ResizePair() public {
        _checkExpired(Entry.Resize);
    }

    function test_RevertWhen_Expired_ClosePair() public {
        _checkExpired(Entry.Close);
    }

    // ------------------------------------------------------------------------------ markets
    function _checkMarkets(Entry e) internal {
        Pair memory p = _good(e);
        p.baseTokenA = VDOGE;
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, VDOGE));
        p.baseTokenA = VETH;
        p.baseTokenB = VDOGE;
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, VDOGE));
        p.baseTokenB = VETH;
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IPairExecutor.SamePairMarket.selector, VETH));
    }

    function test_RevertWhen_MarketNotRegisteredOrSame_OpenPair() public {
        _checkMarkets(Entry.Open);
    }

    function test_RevertWhen_MarketNotRegisteredOrSame_ResizePair() public {
        _checkMarkets(Entry.Resize);
    }

    function test_RevertWhen_MarketNotRegisteredOrSame_ClosePair() public {
        _checkMarkets(Entry.Close);
    }

    // ------------------------------------------------------------------------------ the legs' bounds
    function _checkLegBoundMissing(Entry e) internal {
        Pair memory p = _good(e);
        uint256 boundA18 = p.boundA18;
        p.boundA18 = 0;
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IBasisExecutor.MissingPerpBound.selector));
        p.boundA18 = boundA18;
        p.boundB18 = 0;
        _sendExpectingNoChange(e, p, abi.encodeWithSelector(IBasisExecutor.MissingPerpBound.selector));
    }

    function test_RevertWhen_LegBoundMissing_OpenPair() public {
        _checkLegBoundMissing(Entry.Open);
    }

    function test_RevertWhen_LegBoundMissing_ResizePair() public {
        _checkLegBoundMissing(Entry.Resize);
    }

    function test_RevertWhen_LegBoundMissing_ClosePair() public {
        _checkLegBoundMissing(Entry.Close);
    }

    /// @dev One wei past leg A's fill: open / resize buy vETH (max quote in, CH_TMRL); the close
    ///      sells it (min quote out, CH_TLRS). Leg B passes its own bound.
    function _checkLegASlippage(Entry e) internal {
        Pair memory p = _good(e);
        p.boundA18 = e == Entry.Close ? p.boundA18 + 1 : p.boundA18 - 1;
        _sendExpectingNoChange(e, p, bytes(e == Entry.Close ? "CH_TLRS" : "CH_TMRL"));
    }

    function test_RevertWhen_LegASlippage_OpenPair() public {
        _checkLegASlippage(Entry.Open);
    }

    function test_RevertWhen_LegASlippage_ResizePair() public {
        _checkLegASlippage(Entry.Resize);
    }

    function test_RevertWhen_LegASlippage_ClosePair() public {
        _checkLegASlippage(Entry.Close);
    }

    /// @dev One wei past leg B's fill, after leg A filled: open / resize sell vBTC (min quote out,
    ///      CH_TLRS); the close buys it back (max quote in, CH_TMRL). Leg A's fill is undone too.
    function _checkLegBSlippage(Entry e) internal {
        Pair memory p = _good(e);
        p.boundB18 = e == Entry.Close ? p.boundB18 - 1 : p.boundB18 + 1;
        _sendExpectingNoChange(e, p, bytes(e == Entry.Close ? "CH_TMRL" : "CH_TLRS"));
    }

    function test_RevertWhen_LegBSlippage_OpenPair() public {
        _checkLegBSlippage(Entry.Open);
    }

    function test_RevertWhen_LegBSlippage_ResizePair() public {
        _checkLegBSlippage(Entry.Resize);
    }

    function test_RevertWhen_LegBSlippage_ClosePair() public {
        _checkLegBSlippage(Entry.Close);
    }

    // ------------------------------------------------------------------------------ net exposure
    function test_RevertWhen_NetExposureTooLarge_OpenPair() public {
        Pair memory p = _good(Entry.Open);
        p.bounds.maxNetExposureQuote18 = uint256(NET_OPEN18) - 1;
        _sendExpectingNoChange(
            Entry.Open,
            p,
            abi.encodeWithSelector(IPairExecutor.NetExposureTooLarge.selector, NET_OPEN18, uint256(NET_OPEN18) - 1)
        );
    }

    function test_RevertWhen_NetExposureTooLarge_ResizePair() public {
        Pair memory p = _good(Entry.Resize);
        p.bounds.maxNetExposureQuote18 = uint256(2 * NET_OPEN18) - 1;
        _sendExpectingNoChange(
            Entry.Resize,
            p,
            abi.encodeWithSelector(
                IPairExecutor.NetExposureTooLarge.selector, 2 * NET_OPEN18, uint256(2 * NET_OPEN18) - 1
            )
        );
    }

    /// @dev The half-closed pair of test_PartialClose_LeavesTheExposureItReports, 1 wei too tight.
    function test_RevertWhen_NetExposureTooLarge_ClosePair() public {
        Pair memory p = _good(Entry.Close);
        p.closeLimitX96 = 1;
        p.boundA18 = 29_970e18; // min quote out for the half
        p.bounds.maxNetExposureQuote18 = 60e18 - 1;
        _sendExpectingNoChange(
            Entry.Close, p, abi.encodeWithSelector(IPairExecutor.NetExposureTooLarge.selector, -60e18, 60e18 - 1)
        );
    }

    /// @dev The hedge ratio weighs leg B: beta = 1.002 makes 59,940 x 1.002 = 60,059.88, net +0.12.
    function test_HedgeRatioWeighsLegB() public {
        Pair memory p = _good(Entry.Open);
        p.bounds.hedgeRatio18 = 1.002e18;
        p.bounds.maxNetExposureQuote18 = 0.12e18;
        IPairExecutor.PairFills memory f = _send(Entry.Open, p, 0);
        assertEq(f.netExposureQuote18, 0.12e18);
    }

    /// @dev Receiving exactly 1 wei of quote for vETH sells 0 base (the mock rounds down): no price.
    function test_RevertWhen_LegNotFilled() public {
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IPairExecutor.LegNotFilled.selector, VETH));
        ex.openPair(
            0,
            _perp(VETH, true, false, 1, 1),
            _perp(VBTC, true, true, 1e18, 1),
            IPairExecutor.PairBounds(block.timestamp, ONE, type(uint256).max)
        );
    }

    // ------------------------------------------------------------------------------ position state
    function test_RevertWhen_OpenPairOnAnOpenMarket() public {
        _openShortOneEth(V3); // a basis position in vETH
        Pair memory p = _good(Entry.Open);
        _sendExpectingNoChange(
            Entry.Open, p, abi.encodeWithSelector(IBasisExecutor.PositionNotFlat.selector, VETH, int256(-1e18))
        );
    }

    function test_RevertWhen_OpenPairTwice() public {
        Pair memory p = _good(Entry.Resize); // opens the pair first
        p.bounds.maxNetExposureQuote18 = uint256(NET_OPEN18);
        _sendExpectingNoChange(
            Entry.Open, p, abi.encodeWithSelector(IBasisExecutor.PositionNotFlat.selector, VETH, int256(20e18))
        );
    }

    function test_RevertWhen_ResizePairWithoutBothPositions() public {
        Pair memory p = _good(Entry.Open);
        _sendExpectingNoChange(Entry.Resize, p, abi.encodeWithSelector(IBasisExecutor.NoPosition.selector, VETH));
        _openShortOneEth(V3); // vETH held, vBTC still flat
        _sendExpectingNoChange(Entry.Resize, p, abi.encodeWithSelector(IBasisExecutor.NoPosition.selector, VBTC));
    }

    function test_RevertWhen_ClosePairWithoutAPosition_PerpsReasonBubbles() public {
        Pair memory p = _good(Entry.Open);
        p.boundA18 = 59_940e18;
        p.boundB18 = 60_060e18;
        _sendExpectingNoChange(Entry.Close, p, bytes("CH_PSZ"));
    }

    function test_RevertWhen_SetMarketWhileAPairHoldsIt() public {
        _openGoodPair();
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.MarketHasPosition.selector, VBTC, int256(-1e18)));
        ex.setMarket(VBTC, address(weth), 500);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.MarketHasPosition.selector, VETH, int256(20e18)));
        ex.setMarket(VETH, address(0), 0);
        vm.stopPrank();
        assertEq(ex.spotMarket(VBTC).spotToken, address(wbtc));
    }

    function test_RevertWhen_BasisTradeOnAPairsMarket() public {
        _openGoodPair();
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.PositionNotFlat.selector, VETH, int256(20e18)));
        ex.openBasis(0, _perp(VETH, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0));
    }

    // ------------------------------------------------------------------------------ fuzz
    /// @dev Any sizes and hedge ratio: the net exposure is the documented formula, the bound at it
    ///      passes and one wei under it reverts; the close brings both markets back to flat.
    function testFuzz_OpenPair_NetExposureIsTheFormula(uint256 ethBase18, uint256 btcBase18, uint256 hedgeRatio18)
        public
    {
        ethBase18 = bound(ethBase18, 1e12, 1_000e18);
        btcBase18 = bound(btcBase18, 1e12, 50e18);
        hedgeRatio18 = bound(hedgeRatio18, 0.1e18, 10e18);
        IBasisExecutor.PerpOrder memory legA = _perp(VETH, false, false, ethBase18, type(uint256).max);
        IBasisExecutor.PerpOrder memory legB = _perp(VBTC, true, true, btcBase18, 1);
        (, uint256 quoteA18) = ch.quote(VETH, false, false, ethBase18);
        (, uint256 quoteB18) = ch.quote(VBTC, true, true, btcBase18);
        int256 expected = int256(quoteA18) - int256(quoteB18) * int256(hedgeRatio18) / 1e18;
        uint256 expectedAbs = expected >= 0 ? uint256(expected) : uint256(-expected);

        if (expectedAbs > 0) {
            vm.prank(keeper);
            vm.expectRevert(
                abi.encodeWithSelector(IPairExecutor.NetExposureTooLarge.selector, expected, expectedAbs - 1)
            );
            ex.openPair(0, legA, legB, IPairExecutor.PairBounds(block.timestamp, hedgeRatio18, expectedAbs - 1));
        }
        vm.prank(keeper);
        IPairExecutor.PairFills memory f =
            ex.openPair(0, legA, legB, IPairExecutor.PairBounds(block.timestamp, hedgeRatio18, expectedAbs));
        assertEq(f.netExposureQuote18, expected);
        assertEq(ch.positions(address(ex), VETH), int256(ethBase18));
        assertEq(ch.positions(address(ex), VBTC), -int256(btcBase18));

        vm.prank(keeper);
        ex.closePair(
            IBasisExecutor.PerpCloseOrder(VETH, 1, 0),
            IBasisExecutor.PerpCloseOrder(VBTC, type(uint256).max, 0),
            IPairExecutor.PairBounds(block.timestamp, hedgeRatio18, 0)
        );
        assertEq(ch.positions(address(ex), VETH), 0);
        assertEq(ch.positions(address(ex), VBTC), 0);
        assertEq(_standingAllowances(), 0);
    }
}
