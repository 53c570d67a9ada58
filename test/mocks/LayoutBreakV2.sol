// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";

/// @notice Not a valid X402Payment upgrade: it redeclares X402Payment's ERC-7201 namespace with the refund window
/// moved to the front, which would shift every field after it (the OpenZeppelin namespaces are the same as
/// X402Payment's). `x402 upgrade` must refuse it
/// (crates/cli/tests/upgrade.rs); OpenZeppelin's validator is not asked about it (no `oz-upgrades-from`).
contract X402PaymentLayoutBreakV2 is UUPSUpgradeable, AccessControlUpgradeable, PausableUpgradeable {
    /// @custom:storage-location erc7201:x402.storage.X402Payment
    struct X402PaymentStorage {
        uint64 refundWindow;
        mapping(bytes32 invoiceId => uint256) invoices;
    }

    function _authorizeUpgrade(address) internal override {}
}
