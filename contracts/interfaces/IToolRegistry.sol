// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IToolRegistry
/// @notice Pay-per-call tools: developers register a uniquely named tool with a price in an allowlisted token and
/// a payout address; callers pay exactly the listed price; revenue is split between developer and platform and
/// handed to the RevenueSplitter in batches by `settle`.
interface IToolRegistry {
    /// @notice A registered tool.
    struct Tool {
        string name;
        address developer;
        address token;
        address payout;
        uint96 price;
        bool active;
    }

    /// @notice A tool's counters. `revenue` is everything ever paid for it (direct payments, and credit spends once
    /// the CreditSystem settled them); `pendingDeveloper` / `pendingPlatform` are held here until `settle`.
    struct ToolStats {
        uint64 calls;
        uint256 revenue;
        uint96 pendingDeveloper;
        uint96 pendingPlatform;
    }

    /// @notice Credit spends of one tool, already split at the platform fee in force when each was spent.
    struct CreditPayment {
        uint256 toolId;
        uint256 calls;
        uint256 developerAmount;
        uint256 platformAmount;
    }

    /// @notice Emitted when a tool is registered.
    event ToolRegistered(
        uint256 indexed toolId, address indexed developer, string name, address token, uint96 price, address payout
    );

    /// @notice Emitted when a tool's price changes.
    event ToolPriceUpdated(uint256 indexed toolId, uint96 previousPrice, uint96 newPrice);

    /// @notice Emitted when a tool's payout address changes.
    event ToolPayoutUpdated(uint256 indexed toolId, address previousPayout, address newPayout);

    /// @notice Emitted when a tool is activated or deactivated.
    event ToolActiveUpdated(uint256 indexed toolId, bool active);

    /// @notice Emitted when a caller pays for one call of a tool.
    event ToolPaid(
        uint256 indexed toolId, address indexed payer, uint256 price, uint256 developerShare, uint256 platformShare
    );

    /// @notice Emitted when the CreditSystem hands over settled credit spends.
    event CreditPaymentsRecorded(address indexed token, uint256 tools, uint256 calls, uint256 amount);

    /// @notice Emitted for each tool whose pending revenue `settle` sent to the RevenueSplitter.
    event ToolSettled(uint256 indexed toolId, address indexed payout, uint256 developerAmount, uint256 platformAmount);

    /// @notice Emitted when the platform fee changes.
    event PlatformFeeUpdated(uint16 previousFeeBps, uint16 newFeeBps);

    /// @notice Emitted when a token is added to or removed from the allowlist.
    event TokenAllowanceUpdated(address indexed token, bool allowed);

    /// @notice Emitted once, at initialization, with the RevenueSplitter settlements go to.
    event SplitterSet(address splitter);

    /// @notice Emitted when the CreditSystem is wired (once).
    event CreditSystemSet(address creditSystem);

    /// @notice Emitted when the registry is paused.
    event Paused(address account);

    /// @notice Emitted when the registry is unpaused.
    event Unpaused(address account);

    /// @notice Thrown when an address that must be set is zero.
    error ToolRegistryZeroAddress();

    /// @notice Thrown when a name is empty, longer than 64 bytes, or has a character outside [a-z0-9-], or starts
    /// or ends with '-'.
    error ToolRegistryInvalidName(string name);

    /// @notice Thrown when a name was ever registered, by anyone; names are never reused.
    error ToolRegistryNameTaken(string name, address developer);

    /// @notice Thrown when no tool has this id.
    error ToolRegistryToolNotFound(uint256 toolId);

    /// @notice Thrown when someone other than the tool's developer changes it.
    error ToolRegistryNotToolDeveloper(uint256 toolId, address caller);

    /// @notice Thrown when paying for an inactive tool.
    error ToolRegistryToolInactive(uint256 toolId);

    /// @notice Thrown when the listed price is above what the caller accepts.
    error ToolRegistryPriceAboveMax(uint256 toolId, uint256 price, uint256 maxPrice);

    /// @notice Thrown when a price is zero.
    error ToolRegistryZeroPrice();

    /// @notice Thrown when a token is not on the allowlist.
    error ToolRegistryTokenNotAllowed(address token);

    /// @notice Thrown when a token to allowlist has no code.
    error ToolRegistryTokenHasNoCode(address token);

