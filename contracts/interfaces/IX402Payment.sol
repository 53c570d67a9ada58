// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IX402Payment
/// @notice Invoices with a refund window, paid with an allowance, an EIP-2612 permit or a gasless EIP-3009
/// authorization bound to the invoice, and batched settlement of standard x402 `exact` authorizations.
interface IX402Payment {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Life cycle of an invoice.
    /// Pending -> Confirmed (paid, funds in escrow, refund window open)
    /// Confirmed -> Refunded (payee refunds inside the window)
    /// Confirmed -> Disputed (payer disputes inside the window; funds frozen)
    /// Confirmed -> Released (window over; amount credited to the payee's withdrawable balance)
    /// Disputed -> Resolved (arbiter splits the amount) or Refunded (payee concedes)
    /// Expired is never stored: {getInvoice} reports it for a Pending invoice at or past its expiry.
    enum InvoiceStatus {
        None,
        Pending,
        Confirmed,
        Released,
        Refunded,
        Disputed,
        Resolved,
        Expired
    }

    /// @notice An invoice, packed into three storage slots.
    /// @param payee Who created the invoice and is paid.
    /// @param expiresAt The invoice can be paid while `block.timestamp < expiresAt`.
    /// @param status See {InvoiceStatus}.
    /// @param token The ERC-20 the invoice is denominated in.
    /// @param amount The exact amount due, in the token's smallest unit.
    /// @param payer Who paid; zero while Pending.
    /// @param refundDeadline End of the refund window (exclusive), fixed when paid.
    struct Invoice {
        address payee;
        uint64 expiresAt;
        InvoiceStatus status;
        address token;
        uint96 amount;
        address payer;
        uint64 refundDeadline;
    }

