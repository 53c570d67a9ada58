// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ISubscription
/// @notice Recurring payments pulled by keepers. A subscriber agrees to pay `amount` of `token` to a recipient once
/// per `period`, from `startTime` on, optionally until `endsAt` or for at most `maxCount` charges.
///
/// Schedule and catch-up rule: charge k (k = 0, 1, ...) is due at `startTime + k * period`; the schedule never
/// drifts with the time a keeper happens to call. One execution charges exactly one period: the oldest unpaid one,
/// provided it is due. Periods missed while no keeper ran, or while the subscription was past due, stay owed and
/// are caught up by later executions, one per execution; cancelling forgives whatever is still unpaid.
///
/// Funding: each charge comes from the subscription's deposit when the deposit covers the whole amount, otherwise
/// it is pulled from the subscriber's wallet with its allowance to this contract. A charge that cannot be
/// collected marks the subscription PastDue (stored, with an event) instead of reverting. PastDue subscriptions
/// are not listed for keepers; a later successful charge (anyone may still call {execute}), a deposit, or the
/// subscriber's {reactivate} makes one Active again, the last two only when a charge would succeed at that moment
/// (the deposit, or the wallet's balance and allowance, cover the amount), so an unfunded subscription costs keepers
/// one failed execution however often its subscriber tries to put it back on the due list. (A subscriber that does
/// fund it and then takes the funds away again, with a withdrawal or a revoked allowance, pays a transaction of its
/// own for each failed execution this costs a keeper.)
///
/// Payouts: the recipient's share is credited to its withdrawable balance (pull), so a recipient the token refuses
/// cannot make a subscriber look past due. The caller of a successful charge earns the keeper reward, taken from
/// the charge (`amount * keeperRewardBps / 10_000`, at most MAX_KEEPER_REWARD_BPS, so never more than the payment)
/// and pushed to it at the end of the call; a failed charge earns nothing.
///
/// Pausing stops new money: creating, depositing and executing. Cancelling and every withdrawal keep working.
interface ISubscription {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Life cycle of a subscription. Active <-> PastDue; Active or PastDue -> Cancelled (either party) or
    /// Ended (last charge made: `maxCount` reached or the next due time at or after `endsAt`).
    enum SubscriptionStatus {
        None,
        Active,
        PastDue,
        Cancelled,
        Ended
    }

    /// @notice A subscription, packed into four storage slots; executions read the first three (and the fourth
    /// only when a deposit exists).
    /// @param subscriber Who pays.
    /// @param amount Charged per period, in the token's smallest unit.
    /// @param recipient Who is paid.
    /// @param nextDue When the oldest unpaid period is due.
    /// @param count Charges made so far.
    /// @param status See {SubscriptionStatus}.
    /// @param hasDeposit Whether `deposit` is non-zero.
    /// @param token The ERC-20 charged.
    /// @param period Seconds between due times.
    /// @param endsAt No period due at or after this time is charged; zero for no end.
    /// @param maxCount At most this many charges; zero for no maximum.
    /// @param deposit Tokens held here for this subscription, spent before the wallet's allowance.
    struct SubscriptionData {
        address subscriber;
        uint96 amount;
        address recipient;
        uint40 nextDue;
        uint32 count;
        SubscriptionStatus status;
        bool hasDeposit;
        address token;
        uint32 period;
        uint40 endsAt;
        uint24 maxCount;
        uint96 deposit;
    }

    /// @notice Terms of a new subscription.
    /// @param startTime When the first period is due; zero for now. Never in the past.
    struct Terms {
        address recipient;
        address token;
        uint256 amount;
        uint256 period;
        uint256 startTime;
        uint256 endsAt;
        uint256 maxCount;
    }

    /// @notice What happened to one execution.
    enum ExecutionOutcome {
        Charged,
        NotFound,
        Inactive,
        NotDue,
        TokenNotAllowed,
        ChargeFailed
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a subscription is created.
    event SubscriptionCreated(
        uint256 indexed subscriptionId,
        address indexed subscriber,
        address indexed recipient,
        address token,
        uint256 amount,
        uint256 period,
        uint256 startTime,
        uint256 endsAt,
        uint256 maxCount
    );

    /// @notice Emitted when the period due at `dueAt` is charged; `reward` of `amount` went to `keeper`.
    event SubscriptionCharged(
        uint256 indexed subscriptionId, address indexed keeper, uint256 dueAt, uint256 amount, uint256 reward
    );

