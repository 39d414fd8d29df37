// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "./interfaces/IBasisExecutor.sol";
import {PairTrades} from "./PairTrades.sol";
import {IERC20Like} from "./interfaces/IERC20Like.sol";
import {IPerpAccountBalance, IPerpClearingHouse, IPerpVault} from "./interfaces/IPerpV2.sol";
import {IUniswapV2Router, IUniswapV3SwapRouter} from "./interfaces/IUniswapRouters.sol";

/// @title BasisExecutor
/// @notice Opens, resizes and closes a delta-neutral basis position (Perp v2 leg + Uniswap V2 or V3
///         spot leg) in one transaction, and a pair (two Perp v2 legs on two markets, IPairExecutor)
///         in one transaction. The keeper's hot key (operator) only trades; a cold admin
///         withdraws (to the treasury only), sets markets and pauses. See IBasisExecutor for the
///         roles, bounds, units and the meaning of the minimum net quote.
/// @dev Gas: every address the executor talks to is immutable; a trade reads one storage slot (the
///      packed market), the taker position once (the ClearingHouse reads it again, warm) and the
///      spot-token balance twice (the router then transfers it, warm). Perp's returned fills give
///      the perp leg exactly (base = |exchangedPositionSize|), so no position is read afterwards.
///      The pause flag is the only other slot a trade reads. No standing allowances: each deposit
///      and swap approves its exact amount. No reentrancy guard: every state-changing entry point
///      is operator- or admin-only, so a reentrant call from a token or router fails the role check.
contract BasisExecutor is IBasisExecutor, PairTrades {
    // ------------------------------------------------------------------------------------ wiring
    /// @inheritdoc IBasisExecutor
    address public immutable admin;
    /// @inheritdoc IBasisExecutor
    address public immutable treasury;
    /// @inheritdoc IBasisExecutor
    address public immutable operator;
    /// @inheritdoc IBasisExecutor
    address public immutable clearingHouse;
    /// @inheritdoc IBasisExecutor
    address public immutable vault;
    /// @inheritdoc IBasisExecutor
    address public immutable accountBalance;
    /// @inheritdoc IBasisExecutor
    address public immutable uniswapV2Router;
    /// @inheritdoc IBasisExecutor
    address public immutable uniswapV3Router;
    /// @inheritdoc IBasisExecutor
    address public immutable usdc;
    /// @dev 10**(18 - USDC decimals): raw USDC to 18 decimals
    int256 private immutable _usdcScaleTo18;

    // ----------------------------------------------------------------------------------- state
    /// @inheritdoc IBasisExecutor
    bool public paused;
    mapping(address baseToken => SpotMarket market) private _markets;

    /// @param admin_ the cold key: withdrawals, markets, pause
    /// @param treasury_ where withdrawals go
    /// @param operator_ the keeper's hot key: trades only (neither the admin nor the treasury)
    /// @param clearingHouse_ Perp v2 ClearingHouse (the Vault, AccountBalance and USDC are read from it)
    /// @param uniswapV2Router_ Uniswap V2 Router02
    /// @param uniswapV3Router_ Uniswap V3 SwapRouter
    constructor(
        address admin_,
        address treasury_,
        address operator_,
        address clearingHouse_,
        address uniswapV2Router_,
        address uniswapV3Router_
    ) {
        if (admin_ == address(0)) revert ZeroAddress("admin");
        if (treasury_ == address(0)) revert ZeroAddress("treasury");
        if (operator_ == address(0)) revert ZeroAddress("operator");
        if (operator_ == admin_ || operator_ == treasury_) revert RolesNotSeparate(operator_);
        _checkCode(clearingHouse_);
        _checkCode(uniswapV2Router_);
        _checkCode(uniswapV3Router_);
        address vault_ = IPerpClearingHouse(clearingHouse_).getVault();
        address accountBalance_ = IPerpClearingHouse(clearingHouse_).getAccountBalance();
        _checkCode(vault_);
        _checkCode(accountBalance_);
        address usdc_ = IPerpVault(vault_).getSettlementToken();
        _checkCode(usdc_);
        uint8 usdcDecimals = IERC20Like(usdc_).decimals();
        if (usdcDecimals > 18) revert UnsupportedToken(usdc_);
        admin = admin_;
        treasury = treasury_;
        operator = operator_;
        clearingHouse = clearingHouse_;
        vault = vault_;
        accountBalance = accountBalance_;
        uniswapV2Router = uniswapV2Router_;
        uniswapV3Router = uniswapV3Router_;
        usdc = usdc_;
        _usdcScaleTo18 = int256(10 ** (18 - uint256(usdcDecimals)));
    }

    /// @notice Accepts ETH; only the admin can send it out, to the treasury (`withdrawEth`).
    receive() external payable {
        emit EthReceived(msg.sender, msg.value);
    }

    /// @inheritdoc IBasisExecutor
    function spotMarket(address baseToken) external view returns (SpotMarket memory) {
        return _markets[baseToken];
    }

    // ----------------------------------------------------------------------------------- trading
    /// @inheritdoc IBasisExecutor
    function openBasis(
        uint256 depositUsdcRaw,
        PerpOrder calldata perp,
        SpotOrder calldata spot,
        TradeBounds calldata bounds
    ) external returns (Fills memory fills) {
        return _openOrResizeBasis(depositUsdcRaw, perp, spot, bounds, false);
    }

    /// @inheritdoc IBasisExecutor
    function resizeBasis(
        uint256 depositUsdcRaw,
        PerpOrder calldata perp,
        SpotOrder calldata spot,
        TradeBounds calldata bounds
    ) external returns (Fills memory fills) {
        return _openOrResizeBasis(depositUsdcRaw, perp, spot, bounds, true);
    }

    /// @inheritdoc IBasisExecutor
    function closeBasis(PerpCloseOrder calldata perp, SpotOrder calldata spot, TradeBounds calldata bounds)
        external
        returns (Fills memory fills)
    {
        SpotMarket memory market = _startTrade(perp.baseToken, perp.oppositeAmountBound18, spot, bounds.deadline);
        int256 positionBase18 = _takerPosition(perp.baseToken);
        (fills.perpBase18, fills.perpQuote18) = _closePosition(perp, positionBase18, bounds.deadline);
        _tradeSpot(fills, spot, market, bounds.deadline);
        _checkBounds(fills, bounds, market.spotScaleTo18, positionBase18);
        emit BasisClosed(
            perp.baseToken,
            spot.venue,
            fills.perpBase18,
            fills.perpQuote18,
            fills.spotRaw,
            fills.usdcRaw,
            fills.residualBase18,
            fills.netQuote18,
            fills.positionBase18After
        );
    }

    // -------------------------------------------------------------------------------- collateral
    /// @inheritdoc IBasisExecutor
    function depositCollateral(uint256 usdcRaw) external {
        if (msg.sender != admin) {
            if (msg.sender != operator) revert NotAdminOrOperator(msg.sender);
            if (paused) revert IsPaused();
        }
        _deposit(usdcRaw);
    }

    /// @inheritdoc IBasisExecutor
    function withdrawCollateral(uint256 usdcRaw) external {
        _checkAdmin();
        IPerpVault(vault).withdraw(usdc, usdcRaw);
        emit CollateralWithdrawn(usdcRaw);
    }

    // ------------------------------------------------------------------------------------- admin
    /// @inheritdoc IBasisExecutor
    function setMarket(address baseToken, address spotToken, uint24 v3FeePips) external {
        _checkAdmin();
        if (baseToken == address(0)) revert UnsupportedToken(baseToken);
        int256 positionBase18 = _takerPosition(baseToken);
        if (positionBase18 != 0) revert MarketHasPosition(baseToken, positionBase18);
        if (spotToken == address(0)) {
            delete _markets[baseToken];
            emit MarketSet(baseToken, address(0), 0, 0);
            return;
        }
        if (spotToken == usdc) revert UnsupportedToken(spotToken);
        uint8 spotDecimals = IERC20Like(spotToken).decimals();
        if (spotDecimals > 18) revert UnsupportedToken(spotToken);
        uint64 spotScaleTo18 = uint64(10 ** (18 - uint256(spotDecimals)));
        _markets[baseToken] = SpotMarket({spotToken: spotToken, spotScaleTo18: spotScaleTo18, v3FeePips: v3FeePips});
        emit MarketSet(baseToken, spotToken, spotScaleTo18, v3FeePips);
    }

    /// @inheritdoc IBasisExecutor
    function setPaused(bool paused_) external {
        _checkAdmin();
        paused = paused_;
        emit PausedSet(paused_);
    }

    /// @inheritdoc IBasisExecutor
    function withdrawToken(address token, uint256 amountRaw) external {
        _checkAdmin();
        _callToken(token, abi.encodeCall(IERC20Like.transfer, (treasury, amountRaw)));
        emit TokenWithdrawn(token, treasury, amountRaw);
    }

    /// @inheritdoc IBasisExecutor
    function withdrawEth(uint256 amountWei) external {
        _checkAdmin();
        (bool sent,) = treasury.call{value: amountWei}("");
        if (!sent) revert EthTransferFailed(treasury, amountWei);
        emit EthWithdrawn(treasury, amountWei);
    }

    // ---------------------------------------------------------------------------- internal: legs
    /// @dev Role, pause, deadline, market and bound-presence checks shared by every trade; two SLOADs.
    function _startTrade(address baseToken, uint256 oppositeAmountBound18, SpotOrder calldata spot, uint256 deadline)
        private
        view
        returns (SpotMarket memory market)
    {
        _checkCanTrade(deadline);
        market = _markets[baseToken];
        if (market.spotToken == address(0)) revert UnsupportedToken(baseToken);
        if (oppositeAmountBound18 == 0) revert MissingPerpBound();
        if (spot.isExactInput && spot.amountRaw != 0 && spot.limitRaw == 0) revert MissingSpotBound();
    }

    /// @dev The operator, not paused, before the deadline: every trade's first check (basis and pair).
    function _checkCanTrade(uint256 deadline) internal view override {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (paused) revert IsPaused();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert Expired(deadline, block.timestamp);
    }

    function _isMarket(address baseToken) internal view override returns (bool) {
        return _markets[baseToken].spotToken != address(0);
    }

    /// @dev Vault deposit with an approval of exactly the amount (the Vault pulls all of it).
    function _deposit(uint256 usdcRaw) internal override {
        _callToken(usdc, abi.encodeCall(IERC20Like.approve, (vault, usdcRaw)));
        IPerpVault(vault).deposit(usdc, usdcRaw);
        emit CollateralDeposited(msg.sender, usdcRaw);
    }

    /// @dev openBasis (`resize` false: the market flat first) and resizeBasis (`resize` true: held
    ///      first): the shared checks, optional deposit, `openPosition`, spot leg, bounds, the event.
    function _openOrResizeBasis(
        uint256 depositUsdcRaw,
        PerpOrder calldata perp,
        SpotOrder calldata spot,
        TradeBounds calldata bounds,
        bool resize
    ) private returns (Fills memory fills) {
        SpotMarket memory market = _startTrade(perp.baseToken, perp.oppositeAmountBound18, spot, bounds.deadline);
        int256 positionBase18 = _takerPosition(perp.baseToken);
        if (resize && positionBase18 == 0) revert NoPosition(perp.baseToken);
        if (!resize && positionBase18 != 0) revert PositionNotFlat(perp.baseToken, positionBase18);
        if (depositUsdcRaw != 0) _deposit(depositUsdcRaw);
        (fills.perpBase18, fills.perpQuote18) = _openPosition(perp, bounds.deadline);
        _tradeSpot(fills, spot, market, bounds.deadline);
        _checkBounds(fills, bounds, market.spotScaleTo18, positionBase18);
        if (resize) {
            emit BasisResized(
                perp.baseToken,
                spot.venue,
                fills.perpBase18,
                fills.perpQuote18,
                fills.spotRaw,
                fills.usdcRaw,
                fills.residualBase18,
                fills.netQuote18,
                fills.positionBase18After
            );
        } else {
            emit BasisOpened(
                perp.baseToken,
                spot.venue,
                fills.perpBase18,
                fills.perpQuote18,
                fills.spotRaw,
                fills.usdcRaw,
                fills.residualBase18,
                fills.netQuote18,
                fills.positionBase18After
            );
        }
    }

    /// @dev One `openPosition`; returns the signed fill (executor's view).
    function _openPosition(PerpOrder calldata perp, uint256 deadline)
        internal
        override
        returns (int256 perpBase18, int256 perpQuote18)
    {
        (uint256 base18, uint256 quote18) = IPerpClearingHouse(clearingHouse)
            .openPosition(
                IPerpClearingHouse.OpenPositionParams({
                baseToken: perp.baseToken,
                isBaseToQuote: perp.isBaseToQuote,
                isExactInput: perp.isExactInput,
                amount: perp.amount18,
                oppositeAmountBound: perp.oppositeAmountBound18,
                deadline: deadline,
                sqrtPriceLimitX96: perp.sqrtPriceLimitX96,
                referralCode: bytes32(0)
            })
            );
        return _signedPerpFill(perp.isBaseToQuote, base18, quote18);
    }

    /// @dev One `closePosition` of a position of `positionBase18`; returns the signed fill. A flat
    ///      position reverts inside Perp (CH_PSZ); a long closes by selling base.
    function _closePosition(PerpCloseOrder calldata perp, int256 positionBase18, uint256 deadline)
        internal
        override
        returns (int256 perpBase18, int256 perpQuote18)
    {
        (uint256 base18, uint256 quote18) = IPerpClearingHouse(clearingHouse)
            .closePosition(
                IPerpClearingHouse.ClosePositionParams({
                baseToken: perp.baseToken,
                sqrtPriceLimitX96: perp.sqrtPriceLimitX96,
                oppositeAmountBound: perp.oppositeAmountBound18,
                deadline: deadline,
                referralCode: bytes32(0)
            })
            );
        return _signedPerpFill(positionBase18 > 0, base18, quote18);
    }

    /// @dev Perp's (base, quote) are absolute; the direction gives the signs. Quote includes the fee.
    function _signedPerpFill(bool isBaseToQuote, uint256 base18, uint256 quote18)
        private
        pure
        returns (int256 perpBase18, int256 perpQuote18)
    {
        int256 base = _toInt256(base18);
        int256 quote = _toInt256(quote18);
        return isBaseToQuote ? (-base, quote) : (base, -quote);
    }

    /// @dev Swaps the market's spot token against USDC and records both sides: the spot side as the
    ///      measured balance change (so a fee-on-transfer token cannot hide a shortfall), the USDC side
    ///      from the order and the router's return. The routers get no bound of their own: the bound
    ///      is checked here on the measured amounts, with a custom error carrying the numbers.
    function _tradeSpot(Fills memory fills, SpotOrder calldata spot, SpotMarket memory market, uint256 deadline)
        private
    {
        uint256 amountRaw = spot.amountRaw;
        if (amountRaw == 0) return;
        bool isBuy = spot.isBuy;
        bool isExactInput = spot.isExactInput;
        address spotToken = market.spotToken;
        (address tokenIn, address tokenOut) = isBuy ? (usdc, spotToken) : (spotToken, usdc);

        uint256 spotBeforeRaw = IERC20Like(spotToken).balanceOf(address(this));
        uint256 otherSideRaw = _swap(spot, tokenIn, tokenOut, market.v3FeePips, deadline);
        int256 spotRaw = _toInt256(IERC20Like(spotToken).balanceOf(address(this))) - _toInt256(spotBeforeRaw);

        uint256 usdcMovedRaw = isBuy == isExactInput ? amountRaw : otherSideRaw;
        fills.spotRaw = spotRaw;
        fills.usdcRaw = isBuy ? -_toInt256(usdcMovedRaw) : _toInt256(usdcMovedRaw);

        // The bounded side: exact input bounds the output, exact output bounds the input.
        uint256 filledRaw;
        if (isBuy != isExactInput) {
            filledRaw = otherSideRaw; // USDC out of a sell (exact input) or into a buy (exact output)
        } else if (isBuy) {
            filledRaw = spotRaw > 0 ? _abs(spotRaw) : 0; // spot received by an exact-input buy
        } else {
            filledRaw = spotRaw < 0 ? _abs(spotRaw) : 0; // spot paid by an exact-output sell
        }
        if (isExactInput ? filledRaw < spot.limitRaw : filledRaw > spot.limitRaw) {
            revert SpotSlippage(filledRaw, spot.limitRaw);
        }
    }

    /// @dev Approves the router for exactly the input (exact input: `amountRaw`, which the router pulls
    ///      whole; exact output: the maximum `limitRaw`, reset to zero after the swap), so that no
    ///      allowance outlives the trade, then swaps.
    /// @return otherSideRaw the output of an exact-input swap, the input of an exact-output swap
    function _swap(SpotOrder calldata spot, address tokenIn, address tokenOut, uint24 feePips, uint256 deadline)
        private
        returns (uint256 otherSideRaw)
    {
        bool isV3 = spot.venue == SpotVenue.UniswapV3;
        address router = isV3 ? uniswapV3Router : uniswapV2Router;
        uint256 maxInRaw = spot.isExactInput ? spot.amountRaw : spot.limitRaw;
        _callToken(tokenIn, abi.encodeCall(IERC20Like.approve, (router, maxInRaw)));
        otherSideRaw =
            isV3 ? _swapV3(spot, tokenIn, tokenOut, feePips, deadline) : _swapV2(spot, tokenIn, tokenOut, deadline);
        if (!spot.isExactInput) _callToken(tokenIn, abi.encodeCall(IERC20Like.approve, (router, 0)));
    }

    function _swapV2(SpotOrder calldata spot, address tokenIn, address tokenOut, uint256 deadline)
        private
        returns (uint256 otherSideRaw)
    {
        address[] memory path = new address[](2);
        path[0] = tokenIn;
        path[1] = tokenOut;
        if (spot.isExactInput) {
            return IUniswapV2Router(uniswapV2Router)
                .swapExactTokensForTokens(spot.amountRaw, 0, path, address(this), deadline)[1];
        }
        return IUniswapV2Router(uniswapV2Router)
            .swapTokensForExactTokens(spot.amountRaw, spot.limitRaw, path, address(this), deadline)[0];
    }

    function _swapV3(SpotOrder calldata spot, address tokenIn, address tokenOut, uint24 feePips, uint256 deadline)
        private
        returns (uint256 otherSideRaw)
    {
        if (spot.isExactInput) {
            return IUniswapV3SwapRouter(uniswapV3Router)
                .exactInputSingle(
                    IUniswapV3SwapRouter.ExactInputSingleParams({
                    tokenIn: tokenIn,
                    tokenOut: tokenOut,
                    fee: feePips,
                    recipient: address(this),
                    deadline: deadline,
                    amountIn: spot.amountRaw,
                    amountOutMinimum: 0,
                    sqrtPriceLimitX96: 0
                })
                );
        }
        return IUniswapV3SwapRouter(uniswapV3Router)
            .exactOutputSingle(
                IUniswapV3SwapRouter.ExactOutputSingleParams({
                tokenIn: tokenIn,
                tokenOut: tokenOut,
                fee: feePips,
                recipient: address(this),
                deadline: deadline,
                amountOut: spot.amountRaw,
                amountInMaximum: spot.limitRaw,
                sqrtPriceLimitX96: 0
            })
            );
    }

    // -------------------------------------------------------------------------- internal: bounds
    /// @dev Residual delta, then minimum net quote; fills in the derived fields.
    function _checkBounds(
        Fills memory fills,
        TradeBounds calldata bounds,
        uint64 spotScaleTo18,
        int256 positionBase18Before
    ) private view {
        int256 residualBase18 = fills.perpBase18 + fills.spotRaw * int256(uint256(spotScaleTo18));
        if (_abs(residualBase18) > bounds.maxResidualBase18) {
            revert ResidualDeltaTooLarge(residualBase18, bounds.maxResidualBase18);
        }
        int256 netQuote18 = fills.perpQuote18 + fills.usdcRaw * _usdcScaleTo18;
        if (netQuote18 < bounds.minNetQuote18) revert ProfitBelowMin(netQuote18, bounds.minNetQuote18);
        fills.residualBase18 = residualBase18;
        fills.netQuote18 = netQuote18;
        fills.positionBase18After = positionBase18Before + fills.perpBase18;
    }

    // ------------------------------------------------------------------------- internal: helpers
    function _checkAdmin() private view {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
    }

    function _checkCode(address target) private view {
        if (target.code.length == 0) revert NoCode(target);
    }

    function _takerPosition(address baseToken) internal view override returns (int256 positionBase18) {
        return IPerpAccountBalance(accountBalance).getTakerPositionSize(address(this), baseToken);
    }

    /// @dev transfer / approve through a low-level call: accepts `true` or no return data (from a
    ///      contract); rejects a revert, `false`, short return data, or a target without code.
    function _callToken(address token, bytes memory data) private {
        (bool success, bytes memory returned) = token.call(data);
        bool accepted = success
            && (returned.length == 0
                    ? token.code.length != 0
                    : returned.length >= 32 && abi.decode(returned, (uint256)) == 1);
        if (!accepted) revert TokenCallFailed(token);
    }

    function _toInt256(uint256 amount) internal pure override returns (int256) {
        if (amount > uint256(type(int256).max)) revert AmountTooLarge(amount);
        // forge-lint: disable-next-line(unsafe-typecast)
        return int256(amount); // checked on the line above
    }

    /// @dev Negating type(int256).min reverts (checked arithmetic), so the cast never wraps.
    function _abs(int256 value) internal pure override returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(value >= 0 ? value : -value);
    }
}
