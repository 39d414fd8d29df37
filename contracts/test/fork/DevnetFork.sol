// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IERC20} from "forge-std/interfaces/IERC20.sol";
import {BasisExecutor} from "../../src/BasisExecutor.sol";
import {IBasisExecutor} from "../../src/interfaces/IBasisExecutor.sol";
import {IPerpAccountBalance} from "../../src/interfaces/IPerpV2.sol";
import {ExecutorOrders} from "../ExecutorOrders.sol";

/// @notice The Perp v2 Vault views the fork tests read.
interface IPerpVaultViews {
    function getBalance(address trader) external view returns (int256 balanceRaw);
}

/// @notice Fork tests on the devnet: the real Perp v2 and Uniswap contracts, addresses from the
///         manifest that `keeper devnet` writes. Run with
///         `DEVNET_MANIFEST=<manifest.json> forge test --fork-url <rpc_url> --match-path 'contracts/test/fork/*'`
///         (the manifest must sit under ./build or ./.keeper: foundry.toml's fs_permissions).
///         Without DEVNET_MANIFEST every test is skipped.
abstract contract DevnetFork is Test, ExecutorOrders {
    struct Market {
        address baseToken; // Perp vBase
        address spotToken;
        uint256 spotScaleTo18;
        uint24 v3FeePips;
    }

    string internal manifestJson;
    address internal clearingHouse;
    address internal vault;
    address internal accountBalance;
    address internal v2Router;
    address internal v3Router;
    address internal usdc;
    address internal keeper; // the executor's operator
    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address[] internal traders;
    Market internal eth;
    Market internal btc;
    BasisExecutor internal ex;

    IBasisExecutor.SpotVenue internal constant V2 = IBasisExecutor.SpotVenue.UniswapV2;
    IBasisExecutor.SpotVenue internal constant V3 = IBasisExecutor.SpotVenue.UniswapV3;
    uint256 internal constant NO_MAX = type(uint256).max;

    function setUp() public virtual {
        if (!vm.envExists("DEVNET_MANIFEST")) {
            vm.skip(true, "DEVNET_MANIFEST not set: fork tests need the devnet");
            return;
        }
        manifestJson = vm.readFile(vm.envString("DEVNET_MANIFEST"));
        clearingHouse = _contract("ClearingHouse");
        require(
            clearingHouse.code.length > 0, "no code at the manifest's ClearingHouse: run with --fork-url <devnet rpc>"
        );
        vault = _contract("Vault");
        accountBalance = _contract("AccountBalance");
        v2Router = _contract("UniswapV2Router02");
        v3Router = _contract("SwapRouter");
        usdc = _contract("USDC");
        keeper = vm.parseJsonAddress(manifestJson, ".accounts.keeper");
        traders = vm.parseJsonAddressArray(manifestJson, ".accounts.traders");
        eth = _market("ETH");
        btc = _market("BTC");

        ex = new BasisExecutor(admin, treasury, keeper, clearingHouse, v2Router, v3Router);
        vm.startPrank(admin);
        ex.setMarket(eth.baseToken, eth.spotToken, eth.v3FeePips);
        ex.setMarket(btc.baseToken, btc.spotToken, btc.v3FeePips);
        vm.stopPrank();
        vm.startPrank(keeper);
        // The keeper's inventory (devnet: 1M USDC, 100 WETH, 5 WBTC) moves into the executor.
        require(IERC20(usdc).transfer(address(ex), 400_000e6), "usdc");
        require(IERC20(eth.spotToken).transfer(address(ex), 20e18), "weth");
        require(IERC20(btc.spotToken).transfer(address(ex), 1e8), "wbtc");
        vm.stopPrank();
    }

    // ------------------------------------------------------------------------------ manifest
    function _contract(string memory name) internal view returns (address) {
        return vm.parseJsonAddress(manifestJson, string.concat(".contracts.", name));
    }

    function _market(string memory name) internal view returns (Market memory m) {
        for (uint256 i;; i++) {
            string memory key = string.concat(".markets[", vm.toString(i), "]");
            require(vm.keyExistsJson(manifestJson, key), string.concat("no market ", name, " in the manifest"));
            if (
                keccak256(bytes(vm.parseJsonString(manifestJson, string.concat(key, ".name"))))
                    != keccak256(bytes(name))
            ) {
                continue;
            }
            m.baseToken = vm.parseJsonAddress(manifestJson, string.concat(key, ".base_token"));
            m.spotToken = vm.parseJsonAddress(manifestJson, string.concat(key, ".spot_token"));
            m.spotScaleTo18 = 10 ** (18 - vm.parseJsonUint(manifestJson, string.concat(key, ".spot_token_decimals")));
            m.v3FeePips = uint24(vm.parseJsonUint(manifestJson, string.concat(key, ".uniswap_v3_fee_pips")));
            return m;
        }
    }

    /// @dev Every address in the manifest, for `vm.cool` (gas measurements start cold, like a new tx).
    function _manifestAddresses() internal view returns (address[] memory all) {
        string[] memory names = vm.parseJsonKeys(manifestJson, ".contracts");
        string[8] memory fields = [
            "base_token",
            "perp_pool",
            "aggregator",
            "chainlink_price_feed",
            "price_feed_dispatcher",
            "spot_token",
            "uniswap_v2_pair",
            "uniswap_v3_pool"
        ];
        uint256 markets;
        while (vm.keyExistsJson(manifestJson, string.concat(".markets[", vm.toString(markets), "]"))) markets++;
        all = new address[](names.length + markets * fields.length);
        uint256 n;
        for (uint256 i; i < names.length; i++) {
            all[n++] = _contract(names[i]);
        }
        for (uint256 m; m < markets; m++) {
            for (uint256 f; f < fields.length; f++) {
                all[n++] =
                    vm.parseJsonAddress(manifestJson, string.concat(".markets[", vm.toString(m), "].", fields[f]));
            }
        }
    }

    // ------------------------------------------------------------------------------ orders

    function _bounds(uint256 maxResidualBase18, int256 minNetQuote18)
        internal
        view
        returns (IBasisExecutor.TradeBounds memory)
    {
        return IBasisExecutor.TradeBounds(block.timestamp + 120, maxResidualBase18, minNetQuote18);
    }

    function _anyProfit(uint256 maxResidualBase18) internal view returns (IBasisExecutor.TradeBounds memory) {
        return _bounds(maxResidualBase18, type(int256).min);
    }

    // ------------------------------------------------------------------------------ state
    function _position(address trader, address baseToken) internal view returns (int256) {
        return IPerpAccountBalance(accountBalance).getTakerPositionSize(trader, baseToken);
    }

    /// @dev Everything a reverted trade must leave unchanged.
    struct Holdings {
        uint256 usdcRaw;
        uint256 wethRaw;
        int256 vaultUsdcRaw;
        int256 ethPositionBase18;
    }

    function _holdings() internal view returns (Holdings memory h) {
        h.usdcRaw = IERC20(usdc).balanceOf(address(ex));
        h.wethRaw = IERC20(eth.spotToken).balanceOf(address(ex));
        h.vaultUsdcRaw = IPerpVaultViews(vault).getBalance(address(ex));
        h.ethPositionBase18 = _position(address(ex), eth.baseToken);
    }

    function _assertUnchanged(Holdings memory before) internal view {
        Holdings memory nowHeld = _holdings();
        assertEq(nowHeld.usdcRaw, before.usdcRaw, "USDC moved");
        assertEq(nowHeld.wethRaw, before.wethRaw, "WETH moved");
        assertEq(nowHeld.vaultUsdcRaw, before.vaultUsdcRaw, "Vault balance moved");
        assertEq(nowHeld.ethPositionBase18, before.ethPositionBase18, "position moved");
    }

    // ------------------------------------------------------------------------------ simulate
    /// @dev "Simulate, then send": run an open on a snapshot and roll it back, to learn its fills.
    function _simulateOpen(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder memory perp,
        IBasisExecutor.SpotOrder memory spot
    ) internal returns (IBasisExecutor.Fills memory fills) {
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        fills = ex.openBasis(depositUsdcRaw, perp, spot, _anyProfit(NO_MAX));
        vm.revertToState(snapshot);
    }

    function _simulateClose(IBasisExecutor.PerpCloseOrder memory perp, IBasisExecutor.SpotOrder memory spot)
        internal
        returns (IBasisExecutor.Fills memory fills)
    {
        uint256 snapshot = vm.snapshotState();
        vm.prank(keeper);
        fills = ex.closeBasis(perp, spot, _anyProfit(NO_MAX));
        vm.revertToState(snapshot);
    }

    /// @dev |x| * (1 +- bps/10_000), rounded toward the tighter side of a bound.
    function _abs(int256 x) internal pure returns (uint256) {
        return x >= 0 ? uint256(x) : uint256(-x);
    }

    function _minus(uint256 x, uint256 bps) internal pure returns (uint256) {
        return x * (10_000 - bps) / 10_000;
    }

    function _plus(uint256 x, uint256 bps) internal pure returns (uint256) {
        return x * (10_000 + bps) / 10_000;
    }
}
