// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IUniswapV3SwapRouter} from "../../src/interfaces/IUniswapRouters.sol";

/// @notice Speaks both Uniswap V2 Router02's and V3 SwapRouter's single-hop swaps at fixed rates
///         (out = in * num / den, in = ceil(out * den / num)). Pays from its own inventory; moves
///         tokens with low-level calls so tokens returning no bool work. Revert strings are the real
///         routers' where it matters (deadline, bounds).
contract MockSwapRouter {
    struct Rate {
        uint256 num;
        uint256 den;
    }

    mapping(address tokenIn => mapping(address tokenOut => Rate)) public rates;
    uint256 public swapCount;
    uint24 public lastFeePips;

    function setRate(address tokenIn, address tokenOut, uint256 num, uint256 den) external {
        rates[tokenIn][tokenOut] = Rate(num, den);
    }

    function quoteOut(address tokenIn, address tokenOut, uint256 amountIn) public view returns (uint256) {
        Rate memory r = rates[tokenIn][tokenOut];
        require(r.den != 0, "mock: no rate");
        return amountIn * r.num / r.den;
    }

    function quoteIn(address tokenIn, address tokenOut, uint256 amountOut) public view returns (uint256) {
        Rate memory r = rates[tokenIn][tokenOut];
        require(r.num != 0, "mock: no rate");
        return (amountOut * r.den + r.num - 1) / r.num;
    }

    // ------------------------------------------------------------------ Uniswap V2 Router02
    function swapExactTokensForTokens(
        uint256 amountIn,
        uint256 amountOutMin,
        address[] calldata path,
        address to,
        uint256 deadline
    ) external returns (uint256[] memory amounts) {
        require(deadline >= block.timestamp, "UniswapV2Router: EXPIRED");
        uint256 amountOut = quoteOut(path[0], path[1], amountIn);
        require(amountOut >= amountOutMin, "UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT");
        _settle(path[0], path[1], amountIn, amountOut, to);
        amounts = new uint256[](2);
        (amounts[0], amounts[1]) = (amountIn, amountOut);
    }

    function swapTokensForExactTokens(
        uint256 amountOut,
        uint256 amountInMax,
        address[] calldata path,
        address to,
        uint256 deadline
    ) external returns (uint256[] memory amounts) {
        require(deadline >= block.timestamp, "UniswapV2Router: EXPIRED");
        uint256 amountIn = quoteIn(path[0], path[1], amountOut);
        require(amountIn <= amountInMax, "UniswapV2Router: EXCESSIVE_INPUT_AMOUNT");
        _settle(path[0], path[1], amountIn, amountOut, to);
        amounts = new uint256[](2);
        (amounts[0], amounts[1]) = (amountIn, amountOut);
    }

    // ------------------------------------------------------------------ Uniswap V3 SwapRouter
    function exactInputSingle(IUniswapV3SwapRouter.ExactInputSingleParams calldata p)
        external
        payable
        returns (uint256 amountOut)
    {
        require(block.timestamp <= p.deadline, "Transaction too old");
        amountOut = quoteOut(p.tokenIn, p.tokenOut, p.amountIn);
        require(amountOut >= p.amountOutMinimum, "Too little received");
        lastFeePips = p.fee;
        _settle(p.tokenIn, p.tokenOut, p.amountIn, amountOut, p.recipient);
    }

    function exactOutputSingle(IUniswapV3SwapRouter.ExactOutputSingleParams calldata p)
        external
        payable
        returns (uint256 amountIn)
    {
        require(block.timestamp <= p.deadline, "Transaction too old");
        amountIn = quoteIn(p.tokenIn, p.tokenOut, p.amountOut);
        require(amountIn <= p.amountInMaximum, "Too much requested");
        lastFeePips = p.fee;
        _settle(p.tokenIn, p.tokenOut, amountIn, p.amountOut, p.recipient);
    }

    // ------------------------------------------------------------------ transfers
    function _settle(address tokenIn, address tokenOut, uint256 amountIn, uint256 amountOut, address to) private {
        swapCount++;
        _call(
            tokenIn,
            abi.encodeWithSignature("transferFrom(address,address,uint256)", msg.sender, address(this), amountIn)
        );
        _call(tokenOut, abi.encodeWithSignature("transfer(address,uint256)", to, amountOut));
    }

    function _call(address token, bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "mock: token transfer failed");
    }
}
