// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Basis executor: one delta-neutral basis trade (Perp v2 leg + Uniswap spot leg) per transaction
/// @notice The executor holds a Perpetual Protocol v2 account (USDC collateral in the Vault) and the
///         spot inventory. Each trade runs the perp leg on the ClearingHouse and the spot leg against
///         USDC on Uniswap V2 or V3 (picked per trade), then checks its bounds; any failed bound
///         reverts the whole transaction, so a trade either meets every bound or changes nothing.
///
///         Units: `*18` is 18 decimals (Perp base and quote), `*Raw` is a token's own raw units
///         (USDC 6, WBTC 8, WETH 18 ...), `*X96` is a Q64.96 square-root price, `*Wei` is ETH wei.
///         Signed changes are seen from the executor: positive = the executor gained.
///
///         Roles (all immutable, fixed at deployment):
///         - `operator`: the keeper's hot key. It can only trade (open, resize, close) and move the
///           executor's own USDC into its Perp Vault account; nothing it can call sends funds out.
///         - `admin`: a cold key. Withdraws collateral from the Vault, sends tokens and ETH out (to
///           the treasury only), registers markets and pauses / unpauses the operator.
///         - `treasury`: the only destination of every withdrawal.
///         A leaked hot key can at worst trade within the bounds it signs; rotating it means the
///         admin pausing this executor and migrating to a new one (`keeper executor migrate`).
///
///         Allowances: none stand. Each Vault deposit approves exactly its amount (the Vault pulls
///         it all); each spot leg approves its router for exactly its input (exact input) or its
///         maximum input (exact output, reset to zero after the swap).
///
///         Bounds of every trade (checked in this order; the first one that fails reverts):
///         1. caller is the operator (`NotOperator`), not paused (`IsPaused`), the deadline has not
///            passed (`Expired`), the perp market is registered (`UnsupportedToken`), the perp
///            bound is set (`MissingPerpBound`), an exact-input spot leg has a minimum out
///            (`MissingSpotBound`);
///         2. perp leg: `oppositeAmountBound18`, enforced by Perp itself (`CH_TLRS`, `CH_TMRS`,
///            `CH_TLRL`, `CH_TMRL`); every Perp revert string bubbles up unchanged;
///         3. spot leg: min out (exact input), on the executor's measured spot-token balance change
///            or the router's USDC out (`SpotSlippage`); max in (exact output): the router gets
///            exactly `limitRaw` as its maximum and allowance, so it reverts with its own reason
///            (V2 `UniswapV2Router: EXCESSIVE_INPUT_AMOUNT`, V3 `STF`), and the measured input is
///            checked again (`SpotSlippage`);
///         4. residual delta: |perp base change + spot balance change scaled to 18 decimals| <=
///            `maxResidualBase18` (`ResidualDeltaTooLarge`);
///         5. minimum net quote: the trade's quote flow (perp quote received or paid, fee included,
///            plus USDC received or paid on the spot leg, scaled to 18 decimals) >= `minNetQuote18`
///            (`ProfitBelowMin`).
///
///         About the minimum net quote (the profit bound). Summed over a position's open, resizes
///         and close, `netQuote18` is the position's trading PnL in USD (18 decimals): the basis
///         captured minus Perp and Uniswap fees and price impact, WITHOUT funding (settled by Perp
///         into the Vault account) and gas. So:
///         - on open, `minNetQuote18` bounds the basis locked in (short perp above spot: positive);
///         - on close, the keeper passes `minNetQuote18 = minRoundTripProfit18 - sum(netQuote18 of
///           the earlier trades of this position)`: the value the close returns must cover what the
///           position locked in plus the profit it wants (typically negative: closing costs the
///           basis that opening captured);
///         - `type(int256).min` disables the bound (e.g. a risk-driven close at any price).
interface IBasisExecutor {
    // ------------------------------------------------------------------------------------- types
    /// @notice Where the spot leg trades. Both venues trade the market's spot token against USDC in
    ///         one pool: Uniswap V2 through Router02, Uniswap V3 through SwapRouter at the market's fee.
    enum SpotVenue {
        UniswapV2,
        UniswapV3
    }

