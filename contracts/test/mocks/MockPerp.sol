// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IPerpClearingHouse} from "../../src/interfaces/IPerpV2.sol";
import {MintableERC20} from "../../src/MintableERC20.sol";

/// @notice A Perp v2 Vault stand-in: pulls and pays the settlement token, keeps per-trader balances,
///         reverts with Perp's short codes.
contract MockPerpVault {
    MintableERC20 public immutable settlementToken;
    mapping(address trader => uint256 balanceRaw) public balanceOf;

    constructor(MintableERC20 settlementToken_) {
        settlementToken = settlementToken_;
    }

    function getSettlementToken() external view returns (address) {
        return address(settlementToken);
    }

    function deposit(address token, uint256 amountRaw) external {
        require(token == address(settlementToken), "V_OSCT");
        require(amountRaw > 0, "V_ZA");
        require(settlementToken.transferFrom(msg.sender, address(this), amountRaw), "mock: transferFrom");
        balanceOf[msg.sender] += amountRaw;
    }

    function withdraw(address token, uint256 amountRaw) external {
        require(token == address(settlementToken), "V_OSCT");
        require(balanceOf[msg.sender] >= amountRaw, "V_NEFC");
        balanceOf[msg.sender] -= amountRaw;
        require(settlementToken.transfer(msg.sender, amountRaw), "mock: transfer");
    }
}

/// @notice A Perp v2 ClearingHouse + AccountBalance stand-in: fills at a set price per base token with
///         a fee, keeps taker positions, and checks deadline and `oppositeAmountBound` with Perp's
///         revert strings. `forceRevert` makes the next trades revert with any reason. A close with
///         a price limit closes half the position (Perp's partial close at its limit).
contract MockClearingHouse {
    uint256 internal constant ONE_PPM = 1e6;

    MockPerpVault public immutable vault;
    uint256 public feePpm = 1000; // 0.1%, like the devnet markets
    string public forcedRevertReason;
    mapping(address baseToken => uint256 quote18PerBase) public price18;
    mapping(address trader => mapping(address baseToken => int256 positionBase18)) public positions;
    uint256 public openCount;
    uint256 public closeCount;

    constructor(MockPerpVault vault_) {
        vault = vault_;
    }

    // ------------------------------------------------------------------ set-up knobs
    function setPrice(address baseToken, uint256 quote18PerBase) external {
        price18[baseToken] = quote18PerBase;
    }

    function setFeePpm(uint256 feePpm_) external {
        feePpm = feePpm_;
    }

    function forceRevert(string calldata reason) external {
        forcedRevertReason = reason;
    }

    // ------------------------------------------------------------------ Perp surface
    function getVault() external view returns (address) {
        return address(vault);
    }

    function getAccountBalance() external view returns (address) {
        return address(this);
    }

    function getTakerPositionSize(address trader, address baseToken) external view returns (int256) {
        return positions[trader][baseToken];
    }

    function openPosition(IPerpClearingHouse.OpenPositionParams memory p)
        external
        returns (uint256 base18, uint256 quote18)
    {
        require(block.timestamp <= p.deadline, "CH_TE");
        _maybeForcedRevert();
        (base18, quote18) = quote(p.baseToken, p.isBaseToQuote, p.isExactInput, p.amount);
        _checkSlippage(p.isBaseToQuote, p.isExactInput, base18, quote18, p.oppositeAmountBound);
        positions[msg.sender][p.baseToken] += p.isBaseToQuote ? -int256(base18) : int256(base18);
        openCount++;
    }

    function closePosition(IPerpClearingHouse.ClosePositionParams calldata p)
        external
        returns (uint256 base18, uint256 quote18)
    {
        require(block.timestamp <= p.deadline, "CH_TE");
        _maybeForcedRevert();
        int256 position = positions[msg.sender][p.baseToken];
        require(position != 0, "CH_PSZ");
        bool isBaseToQuote = position > 0;
        uint256 positionAbs = uint256(position > 0 ? position : -position);
        // Perp stops a close at its price limit; here any limit closes exactly half the position.
        uint256 closedAbs = p.sqrtPriceLimitX96 == 0 ? positionAbs : positionAbs / 2;
        (base18, quote18) = quote(p.baseToken, isBaseToQuote, isBaseToQuote, closedAbs);
        _checkSlippage(isBaseToQuote, isBaseToQuote, base18, quote18, p.oppositeAmountBound);
        positions[msg.sender][p.baseToken] = position - (isBaseToQuote ? int256(base18) : -int256(base18));
        closeCount++;
    }

    /// @notice The fill a trade gets: (base, quote) absolute, quote net of the fee like Perp's.
    function quote(address baseToken, bool isBaseToQuote, bool isExactInput, uint256 amount18)
        public
        view
        returns (uint256 base18, uint256 quote18)
    {
        uint256 price = price18[baseToken];
        require(price != 0, "mock: no price");
        if (isBaseToQuote == isExactInput) {
            // the amount is base: sell exact base, or buy exact base
            base18 = amount18;
            uint256 notional = amount18 * price / 1e18;
            quote18 = isBaseToQuote ? notional * (ONE_PPM - feePpm) / ONE_PPM : notional * (ONE_PPM + feePpm) / ONE_PPM;
        } else {
            // the amount is quote: receive exact quote selling base, or pay exact quote buying base
            quote18 = amount18;
            base18 = isBaseToQuote
                ? amount18 * ONE_PPM / (ONE_PPM - feePpm) * 1e18 / price
                : amount18 * (ONE_PPM - feePpm) / ONE_PPM * 1e18 / price;
        }
    }

    function _checkSlippage(bool isBaseToQuote, bool isExactInput, uint256 base18, uint256 quote18, uint256 bound)
        private
        pure
    {
        if (bound == 0) return;
        if (isBaseToQuote) {
            if (isExactInput) require(quote18 >= bound, "CH_TLRS");
            else require(base18 <= bound, "CH_TMRS");
        } else {
            if (isExactInput) require(base18 >= bound, "CH_TLRL");
            else require(quote18 <= bound, "CH_TMRL");
        }
    }

    function _maybeForcedRevert() private view {
        if (bytes(forcedRevertReason).length != 0) revert(forcedRevertReason);
    }
}
