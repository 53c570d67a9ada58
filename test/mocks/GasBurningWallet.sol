// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice An ERC-1271 wallet whose isValidSignature burns all the gas it is given.
contract GasBurningWallet {
    function isValidSignature(bytes32, bytes memory) external pure returns (bytes4) {
        while (true) {}
        return 0;
    }
}