    /// @notice Thrown when a platform fee is above `MAX_PLATFORM_FEE_BPS`.
    error ToolRegistryFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);

    /// @notice Thrown when a tool is settled or recorded with a token it does not use.
    error ToolRegistryTokenMismatch(uint256 toolId, address token);

    /// @notice Thrown when a list is empty.
    error ToolRegistryEmptyBatch();

    /// @notice Thrown when none of the listed tools has pending revenue.
    error ToolRegistryNothingToSettle();

    /// @notice Thrown when `recordCreditPayments` is called by anyone but the CreditSystem.
    error ToolRegistryNotCreditSystem(address caller);

    /// @notice Thrown when the CreditSystem is wired a second time.
    error ToolRegistryCreditSystemAlreadySet(address creditSystem);

    /// @notice Thrown by paused-only and unpaused-only functions.
    error ToolRegistryEnforcedPause();

    /// @notice Thrown when unpausing while not paused.
    error ToolRegistryExpectedPause();

    /// @notice Registers a tool owned by the caller. The name must match [a-z0-9-]{1,64} without a leading or
    /// trailing '-', and is the tool's forever: no one can register it again, even after deactivation.
    function registerTool(string calldata name, address token, uint96 price, address payout)
        external
        returns (uint256 toolId);

    /// @notice Changes the price; developer only. Callers are protected by `maxPrice`.
    function setPrice(uint256 toolId, uint96 price) external;

    /// @notice Changes where the developer share goes from the next settlement on; developer only.
    function setPayout(uint256 toolId, address payout) external;

    /// @notice Activates or deactivates the tool; developer only. Pending revenue settles either way.
    function setActive(uint256 toolId, bool active) external;

    /// @notice Pays for one call: exactly the listed price, from the caller's allowance, reverting if the price is
    /// above `maxPrice`.
    function payForTool(uint256 toolId, uint256 maxPrice) external;

    /// @notice Takes credit spends the CreditSystem settled: pulls the total from it and adds each tool's developer
    /// and platform amounts as given (split when the credits were spent, so a later fee change moves nobody's
    /// earned share). CreditSystem only.
    function recordCreditPayments(address token, CreditPayment[] calldata payments) external;

    /// @notice Sends the pending revenue of `toolIds` (all in `token`) to the RevenueSplitter, which credits the
    /// developers (or their splits) and the platform. Anyone may call it; works while this registry or the
    /// splitter is paused.
    function settle(address token, uint256[] calldata toolIds) external;

    /// @notice Pushes the current terms of `toolIds` to the CreditSystem (needed only for tools registered before
    /// it was wired). Anyone may call it.
    function syncCreditTerms(uint256[] calldata toolIds) external;

    /// @notice Sets the platform fee in basis points, at most `MAX_PLATFORM_FEE_BPS`, and pushes it to the wired
    /// CreditSystem; fee manager only. Revenue already earned (pending here or spent as credits) keeps its split.
    function setPlatformFee(uint16 feeBps) external;

    /// @notice Adds or removes a token from the allowlist for new tools; admin only.
    function setTokenAllowed(address token, bool allowed) external;

    /// @notice Wires the CreditSystem and pushes the platform fee to it; admin only, once.
    function setCreditSystem(address creditSystem) external;

    /// @notice Stops registrations and payments; pauser only.
    function pause() external;

    /// @notice Resumes what `pause` stopped; pauser only.
    function unpause() external;

    /// @notice The tool with this id; reverts if there is none.
    function getTool(uint256 toolId) external view returns (Tool memory);

    /// @notice The counters of a tool; reverts if there is none.
    function getToolStats(uint256 toolId) external view returns (ToolStats memory);

    /// @notice The id registered under `name`, or 0.
    function toolIdOf(string calldata name) external view returns (uint256);

    /// @notice The developer of a tool; reverts if there is none.
    function developerOf(uint256 toolId) external view returns (address);

    /// @notice Number of tools ever registered; ids run from 1 to this number.
    function toolCount() external view returns (uint256);

    /// @notice Up to `limit` tools starting at id `offset + 1`.
    function getTools(uint256 offset, uint256 limit) external view returns (uint256[] memory ids, Tool[] memory tools);

    /// @notice Up to `limit` of `developer`'s tools, skipping the first `offset`.
    function getToolsByDeveloper(address developer, uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Tool[] memory tools);

    /// @notice The platform fee in basis points.
    function platformFeeBps() external view returns (uint16);

    /// @notice Whether `token` may be used by new tools.
    function isTokenAllowed(address token) external view returns (bool);

    /// @notice Whether the registry is paused.
    function paused() external view returns (bool);

    /// @notice The RevenueSplitter settlements go to.
    function splitter() external view returns (address);

    /// @notice The CreditSystem allowed to record credit payments.
    function creditSystem() external view returns (address);
}
