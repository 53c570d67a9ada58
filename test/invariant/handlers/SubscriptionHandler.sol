// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../../contracts/Subscription.sol";
import {TestStablecoin} from "../../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../../contracts/interfaces/ISubscription.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Drives Subscription with several subscribers, recipients and keepers: creations with and without
/// deposits, limits and future starts, deposits and their withdrawal, cancels by either party, single and batched
/// executions (with repeated and unknown ids), withdrawals, revoked allowances and emptied wallets, time warps,
/// reward changes, pauses and delistings. Inputs are bounded and impossible actions return early, because
/// `fail_on_revert = true` fails the run on any revert. Every SubscriptionCharged event feeds the ghost books.
contract SubscriptionHandler is CommonBase, StdUtils {
    Subscription public immutable subscriptions;
    TestStablecoin public immutable usdc;
    address public immutable admin;

    uint256 public constant SUBSCRIBERS = 4;
    uint256 public constant RECIPIENTS = 3;
    uint256 public constant KEEPERS = 2;
    /// @dev Where emptied wallets park their tokens, so that the supply check still sees them.
    address public constant SINK = address(0xD100);

    uint256[] public ids;
    mapping(uint256 id => uint256) public startOf;
    mapping(uint256 id => uint256) public chargesSeen;
    mapping(uint256 id => mapping(uint256 dueAt => uint256)) public timesCharged;
    mapping(uint256 id => ISubscription.SubscriptionStatus) public lastStatus;

    uint256 public chargeCount;
    uint256 public failedCharges;
    uint256 public totalCharged;
    uint256 public totalRewards;
    mapping(address keeper => uint256) public rewardsOf;

    bool public chargedTwice;
    bool public chargedAheadOfTime;
    bool public chargedOffTheGrid;
    bool public chargedAtOrAfterEnd;
    bool public rewardAboveMaximum;
    bool public illegalTransitionSeen;

    mapping(bytes4 selector => uint256) public calls;

    constructor(Subscription subscriptions_, TestStablecoin usdc_, address admin_) {
        subscriptions = subscriptions_;
        usdc = usdc_;
        admin = admin_;
        for (uint256 i; i < SUBSCRIBERS; ++i) {
            vm.prank(subscriber(i));
            usdc_.approve(address(subscriptions_), type(uint256).max);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 ACTORS
    //////////////////////////////////////////////////////////////*/

    function subscriber(uint256 i) public pure returns (address) {
        return address(uint160(0xA100 + i % SUBSCRIBERS));
    }

    function recipient(uint256 i) public pure returns (address) {
        return address(uint160(0xB100 + i % RECIPIENTS));
    }

    function keeper(uint256 i) public pure returns (address) {
        return address(uint160(0xC100 + i % KEEPERS));
    }

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    /*//////////////////////////////////////////////////////////////
                              SUBSCRIBERS
    //////////////////////////////////////////////////////////////*/

    function create(
        uint256 subscriberSeed,
        uint256 recipientSeed,
        uint256 amount,
        uint256 period,
        uint256 startDelay,
        uint256 length,
        uint256 maxCount,
        uint256 initialDeposit
    ) external {
        if (subscriptions.paused() || !subscriptions.isTokenAllowed(address(usdc))) return;
        ++calls[this.create.selector];
        address account = subscriber(subscriberSeed);
        ISubscription.Terms memory t;
        t.recipient = recipient(recipientSeed);
        t.token = address(usdc);
        t.amount = _bound(amount, 1, 5000e6);
        t.period = _bound(period, 1 minutes, 45 days);
        // A third start now (zero), the rest up to ten days ahead.
        t.startTime = startDelay % 3 == 0 ? 0 : block.timestamp + _bound(startDelay, 0, 10 days);
        uint256 start = t.startTime == 0 ? block.timestamp : t.startTime;
        t.endsAt = length % 3 == 0 ? 0 : start + _bound(length, 1, 20 * t.period);
        t.maxCount = maxCount % 2 == 0 ? 0 : _bound(maxCount, 1, 12);
        initialDeposit = _bound(initialDeposit, 0, 3 * t.amount);
        if (initialDeposit > _spendable(account)) initialDeposit = 0;

        vm.prank(account);
        uint256 id = subscriptions.createSubscription(t, initialDeposit);
        ids.push(id);
        startOf[id] = start;
        _track(id);
    }

    function deposit(uint256 idSeed, uint256 amount) external {
        if (subscriptions.paused() || !subscriptions.isTokenAllowed(address(usdc))) return;
        (bool found, uint256 id) = _pick(idSeed, true);
        if (!found) return;
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        uint256 spendable = _spendable(sub.subscriber);
        if (spendable == 0) return;
        ++calls[this.deposit.selector];
        amount = _bound(amount, 1, 3 * uint256(sub.amount));
        if (amount > spendable) amount = spendable;
        vm.prank(sub.subscriber);
        subscriptions.deposit(id, amount);
        _track(id);
    }

    /// @dev In any status, including Ended (what is left after the last charge).
    function withdrawDeposit(uint256 idSeed, uint256 amount) external {
        uint256 count = ids.length;
        if (count == 0) return;
        uint256 id = ids[idSeed % count];
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        if (sub.deposit == 0) return;
        ++calls[this.withdrawDeposit.selector];
        vm.prank(sub.subscriber);
        subscriptions.withdrawDeposit(id, _bound(amount, 1, sub.deposit), sub.subscriber);
        _track(id);
    }

    function cancel(uint256 idSeed, bool byRecipient, uint8 dice) external {
        // Rarer than creating, so that subscriptions live long enough to be charged many times.
        if (dice % 4 != 1) return;
        (bool found, uint256 id) = _pick(idSeed, true);
        if (!found) return;
        ++calls[this.cancel.selector];
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        vm.prank(byRecipient ? sub.recipient : sub.subscriber);
        subscriptions.cancel(id);
        _track(id);
    }

    function reactivate(uint256 idSeed) external {
        (bool found, uint256 id) = _pick(idSeed, true);
        if (!found) return;
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        if (sub.status != ISubscription.SubscriptionStatus.PastDue) return;
        // Only a subscription a charge would pay now may go back on the due list.
        if (sub.deposit < sub.amount && _spendable(sub.subscriber) < sub.amount) return;
        ++calls[this.reactivate.selector];
        vm.prank(sub.subscriber);
        subscriptions.reactivate(id);
        _track(id);
    }

    /// @dev Revoked allowances make later pulls fail: those must skip, never revert. Revoking is rarer than
    /// restoring, so that most runs still see charges pulled from wallets.
    function setAllowance(uint256 subscriberSeed, uint8 dice) external {
        bool revoke = dice % 5 == 3;
        ++calls[revoke ? bytes4(keccak256("revokeAllowance")) : this.setAllowance.selector];
        vm.prank(subscriber(subscriberSeed));
        usdc.approve(address(subscriptions), revoke ? 0 : type(uint256).max);
    }

    /// @dev Emptied wallets make later pulls fail too; parked funds come back later.
    function moveWalletFunds(uint256 subscriberSeed, uint256 amount, uint8 dice) external {
        address account = subscriber(subscriberSeed);
        if (dice % 5 == 3) {
            uint256 balance = usdc.balanceOf(account);
            if (balance == 0) return;
            ++calls[bytes4(keccak256("emptyWallet"))];
            vm.prank(account);
            usdc.transfer(SINK, balance);
        } else {
            uint256 parked = usdc.balanceOf(SINK);
            if (parked == 0) return;
            ++calls[this.moveWalletFunds.selector];
            vm.prank(SINK);
            usdc.transfer(account, _bound(amount, 1, parked));
        }
    }

    /*//////////////////////////////////////////////////////////////
                                KEEPERS
    //////////////////////////////////////////////////////////////*/

    function execute(uint256 idSeed, uint256 keeperSeed) external {
        if (subscriptions.paused()) return;
        (bool found, uint256 id) = _pick(idSeed, false);
        if (!found) return;
        ++calls[this.execute.selector];
        address caller = keeper(keeperSeed);
        vm.recordLogs();
        vm.prank(caller);
        subscriptions.execute(id);
        _recordCharges(caller);
        _track(id);
    }

    /// @dev Several ids, repeated ones (catch-up) and unknown ones (0 and past the last id) included.
    function executeBatch(uint256 seed, uint256 length, uint256 keeperSeed) external {
        if (subscriptions.paused()) return;
        ++calls[this.executeBatch.selector];
        length = _bound(length, 1, 8);
        uint256[] memory batch = new uint256[](length);
        uint256 count = ids.length;
        for (uint256 i; i < length; ++i) {
            // One in four items repeats the previous one, to catch up missed periods.
            uint256 dice = uint256(keccak256(abi.encode(seed, i)));
            if (i != 0 && dice % 4 == 0) batch[i] = batch[i - 1];
            else if (count == 0 || dice % 8 == 1) batch[i] = (dice >> 8) % 2 == 0 ? 0 : count + 1; // unknown ids
            else batch[i] = ids[(dice >> 8) % count];
        }
        address caller = keeper(keeperSeed);
        vm.recordLogs();
        vm.prank(caller);
        subscriptions.executeBatch(batch);
        _recordCharges(caller);
        for (uint256 i; i < length; ++i) {
            if (batch[i] != 0 && batch[i] <= count) _track(batch[i]);
        }
    }

    /// @dev What a keeper bot does: one page of the due list, executed as one batch.
    function keeperRun(uint256 keeperSeed) external {
        if (subscriptions.paused() || subscriptions.liveCount() == 0) return;
        (uint256[] memory due,) = subscriptions.dueSubscriptions(0, 50);
        if (due.length == 0) return;
        ++calls[this.keeperRun.selector];
        address caller = keeper(keeperSeed);
        vm.recordLogs();
        vm.prank(caller);
        subscriptions.executeBatch(due);
        _recordCharges(caller);
        for (uint256 i; i < due.length; ++i) {
            _track(due[i]);
        }
    }

    function withdraw(uint256 actorSeed) external {
        address account = _actor(actorSeed);
        if (subscriptions.withdrawableBalance(account, address(usdc)) == 0) return;
        ++calls[this.withdraw.selector];
        vm.prank(account);
        subscriptions.withdraw(address(usdc), account);
    }

    function warp(uint256 secondsForward) external {
        ++calls[this.warp.selector];
        vm.warp(block.timestamp + _bound(secondsForward, 1, 10 days));
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @dev Changes the reward, or rarely pauses or delists the token; a pause or delisting is lifted by the next
    /// admin action, so that they interleave with normal use.
    function adminAction(uint256 bps, uint8 dice) external {
        vm.startPrank(admin);
        if (subscriptions.paused()) {
            ++calls[bytes4(keccak256("unpause"))];
            subscriptions.unpause();
        } else if (!subscriptions.isTokenAllowed(address(usdc))) {
            ++calls[bytes4(keccak256("relist"))];
            subscriptions.setTokenAllowed(address(usdc), true);
        } else if (dice % 16 == 7) {
            ++calls[bytes4(keccak256("pause"))];
            subscriptions.pause();
        } else if (dice % 16 == 9) {
            ++calls[bytes4(keccak256("delist"))];
            subscriptions.setTokenAllowed(address(usdc), false);
        } else {
            ++calls[this.adminAction.selector];
            subscriptions.setKeeperRewardBps(_bound(bps, 0, 100));
        }
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _spendable(address account) internal view returns (uint256) {
        uint256 balance = usdc.balanceOf(account);
        uint256 allowance = usdc.allowance(account, address(subscriptions));
        return balance < allowance ? balance : allowance;
    }

    function _actor(uint256 seed) internal pure returns (address) {
        uint256 kind = seed % 3;
        seed /= 3;
        if (kind == 0) return subscriber(seed);
        if (kind == 1) return recipient(seed);
        return keeper(seed);
    }

    /// @dev An id starting from `seed`; with `liveOnly`, the first Active or PastDue one from there.
    function _pick(uint256 seed, bool liveOnly) internal view returns (bool found, uint256 id) {
        uint256 count = ids.length;
        for (uint256 i; i < count; ++i) {
            id = ids[(seed % count + i) % count];
            if (!liveOnly) return (true, id);
            ISubscription.SubscriptionStatus status = subscriptions.getSubscription(id).status;
            if (status == ISubscription.SubscriptionStatus.Active || status == ISubscription.SubscriptionStatus.PastDue)
            {
                return (true, id);
            }
        }
        return (false, 0);
    }

    function _recordCharges(address caller) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(subscriptions)) continue;
            if (logs[i].topics[0] == ISubscription.ExecutionSkipped.selector) {
                (, ISubscription.ExecutionOutcome outcome) =
                    abi.decode(logs[i].data, (uint256, ISubscription.ExecutionOutcome));
                if (outcome == ISubscription.ExecutionOutcome.ChargeFailed) ++failedCharges;
                continue;
            }
            if (logs[i].topics[0] != ISubscription.SubscriptionCharged.selector) continue;
            uint256 id = uint256(logs[i].topics[1]);
            (uint256 dueAt, uint256 amount, uint256 reward) = abi.decode(logs[i].data, (uint256, uint256, uint256));
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);

            if (++timesCharged[id][dueAt] > 1) chargedTwice = true;
            if (dueAt > block.timestamp) chargedAheadOfTime = true;
            if (dueAt != startOf[id] + chargesSeen[id] * sub.period) chargedOffTheGrid = true;
            if (sub.endsAt != 0 && dueAt >= sub.endsAt) chargedAtOrAfterEnd = true;
            if (amount != sub.amount || reward * 10_000 > amount * subscriptions.MAX_KEEPER_REWARD_BPS()) {
                rewardAboveMaximum = true;
            }
            ++chargesSeen[id];
            ++chargeCount;
            totalCharged += amount;
            totalRewards += reward;
            rewardsOf[caller] += reward;
        }
    }

    function _track(uint256 id) internal {
        ISubscription.SubscriptionStatus previous = lastStatus[id];
        ISubscription.SubscriptionStatus current = subscriptions.getSubscription(id).status;
        if (!_legal(previous, current)) illegalTransitionSeen = true;
        lastStatus[id] = current;
    }

    /// @dev None -> Active; Active <-> PastDue; Active or PastDue -> Cancelled or Ended; Cancelled and Ended final.
    function _legal(ISubscription.SubscriptionStatus from, ISubscription.SubscriptionStatus to)
        internal
        pure
        returns (bool)
    {
        if (from == to) return true;
        if (from == ISubscription.SubscriptionStatus.None) return to == ISubscription.SubscriptionStatus.Active;
        return to != ISubscription.SubscriptionStatus.None
            && (from == ISubscription.SubscriptionStatus.Active || from == ISubscription.SubscriptionStatus.PastDue);
    }
}