    /// @notice A perp market the executor may trade, keyed by its Perp base token (vETH, vBTC ...).
    /// @param spotToken the spot token hedging it (WETH, WBTC ...); zero when not registered
    /// @param spotScaleTo18 10**(18 - spot token decimals): raw spot units to 18 decimals
    /// @param v3FeePips fee tier of the Uniswap V3 spot pool used for this market (500 = 0.05%)
    struct SpotMarket {
        address spotToken;
        uint64 spotScaleTo18;
        uint24 v3FeePips;
    }

    /// @notice The perp leg of an open or a resize: `ClearingHouse.openPosition`'s parameters.
    /// @param baseToken Perp base token (vETH ...)
    /// @param isBaseToQuote true: sell base (short / reduce a long); false: buy base
    /// @param isExactInput true: `amount18` is what goes in; false: what comes out
    /// @param amount18 base (exact base) or quote (exact quote), 18 decimals
    /// @param oppositeAmountBound18 Perp's slippage bound on the other side, must be non-zero:
    ///        B2Q exact input = min quote out, B2Q exact output = max base in,
    ///        Q2B exact input = min base out, Q2B exact output = max quote in
    /// @param sqrtPriceLimitX96 Perp's price limit (0 = none); a limit may fill the leg partially
    struct PerpOrder {
        address baseToken;
        bool isBaseToQuote;
        bool isExactInput;
        uint256 amount18;
        uint256 oppositeAmountBound18;
        uint160 sqrtPriceLimitX96;
    }

    /// @notice The perp leg of a close: `ClearingHouse.closePosition`'s parameters.
    /// @param oppositeAmountBound18 closing a short (buy base back) = max quote in; closing a long
    ///        (sell base) = min quote out; must be non-zero
    struct PerpCloseOrder {
        address baseToken;
        uint256 oppositeAmountBound18;
        uint160 sqrtPriceLimitX96;
    }

    /// @notice The spot leg: the market's spot token against USDC, on one venue.
    /// @param venue Uniswap V2 or V3
    /// @param isBuy true: USDC in, spot token out; false: spot token in, USDC out
    /// @param isExactInput true: `amountRaw` goes in and `limitRaw` is the min out; false:
    ///        `amountRaw` comes out and `limitRaw` is the max in
    /// @param amountRaw raw units of the input (exact input) or output (exact output) token;
    ///        0 skips the spot leg (a perp-only rebalance; the residual bound still applies)
    /// @param limitRaw raw units of the other token: min out (non-zero) or max in
    struct SpotOrder {
        SpotVenue venue;
        bool isBuy;
        bool isExactInput;
        uint256 amountRaw;
        uint256 limitRaw;
    }

    /// @notice The whole-trade bounds.
    /// @param deadline last valid block timestamp (also passed to Perp and the router)
    /// @param maxResidualBase18 max |perp base change + spot change scaled to 18 decimals|
    /// @param minNetQuote18 min net quote flow of the trade; see the contract notice
    struct TradeBounds {
        uint256 deadline;
        uint256 maxResidualBase18;
        int256 minNetQuote18;
    }

    /// @notice What a trade did, seen from the executor (positive = gained). Returned by every trade
    ///         (so an eth_call simulation reads the fills) and emitted in its event.
    /// @param perpBase18 taker position change (short 1 vETH = -1e18)
    /// @param perpQuote18 quote received (+, selling base) or paid (-, buying base), fee included
    /// @param spotRaw spot token balance change, measured (buy 1 WETH = +1e18)
    /// @param usdcRaw USDC received (+) or paid (-) on the spot leg, as the router reports it
    /// @param residualBase18 perpBase18 + spotRaw * spotScaleTo18
    /// @param netQuote18 perpQuote18 + usdcRaw scaled to 18 decimals
    /// @param positionBase18After taker position after the trade
    struct Fills {
        int256 perpBase18;
        int256 perpQuote18;
        int256 spotRaw;
        int256 usdcRaw;
        int256 residualBase18;
        int256 netQuote18;
        int256 positionBase18After;
    }

