// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {MintableERC20} from "../src/MintableERC20.sol";
import {Multicall3} from "../src/Multicall3.sol";

contract MintableERC20Test is Test {
    MintableERC20 internal usdc;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    function setUp() public {
        usdc = new MintableERC20("USD Coin", "USDC", 6);
    }

    function test_Decimals() public view {
        assertEq(usdc.decimals(), 6);
    }

    function testFuzz_TransferMovesExactly(uint128 minted, uint128 sent) public {
        vm.assume(sent <= minted);
        usdc.mint(alice, minted);
        vm.prank(alice);
        usdc.transfer(bob, sent);
        assertEq(usdc.balanceOf(alice), uint256(minted) - sent);
        assertEq(usdc.balanceOf(bob), sent);
        assertEq(usdc.totalSupply(), minted);
    }

    function test_RevertWhen_NotMinter() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(MintableERC20.NotMinter.selector, alice));
        usdc.mint(alice, 1);
    }

    function test_RevertWhen_TransferFromOverAllowance() public {
        usdc.mint(alice, 100);
        vm.prank(alice);
        usdc.approve(bob, 10);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(MintableERC20.InsufficientAllowance.selector, alice, bob, 10, 11));
        usdc.transferFrom(alice, bob, 11);
    }

    function test_MulticallAllowsFailureOnlyWhenAsked() public {
        Multicall3 mc = new Multicall3();
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](2);
        calls[0] = Multicall3.Call3(address(usdc), false, abi.encodeCall(usdc.decimals, ()));
        calls[1] = Multicall3.Call3(address(usdc), true, abi.encodeCall(usdc.mint, (alice, 1)));
        Multicall3.Result[] memory results = mc.aggregate3(calls);
        assertTrue(results[0].success);
        assertEq(abi.decode(results[0].returnData, (uint8)), 6);
        assertFalse(results[1].success);

        calls[1].allowFailure = false;
        vm.expectRevert();
        mc.aggregate3(calls);
    }
}
