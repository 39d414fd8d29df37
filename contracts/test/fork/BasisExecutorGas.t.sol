// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {IERC20} from "forge-std/interfaces/IERC20.sol";
import {BasisExecutor} from "../../src/BasisExecutor.sol";
import {IBasisExecutor} from "../../src/interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "../../src/interfaces/IPairExecutor.sol";
import {IPerpClearingHouse, IPerpVault} from "../../src/interfaces/IPerpV2.sol";
import {IUniswapV2Router, IUniswapV3SwapRouter} from "../../src/interfaces/IUniswapRouters.sol";
import {DevnetFork} from "./DevnetFork.sol";

/// @notice An account that trades the protocols itself (its own Perp account and tokens) and owns an
///         executor; it measures the gas of one or two calls from inside its own frame, so the numbers
///         mean the same with or without forge's isolation mode (`--gas-report`).
contract GasProbe {
    function call1(address target, bytes calldata data) external returns (uint256 gasUsed) {
        uint256 start = gasleft();
        _call(target, data);
        gasUsed = start - gasleft();
    }

    function callAll(address[] calldata targets, bytes[] calldata data) external returns (uint256 gasUsed) {
        uint256 start = gasleft();
        for (uint256 i; i < targets.length; i++) {
            _call(targets[i], data[i]);
        }
        gasUsed = start - gasleft();
    }

    function _call(address target, bytes calldata data) private {
        (bool ok, bytes memory returned) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 32), mload(returned))
            }
        }
    }
}

