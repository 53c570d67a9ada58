// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISubscription} from "./interfaces/ISubscription.sol";
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
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @title Subscription
/// @notice Recurring payments executed by keepers; see {ISubscription}.
/// @dev Tokens held == sum of deposits + credited balances. Per subscription, charges <= periods elapsed since the
/// start, because every charge needs `nextDue <= now` and moves `nextDue` one period on. No role can move deposits
/// or credited balances: admins only allowlist tokens, set the bounded keeper reward, pause and upgrade. The
/// UPGRADER_ROLE can replace this logic and must therefore be held by a timelocked multisig in production.
contract Subscription is
    ISubscription,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransientUpgradeable
{
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.UintSet;

    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Shortest period.
    uint256 public constant MIN_PERIOD = 1 minutes;
    /// @notice Longest period.
    uint256 public constant MAX_PERIOD = 366 days;
    /// @notice Highest keeper reward: 1% of a charge.
    uint256 public constant MAX_KEEPER_REWARD_BPS = 100;
    /// @notice Keeper reward at initialization: 0.1% of a charge.
    uint256 public constant DEFAULT_KEEPER_REWARD_BPS = 10;
    /// @notice Most entries {dueSubscriptions} scans in one call.
    uint256 public constant MAX_PAGE_SIZE = 1000;

    /// @custom:storage-location erc7201:x402.storage.Subscription
    struct SubscriptionStorage {
        mapping(uint256 subscriptionId => SubscriptionData) subscriptions;
        mapping(address account => mapping(address token => uint256)) balances;
        mapping(address token => bool) allowedTokens;
        // Active and PastDue subscriptions, so keepers never scan finished ones.
        EnumerableSet.UintSet live;
        uint256 count;
        uint16 keeperRewardBps;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.Subscription")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant SUBSCRIPTION_STORAGE_LOCATION =
        0x6880e1c00e1513ad42c383d38c9f199f64a05cfaffd4073d8bd9c454ad7d2100;

    /// @dev State of one execute or executeBatch call. Consecutive charges in one token form a run: what must
    /// have arrived and the keeper reward to push are checked and paid once per run, and consecutive charges to one
    /// recipient are credited with one storage write.
    struct Run {
        address token;
        bool tokenAllowed;
        uint256 balanceBefore;
        uint256 pulled;
        uint256 reward;
        address recipient;
        uint256 credit;
        uint256 rewardBps;
    }

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor so it cannot be front-run.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE and UPGRADER_ROLE.
    /// @param tokens Initial token allowlist.
    function initialize(address admin, address[] calldata tokens) external initializer {
        if (admin == address(0)) revert SubscriptionZeroAddress();
        __AccessControl_init();
        __Pausable_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _setKeeperRewardBps(DEFAULT_KEEPER_REWARD_BPS);
        for (uint256 i; i < tokens.length; ++i) {
            _setTokenAllowed(tokens[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                              SUBSCRIBERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISubscription
    function createSubscription(Terms calldata terms, uint256 initialDeposit)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 subscriptionId)
    {
        uint256 startTime = _checkTerms(terms);
        _requireFits96(initialDeposit);
        SubscriptionStorage storage $ = _getSubscriptionStorage();
        subscriptionId = ++$.count;
        // forge-lint: disable-start(unsafe-typecast)
        // Every narrowed value was range-checked by _checkTerms.
        $.subscriptions[subscriptionId] = SubscriptionData({
            subscriber: msg.sender,
            amount: uint96(terms.amount),
            recipient: terms.recipient,
            nextDue: uint40(startTime),
            count: 0,
            status: SubscriptionStatus.Active,
            hasDeposit: initialDeposit != 0,
            token: terms.token,
            period: uint32(terms.period),
            endsAt: uint40(terms.endsAt),
            maxCount: uint24(terms.maxCount),
            deposit: uint96(initialDeposit)
        });
        // forge-lint: disable-end(unsafe-typecast)
        $.live.add(subscriptionId);
        emit SubscriptionCreated(
            subscriptionId,
            msg.sender,
            terms.recipient,
            terms.token,
            terms.amount,
            terms.period,
            startTime,
            terms.endsAt,
            terms.maxCount
        );
        if (initialDeposit != 0) {
            emit DepositAdded(subscriptionId, initialDeposit, initialDeposit);
            ExactTransfers.pullExact(terms.token, msg.sender, initialDeposit);
        }
    }

    /// @inheritdoc ISubscription
    function deposit(uint256 subscriptionId, uint256 amount) external whenNotPaused nonReentrant {
        SubscriptionData storage sub = _getOwnSubscription(subscriptionId);
        SubscriptionStatus status = sub.status;
        if (status != SubscriptionStatus.Active && status != SubscriptionStatus.PastDue) {
            revert SubscriptionInvalidStatus(subscriptionId, status);
        }
        if (amount == 0) revert SubscriptionZeroAmount();
        address token = sub.token;
        if (!_getSubscriptionStorage().allowedTokens[token]) revert SubscriptionTokenNotAllowed(token);
        uint256 total = sub.deposit + amount;
        _requireFits96(total);
        // forge-lint: disable-next-line(unsafe-typecast)
        sub.deposit = uint96(total); // checked above
        sub.hasDeposit = true;
        emit DepositAdded(subscriptionId, amount, total);
        // The pull below takes `amount` of the wallet's balance and allowance, which a wallet charge would need too.
        if (status == SubscriptionStatus.PastDue && _chargeableNow(sub, amount)) {
            sub.status = SubscriptionStatus.Active;
            emit SubscriptionReactivated(subscriptionId);
        }
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc ISubscription
    function withdrawDeposit(uint256 subscriptionId, uint256 amount, address to) external nonReentrant {
        if (to == address(0)) revert SubscriptionZeroAddress();
        if (amount == 0) revert SubscriptionZeroAmount();
        SubscriptionData storage sub = _getOwnSubscription(subscriptionId);
        uint256 available = sub.deposit;
        if (amount > available) revert SubscriptionInsufficientDeposit(available, amount);
        unchecked {
            // amount <= available was checked above.
            available -= amount;
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        sub.deposit = uint96(available); // smaller than the uint96 it came from
        sub.hasDeposit = available != 0;
        emit DepositWithdrawn(subscriptionId, to, amount);
        IERC20(sub.token).safeTransfer(to, amount);
    }

    /// @inheritdoc ISubscription
    function reactivate(uint256 subscriptionId) external {
        SubscriptionData storage sub = _getOwnSubscription(subscriptionId);
        SubscriptionStatus status = sub.status;
        if (status != SubscriptionStatus.PastDue) revert SubscriptionInvalidStatus(subscriptionId, status);
        if (!_chargeableNow(sub, 0)) revert SubscriptionUnfunded(subscriptionId, sub.amount);
        sub.status = SubscriptionStatus.Active;
        emit SubscriptionReactivated(subscriptionId);
    }

    /// @inheritdoc ISubscription
    function cancel(uint256 subscriptionId) external nonReentrant {
        SubscriptionData storage sub = _getExistingSubscription(subscriptionId);
        address subscriber = sub.subscriber;
        if (msg.sender != subscriber && msg.sender != sub.recipient) {
            revert SubscriptionUnauthorizedCaller(subscriptionId, msg.sender);
        }
        SubscriptionStatus status = sub.status;
        if (status != SubscriptionStatus.Active && status != SubscriptionStatus.PastDue) {
            revert SubscriptionInvalidStatus(subscriptionId, status);
        }
        uint256 refunded = sub.deposit;
        sub.status = SubscriptionStatus.Cancelled;
        sub.deposit = 0;
        sub.hasDeposit = false;
        _getSubscriptionStorage().live.remove(subscriptionId);
        emit SubscriptionCancelled(subscriptionId, msg.sender, refunded);
        if (refunded != 0) _sendOrCredit(sub.token, subscriber, refunded);
    }

    /*//////////////////////////////////////////////////////////////
                                KEEPERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISubscription
    function execute(uint256 subscriptionId) external whenNotPaused nonReentrant returns (ExecutionOutcome outcome) {
        Run memory run;
        run.rewardBps = _getSubscriptionStorage().keeperRewardBps;
        outcome = _execute(subscriptionId, 0, run);
        _closeRun(run);
    }

    /// @inheritdoc ISubscription
    function executeBatch(uint256[] calldata subscriptionIds)
        external
        whenNotPaused
        nonReentrant
        returns (ExecutionOutcome[] memory outcomes)
    {
        uint256 count = subscriptionIds.length;
        if (count == 0) revert SubscriptionEmptyBatch();
        outcomes = new ExecutionOutcome[](count);
        Run memory run;
        run.rewardBps = _getSubscriptionStorage().keeperRewardBps;
        for (uint256 i; i < count; ++i) {
            outcomes[i] = _execute(subscriptionIds[i], i, run);
        }
        _closeRun(run);
    }

    /// @inheritdoc ISubscription
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert SubscriptionZeroAddress();
        SubscriptionStorage storage $ = _getSubscriptionStorage();
        amount = $.balances[msg.sender][token];
        if (amount == 0) revert SubscriptionNothingToWithdraw(msg.sender, token);
        $.balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISubscription
    function setKeeperRewardBps(uint256 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setKeeperRewardBps(bps);
    }

    /// @inheritdoc ISubscription
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTokenAllowed(token, allowed);
    }

    /// @inheritdoc ISubscription
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc ISubscription
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISubscription
    function getSubscription(uint256 subscriptionId) external view returns (SubscriptionData memory) {
        return _getSubscriptionStorage().subscriptions[subscriptionId];
    }

    /// @inheritdoc ISubscription
    function dueSubscriptions(uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory subscriptionIds, uint256 nextOffset)
    {
        if (limit == 0 || limit > MAX_PAGE_SIZE) revert SubscriptionInvalidPageSize(limit, MAX_PAGE_SIZE);
        SubscriptionStorage storage $ = _getSubscriptionStorage();
        uint256 length = $.live.length();
        nextOffset = offset >= length ? length : (length - offset < limit ? length : offset + limit);
        subscriptionIds = new uint256[](nextOffset > offset ? nextOffset - offset : 0);
        uint256 found;
        for (uint256 i = offset; i < nextOffset; ++i) {
            uint256 id = $.live.at(i);
            SubscriptionData storage sub = $.subscriptions[id];
            if (sub.status == SubscriptionStatus.Active && sub.nextDue <= block.timestamp && $.allowedTokens[sub.token])
            {
                subscriptionIds[found++] = id;
            }
        }
        assembly ("memory-safe") {
            mstore(subscriptionIds, found)
        }
    }

    /// @inheritdoc ISubscription
    function liveCount() external view returns (uint256) {
        return _getSubscriptionStorage().live.length();
    }

    /// @inheritdoc ISubscription
    function subscriptionCount() external view returns (uint256) {
        return _getSubscriptionStorage().count;
    }

    /// @inheritdoc ISubscription
    function withdrawableBalance(address account, address token) external view returns (uint256) {
        return _getSubscriptionStorage().balances[account][token];
    }

    /// @inheritdoc ISubscription
    function keeperRewardBps() external view returns (uint256) {
        return _getSubscriptionStorage().keeperRewardBps;
    }

    /// @inheritdoc ISubscription
    function isTokenAllowed(address token) external view returns (bool) {
        return _getSubscriptionStorage().allowedTokens[token];
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Checks new terms for the caller; returns the start time (now when zero was given).
    function _checkTerms(Terms calldata terms) private view returns (uint256 startTime) {
        address recipient = terms.recipient;
        if (recipient == address(0)) revert SubscriptionZeroAddress();
        if (recipient == msg.sender || recipient == address(this)) revert SubscriptionInvalidRecipient(recipient);
        if (!_getSubscriptionStorage().allowedTokens[terms.token]) revert SubscriptionTokenNotAllowed(terms.token);
        if (terms.amount == 0) revert SubscriptionZeroAmount();
        _requireFits96(terms.amount);
        uint256 period = terms.period;
        if (period < MIN_PERIOD || period > MAX_PERIOD) {
            revert SubscriptionPeriodOutOfBounds(period, MIN_PERIOD, MAX_PERIOD);
        }
        startTime = terms.startTime == 0 ? block.timestamp : terms.startTime;
        uint256 endsAt = terms.endsAt;
        if (
            startTime < block.timestamp || startTime > type(uint40).max || endsAt > type(uint40).max
                || (endsAt != 0 && endsAt <= startTime)
        ) revert SubscriptionInvalidSchedule(terms.startTime, endsAt);
        if (terms.maxCount > type(uint24).max) revert SubscriptionMaxCountTooLarge(terms.maxCount);
    }

    /// @dev One execution. Every condition is re-checked here because anyone can call with any id.
    function _execute(uint256 subscriptionId, uint256 index, Run memory run) private returns (ExecutionOutcome) {
        SubscriptionData storage sub = _getSubscriptionStorage().subscriptions[subscriptionId];
        SubscriptionStatus status = sub.status;
        if (status != SubscriptionStatus.Active && status != SubscriptionStatus.PastDue) {
            return _skip(
                subscriptionId,
                index,
                status == SubscriptionStatus.None ? ExecutionOutcome.NotFound : ExecutionOutcome.Inactive
            );
        }
        uint256 dueAt = sub.nextDue;
        if (dueAt > block.timestamp) return _skip(subscriptionId, index, ExecutionOutcome.NotDue);
        address token = sub.token;
        if (token != run.token) _switchRun(run, token);
        if (!run.tokenAllowed) return _skip(subscriptionId, index, ExecutionOutcome.TokenNotAllowed);

        uint256 amount = sub.amount;
        if (!_collect(sub, token, amount, run)) {
            if (status == SubscriptionStatus.Active) {
                sub.status = SubscriptionStatus.PastDue;
                emit SubscriptionPastDue(subscriptionId, dueAt);
            }
            return _skip(subscriptionId, index, ExecutionOutcome.ChargeFailed);
        }
        uint256 reward = amount * run.rewardBps / 10_000;
        run.reward += reward;
        address recipient = sub.recipient;
        if (recipient != run.recipient) {
            _flushCredit(run);
            run.recipient = recipient;
        }
        run.credit += amount - reward;
        if (status == SubscriptionStatus.PastDue) {
            sub.status = SubscriptionStatus.Active;
            emit SubscriptionReactivated(subscriptionId);
        }
        emit SubscriptionCharged(subscriptionId, msg.sender, dueAt, amount, reward);
        _advance(sub, subscriptionId, dueAt);
        return ExecutionOutcome.Charged;
    }

    /// @dev Takes one charge from the deposit if it covers it, else from the subscriber's wallet. Returns false
    /// when the wallet pull fails.
    function _collect(SubscriptionData storage sub, address token, uint256 amount, Run memory run)
        private
        returns (bool)
    {
        if (sub.hasDeposit) {
            uint256 available = sub.deposit;
            if (available >= amount) {
                unchecked {
                    // available >= amount was checked above.
                    available -= amount;
                }
                // forge-lint: disable-next-line(unsafe-typecast)
                sub.deposit = uint96(available); // smaller than the uint96 it came from
                if (available == 0) sub.hasDeposit = false;
                return true;
            }
        }
        // TryTransfers' guard, inlined on this per-charge path (the library call costs about 100 gas more): a
        // pull starved of gas by the caller says nothing about the subscriber's funds, so it reverts instead.
        uint256 gasBefore = gasleft();
        if (!IERC20(token).trySafeTransferFrom(sub.subscriber, address(this), amount)) {
            if (gasleft() <= gasBefore / 64) revert SubscriptionInsufficientGas();
            return false;
        }
        run.pulled += amount;
        return true;
    }

    /// @dev Whether a charge of `sub` would be collected now: its deposit covers the amount, or the subscriber's
    /// balance and allowance to this contract do once `reserved` of each is taken (by a deposit about to be pulled).
    /// A PastDue subscription goes back on the due list only then: otherwise a subscriber with no funds could have
    /// keepers pay for a failed charge after every run.
    function _chargeableNow(SubscriptionData storage sub, uint256 reserved) private view returns (bool) {
        uint256 amount = sub.amount;
        if (sub.deposit >= amount) return true;
        IERC20 token = IERC20(sub.token);
        address subscriber = sub.subscriber;
        uint256 needed = amount + reserved;
        return token.balanceOf(subscriber) >= needed && token.allowance(subscriber, address(this)) >= needed;
    }

    /// @dev Moves the schedule one period on after a charge and ends the subscription after its last charge.
    function _advance(SubscriptionData storage sub, uint256 subscriptionId, uint256 dueAt) private {
        uint256 nextDue = dueAt + sub.period;
        uint256 charges = sub.count + 1;
        // forge-lint: disable-start(unsafe-typecast)
        // dueAt <= block.timestamp, so nextDue <= now + 366 days fits uint40 until the year 36800; charges are at
        // most one per elapsed minute, which takes 8 000 years to outgrow uint32.
        sub.nextDue = uint40(nextDue);
        sub.count = uint32(charges);
        // forge-lint: disable-end(unsafe-typecast)
        uint256 maxCount = sub.maxCount;
        uint256 endsAt = sub.endsAt;
        if ((maxCount != 0 && charges >= maxCount) || (endsAt != 0 && nextDue >= endsAt)) {
            sub.status = SubscriptionStatus.Ended;
            _getSubscriptionStorage().live.remove(subscriptionId);
            emit SubscriptionEnded(subscriptionId);
        }
    }

    function _skip(uint256 subscriptionId, uint256 index, ExecutionOutcome outcome) private returns (ExecutionOutcome) {
        emit ExecutionSkipped(subscriptionId, index, outcome);
        return outcome;
    }

    /// @dev Settles the current run and starts one in `token`.
    function _switchRun(Run memory run, address token) private {
        _closeRun(run);
        run.token = token;
        run.tokenAllowed = _getSubscriptionStorage().allowedTokens[token];
        run.balanceBefore = IERC20(token).balanceOf(address(this));
        run.pulled = 0;
        run.reward = 0;
        run.recipient = address(0);
    }

    /// @dev Credits the current recipient's share of the run.
    function _flushCredit(Run memory run) private {
        uint256 credit = run.credit;
        if (credit == 0) return;
        _getSubscriptionStorage().balances[run.recipient][run.token] += credit;
        run.credit = 0;
    }

    /// @dev Credits the last recipient, checks that the run's pulls arrived in full (books are kept in exact
    /// amounts, so a fee-on-transfer or rebasing token reverts the call), then pushes the keeper reward.
    function _closeRun(Run memory run) private {
        address token = run.token;
        if (token == address(0)) return;
        _flushCredit(run);
        if (run.pulled != 0) ExactTransfers.requireReceived(token, run.balanceBefore, run.pulled);
        uint256 reward = run.reward;
        if (reward != 0) {
            run.reward = 0;
            _sendOrCredit(token, msg.sender, reward);
        }
    }

    /// @dev Pushes `amount` to `to`; if the token refuses (for example a blacklisted account), credits it to the
    /// withdrawable balance instead.
    function _sendOrCredit(address token, address to, uint256 amount) private {
        if (TryTransfers.trySend(token, to, amount, SubscriptionInsufficientGas.selector)) return;
        _getSubscriptionStorage().balances[to][token] += amount;
        emit PayoutCredited(to, token, amount);
    }

    function _setKeeperRewardBps(uint256 bps) private {
        if (bps > MAX_KEEPER_REWARD_BPS) revert SubscriptionRewardTooHigh(bps, MAX_KEEPER_REWARD_BPS);
        SubscriptionStorage storage $ = _getSubscriptionStorage();
        uint256 previous = $.keeperRewardBps;
        // forge-lint: disable-next-line(unsafe-typecast)
        $.keeperRewardBps = uint16(bps); // at most MAX_KEEPER_REWARD_BPS
        emit KeeperRewardUpdated(previous, bps);
    }

    function _setTokenAllowed(address token, bool allowed) private {
        if (token == address(0)) revert SubscriptionZeroAddress();
        if (allowed && token.code.length == 0) revert SubscriptionTokenHasNoCode(token);
        _getSubscriptionStorage().allowedTokens[token] = allowed;
        emit TokenAllowanceUpdated(token, allowed);
    }

    function _requireFits96(uint256 amount) private pure {
        if (amount > type(uint96).max) revert SubscriptionAmountTooLarge(amount);
    }

    function _getExistingSubscription(uint256 subscriptionId) private view returns (SubscriptionData storage sub) {
        sub = _getSubscriptionStorage().subscriptions[subscriptionId];
        if (sub.status == SubscriptionStatus.None) revert SubscriptionNotFound(subscriptionId);
    }

    function _getOwnSubscription(uint256 subscriptionId) private view returns (SubscriptionData storage sub) {
        sub = _getExistingSubscription(subscriptionId);
        if (msg.sender != sub.subscriber) revert SubscriptionUnauthorizedCaller(subscriptionId, msg.sender);
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _getSubscriptionStorage() private pure returns (SubscriptionStorage storage $) {
        assembly ("memory-safe") {
            $.slot := SUBSCRIPTION_STORAGE_LOCATION
        }
    }
}
