// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";

/// @notice A V2 that adds state in its own ERC-7201 namespace and a reinitializer, as a real upgrade would.
/// @custom:oz-upgrades-from contracts/X402Payment.sol:X402Payment
contract X402PaymentV2 is X402Payment {
    /// @custom:storage-location erc7201:x402.storage.X402PaymentV2
    struct X402PaymentV2Storage {
        string releaseNote;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.X402PaymentV2")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant X402_PAYMENT_V2_STORAGE_LOCATION =
        0x99c1d6a2130799e924ff26a299f1688bd85d5a3bb29dd37f8d486d4f998ebb00;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() X402Payment() {}

    function initializeV2(string calldata note) external reinitializer(2) {
        _getV2Storage().releaseNote = note;
    }

    function releaseNote() external view returns (string memory) {
        return _getV2Storage().releaseNote;
    }

    function _getV2Storage() private pure returns (X402PaymentV2Storage storage $) {
        assembly ("memory-safe") {
            $.slot := X402_PAYMENT_V2_STORAGE_LOCATION
        }
    }
}
