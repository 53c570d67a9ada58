// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A token whose transferWithAuthorization burns every unit of gas it is given.
contract GasGuzzlerToken {
    function authorizationState(address, bytes32) external pure returns (bool) {
        return false;
    }

    fallback() external {
        while (true) {}
    }
}
