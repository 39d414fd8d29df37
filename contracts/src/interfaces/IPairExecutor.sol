// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "./IBasisExecutor.sol";

/// @title Pair executor: two Perp v2 legs on two markets (long one, short the other) per transaction
/// @notice The pairs trade (long vETH, short vBTC, or the reverse) runs both perp legs through the
///         ClearingHouse in ONE transaction, so the pair is either on at the bounded prices or not
///         at all: there is no single-legged moment. No spot leg. Same roles as the basis trades
///         (IBasisExecutor): only the `operator`, not while `paused`.
///
///         Units as in IBasisExecutor: `*18` is 18 decimals (Perp base and quote), `*Raw` is a
///         token's raw units. Leg A and leg B must be two different registered markets
///         (`setMarket`). A pair's positions are the executor's taker positions in those markets,
///         the same ones a basis trade would hold: opening a pair needs both markets flat
///         (`PositionNotFlat`), so a market is never in a pair and a basis trade at once, and
///         `setMarket` refuses a market while a pair holds it (`MarketHasPosition`).
///
///         Bounds of a pair trade (checked in this order; the first one that fails reverts and the
///         whole transaction changes nothing):
///         1. caller is the operator (`NotOperator`), not paused (`IsPaused`), the deadline has not
///            passed (`Expired`), both markets registered (`UnsupportedToken`) and different
///            (`SamePairMarket`), each leg's perp bound set (`MissingPerpBound`); open: both
///            markets flat (`PositionNotFlat`); resize: both hold a position (`NoPosition`);
///         2. each leg: its own `oppositeAmountBound18`, enforced by Perp (`CH_TLRS`, `CH_TMRS`,
///            `CH_TLRL`, `CH_TMRL`; Perp's revert strings bubble up unchanged); leg A trades first;
///         3. net exposure after the fills (`NetExposureTooLarge`):
///            |exposureA + hedgeRatio18 * exposureB / 1e18| <= `maxNetExposureQuote18`, where a
///            leg's exposure is its taker position after the trade valued at that leg's own average
///            fill price in this transaction, fee included:
///            exposureQuote18 = positionBase18After * |perpQuote18| / |perpBase18| (rounded toward
///            zero; signed like the position: long > 0, short < 0). With the spread defined as
///            log(price A) - beta * log(price B), a beta-neutral pair holds notional A = beta x
///            notional B in opposite directions, so `hedgeRatio18` = beta * 1e18 makes the net
///            exposure zero for a perfectly sized pair (1e18: dollar-neutral). The bound protects
///            the hedge itself: a leg that a price limit filled only partly, a resize that moved one
///            leg more than the other, or legs mis-sized by the caller all leave a net directional
///            exposure, in USD (18 decimals), that the caller caps. A leg whose fill is zero base
///            cannot be valued and reverts (`LegNotFilled`). After a full close both positions
///            are zero, so the net exposure is 0.
interface IPairExecutor {
    // ------------------------------------------------------------------------------------- types
    /// @notice The whole-pair bounds.
    /// @param deadline last valid block timestamp (also passed to Perp for both legs)
    /// @param hedgeRatio18 beta, 18 decimals: the weight of leg B's exposure in the net exposure
    /// @param maxNetExposureQuote18 max |exposureA + beta * exposureB| after the fills, USD 18 decimals
    struct PairBounds {
        uint256 deadline;
        uint256 hedgeRatio18;
        uint256 maxNetExposureQuote18;
    }

    /// @notice What a pair trade did, seen from the executor (positive = gained). Returned by every
    ///         pair trade (so an eth_call simulation reads the fills) and emitted in its event.
    /// @param perpBase18A leg A's taker position change
    /// @param perpQuote18A leg A's quote received (+) or paid (-), Perp's fee included
    /// @param positionBase18AfterA leg A's taker position after the trade
    /// @param perpBase18B leg B's taker position change
    /// @param perpQuote18B leg B's quote received (+) or paid (-), Perp's fee included
    /// @param positionBase18AfterB leg B's taker position after the trade
    /// @param netExposureQuote18 exposureA + hedgeRatio18 * exposureB / 1e18 (see the notice)
    struct PairFills {
        int256 perpBase18A;
        int256 perpQuote18A;
        int256 positionBase18AfterA;
        int256 perpBase18B;
        int256 perpQuote18B;
        int256 positionBase18AfterB;
        int256 netExposureQuote18;
    }

    // ------------------------------------------------------------------------------------ errors
    /// @notice Both legs of a pair name the same Perp market.
    error SamePairMarket(address baseToken);
    /// @notice A leg filled zero base (a price limit at the current price): its exposure has no price.
    error LegNotFilled(address baseToken);
    /// @notice The pair's net exposure after the fills is over the caller's bound.
    error NetExposureTooLarge(int256 netExposureQuote18, uint256 maxNetExposureQuote18);

    // ------------------------------------------------------------------------------------ events
    /// @notice A pair was opened (both markets from flat).
    event PairOpened(
        address indexed baseTokenA,
        address indexed baseTokenB,
        int256 perpBase18A,
        int256 perpQuote18A,
        int256 perpBase18B,
        int256 perpQuote18B,
        int256 netExposureQuote18,
        int256 positionBase18AfterA,
        int256 positionBase18AfterB
    );
    /// @notice An open pair was increased, decreased or flipped (both legs in one transaction).
    event PairResized(
        address indexed baseTokenA,
        address indexed baseTokenB,
        int256 perpBase18A,
        int256 perpQuote18A,
        int256 perpBase18B,
        int256 perpQuote18B,
        int256 netExposureQuote18,
        int256 positionBase18AfterA,
        int256 positionBase18AfterB
    );
    /// @notice A pair was closed (both legs through `closePosition`).
    event PairClosed(
        address indexed baseTokenA,
        address indexed baseTokenB,
        int256 perpBase18A,
        int256 perpQuote18A,
        int256 perpBase18B,
        int256 perpQuote18B,
        int256 netExposureQuote18,
        int256 positionBase18AfterA,
        int256 positionBase18AfterB
    );

    // ----------------------------------------------------------------------------------- trading
    /// @notice Open a pair from flat: optionally deposit USDC collateral (approving exactly that
    ///         amount, `CollateralDeposited`), then leg A and leg B (`openPosition` each, with its
    ///         own bound), then the net-exposure bound. Operator only, not while paused.
    /// @param depositUsdcRaw USDC moved from the executor into the Vault first (0 = none)
    /// @param legA first perp leg (e.g. long vETH: Q2B)
    /// @param legB second perp leg, on another market (e.g. short vBTC: B2Q)
    /// @return fills what the trade did
    function openPair(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder calldata legA,
        IBasisExecutor.PerpOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills);

    /// @notice Change an open pair (grow, shrink or flip either leg): like `openPair` but both
    ///         markets must hold a taker position.
    function resizePair(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder calldata legA,
        IBasisExecutor.PerpOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills);

    /// @notice Close both legs (`closePosition` each, with its own bound: closing a short = max
    ///         quote in, closing a long = min quote out), then the net-exposure bound (0 after a
    ///         full close; a price limit that stops one leg early leaves an exposure it caps).
    ///         Collateral and realized PnL stay in the Vault.
    function closePair(
        IBasisExecutor.PerpCloseOrder calldata legA,
        IBasisExecutor.PerpCloseOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills);
}
