// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPaymentChannel} from "./interfaces/IPaymentChannel.sol";
import {EIP3009Calls} from "./libraries/EIP3009Calls.sol";
import {ExactTransfers} from "./libraries/ExactTransfers.sol";
import {TryTransfers} from "./libraries/TryTransfers.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title PaymentChannel
/// @notice Unidirectional payment channels paid with cumulative EIP-712 vouchers; see {IPaymentChannel}.
/// @dev Tokens held == sum over Open and Closing channels of (deposit - claimed) + credited balances. Every path
/// that pays the recipient raises `claimed` to at most `deposit`, and every path that refunds the payer pays
/// exactly `deposit - claimed` and closes the channel, so the two can never together pay out more than the deposit.
/// No role can move a channel's funds: admins only allowlist tokens, pause deposits and upgrade. The UPGRADER_ROLE
/// can replace this logic and must therefore be held by a timelocked multisig in production.
contract PaymentChannel is
    IPaymentChannel,
    IERC5267,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransientUpgradeable
{
    using SafeERC20 for IERC20;

    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Shortest challenge period a channel can have.
    uint256 public constant MIN_CHALLENGE_PERIOD = 15 minutes;
    /// @notice Longest challenge period a channel can have.
    uint256 public constant MAX_CHALLENGE_PERIOD = 30 days;
    /// @notice Gas an ERC-1271 `isValidSignature` call gets, no more: enough for a passkey verified in Solidity,
    /// and a cap on what a payer's wallet can burn of a recipient's batch.
    uint256 public constant SIGNATURE_GAS_LIMIT = 500_000;
    /// @notice Gas that must be left before an ERC-1271 call so that it really gets SIGNATURE_GAS_LIMIT (a call
    /// forwards at most 63/64 of what is left), plus call overhead: SIGNATURE_GAS_LIMIT * 64 / 63 + 10 000.
    uint256 public constant SIGNATURE_GAS_RESERVE = 517_936;

    /// @notice EIP-712 type of a voucher: the cumulative `amount` the payer owes on `channelId`.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 amount)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    string private constant DOMAIN_NAME = "x402 PaymentChannel";
    string private constant DOMAIN_VERSION = "1";
    bytes32 private constant DOMAIN_NAME_HASH = keccak256(bytes(DOMAIN_NAME));
    bytes32 private constant DOMAIN_VERSION_HASH = keccak256(bytes(DOMAIN_VERSION));
    /// @dev Domain tags of the EIP-3009 nonces, so an open nonce can never equal a top-up nonce.
    bytes32 private constant OPEN_NONCE_TAG = keccak256("x402.PaymentChannel.open");
    bytes32 private constant TOP_UP_NONCE_TAG = keccak256("x402.PaymentChannel.topUp");

    /// @custom:storage-location erc7201:x402.storage.PaymentChannel
    struct PaymentChannelStorage {
        mapping(bytes32 channelId => Channel) channels;
        mapping(address account => mapping(address token => uint256)) balances;
        mapping(address recipient => mapping(address operator => bool)) operators;
        mapping(address token => bool) allowedTokens;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.PaymentChannel")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant PAYMENT_CHANNEL_STORAGE_LOCATION =
        0xeb9d38a4fc181dc80ece481f0242f840b490f83162dbb098ed0b7a627a5f9600;

    /// @dev A run of consecutive {claimBatch} payouts to the same recipient in the same token, paid in one push.
    struct PendingPayout {
        address recipient;
        address token;
        uint256 amount;
    }

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor so it cannot be front-run.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE and UPGRADER_ROLE.
    /// @param tokens Initial token allowlist.
    function initialize(address admin, address[] calldata tokens) external initializer {
        if (admin == address(0)) revert PaymentChannelZeroAddress();
        __AccessControl_init();
        __Pausable_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        for (uint256 i; i < tokens.length; ++i) {
            _setTokenAllowed(tokens[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                OPENING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IPaymentChannel
    function openChannel(
        bytes32 salt,
        address recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod
    ) external whenNotPaused nonReentrant returns (bytes32 channelId) {
        channelId = _open(salt, msg.sender, recipient, token, deposit, expiresAt, challengePeriod);
        ExactTransfers.pullExact(token, msg.sender, deposit);
    }

    /// @inheritdoc IPaymentChannel
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
    ) external whenNotPaused nonReentrant returns (bytes32 channelId) {
        channelId = _open(salt, msg.sender, recipient, token, deposit, expiresAt, challengePeriod);
        ExactTransfers.permit(token, msg.sender, deposit, deadline, v, r, s);
        ExactTransfers.pullExact(token, msg.sender, deposit);
    }

    /// @inheritdoc IPaymentChannel
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
    ) external whenNotPaused nonReentrant returns (bytes32 channelId) {
        channelId = _open(salt, payer, recipient, token, deposit, expiresAt, challengePeriod);
        bytes32 nonce = _openNonce(channelId, recipient, expiresAt, challengePeriod);
        ExactTransfers.receiveExact(
            token, EIP3009Calls.Authorization(payer, address(this), deposit, validAfter, validBefore, nonce), signature
        );
    }

    /// @inheritdoc IPaymentChannel
    function topUp(bytes32 channelId, uint256 amount) external whenNotPaused nonReentrant {
        Channel storage channel = _getChannel(channelId);
        if (msg.sender != channel.payer) revert PaymentChannelUnauthorizedCaller(channelId, msg.sender);
        address token = _addDeposit(channelId, channel, amount);
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc IPaymentChannel
    function topUpWithAuthorization(
        bytes32 channelId,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        bytes calldata signature
    ) external whenNotPaused nonReentrant {
        Channel storage channel = _getChannel(channelId);
        address token = _addDeposit(channelId, channel, amount);
        ExactTransfers.receiveExact(
            token,
            EIP3009Calls.Authorization(
                channel.payer, address(this), amount, validAfter, validBefore, _topUpNonce(channelId, salt)
            ),
            signature
        );
    }

    /// @inheritdoc IPaymentChannel
    function extend(bytes32 channelId, uint256 expiresAt) external {
        Channel storage channel = _getChannel(channelId);
        if (msg.sender != channel.payer) revert PaymentChannelUnauthorizedCaller(channelId, msg.sender);
        _requireStatus(channelId, channel, ChannelStatus.Open);
        uint256 current = channel.expiresAt;
        if (expiresAt <= current || expiresAt > type(uint40).max) {
            revert PaymentChannelInvalidExpiry(expiresAt, current + 1);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        channel.expiresAt = uint40(expiresAt); // checked above
        emit ChannelExtended(channelId, expiresAt);
    }

    /*//////////////////////////////////////////////////////////////
                           CLAIMING AND CLOSING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IPaymentChannel
    function claim(bytes32 channelId, uint256 amount, bytes calldata signature)
        external
        nonReentrant
        returns (uint256 paid)
    {
        Channel storage channel = _getChannel(channelId);
        address recipient = channel.recipient;
        _requireRecipientOrOperator(channelId, recipient);
        _requireClaimable(channelId, channel);
        uint256 claimed = channel.claimed;
        uint256 payable_ = _capped(amount, channel.deposit);
        if (payable_ <= claimed) revert PaymentChannelNothingToClaim(channelId, payable_, claimed);
        if (!_isValidVoucher(channel.payer, _voucherDigest(_domainSeparator(), channelId, amount), signature)) {
            revert PaymentChannelInvalidSignature(channelId);
        }
        paid = _recordClaim(channelId, channel, recipient, payable_, claimed);
        _sendOrCredit(channel.token, recipient, paid);
    }

    /// @inheritdoc IPaymentChannel
    function claimBatch(VoucherClaim[] calldata items) external nonReentrant returns (ClaimOutcome[] memory outcomes) {
        uint256 count = items.length;
        if (count == 0) revert PaymentChannelEmptyBatch();
        outcomes = new ClaimOutcome[](count);
        bytes32 domainSeparator = _domainSeparator();
        PendingPayout memory payout;
        for (uint256 i; i < count; ++i) {
            VoucherClaim calldata item = items[i];
            bytes32 channelId = item.channelId;
            Channel storage channel = _getChannelStorage().channels[channelId];
            ClaimOutcome outcome = _checkBatchItem(channel, item.amount);
            if (outcome == ClaimOutcome.Claimed) {
                address payer = channel.payer;
                bytes32 digest = _voucherDigest(domainSeparator, channelId, item.amount);
                if (!_isValidVoucher(payer, digest, item.signature)) outcome = ClaimOutcome.InvalidSignature;
            }
            if (outcome != ClaimOutcome.Claimed) {
                outcomes[i] = outcome;
                emit ClaimSkipped(channelId, i, outcome);
                continue;
            }
            address recipient = channel.recipient;
            address token = channel.token;
            uint256 paid =
                _recordClaim(channelId, channel, recipient, _capped(item.amount, channel.deposit), channel.claimed);
            if (recipient != payout.recipient || token != payout.token) {
                _flush(payout);
                payout.recipient = recipient;
                payout.token = token;
                payout.amount = 0;
            }
            payout.amount += paid;
        }
        _flush(payout);
    }

    /// @inheritdoc IPaymentChannel
    function close(bytes32 channelId, uint256 amount, bytes calldata signature) external nonReentrant {
        Channel storage channel = _getChannel(channelId);
        address recipient = channel.recipient;
        _requireRecipientOrOperator(channelId, recipient);
        _requireClaimable(channelId, channel);
        uint256 deposit = channel.deposit;
        uint256 claimed = channel.claimed;
        uint256 payable_ = _capped(amount, deposit);
        uint256 paid;
        // A voucher at or below what was already paid adds nothing; it is ignored rather than trusted, so the refund
        // below is always deposit - claimed (never deposit - amount).
        if (payable_ > claimed) {
            if (!_isValidVoucher(channel.payer, _voucherDigest(_domainSeparator(), channelId, amount), signature)) {
                revert PaymentChannelInvalidSignature(channelId);
            }
            paid = _recordClaim(channelId, channel, recipient, payable_, claimed);
            claimed = payable_;
        }
        uint256 refunded = _closeChannel(channelId, channel, deposit, claimed);
        address token = channel.token;
        if (paid != 0) _sendOrCredit(token, recipient, paid);
        if (refunded != 0) _sendOrCredit(token, channel.payer, refunded);
    }

    /// @inheritdoc IPaymentChannel
    function startClose(bytes32 channelId) external returns (uint256 closesAt) {
        Channel storage channel = _getChannel(channelId);
        if (msg.sender != channel.payer) revert PaymentChannelUnauthorizedCaller(channelId, msg.sender);
        _requireStatus(channelId, channel, ChannelStatus.Open);
        closesAt = block.timestamp + channel.challengePeriod;
        uint256 expiresAt = channel.expiresAt;
        if (expiresAt > closesAt) closesAt = expiresAt;
        // forge-lint: disable-next-line(unsafe-typecast)
        channel.closesAt = uint40(closesAt); // a timestamp plus at most 30 days, or a uint40 expiry
        channel.status = ChannelStatus.Closing;
        emit ChannelCloseStarted(channelId, closesAt);
    }

    /// @inheritdoc IPaymentChannel
    function finalizeClose(bytes32 channelId) external nonReentrant {
        Channel storage channel = _getChannel(channelId);
        _requireStatus(channelId, channel, ChannelStatus.Closing);
        uint256 closesAt = channel.closesAt;
        if (block.timestamp < closesAt) revert PaymentChannelChallengeNotOver(channelId, closesAt);
        uint256 refunded = _closeChannel(channelId, channel, channel.deposit, channel.claimed);
        if (refunded != 0) _sendOrCredit(channel.token, channel.payer, refunded);
    }

    /// @inheritdoc IPaymentChannel
    function setClaimOperator(address operator, bool approved) external {
        if (operator == address(0)) revert PaymentChannelZeroAddress();
        _getChannelStorage().operators[msg.sender][operator] = approved;
        emit ClaimOperatorSet(msg.sender, operator, approved);
    }

    /// @inheritdoc IPaymentChannel
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert PaymentChannelZeroAddress();
        PaymentChannelStorage storage $ = _getChannelStorage();
        amount = $.balances[msg.sender][token];
        if (amount == 0) revert PaymentChannelNothingToWithdraw(msg.sender, token);
        $.balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IPaymentChannel
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTokenAllowed(token, allowed);
    }

    /// @inheritdoc IPaymentChannel
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IPaymentChannel
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IPaymentChannel
    function getChannel(bytes32 channelId) external view returns (Channel memory) {
        return _getChannelStorage().channels[channelId];
    }

    /// @inheritdoc IPaymentChannel
    function claimable(bytes32 channelId, uint256 amount) external view returns (uint256) {
        Channel storage channel = _getChannelStorage().channels[channelId];
        ChannelStatus status = channel.status;
        if (status == ChannelStatus.None || status == ChannelStatus.Closed) return 0;
        if (status == ChannelStatus.Closing && block.timestamp >= channel.closesAt) return 0;
        uint256 payable_ = _capped(amount, channel.deposit);
        uint256 claimed = channel.claimed;
        return payable_ > claimed ? payable_ - claimed : 0;
    }

    /// @inheritdoc IPaymentChannel
    function channelIdOf(address payer, bytes32 salt) external pure returns (bytes32) {
        return _channelIdOf(payer, salt);
    }

    /// @inheritdoc IPaymentChannel
    function voucherDigest(bytes32 channelId, uint256 amount) external view returns (bytes32) {
        return _voucherDigest(_domainSeparator(), channelId, amount);
    }

    /// @inheritdoc IPaymentChannel
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    /// @inheritdoc IERC5267
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", DOMAIN_NAME, DOMAIN_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @inheritdoc IPaymentChannel
    function openAuthorizationNonce(bytes32 channelId, address recipient, uint256 expiresAt, uint256 challengePeriod)
        external
        view
        returns (bytes32)
    {
        return _openNonce(channelId, recipient, expiresAt, challengePeriod);
    }

    /// @inheritdoc IPaymentChannel
    function topUpAuthorizationNonce(bytes32 channelId, bytes32 salt) external view returns (bytes32) {
        return _topUpNonce(channelId, salt);
    }

    /// @inheritdoc IPaymentChannel
    function withdrawableBalance(address account, address token) external view returns (uint256) {
        return _getChannelStorage().balances[account][token];
    }

    /// @inheritdoc IPaymentChannel
    function isClaimOperator(address recipient, address operator) external view returns (bool) {
        return _getChannelStorage().operators[recipient][operator];
    }

    /// @inheritdoc IPaymentChannel
    function isTokenAllowed(address token) external view returns (bool) {
        return _getChannelStorage().allowedTokens[token];
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Checks and records a new channel; the caller pulls the deposit afterwards.
    function _open(
        bytes32 salt,
        address payer,
        address recipient,
        address token,
        uint256 deposit,
        uint256 expiresAt,
        uint256 challengePeriod
    ) private returns (bytes32 channelId) {
        PaymentChannelStorage storage $ = _getChannelStorage();
        if (payer == address(0) || recipient == address(0)) revert PaymentChannelZeroAddress();
        if (recipient == payer || recipient == address(this)) revert PaymentChannelInvalidRecipient(recipient);
        if (!$.allowedTokens[token]) revert PaymentChannelTokenNotAllowed(token);
        if (deposit == 0) revert PaymentChannelZeroAmount();
        if (deposit > type(uint96).max) revert PaymentChannelDepositTooLarge(deposit);
        if (expiresAt <= block.timestamp || expiresAt > type(uint40).max) {
            revert PaymentChannelInvalidExpiry(expiresAt, block.timestamp + 1);
        }
        if (challengePeriod < MIN_CHALLENGE_PERIOD || challengePeriod > MAX_CHALLENGE_PERIOD) {
            revert PaymentChannelChallengePeriodOutOfBounds(challengePeriod, MIN_CHALLENGE_PERIOD, MAX_CHALLENGE_PERIOD);
        }
        channelId = _channelIdOf(payer, salt);
        Channel storage channel = $.channels[channelId];
        if (channel.status != ChannelStatus.None) revert PaymentChannelExists(channelId);
        // forge-lint: disable-start(unsafe-typecast)
        // All three were range-checked above.
        $.channels[channelId] = Channel({
            payer: payer,
            deposit: uint96(deposit),
            recipient: recipient,
            claimed: 0,
            token: token,
            expiresAt: uint40(expiresAt),
            closesAt: 0,
            status: ChannelStatus.Open,
            challengePeriod: uint32(challengePeriod)
        });
        // forge-lint: disable-end(unsafe-typecast)
        emit ChannelOpened(channelId, payer, recipient, token, deposit, expiresAt, challengePeriod);
    }

    /// @dev Checks and records a top-up of an open channel; returns the token to pull.
    function _addDeposit(bytes32 channelId, Channel storage channel, uint256 amount) private returns (address token) {
        _requireStatus(channelId, channel, ChannelStatus.Open);
        if (amount == 0) revert PaymentChannelZeroAmount();
        token = channel.token;
        // A token taken off the allowlist (for example a compromised one) takes no new money.
        if (!_getChannelStorage().allowedTokens[token]) revert PaymentChannelTokenNotAllowed(token);
        uint256 deposit = channel.deposit + amount;
        if (deposit > type(uint96).max) revert PaymentChannelDepositTooLarge(deposit);
        // forge-lint: disable-next-line(unsafe-typecast)
        channel.deposit = uint96(deposit); // checked above
        emit ChannelToppedUp(channelId, amount, deposit);
    }

    /// @dev Raises `claimed` to `payable_` (callers checked payable_ > claimed and payable_ <= deposit).
    function _recordClaim(
        bytes32 channelId,
        Channel storage channel,
        address recipient,
        uint256 payable_,
        uint256 claimed
    ) private returns (uint256 paid) {
        // forge-lint: disable-next-line(unsafe-typecast)
        channel.claimed = uint96(payable_); // payable_ <= deposit, a uint96
        unchecked {
            // payable_ > claimed was checked by the caller.
            paid = payable_ - claimed;
        }
        emit ChannelClaimed(channelId, recipient, paid, payable_);
    }

    /// @dev Marks the channel closed and returns what the payer gets back: deposit - claimed, never more.
    function _closeChannel(bytes32 channelId, Channel storage channel, uint256 deposit, uint256 claimed)
        private
        returns (uint256 refunded)
    {
        channel.status = ChannelStatus.Closed;
        refunded = deposit - claimed;
        emit ChannelClosed(channelId, claimed, refunded);
    }

    /// @dev Every check of a {claimBatch} item short of the signature, as an outcome instead of a revert.
    function _checkBatchItem(Channel storage channel, uint256 amount) private view returns (ClaimOutcome) {
        ChannelStatus status = channel.status;
        if (status == ChannelStatus.None) return ClaimOutcome.NotFound;
        if (status == ChannelStatus.Closed) return ClaimOutcome.NotClaimable;
        if (status == ChannelStatus.Closing && block.timestamp >= channel.closesAt) return ClaimOutcome.NotClaimable;
        address recipient = channel.recipient;
        if (msg.sender != recipient && !_getChannelStorage().operators[recipient][msg.sender]) {
            return ClaimOutcome.Unauthorized;
        }
        if (_capped(amount, channel.deposit) <= channel.claimed) return ClaimOutcome.NothingToClaim;
        return ClaimOutcome.Claimed;
    }

    /// @dev Pays a run of batch payouts in one push.
    function _flush(PendingPayout memory payout) private {
        if (payout.amount != 0) _sendOrCredit(payout.token, payout.recipient, payout.amount);
    }

    /// @dev Pushes `amount` to `to`; if the token refuses (for example a blacklisted account), credits it to the
    /// withdrawable balance instead, so one blocked account never traps the other party's money.
    function _sendOrCredit(address token, address to, uint256 amount) private {
        if (TryTransfers.trySend(token, to, amount, PaymentChannelInsufficientGas.selector)) return;
        _getChannelStorage().balances[to][token] += amount;
        emit PayoutCredited(to, token, amount);
    }

    /// @dev Accepts the payer's 65-byte low-s ECDSA signature, or else, if the payer has code, its ERC-1271
    /// approval given within SIGNATURE_GAS_LIMIT gas.
    function _isValidVoucher(address payer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        if (signature.length == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                s := calldataload(add(signature.offset, 0x20))
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
            // tryRecover rejects s in the upper half of the curve order (malleable twins) and v other than 27/28.
            (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, v, r, s);
            if (error == ECDSA.RecoverError.NoError && signer == payer) return true;
        }
        if (payer.code.length == 0) return false;
        // Without a full budget left the wallet's answer could be an artifact of the caller's gas limit.
        if (gasleft() < SIGNATURE_GAS_RESERVE) revert PaymentChannelInsufficientGas();
        bytes memory callData = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 magic;
        assembly ("memory-safe") {
            // Only the first return word is copied, so a wallet cannot charge the caller for huge return data.
            mstore(0x00, 0)
            success := staticcall(SIGNATURE_GAS_LIMIT, payer, add(callData, 0x20), mload(callData), 0x00, 0x20)
            magic := mload(0x00)
            if lt(returndatasize(), 0x20) { success := 0 }
        }
        return success && magic == bytes32(IERC1271.isValidSignature.selector);
    }

    function _requireRecipientOrOperator(bytes32 channelId, address recipient) private view {
        if (msg.sender != recipient && !_getChannelStorage().operators[recipient][msg.sender]) {
            revert PaymentChannelUnauthorizedCaller(channelId, msg.sender);
        }
    }

    /// @dev Open, or Closing with the challenge period still running.
    function _requireClaimable(bytes32 channelId, Channel storage channel) private view {
        ChannelStatus status = channel.status;
        if (status == ChannelStatus.Closing) {
            uint256 closesAt = channel.closesAt;
            if (block.timestamp >= closesAt) revert PaymentChannelChallengeOver(channelId, closesAt);
        } else if (status != ChannelStatus.Open) {
            revert PaymentChannelInvalidStatus(channelId, status);
        }
    }

    function _requireStatus(bytes32 channelId, Channel storage channel, ChannelStatus expected) private view {
        ChannelStatus status = channel.status;
        if (status != expected) revert PaymentChannelInvalidStatus(channelId, status);
    }

    function _getChannel(bytes32 channelId) private view returns (Channel storage channel) {
        channel = _getChannelStorage().channels[channelId];
        if (channel.status == ChannelStatus.None) revert PaymentChannelNotFound(channelId);
    }

    function _setTokenAllowed(address token, bool allowed) private {
        if (token == address(0)) revert PaymentChannelZeroAddress();
        if (allowed && token.code.length == 0) revert PaymentChannelTokenHasNoCode(token);
        _getChannelStorage().allowedTokens[token] = allowed;
        emit TokenAllowanceUpdated(token, allowed);
    }

    function _capped(uint256 amount, uint256 deposit) private pure returns (uint256) {
        return amount < deposit ? amount : deposit;
    }

    function _channelIdOf(address payer, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(payer, salt));
    }

    function _domainSeparator() private view returns (bytes32) {
        return
            keccak256(abi.encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, block.chainid, address(this)));
    }

    function _voucherDigest(bytes32 domainSeparator, bytes32 channelId, uint256 amount)
        private
        pure
        returns (bytes32 digest)
    {
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, amount));
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev Binds an EIP-3009 open authorization to one channel's terms on this contract and chain.
    function _openNonce(bytes32 channelId, address recipient, uint256 expiresAt, uint256 challengePeriod)
        private
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(OPEN_NONCE_TAG, block.chainid, address(this), channelId, recipient, expiresAt, challengePeriod)
        );
    }

    /// @dev Binds an EIP-3009 top-up authorization to one channel on this contract and chain.
    function _topUpNonce(bytes32 channelId, bytes32 salt) private view returns (bytes32) {
        return keccak256(abi.encode(TOP_UP_NONCE_TAG, block.chainid, address(this), channelId, salt));
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _getChannelStorage() private pure returns (PaymentChannelStorage storage $) {
        assembly ("memory-safe") {
            $.slot := PAYMENT_CHANNEL_STORAGE_LOCATION
        }
    }
}
