// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRevenueSplitter
/// @notice Holds tool revenue and credits it to developers (or their per-tool multi-recipient splits) and to the
/// platform treasury. Every balance is pulled by its owner, so a blacklisted or reverting recipient never blocks
/// anyone else.
interface IRevenueSplitter {
    /// @notice One payment of a batch: `developerAmount` goes to the tool's split if it has one, else to `payee`;
    /// `platformAmount` goes to the platform treasury.
    struct Payment {
        uint256 toolId;
        address payee;
        uint256 developerAmount;
        uint256 platformAmount;
    }

    /// @notice Emitted for each processed payment.
    event PaymentProcessed(
        address indexed token,
        uint256 indexed toolId,
        address indexed payee,
        uint256 developerAmount,
        uint256 platformAmount,
        bool split
    );

    /// @notice Emitted once per batch, after its payments.
    event BatchProcessed(address indexed token, address indexed distributor, uint256 count, uint256 total);

    /// @notice Emitted when a developer sets a tool's multi-recipient split.
    event SplitSet(uint256 indexed toolId, address[] recipients, uint16[] shares);

    /// @notice Emitted when a developer removes a tool's split.
    event SplitCleared(uint256 indexed toolId);

    /// @notice Emitted when an account withdraws its balance of a token.
    event Withdrawn(address indexed account, address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted when the platform treasury changes; balances already credited stay with the old treasury.
    event PlatformTreasuryUpdated(address previousTreasury, address newTreasury);

    /// @notice Emitted when the registry that owns tool ids is wired (once).
    event RegistrySet(address registry);

    /// @notice Thrown when an address that must be set is zero.
    error RevenueSplitterZeroAddress();

    /// @notice Thrown when a batch is empty.
    error RevenueSplitterEmptyBatch();

    /// @notice Thrown when a split's recipients and shares differ in length.
    error RevenueSplitterLengthMismatch(uint256 recipients, uint256 shares);

    /// @notice Thrown when a split has no recipients or more than `MAX_SPLIT_RECIPIENTS`.
    error RevenueSplitterInvalidRecipientCount(uint256 count, uint256 max);

    /// @notice Thrown when a split's shares do not sum to 10 000 basis points, or a share is zero.
    error RevenueSplitterInvalidShares(uint256 sum);

    /// @notice Thrown when a split lists the same recipient twice.
    error RevenueSplitterDuplicateRecipient(address recipient);

    /// @notice Thrown when someone other than the tool's developer changes its split.
    error RevenueSplitterNotToolDeveloper(uint256 toolId, address caller);

    /// @notice Thrown when a tool has no split to clear.
    error RevenueSplitterNoSplit(uint256 toolId);

    /// @notice Thrown when there is nothing to withdraw.
    error RevenueSplitterNothingToWithdraw(address account, address token);

    /// @notice Thrown when the registry is wired a second time.
    error RevenueSplitterRegistryAlreadySet(address registry);

    /// @notice Thrown when splits are managed before the registry is wired.
    error RevenueSplitterRegistryNotSet();

    /// @notice Pulls the batch total from the caller and credits every payment; distributors only. A pause stops
    /// outside distributors, not the registry settling revenue it already holds.
    function processBatchPayments(address token, Payment[] calldata payments) external;

    /// @notice Sets the split of a tool's developer revenue; the tool's developer only. Shares are basis points
    /// summing to 10 000; rounding dust goes to the first recipient.
    function setSplit(uint256 toolId, address[] calldata recipients, uint16[] calldata shares) external;

    /// @notice Removes a tool's split; its revenue goes to the payee again. The tool's developer only.
    function clearSplit(uint256 toolId) external;

    /// @notice Sends the caller's whole balance of `token` to `to`. Works while paused.
    function withdraw(address token, address to) external returns (uint256 amount);

    /// @notice Sets where platform fees are credited from now on; admin only.
    function setPlatformTreasury(address treasury) external;

    /// @notice Wires the registry that owns tool ids; admin only, once.
    function setRegistry(address registry) external;

    /// @notice What `account` can withdraw of `token`.
    function balanceOf(address account, address token) external view returns (uint256);

    /// @notice A tool's split; empty arrays when it has none.
    function getSplit(uint256 toolId) external view returns (address[] memory recipients, uint16[] memory shares);

    /// @notice Where platform fees are credited.
    function platformTreasury() external view returns (address);

    /// @notice The registry that owns tool ids.
    function registry() external view returns (address);
}
