// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "./interfaces/IBasisExecutor.sol";
import {IPairExecutor} from "./interfaces/IPairExecutor.sol";

/// @title PairTrades
/// @notice The executor's pair trades (IPairExecutor): two Perp v2 legs on two registered markets in
///         one transaction, each leg with its own bound, then the net-exposure bound. BasisExecutor
///         inherits this and supplies what the pair shares with the basis trades (the role, pause and
///         deadline check, the market registry, the Perp calls, the Vault deposit) through the hooks
///         at the end; their reverts are IBasisExecutor's errors.
abstract contract PairTrades is IPairExecutor {
    // ----------------------------------------------------------------------------------- trading
    /// @inheritdoc IPairExecutor
    function openPair(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder calldata legA,
        IBasisExecutor.PerpOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills) {
        return _openOrResizePair(depositUsdcRaw, legA, legB, bounds, false);
    }

    /// @inheritdoc IPairExecutor
    function resizePair(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder calldata legA,
        IBasisExecutor.PerpOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills) {
        return _openOrResizePair(depositUsdcRaw, legA, legB, bounds, true);
    }

    /// @inheritdoc IPairExecutor
    function closePair(
        IBasisExecutor.PerpCloseOrder calldata legA,
        IBasisExecutor.PerpCloseOrder calldata legB,
        PairBounds calldata bounds
    ) external returns (PairFills memory fills) {
        (int256 positionA, int256 positionB) = _startPair(
            legA.baseToken, legA.oppositeAmountBound18, legB.baseToken, legB.oppositeAmountBound18, bounds.deadline
        );
        (fills.perpBase18A, fills.perpQuote18A) = _closePosition(legA, positionA, bounds.deadline);
        (fills.perpBase18B, fills.perpQuote18B) = _closePosition(legB, positionB, bounds.deadline);
        _checkPair(fills, bounds, positionA, positionB, legA.baseToken, legB.baseToken);
        emit PairClosed(
            legA.baseToken,
            legB.baseToken,
            fills.perpBase18A,
            fills.perpQuote18A,
            fills.perpBase18B,
            fills.perpQuote18B,
            fills.netExposureQuote18,
            fills.positionBase18AfterA,
            fills.positionBase18AfterB
        );
    }

    // -------------------------------------------------------------------------- internal: legs
    /// @dev Role, pause, deadline, both markets registered and different, both perp bounds set;
    ///      returns both taker positions before the trade.
    function _startPair(
        address baseTokenA,
        uint256 oppositeAmountBound18A,
        address baseTokenB,
        uint256 oppositeAmountBound18B,
        uint256 deadline
    ) private view returns (int256 positionA, int256 positionB) {
        _checkCanTrade(deadline);
        if (!_isMarket(baseTokenA)) revert IBasisExecutor.UnsupportedToken(baseTokenA);
        if (!_isMarket(baseTokenB)) revert IBasisExecutor.UnsupportedToken(baseTokenB);
        if (baseTokenA == baseTokenB) revert SamePairMarket(baseTokenA);
        if (oppositeAmountBound18A == 0 || oppositeAmountBound18B == 0) revert IBasisExecutor.MissingPerpBound();
        positionA = _takerPosition(baseTokenA);
        positionB = _takerPosition(baseTokenB);
    }

    /// @dev openPair (`resize` false: both markets flat first) and resizePair (`resize` true: both
    ///      held first): the shared checks, optional deposit, leg A, leg B, net exposure, the event.
    function _openOrResizePair(
        uint256 depositUsdcRaw,
        IBasisExecutor.PerpOrder calldata legA,
        IBasisExecutor.PerpOrder calldata legB,
        PairBounds calldata bounds,
        bool resize
    ) private returns (PairFills memory fills) {
        (int256 positionA, int256 positionB) = _startPair(
            legA.baseToken, legA.oppositeAmountBound18, legB.baseToken, legB.oppositeAmountBound18, bounds.deadline
        );
        if (resize) {
            if (positionA == 0) revert IBasisExecutor.NoPosition(legA.baseToken);
            if (positionB == 0) revert IBasisExecutor.NoPosition(legB.baseToken);
        } else {
            if (positionA != 0) revert IBasisExecutor.PositionNotFlat(legA.baseToken, positionA);
            if (positionB != 0) revert IBasisExecutor.PositionNotFlat(legB.baseToken, positionB);
        }
        if (depositUsdcRaw != 0) _deposit(depositUsdcRaw);
        (fills.perpBase18A, fills.perpQuote18A) = _openPosition(legA, bounds.deadline);
        (fills.perpBase18B, fills.perpQuote18B) = _openPosition(legB, bounds.deadline);
        _checkPair(fills, bounds, positionA, positionB, legA.baseToken, legB.baseToken);
        if (resize) {
            emit PairResized(
                legA.baseToken,
                legB.baseToken,
                fills.perpBase18A,
                fills.perpQuote18A,
                fills.perpBase18B,
                fills.perpQuote18B,
                fills.netExposureQuote18,
                fills.positionBase18AfterA,
                fills.positionBase18AfterB
            );
        } else {
            emit PairOpened(
                legA.baseToken,
                legB.baseToken,
                fills.perpBase18A,
                fills.perpQuote18A,
                fills.perpBase18B,
                fills.perpQuote18B,
                fills.netExposureQuote18,
                fills.positionBase18AfterA,
                fills.positionBase18AfterB
            );
        }
    }

    /// @dev Positions after, then the net-exposure bound (IPairExecutor notice); fills in the rest.
    function _checkPair(
        PairFills memory fills,
        PairBounds calldata bounds,
        int256 positionA,
        int256 positionB,
        address baseTokenA,
        address baseTokenB
    ) private pure {
        fills.positionBase18AfterA = positionA + fills.perpBase18A;
        fills.positionBase18AfterB = positionB + fills.perpBase18B;
        int256 exposureA =
            _exposureQuote18(baseTokenA, fills.perpBase18A, fills.perpQuote18A, fills.positionBase18AfterA);
        int256 exposureB =
            _exposureQuote18(baseTokenB, fills.perpBase18B, fills.perpQuote18B, fills.positionBase18AfterB);
        int256 netExposureQuote18 = exposureA + exposureB * _toInt256(bounds.hedgeRatio18) / 1e18;
        if (_abs(netExposureQuote18) > bounds.maxNetExposureQuote18) {
            revert NetExposureTooLarge(netExposureQuote18, bounds.maxNetExposureQuote18);
        }
        fills.netExposureQuote18 = netExposureQuote18;
    }

    /// @dev The position after, valued at this leg's average fill price (fee included), toward zero.
    function _exposureQuote18(address baseToken, int256 perpBase18, int256 perpQuote18, int256 positionBase18After)
        private
        pure
        returns (int256)
    {
        if (perpBase18 == 0) revert LegNotFilled(baseToken);
        return positionBase18After * _toInt256(_abs(perpQuote18)) / _toInt256(_abs(perpBase18));
    }

    // ----------------------------------------------------------------------------------- hooks
    /// @dev Reverts unless the caller is the operator, not paused, and `deadline` has not passed.
    function _checkCanTrade(uint256 deadline) internal view virtual;

    /// @dev Whether `baseToken` is a registered market.
    function _isMarket(address baseToken) internal view virtual returns (bool);

    /// @dev The executor's taker position in `baseToken`.
    function _takerPosition(address baseToken) internal view virtual returns (int256 positionBase18);

    /// @dev Moves `usdcRaw` into the Vault with an exact approval, emitting `CollateralDeposited`.
    function _deposit(uint256 usdcRaw) internal virtual;

    /// @dev One `openPosition`; the signed fill.
    function _openPosition(IBasisExecutor.PerpOrder calldata perp, uint256 deadline)
        internal
        virtual
        returns (int256 perpBase18, int256 perpQuote18);

    /// @dev One `closePosition` of a position of `positionBase18`; the signed fill.
    function _closePosition(IBasisExecutor.PerpCloseOrder calldata perp, int256 positionBase18, uint256 deadline)
        internal
        virtual
        returns (int256 perpBase18, int256 perpQuote18);

    function _toInt256(uint256 amount) internal pure virtual returns (int256);

    function _abs(int256 value) internal pure virtual returns (uint256);
}