    // ------------------------------------------------------------------------------------ errors
    /// @notice Only the operator (the keeper's hot key) may trade.
    error NotOperator(address caller);
    /// @notice Only the admin may withdraw, set markets or pause.
    error NotAdmin(address caller);
    /// @notice Only the admin or the operator may deposit collateral.
    error NotAdminOrOperator(address caller);
    /// @notice The admin paused the operator.
    error IsPaused();
    /// @notice A role given to the constructor is the zero address.
    error ZeroAddress(string role);
    /// @notice The operator must be a key of its own: neither the admin nor the treasury.
    error RolesNotSeparate(address operator);
    /// @notice A protocol address given to (or read by) the constructor has no code.
    error NoCode(address target);
    /// @notice `setMarket` cannot change a market that holds a taker position.
    error MarketHasPosition(address baseToken, int256 positionBase18);
    /// @notice An exact-input spot leg without a minimum out.
    error MissingSpotBound();
    /// @notice The trade's deadline passed.
    error Expired(uint256 deadline, uint256 nowTimestamp);
    /// @notice The token is not a registered perp market, or cannot be a spot token.
    error UnsupportedToken(address token);
    /// @notice A perp leg without `oppositeAmountBound18` (Perp reads 0 as "no slippage check").
    error MissingPerpBound();
    /// @notice `openBasis` needs a flat taker position in the market.
    error PositionNotFlat(address baseToken, int256 positionBase18);
    /// @notice `resizeBasis` needs an open taker position in the market.
    error NoPosition(address baseToken);
    /// @notice The spot leg broke its bound. Exact input: `filledRaw` is the output received and
    ///         `limitRaw` the minimum. Exact output: `filledRaw` is the input paid and `limitRaw` the maximum.
    error SpotSlippage(uint256 filledRaw, uint256 limitRaw);
    /// @notice The legs do not offset within the bound.
    error ResidualDeltaTooLarge(int256 residualBase18, uint256 maxResidualBase18);
    /// @notice The trade's net quote flow is below the keeper's minimum.
    error ProfitBelowMin(int256 netQuote18, int256 minNetQuote18);
    /// @notice A token's transfer or approve reverted or returned false.
    error TokenCallFailed(address token);
    /// @notice Sending ETH failed.
    error EthTransferFailed(address to, uint256 amountWei);
    /// @notice An amount does not fit int256.
    error AmountTooLarge(uint256 amount);

    // ------------------------------------------------------------------------------------ events
    /// @notice A basis position was opened (from flat).
    event BasisOpened(
        address indexed baseToken,
        SpotVenue spotVenue,
        int256 perpBase18,
        int256 perpQuote18,
        int256 spotRaw,
        int256 usdcRaw,
        int256 residualBase18,
        int256 netQuote18,
        int256 positionBase18After
    );
    /// @notice An open basis position was increased, decreased or flipped.
    event BasisResized(
        address indexed baseToken,
        SpotVenue spotVenue,
        int256 perpBase18,
        int256 perpQuote18,
        int256 spotRaw,
        int256 usdcRaw,
        int256 residualBase18,
        int256 netQuote18,
        int256 positionBase18After
    );
    /// @notice A basis position was closed (perp through `closePosition`).
    event BasisClosed(
        address indexed baseToken,
        SpotVenue spotVenue,
        int256 perpBase18,
        int256 perpQuote18,
        int256 spotRaw,
        int256 usdcRaw,
        int256 residualBase18,
        int256 netQuote18,
        int256 positionBase18After
    );
    /// @notice The admin registered, changed or removed (`spotToken` zero) a market.
    event MarketSet(address indexed baseToken, address indexed spotToken, uint64 spotScaleTo18, uint24 v3FeePips);
    /// @notice The admin paused or unpaused the operator.
    event PausedSet(bool paused);
    /// @notice USDC moved from the executor into its Perp Vault account (alone or inside a trade).
    event CollateralDeposited(address indexed by, uint256 usdcRaw);
    /// @notice USDC moved from the executor's Perp Vault account back to the executor.
    event CollateralWithdrawn(uint256 usdcRaw);
    /// @notice Tokens sent to the treasury.
    event TokenWithdrawn(address indexed token, address indexed treasury, uint256 amountRaw);
    /// @notice ETH sent to the treasury.
    event EthWithdrawn(address indexed treasury, uint256 amountWei);
    /// @notice ETH received (plain transfer).
    event EthReceived(address indexed from, uint256 amountWei);