    /// @notice Emitted when the period due at `dueAt` could not be collected; the subscription is now PastDue.
    event SubscriptionPastDue(uint256 indexed subscriptionId, uint256 dueAt);

    /// @notice Emitted when a PastDue subscription becomes Active again.
    event SubscriptionReactivated(uint256 indexed subscriptionId);

    /// @notice Emitted when an execution charged nothing, with the reason.
    event ExecutionSkipped(uint256 indexed subscriptionId, uint256 index, ExecutionOutcome outcome);

    /// @notice Emitted when a subscription is cancelled; `refunded` of its deposit went back to the subscriber.
    event SubscriptionCancelled(uint256 indexed subscriptionId, address indexed by, uint256 refunded);

    /// @notice Emitted when the last charge has been made.
    event SubscriptionEnded(uint256 indexed subscriptionId);

    /// @notice Emitted when the subscriber adds to the deposit; `deposit` is the new total.
    event DepositAdded(uint256 indexed subscriptionId, uint256 amount, uint256 deposit);

    /// @notice Emitted when the subscriber takes `amount` of the deposit back.
    event DepositWithdrawn(uint256 indexed subscriptionId, address indexed to, uint256 amount);

    /// @notice Emitted when a push was refused by the token and `amount` was credited to `account` instead.
    event PayoutCredited(address indexed account, address indexed token, uint256 amount);

