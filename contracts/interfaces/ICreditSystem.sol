// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ICreditSystem
/// @notice Prepaid credits for registry tools. One credit is one smallest unit of the token (no decimals
/// assumption). Users deposit (allowance, EIP-2612 permit or EIP-3009 authorization), spend credits on tools with no
/// token transfer per call, and withdraw unused principal at any time, also while paused. Bonus credits come only
/// from a bonus pool an admin funded, are tracked apart from principal, are spent in proportion to principal but
/// never for more of a call than the platform's fee on it, are never withdrawable, and go back to the pool pro rata
/// when principal is withdrawn, and in full when a spend uses up the principal. Each spend is split between developer and platform at the platform fee in force
/// when it is made; settlement hands over those amounts, so no later fee change moves an earned share.
interface ICreditSystem {
    /// @notice Emitted on every deposit; `bonus` credits were granted from the bonus pool.
    event Deposited(address indexed user, address indexed token, uint256 amount, uint256 bonus);

    /// @notice Emitted when a user withdraws principal.
    event Withdrawn(address indexed user, address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted when withdrawn principal takes its share of the user's bonus credits back to the pool, and
    /// when a spend uses up the principal and the bonus credits left go back (they only pay alongside principal).
    event BonusForfeited(address indexed user, address indexed token, uint256 amount);

    /// @notice Emitted once, at initialization, with the registry whose tools credits pay for.
    event RegistrySet(address registry);

    /// @notice Emitted when a user spends credits on a tool; `bonusUsed` of `price` came from bonus credits.
    event CreditsSpent(address indexed user, uint256 indexed toolId, uint256 price, uint256 bonusUsed);

    /// @notice Emitted when spent credits are handed to the registry.
    event CreditsSettled(address indexed token, uint256 tools, uint256 amount);

    /// @notice Emitted when the bonus pool of a token is funded.
    event BonusPoolFunded(address indexed token, address indexed funder, uint256 amount);

    /// @notice Emitted when unallocated bonus pool funds are taken back.
    event BonusPoolDefunded(address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted when a token's bonus policy changes.
    event BonusPolicyUpdated(address indexed token, uint16 bonusBps, uint256 minDeposit);

    /// @notice Emitted when the registry pushes a tool's terms.
    event ToolTermsSynced(uint256 indexed toolId, address indexed token, uint96 price);

    /// @notice Emitted when this contract's copy of the registry's platform fee is refreshed.
    event PlatformFeeSynced(uint16 feeBps);

    /// @notice Thrown when an address that must be set is zero.
    error CreditSystemZeroAddress();

    /// @notice Thrown when an amount that must be positive is zero.
    error CreditSystemZeroAmount();

    /// @notice Thrown when an amount does not fit the credit ledger (2^128 - 1 units).
    error CreditSystemAmountTooLarge(uint256 amount);

    /// @notice Thrown when a 65 536th distinct token would be numbered.
    error CreditSystemTooManyTokens();

    /// @notice Thrown when a token is not allowlisted by the registry.
    error CreditSystemTokenNotAccepted(address token);

    /// @notice Thrown when a tool is unknown, inactive, or has no price here.
    error CreditSystemToolNotPayable(uint256 toolId);

    /// @notice Thrown when the tool's price is above what the caller accepts.
    error CreditSystemPriceAboveMax(uint256 toolId, uint256 price, uint256 maxPrice);

    /// @notice Thrown when the credits a call may use (principal, and bonus up to the platform's fee on the price)
    /// cannot cover the price; `available` is what the call could have used.
    error CreditSystemInsufficientCredits(uint256 available, uint256 price);

    /// @notice Thrown when withdrawing more principal than the user has.
    error CreditSystemInsufficientPrincipal(uint256 available, uint256 amount);

    /// @notice Thrown when a bonus rate is above `MAX_BONUS_BPS`.
    error CreditSystemBonusTooHigh(uint16 bonusBps, uint16 maxBonusBps);

    /// @notice Thrown when defunding more than the unallocated bonus pool.
    error CreditSystemBonusPoolShort(uint256 available, uint256 amount);

    /// @notice Thrown when `syncTool` is called by anyone but the registry.
    error CreditSystemNotRegistry(address caller);

    /// @notice Thrown when a tool's token would change, or a tool is settled with another token.
    error CreditSystemTokenMismatch(uint256 toolId, address token);

    /// @notice Thrown when a tool's unsettled spends no longer fit their counters (2^32 - 1 calls, 2^96 - 1 units);
    /// settle the tool first.
    error CreditSystemPendingOverflow(uint256 pendingCalls, uint256 pendingAmount);

    /// @notice Thrown when a list is empty.
    error CreditSystemEmptyBatch();

    /// @notice Thrown when none of the listed tools has pending spends.
    error CreditSystemNothingToSettle();

    /// @notice Deposits `amount` of `token` from the caller's allowance as principal credits.
    function deposit(address token, uint256 amount) external;

    /// @notice Deposits with an EIP-2612 permit signed by the caller for this contract.
    function depositWithPermit(address token, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Deposits with an EIP-3009 `ReceiveWithAuthorization` signed by `from` for `to = address(this)`;
    /// anyone may submit it, the credits always go to `from`.
    function depositWithAuthorization(
        address token,
        address from,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Withdraws `amount` of the caller's principal to `to`; the same share of the caller's bonus credits
    /// (rounded up) returns to the bonus pool. Works while paused.
    function withdraw(address token, uint256 amount, address to) external;

    /// @notice Spends the tool's listed price in credits, reverting if it is above `maxPrice`. Bonus and principal
    /// are spent in proportion, but bonus credits pay at most the platform fee on the price (the bonus is the
    /// platform's money, so it can only stand in for the platform's share): spending credits on a tool of one's own
    /// never returns more than the principal spent. The price is split between developer and platform at the fee
    /// in force now. No token moves, so it works while paused, like every use of money already inside the system.
    function payWithCredits(uint256 toolId, uint256 maxPrice) external;

    /// @notice Hands the pending spends of `toolIds` (all in `token`) to the registry, with the developer and
    /// platform amounts they were split into when spent. Anyone may call it; works while paused.
    function settle(address token, uint256[] calldata toolIds) external;

    /// @notice Refreshes this contract's copy of the registry's platform fee. The registry calls it on every fee
    /// change; anyone may call it, since it only reads the registry.
    function syncPlatformFee() external;

    /// @notice Sets a tool's token and price (0: not payable with credits); registry only. A tool's token never
    /// changes.
    function syncTool(uint256 toolId, address token, uint96 price) external;

    /// @notice Adds `amount` of `token` from the caller to the bonus pool; bonus manager only. Stopped by pause.
    function fundBonusPool(address token, uint256 amount) external;

    /// @notice Takes back unallocated bonus pool funds; bonus manager only. Granted bonus credits belong to users.
    function defundBonusPool(address token, uint256 amount, address to) external;

    /// @notice Deposits of at least `minDeposit` earn `bonusBps` of their amount as bonus credits, as long as the
    /// pool lasts, and never more than fee / (1 - fee) of the platform fee at deposit time (what the fee lets a
    /// deposit spend of its bonus); bonus manager only.
    function setBonusPolicy(address token, uint16 bonusBps, uint256 minDeposit) external;

    /// @notice Stops new money coming in (deposits, bonus funding); pauser only. Spending, settlement and
    /// withdrawals keep working.
    function pause() external;

    /// @notice Resumes what `pause` stopped; pauser only.
    function unpause() external;

    /// @notice A user's withdrawable principal and non-withdrawable bonus credits in `token`.
    function creditsOf(address user, address token) external view returns (uint256 principal, uint256 bonus);

    /// @notice Unallocated bonus pool of `token`.
    function bonusPool(address token) external view returns (uint256);

    /// @notice A token's bonus policy.
    function bonusPolicy(address token) external view returns (uint16 bonusBps, uint256 minDeposit);

    /// @notice A tool's terms here and its spends not yet settled.
    function toolTerms(uint256 toolId)
        external
        view
        returns (address token, uint96 price, uint256 pendingCalls, uint256 pendingAmount);

    /// @notice What a tool's pending spends owe its developer and the platform. Spends made before this split was
    /// recorded (by an earlier implementation) are split at the current fee.
    function pendingShares(uint256 toolId) external view returns (uint256 developer, uint256 platform);

    /// @notice The platform fee spends are split at now: this contract's copy of the registry's.
    function platformFeeBps() external view returns (uint16);

    /// @notice The registry whose tools credits pay for.
    function registry() external view returns (address);
}
