// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Perpetual Protocol v2 (Curie): the subset the basis executor calls
/// @notice Signatures match `@perp/curie-contract@2.8.4` (ClearingHouse, Vault, AccountBalance).
///         Perp takes the trader from `msg.sender`, so the caller of these functions owns the account.
///         Amounts named `*18` are Perp's 18-decimal base / quote amounts.

interface IPerpClearingHouse {
    /// @dev `oppositeAmountBound`: B2Q exact input = min quote out, B2Q exact output = max base in,
    ///      Q2B exact input = min base out, Q2B exact output = max quote in; 0 disables the check.
    struct OpenPositionParams {
        address baseToken;
        bool isBaseToQuote;
        bool isExactInput;
        uint256 amount;
        uint256 oppositeAmountBound;
        uint256 deadline;
        uint160 sqrtPriceLimitX96;
        bytes32 referralCode;
    }

    struct ClosePositionParams {
        address baseToken;
        uint160 sqrtPriceLimitX96;
        uint256 oppositeAmountBound;
        uint256 deadline;
        bytes32 referralCode;
    }

    /// @return base18 base swapped (absolute)
    /// @return quote18 quote received (short) or paid (long), Perp's fee included
    function openPosition(OpenPositionParams memory params) external returns (uint256 base18, uint256 quote18);

    /// @return base18 base closed (absolute)
    /// @return quote18 quote received (long closed) or paid (short closed), Perp's fee included
    function closePosition(ClosePositionParams calldata params) external returns (uint256 base18, uint256 quote18);

    function getVault() external view returns (address vault);

    function getAccountBalance() external view returns (address accountBalance);
}

interface IPerpVault {
    /// @dev Pulls `amount` of `token` from `msg.sender` with transferFrom.
    function deposit(address token, uint256 amount) external;

    function withdraw(address token, uint256 amount) external;

    function getSettlementToken() external view returns (address settlementToken);
}

interface IPerpAccountBalance {
    /// @return takerPositionSize signed base position, 18 decimals (negative = short)
    function getTakerPositionSize(address trader, address baseToken) external view returns (int256 takerPositionSize);
}
