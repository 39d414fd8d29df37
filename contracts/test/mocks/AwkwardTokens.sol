// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The shared bookkeeping of the awkward tokens below (no return values of its own).
abstract contract AwkwardTokenBase {
    uint8 public immutable decimals;
    mapping(address account => uint256 balance) public balanceOf;
    mapping(address owner => mapping(address spender => uint256 allowance)) public allowance;

    constructor(uint8 decimals_) {
        decimals = decimals_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function _move(address from, address to, uint256 amount, uint256 feeBps) internal {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount - amount * feeBps / 10_000;
    }

    function _spend(address from, uint256 amount) internal {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= amount, "allowance");
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - amount;
    }
}

/// @notice USDT-style: transfer, transferFrom and approve return nothing, and approve refuses to
///         change a non-zero allowance to another non-zero value.
contract NoBoolToken is AwkwardTokenBase {
    constructor(uint8 decimals_) AwkwardTokenBase(decimals_) {}

    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount, 0);
    }

    function transferFrom(address from, address to, uint256 amount) external {
        _spend(from, amount);
        _move(from, to, amount, 0);
    }

    function approve(address spender, uint256 amount) external {
        require(amount == 0 || allowance[msg.sender][spender] == 0, "USDT: reset allowance first");
        allowance[msg.sender][spender] = amount;
    }
}

/// @notice Takes a fee (in bps) from every transfer: the recipient gets less than was sent.
contract FeeOnTransferToken is AwkwardTokenBase {
    uint256 public immutable feeBps;

    constructor(uint8 decimals_, uint256 feeBps_) AwkwardTokenBase(decimals_) {
        feeBps = feeBps_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount, feeBps);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, amount, feeBps);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }
}

/// @notice Returns false instead of reverting when a transfer or approve fails.
contract ReturnsFalseToken is AwkwardTokenBase {
    constructor() AwkwardTokenBase(18) {}

    function transfer(address to, uint256 amount) external returns (bool) {
        if (balanceOf[msg.sender] < amount) return false;
        _move(msg.sender, to, amount, 0);
        return true;
    }

    function approve(address, uint256) external pure returns (bool) {
        return false;
    }
}

/// @notice Refuses ETH.
contract EthRefuser {
    receive() external payable {
        revert("no ETH");
    }
}
