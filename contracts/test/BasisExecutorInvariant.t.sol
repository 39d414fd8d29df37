// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {BasisExecutor} from "../src/BasisExecutor.sol";
import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "../src/interfaces/IPairExecutor.sol";
import {BasisExecutorBase} from "./BasisExecutorBase.sol";

/// @notice A stranger: any address but the admin and the operator, calling every function of the
///         executor. Arguments are fuzzed but steered to what would succeed for the right caller (held
///         tokens, amounts within the balances, registered markets, hedged orders with loose bounds and
///         a valid deadline), so that a missing role check shows up as a changed state; raw calldata
///         covers everything else. A handler call never reverts itself.
contract StrangerHandler is Test {
    BasisExecutor internal immutable ex;
    address internal immutable admin;
    address internal immutable operator;
    address[] internal tokens;
    address[] internal baseTokens;
    uint256 public calls;
    uint256 public accepted; // views and a plain 0-value call (receive) succeed

    constructor(BasisExecutor ex_, address[] memory tokens_, address[] memory baseTokens_) {
        ex = ex_;
        admin = ex_.admin();
        operator = ex_.operator();
        tokens = tokens_;
        baseTokens = baseTokens_;
    }

    function _call(address caller, bytes memory data) internal {
        if (caller == admin || caller == operator) caller = address(uint160(caller) ^ 1);
        vm.prank(caller);
        (bool ok,) = address(ex).call(data); // either way, the invariant checks the state
        calls++;
        if (ok) accepted++;
    }

    function _token(uint256 seed) internal view returns (address) {
        return tokens[seed % tokens.length];
    }

    function _base(uint256 seed) internal view returns (address) {
        return baseTokens[seed % baseTokens.length];
    }

    function _held(address token, uint256 amount) internal view returns (uint256) {
        (, bytes memory ret) = token.staticcall(abi.encodeWithSignature("balanceOf(address)", address(ex)));
        return bound(amount, 0, abi.decode(ret, (uint256)));
    }

    /// @dev A hedged order that the operator could send: short (or long) `size` of the market, the spot
    ///      leg bought (or sold) on a fuzzed venue, loose bounds, a valid deadline.
    function _order(uint256 baseSeed, bool shortPerp, bool viaV3, uint256 size18)
        internal
        view
        returns (
            IBasisExecutor.PerpOrder memory perp,
            IBasisExecutor.SpotOrder memory spot,
            IBasisExecutor.TradeBounds memory bounds
        )
    {
        address base = _base(baseSeed);
        size18 = bound(size18, 1e15, 2e18);
        perp = IBasisExecutor.PerpOrder(base, shortPerp, shortPerp, size18, shortPerp ? 1 : type(uint256).max, 0);
        uint256 spotRaw = size18 / ex.spotMarket(base).spotScaleTo18;
        IBasisExecutor.SpotVenue venue = viaV3 ? IBasisExecutor.SpotVenue.UniswapV3 : IBasisExecutor.SpotVenue.UniswapV2;
        spot = shortPerp
            ? IBasisExecutor.SpotOrder(venue, true, false, spotRaw, type(uint256).max)
            : IBasisExecutor.SpotOrder(venue, false, true, spotRaw, 1);
        bounds = IBasisExecutor.TradeBounds(block.timestamp + 60, type(uint256).max, type(int256).min);
    }

    function openBasis(address caller, uint256 deposit, uint256 baseSeed, bool shortPerp, bool viaV3, uint256 size)
        external
    {
        _openOrResize(false, caller, deposit, baseSeed, shortPerp, viaV3, size);
    }

    function resizeBasis(address caller, uint256 deposit, uint256 baseSeed, bool shortPerp, bool viaV3, uint256 size)
        external
    {
        _openOrResize(true, caller, deposit, baseSeed, shortPerp, viaV3, size);
    }

    function _openOrResize(
        bool resize,
        address caller,
        uint256 deposit,
        uint256 baseSeed,
        bool shortPerp,
        bool viaV3,
        uint256 size
    ) internal {
        (
            IBasisExecutor.PerpOrder memory perp,
            IBasisExecutor.SpotOrder memory spot,
            IBasisExecutor.TradeBounds memory bounds
        ) = _order(baseSeed, shortPerp, viaV3, size);
        uint256 depositRaw = _held(ex.usdc(), deposit);
        _call(
            caller,
            resize
                ? abi.encodeCall(ex.resizeBasis, (depositRaw, perp, spot, bounds))
                : abi.encodeCall(ex.openBasis, (depositRaw, perp, spot, bounds))
        );
    }

    function closeBasis(address caller, bool viaV3, uint256 spotRaw) external {
        // the open position is a short vETH: buy it back, sell WETH
        (
            IBasisExecutor.PerpOrder memory perp,
            IBasisExecutor.SpotOrder memory spot,
            IBasisExecutor.TradeBounds memory bounds
        ) = _order(0, false, viaV3, spotRaw);
        _call(
            caller,
            abi.encodeCall(
                ex.closeBasis, (IBasisExecutor.PerpCloseOrder(perp.baseToken, type(uint256).max, 0), spot, bounds)
            )
        );
    }

    /// @dev A pair the operator could send: long `sizeA` of one market and short `sizeB` of another,
    ///      loose per-leg bounds, no net-exposure limit, a valid deadline.
    function _pair(uint256 baseSeed, uint256 sizeA18, uint256 sizeB18)
        internal
        view
        returns (
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB,
            IPairExecutor.PairBounds memory bounds
        )
    {
        address baseA = _base(baseSeed);
        address baseB = _base(baseSeed % baseTokens.length + 1); // another market (no overflow)
        legA = IBasisExecutor.PerpOrder(baseA, false, false, bound(sizeA18, 1e15, 2e18), type(uint256).max, 0);
        legB = IBasisExecutor.PerpOrder(baseB, true, true, bound(sizeB18, 1e15, 2e18), 1, 0);
        bounds = IPairExecutor.PairBounds(block.timestamp + 60, 1e18, type(uint256).max);
    }

    function openPair(address caller, uint256 deposit, uint256 baseSeed, uint256 sizeA, uint256 sizeB) external {
        _openOrResizePair(false, caller, deposit, baseSeed, sizeA, sizeB);
    }

    function resizePair(address caller, uint256 deposit, uint256 baseSeed, uint256 sizeA, uint256 sizeB) external {
        _openOrResizePair(true, caller, deposit, baseSeed, sizeA, sizeB);
    }

    function _openOrResizePair(
        bool resize,
        address caller,
        uint256 deposit,
        uint256 baseSeed,
        uint256 sizeA,
        uint256 sizeB
    ) internal {
        (
            IBasisExecutor.PerpOrder memory legA,
            IBasisExecutor.PerpOrder memory legB,
            IPairExecutor.PairBounds memory bounds
        ) = _pair(baseSeed, sizeA, sizeB);
        uint256 depositRaw = _held(ex.usdc(), deposit);
        _call(
            caller,
            resize
                ? abi.encodeCall(ex.resizePair, (depositRaw, legA, legB, bounds))
                : abi.encodeCall(ex.openPair, (depositRaw, legA, legB, bounds))
        );
    }

    function closePair(address caller, uint256 baseSeed, uint160 sqrtPriceLimitX96) external {
        // the open pair is long vBTC / short vSOL (baseSeed 1): sell A back, buy B back
        (IBasisExecutor.PerpOrder memory legA, IBasisExecutor.PerpOrder memory legB,) = _pair(baseSeed, 0, 0);
        _call(
            caller,
            abi.encodeCall(
                ex.closePair,
                (
                    IBasisExecutor.PerpCloseOrder(legA.baseToken, 1, sqrtPriceLimitX96),
                    IBasisExecutor.PerpCloseOrder(legB.baseToken, type(uint256).max, sqrtPriceLimitX96),
                    IPairExecutor.PairBounds(block.timestamp + 60, 1e18, type(uint256).max)
                )
            )
        );
    }

    function depositCollateral(address caller, uint256 usdcRaw) external {
        _call(caller, abi.encodeCall(ex.depositCollateral, (_held(ex.usdc(), usdcRaw))));
    }

    function withdrawCollateral(address caller, uint256 usdcRaw) external {
        _call(caller, abi.encodeCall(ex.withdrawCollateral, (bound(usdcRaw, 0, 100_000e6))));
    }

    function setMarket(address caller, uint256 baseSeed, uint256 spotSeed, uint24 v3FeePips, bool remove) external {
        address spotToken = remove ? address(0) : _token(spotSeed);
        _call(caller, abi.encodeCall(ex.setMarket, (_base(baseSeed), spotToken, v3FeePips)));
    }

    function setPaused(address caller, bool paused) external {
        _call(caller, abi.encodeCall(ex.setPaused, (paused)));
    }

    function withdrawToken(address caller, uint256 tokenSeed, uint256 amountRaw) external {
        address token = _token(tokenSeed);
        _call(caller, abi.encodeCall(ex.withdrawToken, (token, _held(token, amountRaw))));
    }

    function withdrawEth(address caller, uint256 amountWei) external {
        _call(caller, abi.encodeCall(ex.withdrawEth, (bound(amountWei, 0, address(ex).balance))));
    }

    /// @dev Any calldata at all: unknown selectors, short or malformed arguments, any values.
    function rawCall(address caller, bytes calldata data) external {
        _call(caller, data);
    }
}

