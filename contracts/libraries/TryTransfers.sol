// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title TryTransfers
/// @notice Token pushes whose failure is an outcome the caller handles (crediting a pull balance) rather than a
/// revert, guarded against the caller's gas: a call forwards at most 63/64 of the gas left, so a transfer that
/// fails with less than 1/64 left may have failed only because the transaction's sender chose a tight gas limit. Such a failure reverts with the caller's own error instead of
/// being taken for the token's (or the account's) verdict.
library TryTransfers {
    using SafeERC20 for IERC20;

    /// @notice Pushes `amount` of `token` to `to`; false if the token refused.
    /// @param starved Selector of the caller's parameterless error to revert with on a gas-starved failure.
    function trySend(address token, address to, uint256 amount, bytes4 starved) internal returns (bool) {
        uint256 gasBefore = gasleft();
        if (IERC20(token).trySafeTransfer(to, amount)) return true;
        _revertIfStarved(gasBefore, starved);
        return false;
    }

    function _revertIfStarved(uint256 gasBefore, bytes4 starved) private view {
        if (gasleft() <= gasBefore / 64) {
            assembly ("memory-safe") {
                mstore(0x00, starved)
                revert(0x00, 0x04)
            }
        }
    }
}
