// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The ERC20 calls the basis executor makes
/// @dev `transfer` and `approve` are only ever called through a low-level call that accepts tokens
///      returning nothing (USDT-style) as well as tokens returning a bool.
interface IERC20Like {
    function balanceOf(address account) external view returns (uint256 balanceRaw);

    function decimals() external view returns (uint8);

    function transfer(address to, uint256 amountRaw) external returns (bool);

    function approve(address spender, uint256 amountRaw) external returns (bool);
}