/// @notice Invariant: whatever a stranger calls, with whatever arguments, the executor's balances
///         (tokens and ETH), its Perp Vault collateral, its positions, its allowances, its markets and
///         its pause flag stay exactly as they were, and the treasury receives nothing (the pair
///         entry points included). Starts from a live state: collateral deposited, a short vETH
///         basis position and a long vBTC / short vSOL pair open, inventory in every token.
///         10,000 runs of 10 calls in the `ci` profile (256 of 15 by default).
contract BasisExecutorInvariantTest is BasisExecutorBase {
    StrangerHandler internal handler;
    address[5] internal tokens;
    address[4] internal baseTokens;
    uint256[5] internal balancesBefore;
    IBasisExecutor.SpotMarket[4] internal marketsBefore;
    int256[4] internal positionsBefore;
    uint256 internal vaultBefore;
    uint256 internal ethBefore;

    function setUp() public override {
        super.setUp();
        _openShortOneEth(V3);
        vm.prank(keeper);
        ex.openPair(
            0,
            IBasisExecutor.PerpOrder(VBTC, false, false, 0.1e18, type(uint256).max, 0),
            IBasisExecutor.PerpOrder(VSOL, true, true, 40e18, 1, 0),
            IPairExecutor.PairBounds(block.timestamp + 60, 1e18, type(uint256).max)
        );
        vm.deal(address(ex), 3 ether);
        tokens = [address(usdc), address(weth), address(wbtc), address(sol), address(fot)];
        baseTokens = [VETH, VBTC, VSOL, VFOT];
        for (uint256 i; i < tokens.length; i++) {
            balancesBefore[i] = _balance(tokens[i], address(ex));
        }
        for (uint256 i; i < baseTokens.length; i++) {
            marketsBefore[i] = ex.spotMarket(baseTokens[i]);
            positionsBefore[i] = ch.positions(address(ex), baseTokens[i]);
        }
        vaultBefore = vault.balanceOf(address(ex));
        ethBefore = address(ex).balance;
        address[] memory tokenList = new address[](tokens.length);
        for (uint256 i; i < tokens.length; i++) {
            tokenList[i] = tokens[i];
        }
        address[] memory baseList = new address[](baseTokens.length);
        for (uint256 i; i < baseTokens.length; i++) {
            baseList[i] = baseTokens[i];
        }
        handler = new StrangerHandler(ex, tokenList, baseList);
        targetContract(address(handler));
    }

    function _balance(address token, address account) internal view returns (uint256) {
        (, bytes memory ret) = token.staticcall(abi.encodeWithSignature("balanceOf(address)", account));
        return abi.decode(ret, (uint256));
    }

    /// forge-config: ci.invariant.runs = 10000
    /// forge-config: ci.invariant.depth = 10
    function invariant_AStrangerChangesNothing() public view {
        for (uint256 i; i < tokens.length; i++) {
            assertEq(_balance(tokens[i], address(ex)), balancesBefore[i], "executor token balance");
            assertEq(_balance(tokens[i], treasury), 0, "treasury received tokens");
        }
        assertEq(address(ex).balance, ethBefore, "executor ETH");
        assertEq(treasury.balance, 0, "treasury received ETH");
        assertEq(vault.balanceOf(address(ex)), vaultBefore, "Vault collateral");
        for (uint256 i; i < baseTokens.length; i++) {
            assertEq(ch.positions(address(ex), baseTokens[i]), positionsBefore[i], "position");
            IBasisExecutor.SpotMarket memory m = ex.spotMarket(baseTokens[i]);
            assertEq(m.spotToken, marketsBefore[i].spotToken, "market spot token");
            assertEq(m.spotScaleTo18, marketsBefore[i].spotScaleTo18, "market scale");
            assertEq(m.v3FeePips, marketsBefore[i].v3FeePips, "market fee");
        }
        assertEq(_standingAllowances(), 0, "allowance");
        assertFalse(ex.paused(), "paused");
    }
}
