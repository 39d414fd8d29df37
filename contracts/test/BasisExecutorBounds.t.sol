// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {BasisExecutorBase} from "./BasisExecutorBase.sol";

/// @notice Every bound on every trading entry point: open, resize and close each get one
///         test_RevertWhen_ per bound, from an order that passes (test_GoodOrderPasses_*) with exactly
///         one field moved past its bound. The pair entry points: BasisExecutorPair.t.sol.
///         Market: vETH at 3000 (0.1% Perp fee), WETH at 3000 on V2 and 2995 on V3.
contract BasisExecutorBoundsTest is BasisExecutorBase {
    enum Entry {
        Open,
        Resize,
        Close
    }

    /// @dev One trade's arguments. Open / resize: short 1 vETH (exact base in) + buy 1 WETH. Close
    ///      (of a 1 vETH short): buy the base back + sell 1 WETH.
    struct Order {
        address baseToken;
        uint256 perpBound18;
        IBasisExecutor.SpotOrder spot;
        IBasisExecutor.TradeBounds bounds;
    }

    address internal constant VDOGE = address(0xD06E); // never registered

    function _good(Entry e) internal returns (Order memory o) {
        if (e != Entry.Open) _openShortOneEth(V3); // resize and close need a position
        o.baseToken = VETH;
        o.bounds = _bounds(0);
        if (e == Entry.Close) {
            o.perpBound18 = 3003e18; // max quote in: 3000 + the fee
            o.spot = _spot(V3, false, true, 1e18, 2995e6); // min USDC out
        } else {
            o.perpBound18 = 2997e18; // min quote out: 3000 - the fee
            o.spot = _spot(V3, true, false, 1e18, 2995e6); // max USDC in
        }
    }

    function _send(Entry e, Order memory o) internal returns (IBasisExecutor.Fills memory) {
        vm.prank(keeper);
        if (e == Entry.Close) {
            return ex.closeBasis(IBasisExecutor.PerpCloseOrder(o.baseToken, o.perpBound18, 0), o.spot, o.bounds);
        }
        IBasisExecutor.PerpOrder memory perp = _perp(o.baseToken, true, true, 1e18, o.perpBound18);
        return e == Entry.Open ? ex.openBasis(0, perp, o.spot, o.bounds) : ex.resizeBasis(0, perp, o.spot, o.bounds);
    }

    /// @dev A trade that reverts changes nothing (the caller checks the reason first).
    function _sendExpectingNoChange(Entry e, Order memory o, bytes memory revertData) internal {
        uint256 usdcBefore = usdc.balanceOf(address(ex));
        uint256 wethBefore = weth.balanceOf(address(ex));
        int256 positionBefore = ch.positions(address(ex), VETH);
        vm.expectRevert(revertData);
        _send(e, o);
        assertEq(usdc.balanceOf(address(ex)), usdcBefore);
        assertEq(weth.balanceOf(address(ex)), wethBefore);
        assertEq(ch.positions(address(ex), VETH), positionBefore);
        assertEq(_standingAllowances(), 0);
    }

    // ------------------------------------------------------------------------------ the good orders
    function _checkGoodOrderPasses(Entry e) internal {
        Order memory o = _good(e);
        IBasisExecutor.Fills memory f = _send(e, o);
        assertEq(f.residualBase18, 0);
        assertEq(_standingAllowances(), 0);
        assertEq(f.positionBase18After, e == Entry.Open ? -1e18 : e == Entry.Resize ? -2e18 : int256(0));
    }

    function test_GoodOrderPasses_Open() public {
        _checkGoodOrderPasses(Entry.Open);
    }

    function test_GoodOrderPasses_Resize() public {
        _checkGoodOrderPasses(Entry.Resize);
    }

    function test_GoodOrderPasses_Close() public {
        _checkGoodOrderPasses(Entry.Close);
    }

    // ------------------------------------------------------------------------------ pause
    function _checkPaused(Entry e) internal {
        Order memory o = _good(e);
        vm.prank(admin);
        ex.setPaused(true);
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.IsPaused.selector));
    }

    function test_RevertWhen_Paused_Open() public {
        _checkPaused(Entry.Open);
    }

    function test_RevertWhen_Paused_Resize() public {
        _checkPaused(Entry.Resize);
    }

    function test_RevertWhen_Paused_Close() public {
        _checkPaused(Entry.Close);
    }

    // ------------------------------------------------------------------------------ deadline
    function _checkExpired(Entry e) internal {
        Order memory o = _good(e);
        o.bounds.deadline = block.timestamp - 1;
        _sendExpectingNoChange(
            e, o, abi.encodeWithSelector(IBasisExecutor.Expired.selector, block.timestamp - 1, block.timestamp)
        );
    }

    function test_RevertWhen_Expired_Open() public {
        _checkExpired(Entry.Open);
    }

    function test_RevertWhen_Expired_Resize() public {
        _checkExpired(Entry.Resize);
    }

    function test_RevertWhen_Expired_Close() public {
        _checkExpired(Entry.Close);
    }

    // ------------------------------------------------------------------------------ market
    function _checkMarketNotRegistered(Entry e) internal {
        Order memory o = _good(e);
        o.baseToken = VDOGE;
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.UnsupportedToken.selector, VDOGE));
    }

    function test_RevertWhen_MarketNotRegistered_Open() public {
        _checkMarketNotRegistered(Entry.Open);
    }

    function test_RevertWhen_MarketNotRegistered_Resize() public {
        _checkMarketNotRegistered(Entry.Resize);
    }

    function test_RevertWhen_MarketNotRegistered_Close() public {
        _checkMarketNotRegistered(Entry.Close);
    }

    // ------------------------------------------------------------------------------ perp bound
    function _checkPerpBoundMissing(Entry e) internal {
        Order memory o = _good(e);
        o.perpBound18 = 0;
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.MissingPerpBound.selector));
    }

    function test_RevertWhen_PerpBoundMissing_Open() public {
        _checkPerpBoundMissing(Entry.Open);
    }

    function test_RevertWhen_PerpBoundMissing_Resize() public {
        _checkPerpBoundMissing(Entry.Resize);
    }

    function test_RevertWhen_PerpBoundMissing_Close() public {
        _checkPerpBoundMissing(Entry.Close);
    }

    /// @dev One wei past the fill: Perp's own check reverts with its reason (min quote out on a
    ///      short, CH_TLRS; max quote in buying back, CH_TMRL).
    function _checkPerpSlippage(Entry e) internal {
        Order memory o = _good(e);
        o.perpBound18 = e == Entry.Close ? o.perpBound18 - 1 : o.perpBound18 + 1;
        _sendExpectingNoChange(e, o, bytes(e == Entry.Close ? "CH_TMRL" : "CH_TLRS"));
    }

    function test_RevertWhen_PerpSlippage_Open() public {
        _checkPerpSlippage(Entry.Open);
    }

    function test_RevertWhen_PerpSlippage_Resize() public {
        _checkPerpSlippage(Entry.Resize);
    }

    function test_RevertWhen_PerpSlippage_Close() public {
        _checkPerpSlippage(Entry.Close);
    }

    // ------------------------------------------------------------------------------ spot bounds
    /// @dev The exact-input form of each entry's spot leg (open/resize: 2995 USDC buys 1 WETH on V3;
    ///      close: 1 WETH sells for 2995 USDC), with `limitRaw` as its min out.
    function _exactInputSpot(Entry e, uint256 minOutRaw) internal pure returns (IBasisExecutor.SpotOrder memory) {
        return e == Entry.Close ? _spot(V3, false, true, 1e18, minOutRaw) : _spot(V3, true, true, 2995e6, minOutRaw);
    }

    function _checkSpotMinOutMissing(Entry e) internal {
        Order memory o = _good(e);
        o.spot = _exactInputSpot(e, 0);
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.MissingSpotBound.selector));
    }

    function test_RevertWhen_SpotMinOutMissing_Open() public {
        _checkSpotMinOutMissing(Entry.Open);
    }

    function test_RevertWhen_SpotMinOutMissing_Resize() public {
        _checkSpotMinOutMissing(Entry.Resize);
    }

    function test_RevertWhen_SpotMinOutMissing_Close() public {
        _checkSpotMinOutMissing(Entry.Close);
    }

    function _checkSpotMinOut(Entry e) internal {
        Order memory o = _good(e);
        uint256 outRaw = e == Entry.Close ? 2995e6 : 1e18;
        o.spot = _exactInputSpot(e, outRaw + 1);
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.SpotSlippage.selector, outRaw, outRaw + 1));
    }

    function test_RevertWhen_SpotMinOut_Open() public {
        _checkSpotMinOut(Entry.Open);
    }

    function test_RevertWhen_SpotMinOut_Resize() public {
        _checkSpotMinOut(Entry.Resize);
    }

    function test_RevertWhen_SpotMinOut_Close() public {
        _checkSpotMinOut(Entry.Close);
    }

    /// @dev Exact output one raw unit below the input it needs: the router gets the maximum as its
    ///      bound and as its allowance and refuses (the mock speaks the V3 router's reason).
    function _checkSpotMaxIn(Entry e) internal {
        Order memory o = _good(e);
        o.spot = e == Entry.Close ? _spot(V3, false, false, 2995e6, 1e18 - 1) : _spot(V3, true, false, 1e18, 2995e6 - 1);
        _sendExpectingNoChange(e, o, bytes("Too much requested"));
    }

    function test_RevertWhen_SpotMaxIn_Open() public {
        _checkSpotMaxIn(Entry.Open);
    }

    function test_RevertWhen_SpotMaxIn_Resize() public {
        _checkSpotMaxIn(Entry.Resize);
    }

    function test_RevertWhen_SpotMaxIn_Close() public {
        _checkSpotMaxIn(Entry.Close);
    }

    // ------------------------------------------------------------------------------ residual, profit
    /// @dev The spot leg trades 0.9 WETH against 1 vETH: 0.1 unhedged, 0.1 - 1 wei allowed.
    function _checkResidual(Entry e) internal {
        Order memory o = _good(e);
        o.spot.amountRaw = 0.9e18;
        if (e == Entry.Close) o.spot.limitRaw = 2695.5e6; // 0.9 x 2995: the min out holds
        o.bounds.maxResidualBase18 = 0.1e18 - 1;
        int256 residual = e == Entry.Close ? int256(0.1e18) : -0.1e18;
        _sendExpectingNoChange(
            e, o, abi.encodeWithSelector(IBasisExecutor.ResidualDeltaTooLarge.selector, residual, uint256(0.1e18 - 1))
        );
    }

    function test_RevertWhen_ResidualDeltaTooLarge_Open() public {
        _checkResidual(Entry.Open);
    }

    function test_RevertWhen_ResidualDeltaTooLarge_Resize() public {
        _checkResidual(Entry.Resize);
    }

    function test_RevertWhen_ResidualDeltaTooLarge_Close() public {
        _checkResidual(Entry.Close);
    }

    /// @dev Open / resize net +2 USD (2997 - 2995); the close nets -8 (2995 - 3003): one wei more fails.
    function _checkProfit(Entry e) internal {
        Order memory o = _good(e);
        int256 net18 = e == Entry.Close ? -8e18 : int256(2e18);
        o.bounds.minNetQuote18 = net18 + 1;
        _sendExpectingNoChange(e, o, abi.encodeWithSelector(IBasisExecutor.ProfitBelowMin.selector, net18, net18 + 1));
    }

    function test_RevertWhen_NetQuoteBelowMin_Open() public {
        _checkProfit(Entry.Open);
    }

    function test_RevertWhen_NetQuoteBelowMin_Resize() public {
        _checkProfit(Entry.Resize);
    }

    function test_RevertWhen_NetQuoteBelowMin_Close() public {
        _checkProfit(Entry.Close);
    }

    // ------------------------------------------------------------------------------ position state
    function test_RevertWhen_OpenOnAnOpenPosition() public {
        Order memory o = _good(Entry.Resize); // opens one first
        _sendExpectingNoChange(
            Entry.Open, o, abi.encodeWithSelector(IBasisExecutor.PositionNotFlat.selector, VETH, int256(-1e18))
        );
    }

    function test_RevertWhen_ResizeWithoutAPosition() public {
        Order memory o = _good(Entry.Open);
        _sendExpectingNoChange(Entry.Resize, o, abi.encodeWithSelector(IBasisExecutor.NoPosition.selector, VETH));
    }

    function test_RevertWhen_CloseWithoutAPosition_PerpsReasonBubbles() public {
        Order memory o = _good(Entry.Open);
        o.spot = _spot(V3, false, true, 1e18, 1);
        _sendExpectingNoChange(Entry.Close, o, bytes("CH_PSZ"));
    }
}
