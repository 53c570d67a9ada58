// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC3009} from "./interfaces/IERC3009.sol";
import {IX402Payment} from "./interfaces/IX402Payment.sol";
import {EIP3009Calls} from "./libraries/EIP3009Calls.sol";
import {ExactTransfers} from "./libraries/ExactTransfers.sol";
import {TryTransfers} from "./libraries/TryTransfers.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title X402Payment
/// @notice x402 payments on EVM chains: invoices held in escrow for a refund window, and batched settlement of
/// standard x402 `exact` (EIP-3009) authorizations with per-item isolation.
/// @dev Trust model: no role can move escrowed or withdrawable funds to itself. The arbiter only splits a
/// disputed invoice between its payer and payee; pausing stops new invoices, payments and batches but never
/// refunds, disputes, releases or withdrawals. The UPGRADER_ROLE can replace this logic and must therefore be
/// held by a timelocked multisig in production.
contract X402Payment is
    IX402Payment,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransientUpgradeable
{
    using SafeERC20 for IERC20;

    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Resolves disputes.
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Smallest configurable refund window.
    uint64 public constant MIN_REFUND_WINDOW = 60;
    /// @notice Largest configurable refund window.
    uint64 public constant MAX_REFUND_WINDOW = 30 days;
    /// @notice Refund window the deploy script uses unless told otherwise.
    uint64 public constant DEFAULT_REFUND_WINDOW = 600;
    /// @notice Gas each {settleBatch} item's token call gets, no more and no less. Enough for USDC with an ERC-1271
    /// smart wallet verifying a passkey signature in Solidity; a plain USDC authorization uses about 45 000.
    uint256 public constant ITEM_GAS_LIMIT = 500_000;
    /// @notice Gas that must be left before a {settleBatch} item so that its call really gets ITEM_GAS_LIMIT (a
    /// call forwards at most 63/64 of what is left), plus the encoding and call overhead:
    /// ITEM_GAS_LIMIT * 64 / 63 + 10 000, written out because the compiler does not fold the checked expression.
    uint256 public constant ITEM_GAS_RESERVE = 517_936;
    /// @dev Longest token revert reason copied into {AuthorizationSkipped}.
    uint256 private constant MAX_REASON_BYTES = 512;

    // {settleBatch} encodes its token calls in assembly with the selectors of
    // transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32) = 0xe3ee160e
    // and transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes) = 0xcf092995.

    /// @custom:storage-location erc7201:x402.storage.X402Payment
    struct X402PaymentStorage {
        mapping(bytes32 invoiceId => Invoice) invoices;
        mapping(address account => mapping(address token => uint256)) balances;
        mapping(address token => bool) allowedTokens;
        uint64 refundWindow;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.X402Payment")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant X402_PAYMENT_STORAGE_LOCATION =
        0x3568b7157291baaffc9117ae995898cfaa927b9e00c5a043ed9f296e88637400;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor so it cannot be front-run.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE and UPGRADER_ROLE.
    /// @param arbiter Gets ARBITER_ROLE.
    /// @param refundWindow_ Initial refund window in seconds.
    /// @param tokens Initial token allowlist.
    function initialize(address admin, address arbiter, uint64 refundWindow_, address[] calldata tokens)
        external
        initializer
    {
        if (admin == address(0) || arbiter == address(0)) revert X402PaymentZeroAddress();
        __AccessControl_init();
        __Pausable_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _grantRole(ARBITER_ROLE, arbiter);
        _setRefundWindow(refundWindow_);
        for (uint256 i; i < tokens.length; ++i) {
            _setTokenAllowed(tokens[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                INVOICES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IX402Payment
    function createInvoice(bytes32 salt, address token, uint96 amount, uint64 expiresAt)
        external
        whenNotPaused
        returns (bytes32 invoiceId)
    {
        X402PaymentStorage storage $ = _getX402PaymentStorage();
        if (!$.allowedTokens[token]) revert X402PaymentTokenNotAllowed(token);
        if (amount == 0) revert X402PaymentZeroAmount();
        if (expiresAt <= block.timestamp) revert X402PaymentInvalidExpiry(expiresAt, block.timestamp);
        invoiceId = _invoiceIdOf(msg.sender, salt);
        Invoice storage invoice = $.invoices[invoiceId];
        if (invoice.status != InvoiceStatus.None) revert X402PaymentInvoiceExists(invoiceId);
        invoice.payee = msg.sender;
        invoice.expiresAt = expiresAt;
        invoice.status = InvoiceStatus.Pending;
        invoice.token = token;
        invoice.amount = amount;
        emit InvoiceCreated(invoiceId, msg.sender, token, amount, expiresAt);
    }

    /// @inheritdoc IX402Payment
    function pay(bytes32 invoiceId) external whenNotPaused nonReentrant {
        Invoice storage invoice = _confirm(invoiceId, msg.sender);
        ExactTransfers.pullExact(invoice.token, msg.sender, invoice.amount);
    }

    /// @inheritdoc IX402Payment
    function payWithPermit(bytes32 invoiceId, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
        nonReentrant
    {
        Invoice storage invoice = _confirm(invoiceId, msg.sender);
        address token = invoice.token;
        uint256 amount = invoice.amount;
        ExactTransfers.permit(token, msg.sender, amount, deadline, v, r, s);
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc IX402Payment
    function payWithAuthorization(
        bytes32 invoiceId,
        address from,
        uint256 validAfter,
        uint256 validBefore,
        bytes calldata signature
    ) external whenNotPaused nonReentrant {
        Invoice storage invoice = _confirm(invoiceId, from);
        ExactTransfers.receiveExact(
            invoice.token,
            EIP3009Calls.Authorization(
                from, address(this), invoice.amount, validAfter, validBefore, _authorizationNonceOf(invoiceId)
            ),
            signature
        );
    }

    /// @inheritdoc IX402Payment
    function refund(bytes32 invoiceId) external nonReentrant {
        Invoice storage invoice = _getExistingInvoice(invoiceId);
        if (msg.sender != invoice.payee) revert X402PaymentUnauthorizedCaller(invoiceId, msg.sender);
        InvoiceStatus status = invoice.status;
        if (status == InvoiceStatus.Confirmed) {
            _requireRefundWindowOpen(invoiceId, invoice);
        } else if (status != InvoiceStatus.Disputed) {
            revert X402PaymentInvalidStatus(invoiceId, _statusOf(invoice));
        }
        invoice.status = InvoiceStatus.Refunded;
        address payer = invoice.payer;
        uint256 amount = invoice.amount;
        bool credited = _sendOrCredit(invoice.token, payer, amount);
        emit InvoiceRefunded(invoiceId, payer, amount, credited);
    }

    /// @inheritdoc IX402Payment
    function dispute(bytes32 invoiceId) external {
        Invoice storage invoice = _getExistingInvoice(invoiceId);
        if (msg.sender != invoice.payer) revert X402PaymentUnauthorizedCaller(invoiceId, msg.sender);
        if (invoice.status != InvoiceStatus.Confirmed) {
            revert X402PaymentInvalidStatus(invoiceId, _statusOf(invoice));
        }
        _requireRefundWindowOpen(invoiceId, invoice);
        invoice.status = InvoiceStatus.Disputed;
        emit InvoiceDisputed(invoiceId, msg.sender);
    }

    /// @inheritdoc IX402Payment
    function resolveDispute(bytes32 invoiceId, uint96 payerAmount) external onlyRole(ARBITER_ROLE) nonReentrant {
        Invoice storage invoice = _getExistingInvoice(invoiceId);
        if (invoice.status != InvoiceStatus.Disputed) {
            revert X402PaymentInvalidStatus(invoiceId, _statusOf(invoice));
        }
        address payee = invoice.payee;
        address payer = invoice.payer;
        // An arbiter who is a party to the invoice could award it to itself.
        if (msg.sender == payee || msg.sender == payer) revert X402PaymentUnauthorizedCaller(invoiceId, msg.sender);
        uint96 amount = invoice.amount;
        if (payerAmount > amount) revert X402PaymentPayerAmountTooLarge(payerAmount, amount);
        address token = invoice.token;
        invoice.status = InvoiceStatus.Resolved;
        uint256 payeeAmount;
        unchecked {
            // payerAmount <= amount was checked above.
            payeeAmount = amount - payerAmount;
        }
        if (payeeAmount != 0) _getX402PaymentStorage().balances[payee][token] += payeeAmount;
        bool payerCredited = payerAmount != 0 && _sendOrCredit(token, payer, payerAmount);
        emit DisputeResolved(invoiceId, msg.sender, payerAmount, payeeAmount, payerCredited);
    }

    /// @inheritdoc IX402Payment
    function release(bytes32[] calldata invoiceIds) external {
        if (invoiceIds.length == 0) revert X402PaymentEmptyBatch();
        X402PaymentStorage storage $ = _getX402PaymentStorage();
        for (uint256 i; i < invoiceIds.length; ++i) {
            bytes32 invoiceId = invoiceIds[i];
            Invoice storage invoice = _getExistingInvoice(invoiceId);
            if (invoice.status != InvoiceStatus.Confirmed) {
                revert X402PaymentInvalidStatus(invoiceId, _statusOf(invoice));
            }
            if (block.timestamp < invoice.refundDeadline) {
                revert X402PaymentRefundWindowOpen(invoiceId, invoice.refundDeadline);
            }
            invoice.status = InvoiceStatus.Released;
            address payee = invoice.payee;
            uint256 amount = invoice.amount;
            $.balances[payee][invoice.token] += amount;
            emit InvoiceReleased(invoiceId, payee, amount);
        }
    }

    /// @inheritdoc IX402Payment
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert X402PaymentZeroAddress();
        X402PaymentStorage storage $ = _getX402PaymentStorage();
        amount = $.balances[msg.sender][token];
        if (amount == 0) revert X402PaymentNothingToWithdraw(msg.sender, token);
        $.balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                            BATCH SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IX402Payment
    function settleBatch(address token, TransferAuthorization[] calldata items)
        external
        whenNotPaused
        nonReentrant
        returns (SettlementOutcome[] memory outcomes)
    {
        uint256 count = items.length;
        if (count == 0) revert X402PaymentEmptyBatch();
        if (!_getX402PaymentStorage().allowedTokens[token]) revert X402PaymentTokenNotAllowed(token);
        outcomes = new SettlementOutcome[](count);
        bytes memory packedOutcomes = new bytes(count);
        uint256 settledCount;
        uint256 settledValue;
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }
        for (uint256 i; i < count; ++i) {
            TransferAuthorization calldata item = items[i];
            SettlementOutcome outcome = _settleOne(token, item, i);
            outcomes[i] = outcome;
            packedOutcomes[i] = bytes1(uint8(outcome));
            if (outcome == SettlementOutcome.Settled) {
                ++settledCount;
                settledValue += item.value;
            }
            // Each item's call data is dead once the item is done; reusing its memory keeps the cost of memory
            // expansion linear in the batch size instead of quadratic.
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
        emit BatchSettled(token, msg.sender, settledCount, settledValue, packedOutcomes);
    }

    /// @dev Executes one authorization and classifies the result. Reverts only when less than a full item budget
    /// is left, because then the item could not really be attempted (see {X402PaymentBatchOutOfGas}); failing the
    /// whole batch also keeps `eth_estimateGas` honest, which a silently truncated batch would not.
    function _settleOne(address token, TransferAuthorization calldata item, uint256 index)
        private
        returns (SettlementOutcome outcome)
    {
        if (block.timestamp >= item.validBefore) {
            _emitSkipped(token, item, index, SettlementOutcome.Expired, "");
            return SettlementOutcome.Expired;
        }
        if (block.timestamp <= item.validAfter) {
            _emitSkipped(token, item, index, SettlementOutcome.NotYetValid, "");
            return SettlementOutcome.NotYetValid;
        }
        address to;
        assembly ("memory-safe") {
            // `to` is the item's second word; only its low 160 bits are the address.
            to := and(calldataload(add(item, 0x20)), 0xffffffffffffffffffffffffffffffffffffffff)
        }
        if (to == address(this)) {
            // Tokens sent here by a bare transfer would belong to nobody in this contract's books.
            _emitSkipped(
                token,
                item,
                index,
                SettlementOutcome.Failed,
                abi.encodeWithSelector(X402PaymentInvalidRecipient.selector, to)
            );
            return SettlementOutcome.Failed;
        }
        // Every item runs with the same, fixed gas budget, so one item (say, an ERC-1271 wallet burning gas in
        // isValidSignature) can neither starve the items after it nor be reported failed for lack of gas the
        // batch did not give it: with less than a full budget left, the whole batch reverts instead.
        if (gasleft() < ITEM_GAS_RESERVE) revert X402PaymentBatchOutOfGas(index);
        bytes calldata signature = item.signature;
        bool success;
        assembly ("memory-safe") {
            // Build the token call in free memory straight from calldata: the item's first six words (from, to,
            // value, validAfter, validBefore, nonce) are already the ABI encoding of the call's first six arguments.
            let ptr := mload(0x40)
            let size := 0x124
            switch signature.length
            case 65 {
                mstore(ptr, shl(224, 0xe3ee160e)) // TRANSFER_WITH_AUTHORIZATION_VRS
                calldatacopy(add(ptr, 0x04), item, 0xc0)
                mstore(add(ptr, 0xc4), byte(0, calldataload(add(signature.offset, 0x40)))) // v
                calldatacopy(add(ptr, 0xe4), signature.offset, 0x40) // r, s
            }
            default {
                mstore(ptr, shl(224, 0xcf092995)) // TRANSFER_WITH_AUTHORIZATION_BYTES
                calldatacopy(add(ptr, 0x04), item, 0xc0)
                mstore(add(ptr, 0xc4), 0xe0) // offset of `signature` in the arguments
                mstore(add(ptr, 0xe4), signature.length)
                calldatacopy(add(ptr, 0x104), signature.offset, signature.length)
                mstore(add(add(ptr, 0x104), signature.length), 0) // zero the padding
                size := add(0x104, and(add(signature.length, 0x1f), not(0x1f)))
            }
            // Return data is ignored on success (EIP-3009 functions return nothing), so it is not copied.
            success := call(ITEM_GAS_LIMIT, token, 0, ptr, size, 0, 0)
        }
        if (success) return SettlementOutcome.Settled;
        bytes memory reason = _returnData();
        outcome = _isAuthorizationUsed(token, item.from, item.nonce)
            ? SettlementOutcome.AlreadyUsed
            : SettlementOutcome.Failed;
        _emitSkipped(token, item, index, outcome, reason);
    }

    function _emitSkipped(
        address token,
        TransferAuthorization calldata item,
        uint256 index,
        SettlementOutcome outcome,
        bytes memory reason
    ) private {
        emit AuthorizationSkipped(token, item.from, item.nonce, index, outcome, reason);
    }

    function _isAuthorizationUsed(address token, address authorizer, bytes32 nonce) private view returns (bool) {
        try IERC3009(token).authorizationState(authorizer, nonce) returns (bool used) {
            return used;
        } catch {
            return false;
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IX402Payment
    function setRefundWindow(uint64 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRefundWindow(window);
    }

    /// @inheritdoc IX402Payment
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTokenAllowed(token, allowed);
    }

    /// @inheritdoc IX402Payment
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IX402Payment
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IX402Payment
    function getInvoice(bytes32 invoiceId) external view returns (Invoice memory invoice) {
        Invoice storage stored = _getX402PaymentStorage().invoices[invoiceId];
        invoice = stored;
        invoice.status = _statusOf(stored);
    }

    /// @inheritdoc IX402Payment
    function invoiceIdOf(address payee, bytes32 salt) external pure returns (bytes32) {
        return _invoiceIdOf(payee, salt);
    }

    /// @inheritdoc IX402Payment
    function authorizationNonceOf(bytes32 invoiceId) external view returns (bytes32) {
        return _authorizationNonceOf(invoiceId);
    }

    /// @inheritdoc IX402Payment
    function withdrawableBalance(address account, address token) external view returns (uint256) {
        return _getX402PaymentStorage().balances[account][token];
    }

    /// @inheritdoc IX402Payment
    function refundWindow() external view returns (uint64) {
        return _getX402PaymentStorage().refundWindow;
    }

    /// @inheritdoc IX402Payment
    function isTokenAllowed(address token) external view returns (bool) {
        return _getX402PaymentStorage().allowedTokens[token];
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Checks that the invoice is payable and records the payment. Runs before the token transfer
    /// (checks-effects-interactions); a failed transfer reverts the whole call.
    function _confirm(bytes32 invoiceId, address payer) private returns (Invoice storage invoice) {
        invoice = _getExistingInvoice(invoiceId);
        if (invoice.status != InvoiceStatus.Pending) revert X402PaymentInvalidStatus(invoiceId, invoice.status);
        // A token taken off the allowlist (for example a compromised one) takes no new money, even for old invoices.
        address token = invoice.token;
        if (!_getX402PaymentStorage().allowedTokens[token]) revert X402PaymentTokenNotAllowed(token);
        uint64 expiresAt = invoice.expiresAt;
        if (block.timestamp >= expiresAt) revert X402PaymentInvoiceExpired(invoiceId, expiresAt);
        uint64 refundDeadline = uint64(block.timestamp) + _getX402PaymentStorage().refundWindow;
        invoice.status = InvoiceStatus.Confirmed;
        invoice.payer = payer;
        invoice.refundDeadline = refundDeadline;
        emit InvoicePaid(invoiceId, payer, invoice.amount, refundDeadline);
    }

    /// @dev Pushes a refund to `to`; if the token refuses (for example a blacklisted payer), credits it to the
    /// withdrawable balance instead, so one blocked recipient never traps the invoice.
    function _sendOrCredit(address token, address to, uint256 amount) private returns (bool credited) {
        // A transfer starved of gas by the caller is not a refusal by the token: it reverts rather than let the
        // caller choose crediting over paying.
        if (TryTransfers.trySend(token, to, amount, X402PaymentInsufficientGas.selector)) return false;
        _getX402PaymentStorage().balances[to][token] += amount;
        return true;
    }

    function _requireRefundWindowOpen(bytes32 invoiceId, Invoice storage invoice) private view {
        uint64 refundDeadline = invoice.refundDeadline;
        if (block.timestamp >= refundDeadline) revert X402PaymentRefundWindowClosed(invoiceId, refundDeadline);
    }

    function _getExistingInvoice(bytes32 invoiceId) private view returns (Invoice storage invoice) {
        invoice = _getX402PaymentStorage().invoices[invoiceId];
        if (invoice.status == InvoiceStatus.None) revert X402PaymentInvoiceNotFound(invoiceId);
    }

    function _statusOf(Invoice storage invoice) private view returns (InvoiceStatus) {
        InvoiceStatus status = invoice.status;
        if (status == InvoiceStatus.Pending && block.timestamp >= invoice.expiresAt) return InvoiceStatus.Expired;
        return status;
    }

    function _setRefundWindow(uint64 window) private {
        if (window < MIN_REFUND_WINDOW || window > MAX_REFUND_WINDOW) {
            revert X402PaymentRefundWindowOutOfBounds(window, MIN_REFUND_WINDOW, MAX_REFUND_WINDOW);
        }
        X402PaymentStorage storage $ = _getX402PaymentStorage();
        uint64 previous = $.refundWindow;
        $.refundWindow = window;
        emit RefundWindowUpdated(previous, window);
    }

    function _setTokenAllowed(address token, bool allowed) private {
        if (token == address(0)) revert X402PaymentZeroAddress();
        if (allowed && token.code.length == 0) revert X402PaymentTokenHasNoCode(token);
        _getX402PaymentStorage().allowedTokens[token] = allowed;
        emit TokenAllowanceUpdated(token, allowed);
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _invoiceIdOf(address payee, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(payee, salt));
    }

    /// @dev Binds an EIP-3009 nonce to one invoice of this contract on this chain.
    function _authorizationNonceOf(bytes32 invoiceId) private view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), invoiceId));
    }

    /// @dev The last call's revert data, cut at MAX_REASON_BYTES.
    function _returnData() private pure returns (bytes memory data) {
        assembly ("memory-safe") {
            let size := returndatasize()
            if gt(size, MAX_REASON_BYTES) { size := MAX_REASON_BYTES }
            data := mload(0x40)
            mstore(data, size)
            returndatacopy(add(data, 0x20), 0, size)
            mstore(0x40, add(add(data, 0x20), and(add(size, 0x1f), not(0x1f))))
        }
    }

    function _getX402PaymentStorage() private pure returns (X402PaymentStorage storage $) {
        assembly ("memory-safe") {
            $.slot := X402_PAYMENT_STORAGE_LOCATION
        }
    }
}
