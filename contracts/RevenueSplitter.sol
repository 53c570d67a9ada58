// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRevenueSplitter} from "./interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "./interfaces/IToolRegistry.sol";
import {ExactTransfers} from "./libraries/ExactTransfers.sol";
import {SplitMath} from "./libraries/SplitMath.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title RevenueSplitter
/// @notice Credits tool revenue to developers, their per-tool multi-recipient splits and the platform treasury,
/// batch by batch, and lets every recipient pull its own balance.
/// @dev Only distributors (the ToolRegistry, and operators trusted to attribute x402 revenue) add funds, and they
/// pay the batch total in the same call, so the balances always sum to the tokens held. Nobody but an account
/// itself can move its balance; pausing stops batches from outside distributors, never the registry's
/// settlements nor withdrawals.
contract RevenueSplitter is
    IRevenueSplitter,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransientUpgradeable
{
    using SafeERC20 for IERC20;

    /// @notice May call {processBatchPayments}.
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");
    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Most recipients a split may have.
    uint256 public constant MAX_SPLIT_RECIPIENTS = 20;

    struct Split {
        address[] recipients;
        uint16[] shares;
    }

    /// @custom:storage-location erc7201:x402.storage.RevenueSplitter
    struct RevenueSplitterStorage {
        mapping(address account => mapping(address token => uint256)) balances;
        mapping(uint256 toolId => Split) splits;
        address platformTreasury;
        address registry;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.RevenueSplitter")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant REVENUE_SPLITTER_STORAGE_LOCATION =
        0x64a0788ae14136c1dcec3c8c87957b65ce7fb81d32ec64edb624eac1fe28a100;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE and UPGRADER_ROLE.
    /// @param treasury Where platform fees are credited.
    function initialize(address admin, address treasury) external initializer {
        if (admin == address(0) || treasury == address(0)) revert RevenueSplitterZeroAddress();
        __AccessControl_init();
        __Pausable_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _getRevenueSplitterStorage().platformTreasury = treasury;
        emit PlatformTreasuryUpdated(address(0), treasury);
    }

    /// @inheritdoc IRevenueSplitter
    function processBatchPayments(address token, Payment[] calldata payments)
        external
        onlyRole(DISTRIBUTOR_ROLE)
        nonReentrant
    {
        uint256 count = payments.length;
        if (count == 0) revert RevenueSplitterEmptyBatch();
        RevenueSplitterStorage storage $ = _getRevenueSplitterStorage();
        // The registry only hands over revenue it already holds for developers: owed money, which a pause never
        // stops. Other distributors bring new money in.
        if (paused() && msg.sender != $.registry) revert EnforcedPause();
        uint256 platformTotal;
        uint256 developerTotal;
        for (uint256 i; i < count; ++i) {
            Payment calldata payment = payments[i];
            uint256 developerAmount = payment.developerAmount;
            Split storage split = $.splits[payment.toolId];
            bool isSplit = split.recipients.length != 0;
            if (isSplit) {
                _creditSplit($, split, token, developerAmount);
            } else {
                if (payment.payee == address(0)) revert RevenueSplitterZeroAddress();
                $.balances[payment.payee][token] += developerAmount;
            }
            developerTotal += developerAmount;
            platformTotal += payment.platformAmount;
            emit PaymentProcessed(
                token, payment.toolId, payment.payee, developerAmount, payment.platformAmount, isSplit
            );
        }
        $.balances[$.platformTreasury][token] += platformTotal;
        uint256 total = developerTotal + platformTotal;
        emit BatchProcessed(token, msg.sender, count, total);

        // Balances were credited first (checks-effects-interactions); the batch reverts unless exactly `total`
        // arrives.
        ExactTransfers.pullExact(token, msg.sender, total);
    }

    /// @inheritdoc IRevenueSplitter
    function setSplit(uint256 toolId, address[] calldata recipients, uint16[] calldata shares) external {
        _requireToolDeveloper(toolId);
        uint256 count = recipients.length;
        if (count != shares.length) revert RevenueSplitterLengthMismatch(count, shares.length);
        if (count == 0 || count > MAX_SPLIT_RECIPIENTS) {
            revert RevenueSplitterInvalidRecipientCount(count, MAX_SPLIT_RECIPIENTS);
        }
        uint256 sum;
        for (uint256 i; i < count; ++i) {
            address recipient = recipients[i];
            if (recipient == address(0)) revert RevenueSplitterZeroAddress();
            for (uint256 j; j < i; ++j) {
                if (recipients[j] == recipient) revert RevenueSplitterDuplicateRecipient(recipient);
            }
            if (shares[i] == 0) revert RevenueSplitterInvalidShares(0);
            sum += shares[i];
        }
        if (sum != SplitMath.BPS) revert RevenueSplitterInvalidShares(sum);
        Split storage split = _getRevenueSplitterStorage().splits[toolId];
        split.recipients = recipients;
        split.shares = shares;
        emit SplitSet(toolId, recipients, shares);
    }

    /// @inheritdoc IRevenueSplitter
    function clearSplit(uint256 toolId) external {
        _requireToolDeveloper(toolId);
        RevenueSplitterStorage storage $ = _getRevenueSplitterStorage();
        if ($.splits[toolId].recipients.length == 0) revert RevenueSplitterNoSplit(toolId);
        delete $.splits[toolId];
        emit SplitCleared(toolId);
    }

    /// @inheritdoc IRevenueSplitter
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert RevenueSplitterZeroAddress();
        RevenueSplitterStorage storage $ = _getRevenueSplitterStorage();
        amount = $.balances[msg.sender][token];
        if (amount == 0) revert RevenueSplitterNothingToWithdraw(msg.sender, token);
        $.balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc IRevenueSplitter
    function setPlatformTreasury(address treasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury == address(0)) revert RevenueSplitterZeroAddress();
        RevenueSplitterStorage storage $ = _getRevenueSplitterStorage();
        address previous = $.platformTreasury;
        $.platformTreasury = treasury;
        emit PlatformTreasuryUpdated(previous, treasury);
    }

    /// @inheritdoc IRevenueSplitter
    function setRegistry(address registry_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (registry_ == address(0)) revert RevenueSplitterZeroAddress();
        RevenueSplitterStorage storage $ = _getRevenueSplitterStorage();
        // Tool ids, and so split ownership, are the registry's; re-pointing it would hand splits to another.
        if ($.registry != address(0)) revert RevenueSplitterRegistryAlreadySet($.registry);
        $.registry = registry_;
        emit RegistrySet(registry_);
    }

    /// @notice Stops batches from outside distributors; pauser only. Registry settlements and withdrawals keep
    /// working.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resumes batches; pauser only.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc IRevenueSplitter
    function balanceOf(address account, address token) external view returns (uint256) {
        return _getRevenueSplitterStorage().balances[account][token];
    }

    /// @inheritdoc IRevenueSplitter
    function getSplit(uint256 toolId) external view returns (address[] memory recipients, uint16[] memory shares) {
        Split storage split = _getRevenueSplitterStorage().splits[toolId];
        return (split.recipients, split.shares);
    }

    /// @inheritdoc IRevenueSplitter
    function platformTreasury() external view returns (address) {
        return _getRevenueSplitterStorage().platformTreasury;
    }

    /// @inheritdoc IRevenueSplitter
    function registry() external view returns (address) {
        return _getRevenueSplitterStorage().registry;
    }

    function _creditSplit(RevenueSplitterStorage storage $, Split storage split, address token, uint256 amount)
        private
    {
        address[] memory recipients = split.recipients;
        uint256[] memory parts = SplitMath.splitShares(amount, split.shares);
        for (uint256 i; i < recipients.length; ++i) {
            $.balances[recipients[i]][token] += parts[i];
        }
    }

    function _requireToolDeveloper(uint256 toolId) private view {
        address registry_ = _getRevenueSplitterStorage().registry;
        if (registry_ == address(0)) revert RevenueSplitterRegistryNotSet();
        // developerOf reverts for an unknown tool.
        if (IToolRegistry(registry_).developerOf(toolId) != msg.sender) {
            revert RevenueSplitterNotToolDeveloper(toolId, msg.sender);
        }
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _getRevenueSplitterStorage() private pure returns (RevenueSplitterStorage storage $) {
        assembly ("memory-safe") {
            $.slot := REVENUE_SPLITTER_STORAGE_LOCATION
        }
    }
}