/// @notice The executor's own gas: the same open / resize / close, once as bare protocol calls, once
///         through the executor, from the same state, every touched account cooled first (each
///         measurement starts like a new transaction). Both sides keep no standing allowance: the bare
///         account approves each swap's input (exact output: the maximum, reset to zero after), as the
///         executor does. Refunds are not counted (they settle at the end of a transaction), so the
///         approvals' zero-to-non-zero writes count in full on both sides.
contract BasisExecutorGasForkTest is DevnetFork {
    uint256 internal constant COLLATERAL_RAW = 10_000e6;
    uint256 internal constant MAX_OVERHEAD_BPS = 500; // 5% of the protocol calls' gas

    GasProbe internal probe;
    BasisExecutor internal probeExecutor; // operated by the probe

    struct Gas {
        uint256 open;
        uint256 resize;
        uint256 close;
    }

    function setUp() public override {
        super.setUp();
        probe = new GasProbe();
        probeExecutor = new BasisExecutor(
            makeAddr("admin"), makeAddr("treasury"), address(probe), clearingHouse, v2Router, v3Router
        );
        // Both accounts start alike: same inventory and collateral, no standing approvals.
        vm.startPrank(keeper);
        address[2] memory accounts = [address(probe), address(probeExecutor)];
        for (uint256 i; i < 2; i++) {
            require(IERC20(usdc).transfer(accounts[i], 100_000e6), "usdc");
            require(IERC20(eth.spotToken).transfer(accounts[i], 10e18), "weth");
        }
        vm.stopPrank();
        vm.prank(makeAddr("admin"));
        probeExecutor.setMarket(eth.baseToken, eth.spotToken, eth.v3FeePips);
        vm.prank(makeAddr("admin"));
        probeExecutor.setMarket(btc.baseToken, btc.spotToken, btc.v3FeePips);
        probe.call1(usdc, abi.encodeCall(IERC20.approve, (vault, COLLATERAL_RAW)));
        probe.call1(vault, abi.encodeCall(IPerpVault.deposit, (usdc, COLLATERAL_RAW)));
        probe.call1(address(probeExecutor), abi.encodeCall(BasisExecutor.depositCollateral, (COLLATERAL_RAW)));
    }

    function test_GasOverhead_OpenResizeClose_AtMost5PercentOfTheProtocolCalls() public {
        address[] memory touched = _touched();
        uint256 snapshot = vm.snapshotState();
        Gas memory bare = _runBare(touched);
        int256 barePosition = _position(address(probe), eth.baseToken);
        vm.revertToState(snapshot);
        Gas memory viaExecutor = _runExecutor(touched);

        // Same trades: both accounts end with the same position
        assertEq(_position(address(probeExecutor), eth.baseToken), barePosition);
        _report("open   (short 1 vETH + V3 buy 1 WETH exact out)", bare.open, viaExecutor.open);
        _report("resize (long 0.5 vETH + V2 sell 0.5 WETH)", bare.resize, viaExecutor.resize);
        _report("close  (closePosition + V3 sell 0.5 WETH)", bare.close, viaExecutor.close);
        assertLe(viaExecutor.open, bare.open * (10_000 + MAX_OVERHEAD_BPS) / 10_000, "open overhead");
        assertLe(viaExecutor.resize, bare.resize * (10_000 + MAX_OVERHEAD_BPS) / 10_000, "resize overhead");
        assertLe(viaExecutor.close, bare.close * (10_000 + MAX_OVERHEAD_BPS) / 10_000, "close overhead");
    }

    /// @dev The pair: long 2 vETH + short 0.1 vBTC in one call, then both closed in one call.
    function test_GasOverhead_PairOpenClose_AtMost5PercentOfTheProtocolCalls() public {
        address[] memory touched = _touched();
        uint256 deadline = block.timestamp + 120;
        IPerpClearingHouse.OpenPositionParams memory longEth =
            IPerpClearingHouse.OpenPositionParams(eth.baseToken, false, false, 2e18, NO_MAX, deadline, 0, bytes32(0));
        IPerpClearingHouse.OpenPositionParams memory shortBtc =
            IPerpClearingHouse.OpenPositionParams(btc.baseToken, true, true, 0.1e18, 1, deadline, 0, bytes32(0));
        uint256 snapshot = vm.snapshotState();

        _cool(touched);
        address[] memory targets = new address[](2);
        bytes[] memory data = new bytes[](2);
        (targets[0], targets[1]) = (clearingHouse, clearingHouse);
        (data[0], data[1]) =
        (
            abi.encodeCall(IPerpClearingHouse.openPosition, (longEth)),
            abi.encodeCall(IPerpClearingHouse.openPosition, (shortBtc))
        );
        Gas memory bare;
        bare.open = probe.callAll(targets, data);
        _cool(touched);
        (data[0], data[1]) =
        (
            abi.encodeCall(
                IPerpClearingHouse.closePosition,
                (IPerpClearingHouse.ClosePositionParams(eth.baseToken, 0, 1, deadline, bytes32(0)))
            ),
            abi.encodeCall(
                IPerpClearingHouse.closePosition,
                (IPerpClearingHouse.ClosePositionParams(btc.baseToken, 0, NO_MAX, deadline, bytes32(0)))
            )
        );
        bare.close = probe.callAll(targets, data);
        vm.revertToState(snapshot);

        Gas memory viaExecutor;
        IPairExecutor.PairBounds memory bounds = IPairExecutor.PairBounds(deadline, 1e18, NO_MAX);
        _cool(touched);
        viaExecutor.open = probe.call1(
            address(probeExecutor),
            abi.encodeCall(
                IPairExecutor.openPair,
                (
                    0,
                    _perp(eth.baseToken, false, false, 2e18, NO_MAX),
                    _perp(btc.baseToken, true, true, 0.1e18, 1),
                    bounds
                )
            )
        );
        assertEq(_position(address(probeExecutor), btc.baseToken), -0.1e18);
        _cool(touched);
        viaExecutor.close = probe.call1(
            address(probeExecutor),
            abi.encodeCall(
                IPairExecutor.closePair,
                (
                    IBasisExecutor.PerpCloseOrder(eth.baseToken, 1, 0),
                    IBasisExecutor.PerpCloseOrder(btc.baseToken, NO_MAX, 0),
                    bounds
                )
            )
        );
        assertEq(_position(address(probeExecutor), eth.baseToken), 0);
        _report("openPair  (long 2 vETH + short 0.1 vBTC)", bare.open, viaExecutor.open);
        _report("closePair (closePosition x 2)", bare.close, viaExecutor.close);
        assertLe(viaExecutor.open, bare.open * (10_000 + MAX_OVERHEAD_BPS) / 10_000, "openPair overhead");
        assertLe(viaExecutor.close, bare.close * (10_000 + MAX_OVERHEAD_BPS) / 10_000, "closePair overhead");
    }

    function _report(string memory what, uint256 bareGas, uint256 executorGas) internal pure {
        console2.log(what);
        console2.log("  protocol calls only :", bareGas);
        console2.log("  through the executor:", executorGas);
        int256 overhead = int256(executorGas) - int256(bareGas);
        console2.log("  overhead gas        :", overhead);
        console2.log("  overhead, bps       :", overhead * 10_000 / int256(bareGas));
    }

    function _touched() internal view returns (address[] memory all) {
        address[] memory manifest = _manifestAddresses();
        all = new address[](manifest.length + 2);
        for (uint256 i; i < manifest.length; i++) {
            all[i] = manifest[i];
        }
        (all[manifest.length], all[manifest.length + 1]) = (address(probeExecutor), address(probe));
    }

    function _cool(address[] memory all) internal {
        for (uint256 i; i < all.length; i++) {
            vm.cool(all[i]);
        }
    }

    // ------------------------------------------------------------------------------ bare protocol calls
    function _approve(address token, address spender, uint256 amountRaw) internal pure returns (bytes memory) {
        return abi.encodeCall(IERC20.approve, (spender, amountRaw));
    }

    function _runBare(address[] memory touched) internal returns (Gas memory gas) {
        uint256 deadline = block.timestamp + 120;
        address me = address(probe);
        address[] memory wethToUsdc = new address[](2);
        (wethToUsdc[0], wethToUsdc[1]) = (eth.spotToken, usdc);

        _cool(touched);
        address[] memory targets = new address[](4);
        bytes[] memory data = new bytes[](4);
        (targets[0], targets[1], targets[2], targets[3]) = (clearingHouse, usdc, v3Router, usdc);
        data[0] = abi.encodeCall(
            IPerpClearingHouse.openPosition,
            (IPerpClearingHouse.OpenPositionParams(eth.baseToken, true, true, 1e18, 1, deadline, 0, bytes32(0)))
        );
        data[1] = _approve(usdc, v3Router, NO_MAX);
        data[2] = abi.encodeCall(
            IUniswapV3SwapRouter.exactOutputSingle,
            (IUniswapV3SwapRouter.ExactOutputSingleParams(
                    usdc, eth.spotToken, eth.v3FeePips, me, deadline, 1e18, NO_MAX, 0
                ))
        );
        data[3] = _approve(usdc, v3Router, 0);
        gas.open = probe.callAll(targets, data);

        _cool(touched);
        targets = new address[](3);
        data = new bytes[](3);
        (targets[0], targets[1], targets[2]) = (clearingHouse, eth.spotToken, v2Router);
        data[0] = abi.encodeCall(
            IPerpClearingHouse.openPosition,
            (IPerpClearingHouse.OpenPositionParams(
                    eth.baseToken, false, false, 0.5e18, NO_MAX, deadline, 0, bytes32(0)
                ))
        );
        data[1] = _approve(eth.spotToken, v2Router, 0.5e18);
        data[2] = abi.encodeCall(IUniswapV2Router.swapExactTokensForTokens, (0.5e18, 1, wethToUsdc, me, deadline));
        gas.resize = probe.callAll(targets, data);

        _cool(touched);
        (targets[0], targets[1], targets[2]) = (clearingHouse, eth.spotToken, v3Router);
        data[0] = abi.encodeCall(
            IPerpClearingHouse.closePosition,
            (IPerpClearingHouse.ClosePositionParams(eth.baseToken, 0, NO_MAX, deadline, bytes32(0)))
        );
        data[1] = _approve(eth.spotToken, v3Router, 0.5e18);
        data[2] = abi.encodeCall(
            IUniswapV3SwapRouter.exactInputSingle,
            (IUniswapV3SwapRouter.ExactInputSingleParams(
                    eth.spotToken, usdc, eth.v3FeePips, me, deadline, 0.5e18, 1, 0
                ))
        );
        gas.close = probe.callAll(targets, data);
    }

    // ------------------------------------------------------------------------------ through the executor
    function _runExecutor(address[] memory touched) internal returns (Gas memory gas) {
        address executor = address(probeExecutor);
        address base = eth.baseToken;
        IBasisExecutor.TradeBounds memory bounds = _anyProfit(0);

        _cool(touched);
        gas.open = probe.call1(
            executor,
            abi.encodeCall(
                IBasisExecutor.openBasis,
                (0, _perp(base, true, true, 1e18, 1), _spot(V3, true, false, 1e18, NO_MAX), bounds)
            )
        );
        _cool(touched);
        gas.resize = probe.call1(
            executor,
            abi.encodeCall(
                IBasisExecutor.resizeBasis,
                (0, _perp(base, false, false, 0.5e18, NO_MAX), _spot(V2, false, true, 0.5e18, 1), bounds)
            )
        );
        _cool(touched);
        gas.close = probe.call1(
            executor,
            abi.encodeCall(
                IBasisExecutor.closeBasis,
                (IBasisExecutor.PerpCloseOrder(base, NO_MAX, 0), _spot(V3, false, true, 0.5e18, 1), bounds)
            )
        );
    }
}