    // ------------------------------------------------------------------------------------ wiring
    /// @notice The cold key: withdrawals (to the treasury), markets, pause. Immutable.
    function admin() external view returns (address);

    /// @notice The only destination of withdrawals. Immutable.
    function treasury() external view returns (address);

    /// @notice The keeper's hot key: the only caller of the trades. Immutable: rotating it means
    ///         pausing this executor and migrating to a new one.
    function operator() external view returns (address);

    /// @notice True while the admin has stopped the operator (trades and its deposits revert).
    function paused() external view returns (bool);

    /// @notice Perp v2 ClearingHouse.
    function clearingHouse() external view returns (address);

    /// @notice Perp v2 Vault (read from the ClearingHouse at deployment).
    function vault() external view returns (address);

    /// @notice Perp v2 AccountBalance (read from the ClearingHouse at deployment).
    function accountBalance() external view returns (address);

    /// @notice Uniswap V2 Router02.
    function uniswapV2Router() external view returns (address);

    /// @notice Uniswap V3 SwapRouter.
    function uniswapV3Router() external view returns (address);

    /// @notice The Vault's settlement token (USDC): collateral, and the spot legs' quote token.
    function usdc() external view returns (address);

    /// @notice The registered spot market of a Perp base token (all zero when not registered).
    function spotMarket(address baseToken) external view returns (SpotMarket memory);

    // ----------------------------------------------------------------------------------- trading
    /// @notice Open a basis position from flat: optionally deposit USDC collateral, then the perp
    ///         leg (`openPosition`), then the spot leg; then check the bounds.
    /// @param depositUsdcRaw USDC moved from the executor into the Vault first (0 = none), with an
    ///        approval of exactly this amount
    /// @return fills what the trade did
    function openBasis(
        uint256 depositUsdcRaw,
        PerpOrder calldata perp,
        SpotOrder calldata spot,
        TradeBounds calldata bounds
    ) external returns (Fills memory fills);

    /// @notice Change an open basis position (grow, shrink or flip): like `openBasis` but needs a
    ///         non-zero taker position in the market.
    function resizeBasis(
        uint256 depositUsdcRaw,
        PerpOrder calldata perp,
        SpotOrder calldata spot,
        TradeBounds calldata bounds
    ) external returns (Fills memory fills);

    /// @notice Close the market's taker position (`closePosition`) and trade the spot leg back.
    ///         Collateral and realized PnL stay in the Vault (`withdrawCollateral`).
    function closeBasis(PerpCloseOrder calldata perp, SpotOrder calldata spot, TradeBounds calldata bounds)
        external
        returns (Fills memory fills);

    // -------------------------------------------------------------------------------- collateral
    /// @notice Move USDC from the executor into its Perp Vault account, approving exactly `usdcRaw`.
    ///         The operator (not while paused) or the admin.
    function depositCollateral(uint256 usdcRaw) external;

    /// @notice Move USDC from the executor's Perp Vault account back to the executor. Admin only.
    function withdrawCollateral(uint256 usdcRaw) external;

    // ------------------------------------------------------------------------------------- admin
    /// @notice Register (or change) the spot token and V3 fee tier hedging a Perp base token;
    ///         `spotToken` zero removes the market. Refused while the market holds a taker position
    ///         (`MarketHasPosition`). The spot token must have at most 18 decimals and must not be
    ///         USDC. Admin only.
    function setMarket(address baseToken, address spotToken, uint24 v3FeePips) external;

    /// @notice Stop (true) or restart (false) the operator. Admin only; admin functions keep working.
    function setPaused(bool paused_) external;

    /// @notice Send tokens held by the executor to the treasury (tokens returning no bool are
    ///         handled). Admin only.
    function withdrawToken(address token, uint256 amountRaw) external;

    /// @notice Send ETH held by the executor to the treasury. Admin only.
    function withdrawEth(uint256 amountWei) external;
}