    /// @notice One signed x402 `exact` payload: an EIP-3009 `TransferWithAuthorization` of `token`.
    /// @param signature 65-byte ECDSA signature (r, s, v), or an ERC-1271 signature of a contract wallet.
    struct TransferAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        bytes signature;
    }

    /// @notice What happened to one item of {settleBatch}.
    /// Settled: transferred. AlreadyUsed: the nonce was used or cancelled before (for example the authorization
    /// was front-run or appears twice in the batch). Expired / NotYetValid: outside its validity window, not
    /// submitted. Failed: the token rejected it (bad signature, insufficient balance, blacklist...), with the
    /// token's revert data in {AuthorizationSkipped}.
    enum SettlementOutcome {
        None,
        Settled,
        AlreadyUsed,
        Expired,
        NotYetValid,
        Failed
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a payee creates an invoice.
    event InvoiceCreated(
        bytes32 indexed invoiceId, address indexed payee, address indexed token, uint256 amount, uint64 expiresAt
    );

    /// @notice Emitted when an invoice is paid and its funds enter escrow.
    event InvoicePaid(bytes32 indexed invoiceId, address indexed payer, uint256 amount, uint64 refundDeadline);

    /// @notice Emitted when the payee refunds an invoice. `credited` is true when the transfer to the payer
    /// failed (for example a blacklisted payer) and the amount was credited to the payer's withdrawable balance.
    event InvoiceRefunded(bytes32 indexed invoiceId, address indexed payer, uint256 amount, bool credited);

    /// @notice Emitted when the payer disputes an invoice inside its refund window.
    event InvoiceDisputed(bytes32 indexed invoiceId, address indexed payer);

    /// @notice Emitted when an arbiter resolves a dispute. `payerCredited` as in {InvoiceRefunded}.
    event DisputeResolved(
        bytes32 indexed invoiceId, address indexed arbiter, uint256 payerAmount, uint256 payeeAmount, bool payerCredited
    );

    /// @notice Emitted when an invoice's refund window ends and its amount is credited to the payee.
    event InvoiceReleased(bytes32 indexed invoiceId, address indexed payee, uint256 amount);

    /// @notice Emitted when an account withdraws its withdrawable balance of a token.
    event Withdrawn(address indexed account, address indexed token, address indexed to, uint256 amount);

    /// @notice Emitted after a batch: one byte per item in `outcomes`, a {SettlementOutcome}.
    event BatchSettled(
        address indexed token, address indexed submitter, uint256 settledCount, uint256 settledValue, bytes outcomes
    );

    /// @notice Emitted for every batch item that was not settled, with the token's revert data if it reverted.
    event AuthorizationSkipped(
        address indexed token,
        address indexed from,
        bytes32 indexed nonce,
        uint256 index,
        SettlementOutcome outcome,
        bytes reason
    );

    /// @notice Emitted when the default refund window changes; invoices already paid keep their deadline.
    event RefundWindowUpdated(uint64 previousWindow, uint64 newWindow);

    /// @notice Emitted when a token is added to or removed from the allowlist.
    event TokenAllowanceUpdated(address indexed token, bool allowed);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Thrown when an address argument that must be set is zero.
    error X402PaymentZeroAddress();

    /// @notice Thrown when an amount that must be positive is zero.
    error X402PaymentZeroAmount();

    /// @notice Thrown when a token is not on the allowlist.
    error X402PaymentTokenNotAllowed(address token);

    /// @notice Thrown when a token to allowlist has no code.
    error X402PaymentTokenHasNoCode(address token);

    /// @notice Thrown when a refund window is outside `[MIN_REFUND_WINDOW, MAX_REFUND_WINDOW]`.
    error X402PaymentRefundWindowOutOfBounds(uint64 window, uint64 min, uint64 max);

    /// @notice Thrown when a new invoice's expiry is not in the future.
    error X402PaymentInvalidExpiry(uint64 expiresAt, uint256 timestamp);

    /// @notice Thrown when an invoice with this id already exists.
    error X402PaymentInvoiceExists(bytes32 invoiceId);

    /// @notice Thrown when no invoice has this id.
    error X402PaymentInvoiceNotFound(bytes32 invoiceId);

    /// @notice Thrown when an invoice is not in a status that allows the requested transition.
    error X402PaymentInvalidStatus(bytes32 invoiceId, InvoiceStatus status);

    /// @notice Thrown when paying an invoice at or after its expiry.
    error X402PaymentInvoiceExpired(bytes32 invoiceId, uint64 expiresAt);

    /// @notice Thrown when refunding or disputing at or after the end of the refund window.
    error X402PaymentRefundWindowClosed(bytes32 invoiceId, uint64 refundDeadline);

    /// @notice Thrown when releasing an invoice whose refund window is still open.
    error X402PaymentRefundWindowOpen(bytes32 invoiceId, uint64 refundDeadline);

    /// @notice Thrown when the caller is not the party the action belongs to.
    error X402PaymentUnauthorizedCaller(bytes32 invoiceId, address caller);

    /// @notice Thrown when an arbiter assigns the payer more than the invoice amount.
    error X402PaymentPayerAmountTooLarge(uint256 payerAmount, uint256 amount);

    /// @notice Thrown when there is nothing to withdraw.
    error X402PaymentNothingToWithdraw(address account, address token);

    /// @notice Thrown when {settleBatch} or {release} gets an empty list.
    error X402PaymentEmptyBatch();

    /// @notice Thrown when less than a full item gas budget (`ITEM_GAS_LIMIT` plus the 1/64 a call keeps back) is
    /// left before batch item `index`. The whole batch reverts so that no unexecuted item is reported as failed;
    /// resubmit with more gas.
    error X402PaymentBatchOutOfGas(uint256 index);

    /// @notice Revert reason recorded for a batch item that pays this contract itself: the tokens would be stuck.
    error X402PaymentInvalidRecipient(address recipient);

    /// @notice Thrown when a refund transfer failed for lack of gas (63/64 rule) rather than being refused.
    error X402PaymentInsufficientGas();

    /*//////////////////////////////////////////////////////////////
                                FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Creates an invoice payable by anyone; the caller is the payee.
    /// @param salt Any value the payee picks; the id is `invoiceIdOf(msg.sender, salt)`.
    /// @return invoiceId The new invoice's id.
    function createInvoice(bytes32 salt, address token, uint96 amount, uint64 expiresAt)
        external
        returns (bytes32 invoiceId);

    /// @notice Pays an invoice from the caller's allowance. Every payment path reverts once the invoice's token is
    /// off the allowlist. Anyone may pay an invoice, and whoever pays it is its payer (and may dispute it).
    function pay(bytes32 invoiceId) external;

    /// @notice Pays an invoice with an EIP-2612 permit signed by the caller for this contract.
    /// @dev If the permit was already used (for example front-run), the payment still succeeds when the allowance
    /// suffices.
    function payWithPermit(bytes32 invoiceId, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Pays an invoice gaslessly with an EIP-3009 `ReceiveWithAuthorization` signed by `from` for
    /// `to = address(this)`, `value = amount` and `nonce = authorizationNonceOf(invoiceId)`. Anyone may submit it;
    /// the signature can pay this invoice only.
    function payWithAuthorization(
        bytes32 invoiceId,
        address from,
        uint256 validAfter,
        uint256 validBefore,
        bytes calldata signature
    ) external;

    /// @notice Refunds a Confirmed invoice inside its refund window, or a Disputed one at any time; payee only.
    function refund(bytes32 invoiceId) external;

    /// @notice Disputes a Confirmed invoice inside its refund window, freezing the funds; payer only.
    function dispute(bytes32 invoiceId) external;

    /// @notice Resolves a dispute: `payerAmount` goes back to the payer, the rest to the payee; arbiter only.
    function resolveDispute(bytes32 invoiceId, uint96 payerAmount) external;

    /// @notice Credits each Confirmed invoice whose refund window is over to its payee's withdrawable balance.
    /// Anyone may call it. Reverts if any id is not releasable.
    function release(bytes32[] calldata invoiceIds) external;

    /// @notice Sends the caller's whole withdrawable balance of `token` to `to`.
    /// @return amount What was sent.
    function withdraw(address token, address to) external returns (uint256 amount);

    /// @notice Executes signed x402 `exact` authorizations of `token`, each independently and each with the same
    /// fixed gas budget (`ITEM_GAS_LIMIT`): an expired, used, cancelled or invalid authorization, or one whose token
    /// call exhausts its budget, is skipped with an outcome, never reverting the batch. An item paying this
    /// contract itself is skipped as Failed. The transaction needs `ITEM_GAS_LIMIT * 64 / 63` of headroom above
    /// what the items use, or it reverts with {X402PaymentBatchOutOfGas}.
    /// @return outcomes One {SettlementOutcome} per item, in order.
    function settleBatch(address token, TransferAuthorization[] calldata items)
        external
        returns (SettlementOutcome[] memory outcomes);

    /// @notice Sets the refund window applied to invoices paid from now on; admin only.
    function setRefundWindow(uint64 window) external;

    /// @notice Adds or removes a token from the allowlist; admin only. Removing a token never blocks refunds,
    /// disputes, releases or withdrawals of funds already held.
    function setTokenAllowed(address token, bool allowed) external;

    /// @notice Stops invoice creation, payments and batch settlement; pauser only.
    function pause() external;

    /// @notice Resumes what {pause} stopped; pauser only.
    function unpause() external;

    /// @notice The invoice with this id; its status is Expired for a Pending invoice past its expiry.
    function getInvoice(bytes32 invoiceId) external view returns (Invoice memory);

    /// @notice The id an invoice created by `payee` with `salt` gets.
    function invoiceIdOf(address payee, bytes32 salt) external pure returns (bytes32);

    /// @notice The EIP-3009 nonce a payer signs to pay this invoice with {payWithAuthorization}.
    function authorizationNonceOf(bytes32 invoiceId) external view returns (bytes32);

    /// @notice What `account` can withdraw of `token`.
    function withdrawableBalance(address account, address token) external view returns (uint256);

    /// @notice The refund window applied to invoices paid from now on, in seconds.
    function refundWindow() external view returns (uint64);

    /// @notice Whether `token` may be used for new invoices and batches.
    function isTokenAllowed(address token) external view returns (bool);
}
