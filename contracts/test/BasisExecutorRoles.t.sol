// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {BasisExecutor} from "../src/BasisExecutor.sol";
import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "../src/interfaces/IPairExecutor.sol";
import {BasisExecutorBase} from "./BasisExecutorBase.sol";

/// @notice The three roles: the operator (`keeper`) only trades and deposits, the admin withdraws
///         (to the treasury only), sets markets and pauses; nobody else does anything. Plus the
///         constructor's checks, the pause, setMarket's refusal on an open position and the events of
///         every movement of funds. The fuzzed-caller tests run 10,000 times in the `ci` profile.
contract BasisExecutorRolesTest is BasisExecutorBase {
    // ------------------------------------------------------------------------------ constructor
    function _deploy(address admin_, address treasury_, address operator_) internal returns (BasisExecutor) {
        return new BasisExecutor(admin_, treasury_, operator_, address(ch), address(v2Router), address(v3Router));
    }

    function test_RevertWhen_ConstructorGetsAZeroRole() public {
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.ZeroAddress.selector, "admin"));
        _deploy(address(0), treasury, keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.ZeroAddress.selector, "treasury"));
        _deploy(admin, address(0), keeper);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.ZeroAddress.selector, "operator"));
        _deploy(admin, treasury, address(0));
    }

    function test_RevertWhen_TheOperatorIsTheAdminOrTheTreasury() public {
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.RolesNotSeparate.selector, admin));
        _deploy(admin, treasury, admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.RolesNotSeparate.selector, treasury));
        _deploy(admin, treasury, treasury);
    }

    function test_AdminMayBeItsOwnTreasury() public {
        BasisExecutor ex2 = _deploy(admin, admin, keeper);
        assertEq(ex2.treasury(), admin);
    }

    function test_RevertWhen_AProtocolAddressHasNoCode() public {
        address eoa = makeAddr("not a contract");
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NoCode.selector, eoa));
        new BasisExecutor(admin, treasury, keeper, eoa, address(v2Router), address(v3Router));
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NoCode.selector, eoa));
        new BasisExecutor(admin, treasury, keeper, address(ch), eoa, address(v3Router));
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.NoCode.selector, eoa));
        new BasisExecutor(admin, treasury, keeper, address(ch), address(v2Router), eoa);
    }

    // ------------------------------------------------------------------------------ access control
    function _tradeCalls() internal view returns (bytes[6] memory) {
        IBasisExecutor.PerpOrder memory perp = _perp(VETH, true, true, 1e18, 1);
        IBasisExecutor.SpotOrder memory spot = _spot(V3, true, false, 1e18, type(uint256).max);
        IBasisExecutor.TradeBounds memory bounds = _bounds(0);
        IBasisExecutor.PerpOrder memory legB = _perp(VBTC, false, false, 0.05e18, type(uint256).max);
        IPairExecutor.PairBounds memory pairBounds = IPairExecutor.PairBounds(block.timestamp, 1e18, type(uint256).max);
        IBasisExecutor.PerpCloseOrder memory closeA = IBasisExecutor.PerpCloseOrder(VETH, 1, 0);
        IBasisExecutor.PerpCloseOrder memory closeB = IBasisExecutor.PerpCloseOrder(VBTC, 1, 0);
        return [
            abi.encodeCall(ex.openBasis, (0, perp, spot, bounds)),
            abi.encodeCall(ex.resizeBasis, (0, perp, spot, bounds)),
            abi.encodeCall(ex.closeBasis, (closeA, spot, bounds)),
            abi.encodeCall(ex.openPair, (0, perp, legB, pairBounds)),
            abi.encodeCall(ex.resizePair, (0, perp, legB, pairBounds)),
            abi.encodeCall(ex.closePair, (closeA, closeB, pairBounds))
        ];
    }

    function _adminCalls(uint256 amount, address token) internal view returns (bytes[6] memory) {
        return [
            abi.encodeCall(ex.withdrawCollateral, (amount)),
            abi.encodeCall(ex.withdrawToken, (token, amount)),
            abi.encodeCall(ex.withdrawEth, (amount)),
            abi.encodeCall(ex.setMarket, (VETH, token, 500)),
            abi.encodeCall(ex.setMarket, (VETH, address(0), 0)),
            abi.encodeCall(ex.setPaused, (true))
        ];
    }

    /// @dev Calls `data` as `caller` and requires the revert `expected`.
    function _assertRefused(address caller, bytes memory data, bytes memory expected) internal {
        vm.prank(caller);
        (bool ok, bytes memory revertData) = address(ex).call(data);
        assertFalse(ok);
        assertEq(revertData, expected);
    }

    /// forge-config: ci.fuzz.runs = 10000
    function testFuzz_RevertWhen_ANonOperatorTrades(address caller) public {
        vm.assume(caller != keeper);
        bytes[6] memory calls = _tradeCalls();
        for (uint256 i; i < calls.length; i++) {
            _assertRefused(caller, calls[i], abi.encodeWithSelector(IBasisExecutor.NotOperator.selector, caller));
        }
    }

    /// forge-config: ci.fuzz.runs = 10000
    function testFuzz_RevertWhen_ANonAdminWithdrawsSetsAMarketOrPauses(address caller, uint256 amount, address token)
        public
    {
        vm.assume(caller != admin);
        bytes[6] memory calls = _adminCalls(amount, token);
        for (uint256 i; i < calls.length; i++) {
            _assertRefused(caller, calls[i], abi.encodeWithSelector(IBasisExecutor.NotAdmin.selector, caller));
        }
    }

    /// forge-config: ci.fuzz.runs = 10000
    function testFuzz_RevertWhen_AStrangerDeposits(address caller, uint256 usdcRaw) public {
        vm.assume(caller != admin && caller != keeper);
        _assertRefused(
            caller,
            abi.encodeCall(ex.depositCollateral, (usdcRaw)),
            abi.encodeWithSelector(IBasisExecutor.NotAdminOrOperator.selector, caller)
        );
    }

    function test_RevertWhen_TheOperatorWithdrawsOrTheAdminTrades() public {
        bytes[6] memory adminCalls = _adminCalls(1, address(usdc));
        for (uint256 i; i < adminCalls.length; i++) {
            _assertRefused(keeper, adminCalls[i], abi.encodeWithSelector(IBasisExecutor.NotAdmin.selector, keeper));
        }
        bytes[6] memory tradeCalls = _tradeCalls();
        for (uint256 i; i < tradeCalls.length; i++) {
            _assertRefused(admin, tradeCalls[i], abi.encodeWithSelector(IBasisExecutor.NotOperator.selector, admin));
        }
    }

    // ------------------------------------------------------------------------------ pause
    function test_Pause_StopsTheOperatorNotTheAdmin() public {
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.PausedSet(true);
        vm.prank(admin);
        ex.setPaused(true);
        assertTrue(ex.paused());
        vm.prank(keeper);
        vm.expectRevert(IBasisExecutor.IsPaused.selector);
        ex.depositCollateral(1e6);
        // the admin still deposits and withdraws
        vm.startPrank(admin);
        ex.depositCollateral(1e6);
        ex.withdrawCollateral(2e6);
        ex.setPaused(false);
        vm.stopPrank();
        _openShortOneEth(V3);
        assertEq(ch.positions(address(ex), VETH), -1e18);
    }

    // ------------------------------------------------------------------------------ markets
    function test_RevertWhen_SetMarketOnAMarketHoldingAPosition() public {
        _openShortOneEth(V3);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.MarketHasPosition.selector, VETH, int256(-1e18)));
        ex.setMarket(VETH, address(wbtc), 3000);
        vm.expectRevert(abi.encodeWithSelector(IBasisExecutor.MarketHasPosition.selector, VETH, int256(-1e18)));
        ex.setMarket(VETH, address(0), 0);
        // another market is free to change
        ex.setMarket(VBTC, address(wbtc), 500);
        vm.stopPrank();
        assertEq(ex.spotMarket(VETH).spotToken, address(weth));
        assertEq(ex.spotMarket(VBTC).v3FeePips, 500);
        // flat again: the market can change
        vm.prank(keeper);
        ex.closeBasis(
            IBasisExecutor.PerpCloseOrder(VETH, type(uint256).max, 0), _spot(V3, false, true, 1e18, 1), _bounds(0)
        );
        vm.prank(admin);
        ex.setMarket(VETH, address(0), 0);
        assertEq(ex.spotMarket(VETH).spotToken, address(0));
    }

    // ------------------------------------------------------------------------------ events, allowances
    function test_EveryMovementOfFunds_EmitsAnEvent() public {
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.CollateralDeposited(keeper, 5e6);
        vm.prank(keeper);
        ex.depositCollateral(5e6);

        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.CollateralDeposited(keeper, 7e6);
        vm.prank(keeper);
        ex.openBasis(7e6, _perp(VETH, true, true, 1e18, 1), _spot(V3, true, false, 1e18, type(uint256).max), _bounds(0));

        vm.startPrank(admin);
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.CollateralWithdrawn(3e6);
        ex.withdrawCollateral(3e6);
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.TokenWithdrawn(address(usdc), treasury, 3e6);
        ex.withdrawToken(address(usdc), 3e6);
        vm.stopPrank();

        vm.deal(stranger, 1 ether);
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.EthReceived(stranger, 1 ether);
        vm.prank(stranger);
        (bool sent,) = address(ex).call{value: 1 ether}("");
        assertTrue(sent);
        vm.expectEmit(true, true, true, true, address(ex));
        emit IBasisExecutor.EthWithdrawn(treasury, 0.25 ether);
        vm.prank(admin);
        ex.withdrawEth(0.25 ether);
        assertEq(usdc.balanceOf(treasury), 3e6);
        assertEq(treasury.balance, 0.25 ether);
    }

    function test_DepositsApproveExactlyTheirAmount() public {
        // The Vault could pull exactly what was deposited; nothing stands afterwards
        vm.prank(keeper);
        ex.depositCollateral(12_345e6);
        assertEq(vault.balanceOf(address(ex)), 100_000e6 + 12_345e6);
        assertEq(usdc.allowance(address(ex), address(vault)), 0);
        assertEq(_standingAllowances(), 0);
    }
}
