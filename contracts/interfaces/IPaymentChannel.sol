// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IPaymentChannel
/// @notice Unidirectional payment channels for high-frequency agent payments. A payer escrows a deposit for one
/// recipient and pays off-chain by signing EIP-712 vouchers, each carrying the cumulative amount owed on the
/// channel. The recipient claims with the latest voucher whenever it likes; what a claim pays is
/// `min(voucher, deposit) - claimed`, so paid out never exceeds the deposit and an older, lower or replayed
/// voucher pays nothing and reduces nothing.
///
/// Closing:
/// - cooperative: the recipient (or its claim operator) closes at once, claiming a last voucher; the payer gets
///   `deposit - claimed` back;
/// - unilateral: the payer starts a close; the challenge ends at `max(now + challengePeriod, expiresAt)`. Until
///   then the recipient can still claim (or close cooperatively); top-ups and extensions are refused. From the end
///   of the challenge on, claims are refused and anyone can finalize, refunding `deposit - claimed` to the payer.
///
/// Money out is pushed; if the token refuses a push (for example a blacklisted account) the amount is credited to
/// the account's withdrawable balance instead, so no party can block the other. Pausing stops new money (opening,
/// topping up); claims, closes and withdrawals keep working.
interface IPaymentChannel {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Life cycle of a channel. Open -> Closing (payer started a close) -> Closed; Open -> Closed
    /// (recipient closed). A channel record is never deleted, so its id can never be opened again.
    enum ChannelStatus {
        None,
        Open,
        Closing,
        Closed
    }

    /// @notice A channel, packed into four storage slots.
    /// @param payer Who deposited and signs vouchers.
    /// @param deposit Total deposited, in the token's smallest unit.
    /// @param recipient Who is paid.
    /// @param claimed Total paid to the recipient so far; never decreases and never exceeds `deposit`.
    /// @param token The ERC-20 of the deposit.
    /// @param expiresAt The payer cannot get the deposit back before this time.
    /// @param closesAt End of the challenge period (exclusive); zero unless a close was started.
    /// @param status See {ChannelStatus}.
    /// @param challengePeriod Seconds the recipient has to react to a unilateral close.
    struct Channel {
        address payer;
        uint96 deposit;
        address recipient;
        uint96 claimed;
        address token;
        uint40 expiresAt;
        uint40 closesAt;
        ChannelStatus status;
        uint32 challengePeriod;
    }

    /// @notice One voucher submitted to {claimBatch}.
    /// @param channelId The channel the voucher was signed for.
    /// @param amount Cumulative amount the payer owes on the channel.
    /// @param signature 65-byte ECDSA signature (r, s, v) of the payer, or an ERC-1271 signature of a contract
    /// wallet payer.
    struct VoucherClaim {
        bytes32 channelId;
        uint256 amount;
        bytes signature;
    }

    /// @notice What happened to one item of {claimBatch}.
    enum ClaimOutcome {
        Claimed,
        NotFound,
        NotClaimable,
        Unauthorized,
        NothingToClaim,
        InvalidSignature
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a channel is opened.
    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod
    );

    /// @notice Emitted when the payer adds `amount`; `deposit` is the new total.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 amount, uint256 deposit);

    /// @notice Emitted when the payer moves the expiry later.
    event ChannelExtended(bytes32 indexed channelId, uint256 expiresAt);

    /// @notice Emitted when a voucher pays the recipient `amount`; `claimed` is the new total paid.
    event ChannelClaimed(bytes32 indexed channelId, address indexed recipient, uint256 amount, uint256 claimed);

    /// @notice Emitted when the payer starts a unilateral close.
    event ChannelCloseStarted(bytes32 indexed channelId, uint256 closesAt);

    /// @notice Emitted when a channel closes; `refunded` went back to the payer.
    event ChannelClosed(bytes32 indexed channelId, uint256 claimed, uint256 refunded);

    /// @notice Emitted for each {claimBatch} item that paid nothing, with the reason.
    event ClaimSkipped(bytes32 indexed channelId, uint256 index, ClaimOutcome outcome);

    /// @notice Emitted when a push was refused by the token and `amount` was credited to `account` instead.
    event PayoutCredited(address indexed account, address indexed token, uint256 amount);

