// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP3009Calls} from "./EIP3009Calls.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title ExactTransfers
/// @notice How every contract here takes tokens in. The contracts keep books in exact amounts, so a token that
/// delivers a different amount than requested (fee on transfer, rebasing) is refused instead of leaving the books
/// short.
library ExactTransfers {
    using SafeERC20 for IERC20;

    /// @notice Thrown when `token` delivered `received` instead of `expected`.
    error ExactTransferMismatch(address token, uint256 expected, uint256 received);

    /// @notice Pulls exactly `amount` of `token` from `from` (which must have approved this contract).
    function pullExact(address token, address from, uint256 amount) internal {
        uint256 balanceBefore = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        requireReceived(token, balanceBefore, amount);
    }

    /// @notice Executes an EIP-3009 `receiveWithAuthorization` paying this contract (`authorization.to` must be
    /// `address(this)`) and checks that exactly `authorization.value` arrived. The token's revert is bubbled.
    function receiveExact(address token, EIP3009Calls.Authorization memory authorization, bytes calldata signature)
        internal
    {
        uint256 balanceBefore = IERC20(token).balanceOf(address(this));
        Address.functionCall(token, EIP3009Calls.receiveCallData(authorization, signature));
        requireReceived(token, balanceBefore, authorization.value);
    }

    /// @notice Reverts unless this contract's balance of `token` grew by exactly `amount` since `balanceBefore`.
    function requireReceived(address token, uint256 balanceBefore, uint256 amount) internal view {
        uint256 received = IERC20(token).balanceOf(address(this)) - balanceBefore;
        if (received != amount) revert ExactTransferMismatch(token, amount, received);
    }

    /// @notice Applies `owner`'s EIP-2612 permit of `amount` for this contract. Anyone can submit a permit seen in
    /// the mempool first, so a failed permit is fine as long as the allowance already covers `amount`; otherwise
    /// the permit's own revert reason is raised.
    function permit(address token, address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        internal
    {
        try IERC20Permit(token).permit(owner, address(this), amount, deadline, v, r, s) {}
        catch (bytes memory reason) {
            if (IERC20(token).allowance(owner, address(this)) < amount) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
    }
}
