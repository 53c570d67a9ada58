// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {Subscription} from "../../contracts/Subscription.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {X402Payment} from "../../contracts/X402Payment.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";

/// @notice What a real V2 adds: state in its own ERC-7201 namespace and a reinitializer.
abstract contract ReleaseNoteV2 is Initializable {
    /// @custom:storage-location erc7201:x402.storage.ReleaseNoteV2
    struct ReleaseNoteV2Storage {
        string releaseNote;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.ReleaseNoteV2")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant RELEASE_NOTE_STORAGE_LOCATION =
        0x2cd36d1b1babfbbe101d334ac31e0f3f3c7d113fc69db046d1d040280f9ed400;

    function initializeV2(string calldata note) external reinitializer(2) {
        _getReleaseNoteStorage().releaseNote = note;
    }

    function releaseNote() external view returns (string memory) {
        return _getReleaseNoteStorage().releaseNote;
    }

    function _getReleaseNoteStorage() private pure returns (ReleaseNoteV2Storage storage $) {
        assembly ("memory-safe") {
            $.slot := RELEASE_NOTE_STORAGE_LOCATION
        }
    }
}

/// @custom:oz-upgrades-from contracts/X402Payment.sol:X402Payment
contract X402PaymentV2 is X402Payment, ReleaseNoteV2 {}

/// @custom:oz-upgrades-from contracts/ToolRegistry.sol:ToolRegistry
contract ToolRegistryV2 is ToolRegistry, ReleaseNoteV2 {}

/// @custom:oz-upgrades-from contracts/RevenueSplitter.sol:RevenueSplitter
contract RevenueSplitterV2 is RevenueSplitter, ReleaseNoteV2 {}

/// @custom:oz-upgrades-from contracts/CreditSystem.sol:CreditSystem
contract CreditSystemV2 is CreditSystem, ReleaseNoteV2 {}

/// @custom:oz-upgrades-from contracts/PaymentChannel.sol:PaymentChannel
contract PaymentChannelV2 is PaymentChannel, ReleaseNoteV2 {}

/// @custom:oz-upgrades-from contracts/Subscription.sol:Subscription
contract SubscriptionV2 is Subscription, ReleaseNoteV2 {}