    /// @notice Emitted when an account withdraws its credited balance.
    event Withdrawn(address indexed account, address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted when a recipient approves or revokes an operator that may claim and close for it.
    event ClaimOperatorSet(address indexed recipient, address indexed operator, bool approved);

    /// @notice Emitted when a token is added to or removed from the allowlist.
    event TokenAllowanceUpdated(address indexed token, bool allowed);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when an address that must be set is zero.
    error PaymentChannelZeroAddress();

    /// @notice Thrown when an amount that must be positive is zero.
    error PaymentChannelZeroAmount();

    /// @notice Thrown when a deposit total would not fit 96 bits.
    error PaymentChannelDepositTooLarge(uint256 deposit);

    /// @notice Thrown when a token is not on the allowlist.
    error PaymentChannelTokenNotAllowed(address token);

    /// @notice Thrown when allowlisting an address without code.
    error PaymentChannelTokenHasNoCode(address token);

    /// @notice Thrown when the payer and the recipient are the same account, or the recipient is this contract.
    error PaymentChannelInvalidRecipient(address recipient);

    /// @notice Thrown when an expiry is not in the future, not later than the current one, or beyond 2^40 - 1.
    error PaymentChannelInvalidExpiry(uint256 expiresAt, uint256 minimum);

    /// @notice Thrown when a challenge period is outside [MIN_CHALLENGE_PERIOD, MAX_CHALLENGE_PERIOD].
    error PaymentChannelChallengePeriodOutOfBounds(uint256 challengePeriod, uint256 minimum, uint256 maximum);

    /// @notice Thrown when opening a channel id that already exists (or existed).
    error PaymentChannelExists(bytes32 channelId);

    /// @notice Thrown when a channel id is unknown.
    error PaymentChannelNotFound(bytes32 channelId);

    /// @notice Thrown when the caller may not do this on the channel.
    error PaymentChannelUnauthorizedCaller(bytes32 channelId, address caller);

    /// @notice Thrown when the channel's status does not allow the action.
    error PaymentChannelInvalidStatus(bytes32 channelId, ChannelStatus status);

    /// @notice Thrown when claiming on a channel whose challenge period has ended.
    error PaymentChannelChallengeOver(bytes32 channelId, uint256 closesAt);

    /// @notice Thrown when finalizing before the challenge period has ended.
    error PaymentChannelChallengeNotOver(bytes32 channelId, uint256 closesAt);

    /// @notice Thrown when a voucher is not signed by the channel's payer.
    error PaymentChannelInvalidSignature(bytes32 channelId);

    /// @notice Thrown when a voucher would pay nothing: `payable_ = min(amount, deposit)` is not above `claimed`.
    error PaymentChannelNothingToClaim(bytes32 channelId, uint256 payable_, uint256 claimed);

    /// @notice Thrown when a batch is empty.
    error PaymentChannelEmptyBatch();

    /// @notice Thrown when there is nothing to withdraw.
    error PaymentChannelNothingToWithdraw(address account, address token);

    /// @notice Thrown when the gas left could make a wallet's signature check fail or a push look refused: less
    /// than SIGNATURE_GAS_RESERVE before an ERC-1271 call, or under 1/64 after a failed push. Send more gas (or a
    /// smaller batch).
    error PaymentChannelInsufficientGas();

    /*//////////////////////////////////////////////////////////////
                                OPENING
    //////////////////////////////////////////////////////////////*/

    /// @notice Opens a channel from the caller to `recipient`, pulling `deposit` with an allowance.
    /// @param salt Any value; the channel id is `keccak256(abi.encode(payer, salt))` (see {channelIdOf}).
    /// @param expiresAt The deposit is locked at least until then (unix seconds, in the future).
    /// @param challengePeriod Seconds the recipient gets to claim after the payer starts a close.
    function openChannel(
        bytes32 salt,
        address recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod
    ) external returns (bytes32 channelId);

    /// @notice {openChannel} with an EIP-2612 permit of the caller for this contract.
    function openChannelWithPermit(
        bytes32 salt,
        address recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 channelId);

    /// @notice Opens a channel for `payer` with its EIP-3009 `ReceiveWithAuthorization` to this contract, so a
    /// relayer can open it gaslessly. The authorization's nonce must be {openAuthorizationNonce} of the same
    /// arguments, which binds it to this channel's recipient, expiry and challenge period.
    function openChannelWithAuthorization(
        bytes32 salt,
        address payer,
        address recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod,
        uint256 validAfter,
        uint256 validBefore,
        bytes calldata signature
    ) external returns (bytes32 channelId);

    /// @notice Adds `amount` to an open channel's deposit; payer only; refused while closing.
    function topUp(bytes32 channelId, uint256 amount) external;

    /// @notice {topUp} funded by the payer's EIP-3009 `ReceiveWithAuthorization` to this contract, submitted by
    /// anyone. The authorization's nonce must be {topUpAuthorizationNonce}`(channelId, salt)`.
    function topUpWithAuthorization(
        bytes32 channelId,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        bytes calldata signature
    ) external;

    /// @notice Moves the expiry of an open channel later; payer only; refused while closing.
    function extend(bytes32 channelId, uint256 expiresAt) external;

    /*//////////////////////////////////////////////////////////////
                           CLAIMING AND CLOSING
    //////////////////////////////////////////////////////////////*/

    /// @notice Pays the recipient what the voucher adds: `min(amount, deposit) - claimed`. Recipient or its claim
    /// operator only; allowed while Open and during the challenge period of a close.
    /// @return paid The amount paid by this call.
    function claim(bytes32 channelId, uint256 amount, bytes calldata signature) external returns (uint256 paid);

    /// @notice Claims many channels in one transaction. An item that cannot pay (unknown channel, caller not its
    /// recipient or operator, not claimable, nothing new, bad signature) is skipped with {ClaimSkipped}; the
    /// others go through. Consecutive items paying the same recipient in the same token are paid in one push. Reverts
    /// only on an empty batch or when the gas left cannot cover an item's signature check.
    /// @return outcomes One outcome per item, in order.
    function claimBatch(VoucherClaim[] calldata items) external returns (ClaimOutcome[] memory outcomes);

    /// @notice Cooperative close by the recipient (or its claim operator): claims the voucher if it adds anything
    /// (the signature is only checked then, so `amount = 0` with an empty signature closes without claiming),
    /// refunds `deposit - claimed` to the payer and closes the channel. Allowed while Open and during a challenge.
    function close(bytes32 channelId, uint256 amount, bytes calldata signature) external;

    /// @notice Starts a unilateral close; payer only, on an Open channel. The challenge ends at
    /// `max(block.timestamp + challengePeriod, expiresAt)`.
    function startClose(bytes32 channelId) external returns (uint256 closesAt);

    /// @notice Closes a channel whose challenge period has ended and refunds `deposit - claimed` to the payer.
    /// Callable by anyone.
    function finalizeClose(bytes32 channelId) external;

    /// @notice Approves or revokes `operator` to claim and close the caller's channels. Payouts still go to the
    /// recipient only.
    function setClaimOperator(address operator, bool approved) external;

    /// @notice Withdraws the caller's credited balance of `token` (pushes the token refused) to `to`.
    function withdraw(address token, address to) external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @notice Adds or removes a token from the allowlist. Removal stops new channels and top-ups only.
    function setTokenAllowed(address token, bool allowed) external;

    /// @notice Stops opening and topping up channels.
    function pause() external;

    /// @notice Lifts a pause.
    function unpause() external;

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The channel, with `status` as stored.
    function getChannel(bytes32 channelId) external view returns (Channel memory);

    /// @notice What a voucher of `amount` would pay now (zero when the channel cannot be claimed).
    function claimable(bytes32 channelId, uint256 amount) external view returns (uint256);

    /// @notice The id of `payer`'s channel opened with `salt`.
    function channelIdOf(address payer, bytes32 salt) external pure returns (bytes32);

    /// @notice The EIP-712 digest the payer signs for a voucher of cumulative `amount` on `channelId`.
    function voucherDigest(bytes32 channelId, uint256 amount) external view returns (bytes32);

    /// @notice The EIP-712 domain separator of vouchers: name "x402 PaymentChannel", version "1", this chain and
    /// this contract.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /// @notice The EIP-3009 nonce that {openChannelWithAuthorization} requires.
    function openAuthorizationNonce(bytes32 channelId, address recipient, uint256 expiresAt, uint256 challengePeriod)
        external
        view
        returns (bytes32);

    /// @notice The EIP-3009 nonce that {topUpWithAuthorization} requires.
    function topUpAuthorizationNonce(bytes32 channelId, bytes32 salt) external view returns (bytes32);

    /// @notice `account`'s credited balance of `token`.
    function withdrawableBalance(address account, address token) external view returns (uint256);

    /// @notice Whether `operator` may claim and close `recipient`'s channels.
    function isClaimOperator(address recipient, address operator) external view returns (bool);

    /// @notice Whether `token` can fund new channels and top-ups.
    function isTokenAllowed(address token) external view returns (bool);
}
