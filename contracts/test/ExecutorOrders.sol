// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IBasisExecutor} from "../src/interfaces/IBasisExecutor.sol";

/// @notice Order builders shared by the mock-based tests (BasisExecutorBase) and the fork tests
///         (fork/DevnetFork.sol): no price limit on the perp leg.
abstract contract ExecutorOrders {
    function _perp(address baseToken, bool isBaseToQuote, bool isExactInput, uint256 amount18, uint256 bound18)
        internal
        pure
        returns (IBasisExecutor.PerpOrder memory)
    {
        return IBasisExecutor.PerpOrder(baseToken, isBaseToQuote, isExactInput, amount18, bound18, 0);
    }

    function _spot(IBasisExecutor.SpotVenue venue, bool isBuy, bool isExactInput, uint256 amountRaw, uint256 limitRaw)
        internal
        pure
        returns (IBasisExecutor.SpotOrder memory)
    {
        return IBasisExecutor.SpotOrder(venue, isBuy, isExactInput, amountRaw, limitRaw);
    }
}