    /// @notice Emitted when an account withdraws its credited balance.
    event Withdrawn(address indexed account, address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted when the keeper reward changes.
    event KeeperRewardUpdated(uint256 previousBps, uint256 newBps);

    /// @notice Emitted when a token is added to or removed from the allowlist.
    event TokenAllowanceUpdated(address indexed token, bool allowed);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when an address that must be set is zero.
    error SubscriptionZeroAddress();

    /// @notice Thrown when an amount that must be positive is zero.
    error SubscriptionZeroAmount();

    /// @notice Thrown when an amount does not fit 96 bits.
    error SubscriptionAmountTooLarge(uint256 amount);

    /// @notice Thrown when a token is not on the allowlist.
    error SubscriptionTokenNotAllowed(address token);

    /// @notice Thrown when allowlisting an address without code.
    error SubscriptionTokenHasNoCode(address token);

    /// @notice Thrown when the recipient is the subscriber or this contract.
    error SubscriptionInvalidRecipient(address recipient);

    /// @notice Thrown when a period is outside [MIN_PERIOD, MAX_PERIOD].
    error SubscriptionPeriodOutOfBounds(uint256 period, uint256 minimum, uint256 maximum);

    /// @notice Thrown when the start is in the past or the end is not after the start (or either exceeds 2^40 - 1).
    error SubscriptionInvalidSchedule(uint256 startTime, uint256 endsAt);

    /// @notice Thrown when a maximum count exceeds 2^24 - 1.
    error SubscriptionMaxCountTooLarge(uint256 maxCount);

    /// @notice Thrown when a subscription id is unknown.
    error SubscriptionNotFound(uint256 subscriptionId);

    /// @notice Thrown when the caller may not do this on the subscription.
    error SubscriptionUnauthorizedCaller(uint256 subscriptionId, address caller);

    /// @notice Thrown when the subscription's status does not allow the action.
    error SubscriptionInvalidStatus(uint256 subscriptionId, SubscriptionStatus status);

    /// @notice Thrown when reactivating a subscription that neither its deposit nor the subscriber's wallet (balance
    /// and allowance) could pay `amount` for now.
    error SubscriptionUnfunded(uint256 subscriptionId, uint256 amount);

    /// @notice Thrown when withdrawing more deposit than there is.
    error SubscriptionInsufficientDeposit(uint256 available, uint256 amount);

    /// @notice Thrown when a keeper reward is above MAX_KEEPER_REWARD_BPS.
    error SubscriptionRewardTooHigh(uint256 bps, uint256 maximum);

    /// @notice Thrown when a batch is empty.
    error SubscriptionEmptyBatch();

    /// @notice Thrown when a page size is zero or above MAX_PAGE_SIZE.
    error SubscriptionInvalidPageSize(uint256 limit, uint256 maximum);

    /// @notice Thrown when there is nothing to withdraw.
    error SubscriptionNothingToWithdraw(address account, address token);

    /// @notice Thrown when a failed pull or push cannot be told apart from one starved of gas by the caller (less
    /// than 1/64 of the gas was left after it); send more gas or a smaller batch.
    error SubscriptionInsufficientGas();

    /*//////////////////////////////////////////////////////////////
                              SUBSCRIBERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Creates a subscription paid by the caller, funded with `initialDeposit` (pulled with an allowance;
    /// may be zero) and/or an allowance for later charges.
    function createSubscription(Terms calldata terms, uint256 initialDeposit) external returns (uint256 subscriptionId);

    /// @notice Adds `amount` to the subscription's deposit; subscriber only, while Active or PastDue. A PastDue
    /// subscription becomes Active again, so keepers retry it, if a charge would now succeed (the deposit covers the
    /// amount, or the wallet's balance and allowance do after this deposit's pull); otherwise it stays PastDue.
    function deposit(uint256 subscriptionId, uint256 amount) external;

    /// @notice Takes `amount` of the deposit back to `to`; subscriber only, in any status (what is left after the
    /// subscription ended is taken back this way), also while paused.
    function withdrawDeposit(uint256 subscriptionId, uint256 amount, address to) external;

    /// @notice Makes a PastDue subscription Active again without charging it, so keepers see it in
    /// {dueSubscriptions} and retry; subscriber only. Reverts with {SubscriptionUnfunded} unless a charge would
    /// succeed now: the deposit covers the amount, or the subscriber's balance and allowance to this contract do.
    function reactivate(uint256 subscriptionId) external;

    /// @notice Cancels an Active or PastDue subscription and refunds its deposit to the subscriber. Subscriber or
    /// recipient only. Unpaid periods are forgiven.
    function cancel(uint256 subscriptionId) external;

    /*//////////////////////////////////////////////////////////////
                                KEEPERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Charges the oldest unpaid period of an Active or PastDue subscription if it is due. Callable by
    /// anyone; a failed collection marks the subscription PastDue and returns ChargeFailed instead of reverting.
    function execute(uint256 subscriptionId) external returns (ExecutionOutcome outcome);

    /// @notice {execute} for each id, with per-item outcomes and {ExecutionSkipped} events; an id may appear more
    /// than once to catch up several missed periods. Reverts only on an empty batch, while paused, when gas ran so
    /// short that a failed collection cannot be trusted ({SubscriptionInsufficientGas}), or when an allowlisted
    /// token delivered less than it was asked to pull (`ExactTransfers.ExactTransferMismatch`: a fee-on-transfer
    /// or rebasing token, which the books cannot hold; delisting it makes its items skip instead).
    function executeBatch(uint256[] calldata subscriptionIds) external returns (ExecutionOutcome[] memory outcomes);

    /// @notice Withdraws the caller's credited balance of `token` to `to`.
    function withdraw(address token, address to) external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the keeper reward in basis points of each charge, at most MAX_KEEPER_REWARD_BPS.
    function setKeeperRewardBps(uint256 bps) external;

    /// @notice Adds or removes a token from the allowlist. Removal stops new subscriptions, deposits and charges in
    /// that token (executions skip with TokenNotAllowed); withdrawals keep working.
    function setTokenAllowed(address token, bool allowed) external;

    /// @notice Stops creating, depositing and executing.
    function pause() external;

    /// @notice Lifts a pause.
    function unpause() external;

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The subscription as stored.
    function getSubscription(uint256 subscriptionId) external view returns (SubscriptionData memory);

    /// @notice Active subscriptions (not PastDue) in an allowlisted token whose oldest unpaid period is due, among
    /// entries
    /// `[offset, offset + limit)` of the live list (Active and PastDue subscriptions). Scans at most `limit`
    /// entries (1 to MAX_PAGE_SIZE). Keepers page with `nextOffset` until it reaches {liveCount}. The list is
    /// compacted when a subscription is cancelled or ends, so a subscription can move between pages; it is then
    /// found on the next pass.
    function dueSubscriptions(uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory subscriptionIds, uint256 nextOffset);

    /// @notice Number of Active and PastDue subscriptions.
    function liveCount() external view returns (uint256);

    /// @notice Number of subscriptions ever created; ids run from 1 to this number.
    function subscriptionCount() external view returns (uint256);

    /// @notice `account`'s credited balance of `token`.
    function withdrawableBalance(address account, address token) external view returns (uint256);

    /// @notice The keeper reward in basis points.
    function keeperRewardBps() external view returns (uint256);

    /// @notice Whether `token` can be used for new subscriptions, deposits and charges.
    function isTokenAllowed(address token) external view returns (bool);
}
