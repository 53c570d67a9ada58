// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {BlacklistableStablecoin} from "../mocks/BlacklistableStablecoin.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {ReentrantToken} from "../mocks/ReentrantToken.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice One named test per attack of /work/shared/notes/contract-threats.md that applies to subscriptions:
/// double execution, reward farming, failures mid-batch, missed periods, unbounded scans, oversized rewards,
/// fee-on-transfer and blacklisting tokens, reentrancy through the token, admin powers, schedule drift, payouts in
/// another token, and keepers starving calls of gas.
contract SubscriptionThreatsTest is RecurringFixture {
    uint256 internal constant REWARD = PRICE * 10 / 10_000;

    address internal payout = makeAddr("payout");

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _status(uint256 id) internal view returns (uint256) {
        return uint256(subscriptions.getSubscription(id).status);
    }

    function _s(ISubscription.SubscriptionStatus status) internal pure returns (uint256) {
        return uint256(status);
    }

    function _o(ISubscription.ExecutionOutcome outcome) internal pure returns (uint256) {
        return uint256(outcome);
    }

    function _credited(address account, address token) internal view returns (uint256) {
        return subscriptions.withdrawableBalance(account, token);
    }

    function _repeat(uint256 id, uint256 times) internal pure returns (uint256[] memory list) {
        list = new uint256[](times);
        for (uint256 i; i < times; ++i) {
            list[i] = id;
        }
    }

    function _batchAs(address caller, uint256[] memory ids)
        internal
        returns (ISubscription.ExecutionOutcome[] memory outcomes)
    {
        vm.prank(caller);
        outcomes = subscriptions.executeBatch(ids);
    }

    /// @dev A funded subscriber with max allowance, other than the fixture's payer.
    function _subscriber(string memory name, uint256 funds) internal returns (address account) {
        account = makeAddr(name);
        usdc.mint(account, funds);
        vm.prank(account);
        usdc.approve(address(subscriptions), type(uint256).max);
    }

    function _subscribeAs(address subscriber, ISubscription.Terms memory t, uint256 initialDeposit)
        internal
        returns (uint256 id)
    {
        vm.prank(subscriber);
        id = subscriptions.createSubscription(t, initialDeposit);
    }

    function _allow(address token) internal {
        vm.prank(admin);
        subscriptions.setTokenAllowed(token, true);
    }

    function _termsIn(address token) internal view returns (ISubscription.Terms memory t) {
        t = terms(PRICE, PERIOD);
        t.token = token;
    }

    function _blacklistable() internal returns (BlacklistableStablecoin token) {
        token = new BlacklistableStablecoin(address(this));
        _allow(address(token));
        token.mint(payer, 1000 * PRICE);
        vm.prank(payer);
        token.approve(address(subscriptions), type(uint256).max);
    }

    function _reentrant() internal returns (ReentrantToken token) {
        token = new ReentrantToken();
        _allow(address(token));
        token.mint(payer, 1000 * PRICE);
        vm.prank(payer);
        token.approve(address(subscriptions), type(uint256).max);
    }

    function _assertReentryBlocked(ReentrantToken token) internal view {
        assertTrue(token.reentered(), "the token did call back");
        assertFalse(token.reentrySucceeded(), "the reentrant call failed");
        assertEq(
            token.reentryRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransientUpgradeable.ReentrancyGuardReentrantCall.selector),
            "and it failed on the reentrancy guard, not on some later check"
        );
    }

    /*//////////////////////////////////////////////////////////////
                        KEEPER EXECUTING TWICE
    //////////////////////////////////////////////////////////////*/

    function test_WhenKeeperExecutesTwiceInOnePeriod_SecondIsNotDue() public {
        uint256 id = subscribe();
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue));
        assertEq(_o(executeAs(stranger, id)), _o(ISubscription.ExecutionOutcome.NotDue), "nor another keeper");
        vm.warp(START + PERIOD - 1);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue), "up to the last second");
        assertEq(usdc.balanceOf(address(subscriptions)), PRICE - REWARD);
        assertEq(usdc.balanceOf(keeper), REWARD);
        assertEq(usdc.balanceOf(stranger), 0);
        assertEq(subscriptions.getSubscription(id).count, 1);
    }

    function test_WhenBatchRepeatsAnIdWithinOnePeriod_ItIsChargedOnce() public {
        uint256 id = subscribe();
        uint256 before = usdc.balanceOf(payer);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, _repeat(id, 10));
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        for (uint256 i = 1; i < 10; ++i) {
            assertEq(_o(outcomes[i]), _o(ISubscription.ExecutionOutcome.NotDue));
        }
        assertEq(before - usdc.balanceOf(payer), PRICE);
        assertEq(usdc.balanceOf(keeper), REWARD);
    }

    /*//////////////////////////////////////////////////////////////
                             REWARD FARMING
    //////////////////////////////////////////////////////////////*/

    function test_WhenPullFails_KeeperEarnsNothingHoweverOftenItRetries() public {
        uint256 id = subscribe();
        vm.prank(payer);
        usdc.approve(address(subscriptions), 0);
        for (uint256 i; i < 5; ++i) {
            assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        }
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, _repeat(id, 20));
        for (uint256 i; i < 20; ++i) {
            assertEq(_o(outcomes[i]), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        }
        assertEq(usdc.balanceOf(keeper), 0);
        assertEq(_credited(keeper, address(usdc)), 0);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
        assertEq(subscriptions.getSubscription(id).nextDue, START, "failures never advance the schedule");
    }

    function test_WhenNothingIsCharged_NoOutcomePaysTheKeeper() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        uint256 rewardSoFar = usdc.balanceOf(keeper);
        uint256 cancelled = subscribe();
        vm.prank(payer);
        subscriptions.cancel(cancelled);
        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (id, cancelled, 1234); // NotDue, Inactive, NotFound
        _batchAs(keeper, ids);
        assertEq(usdc.balanceOf(keeper), rewardSoFar);
        assertEq(_credited(keeper, address(usdc)), 0);
    }

    /// @dev Review finding: `reactivate` and the reactivation a 1-unit deposit performed checked nothing about
    /// funds, so an unfunded subscriber put its subscriptions back on the due list after every keeper run (100 of
    /// them cost a keeper 500 failed, unrewarded executions in 5 rounds). Now it returns to the list only when a
    /// charge would succeed: one failed execution per unfunded subscription, however often it is reactivated.
    function test_Regression_UnfundedSubscriberCostsKeepersOneFailedExecution() public {
        uint256 id = subscribe();
        vm.prank(payer);
        usdc.approve(address(subscriptions), 0);
        uint256 failed;
        for (uint256 round; round < 5; ++round) {
            (uint256[] memory due,) = subscriptions.dueSubscriptions(0, 10);
            if (due.length != 0) {
                assertEq(_o(executeAs(keeper, due[0])), _o(ISubscription.ExecutionOutcome.ChargeFailed));
                ++failed;
            }
            // The spammer tries both ways back onto the list: reactivate, and a dust deposit.
            vm.prank(payer);
            vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnfunded.selector, id, PRICE));
            subscriptions.reactivate(id);
            vm.startPrank(payer);
            usdc.approve(address(subscriptions), 1);
            subscriptions.deposit(id, 1);
            usdc.approve(address(subscriptions), 0);
            vm.stopPrank();
            assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
            vm.warp(block.timestamp + PERIOD);
        }
        assertEq(failed, 1, "one failed execution in five rounds");
        assertEq(usdc.balanceOf(keeper), 0);
    }

    /*//////////////////////////////////////////////////////////////
                          FAILURES MID-BATCH
    //////////////////////////////////////////////////////////////*/

    function test_WhenAllowanceRevokedMidBatch_ItemSkippedAndBatchCompletes() public {
        address alice = _subscriber("alice", 100 * PRICE);
        address bob = _subscriber("bob", 100 * PRICE);
        uint256 a = _subscribeAs(alice, terms(PRICE, PERIOD), 0);
        uint256 b = subscribe();
        uint256 c = _subscribeAs(bob, terms(PRICE, PERIOD), 0);
        vm.prank(payer);
        usdc.approve(address(subscriptions), 0);

        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (a, b, c);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionPastDue(b, START);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(b, 1, ISubscription.ExecutionOutcome.ChargeFailed);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);

        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_status(b), _s(ISubscription.SubscriptionStatus.PastDue), "stored, not rolled back");
        assertEq(usdc.balanceOf(alice), 99 * PRICE);
        assertEq(usdc.balanceOf(bob), 99 * PRICE);
        assertEq(usdc.balanceOf(keeper), 2 * REWARD);
        assertEq(usdc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
    }

    /// @dev The wallet covers the first of two subscriptions only: it runs dry in the middle of the batch.
    function test_WhenWalletRunsDryMidBatch_ItemSkippedAndBatchCompletes() public {
        address alice = _subscriber("alice", PRICE + PRICE / 2);
        uint256 first = _subscribeAs(alice, terms(PRICE, PERIOD), 0);
        uint256 second = _subscribeAs(alice, terms(PRICE, PERIOD), 0);
        uint256 other = subscribe();

        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (first, second, other);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);

        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_status(second), _s(ISubscription.SubscriptionStatus.PastDue));
        assertEq(usdc.balanceOf(alice), PRICE / 2, "nothing partial was taken");
        assertEq(usdc.balanceOf(keeper), 2 * REWARD);
        assertEq(_credited(recipient, address(usdc)), 2 * (PRICE - REWARD));
    }

    /*//////////////////////////////////////////////////////////////
                             MISSED PERIODS
    //////////////////////////////////////////////////////////////*/

    /// @dev Catch-up rule: charge k is due at start + k * period; one execution pays the oldest unpaid one if due.
    function test_WhenPeriodsMissed_EachExecutionCatchesUpOneAndNeverRunsAhead() public {
        uint256 id = subscribe();
        vm.warp(START + 3 * PERIOD + PERIOD / 2);
        uint256 before = usdc.balanceOf(payer);
        for (uint256 k; k < 4; ++k) {
            vm.expectEmit(address(subscriptions));
            emit ISubscription.SubscriptionCharged(id, keeper, START + k * PERIOD, PRICE, REWARD);
            assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        }
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue), "the 5th period is not due");
        assertEq(before - usdc.balanceOf(payer), 4 * PRICE);
        assertEq(subscriptions.getSubscription(id).nextDue, START + 4 * PERIOD);
    }

    function test_WhenPastDueForSeveralPeriods_OwedPeriodsAreCaughtUpAfterRecovery() public {
        uint256 id = subscribe();
        vm.prank(payer);
        usdc.approve(address(subscriptions), 0);
        for (uint256 k; k < 3; ++k) {
            vm.warp(START + k * PERIOD);
            executeAs(keeper, id);
        }
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
        vm.prank(payer);
        usdc.approve(address(subscriptions), type(uint256).max);
        uint256 before = usdc.balanceOf(payer);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, _repeat(id, 4));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[3]), _o(ISubscription.ExecutionOutcome.NotDue));
        assertEq(before - usdc.balanceOf(payer), 3 * PRICE);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
    }

    function test_WhenCancelledWithMissedPeriods_UnpaidPeriodsAreForgiven() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 2 * PRICE);
        vm.warp(START + 5 * PERIOD);
        executeAs(keeper, id);
        uint256 before = usdc.balanceOf(payer);
        vm.prank(recipient);
        subscriptions.cancel(id);
        assertEq(usdc.balanceOf(payer) - before, PRICE, "the unused deposit comes back, nothing more is taken");
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(subscriptions.getSubscription(id).count, 1);
    }

    /*//////////////////////////////////////////////////////////////
                             UNBOUNDED SCAN
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_ScanPageAboveMaximum() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionInvalidPageSize.selector, 1001, 1000));
        subscriptions.dueSubscriptions(0, 1001);
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionInvalidPageSize.selector, type(uint256).max, 1000)
        );
        subscriptions.dueSubscriptions(0, type(uint256).max);
    }

    /// @dev A page costs the same however many subscriptions exist: the view reads only its own window, and
    /// finished subscriptions leave the live list.
    function test_WhenManySubscriptionsExist_AScanPageStaysBounded() public {
        for (uint256 i; i < 10; ++i) {
            subscribe();
        }
        uint256 gasBefore = gasleft();
        subscriptions.dueSubscriptions(0, 5);
        uint256 smallSet = gasBefore - gasleft();

        for (uint256 i; i < 60; ++i) {
            subscribe();
        }
        for (uint256 id = 11; id <= 40; ++id) {
            vm.prank(payer);
            subscriptions.cancel(id);
        }
        assertEq(subscriptions.liveCount(), 40, "cancelled ones are not scanned");
        gasBefore = gasleft();
        (uint256[] memory ids, uint256 nextOffset) = subscriptions.dueSubscriptions(0, 5);
        uint256 largeSet = gasBefore - gasleft();
        assertEq(ids.length, 5);
        assertEq(nextOffset, 5);
        // Scanning the 30 extra live entries would cost two cold storage reads each (over 120k gas); what is left
        // is the caller's own memory growth.
        assertLt(largeSet, smallSet + 10_000, "page cost does not grow with the number of subscriptions");

        // Paging to the end visits every live subscription exactly once.
        uint256 seen;
        uint256 offset;
        while (offset < subscriptions.liveCount()) {
            (ids, offset) = subscriptions.dueSubscriptions(offset, 7);
            assertLe(ids.length, 7);
            seen += ids.length;
        }
        assertEq(seen, 40);
    }

    /*//////////////////////////////////////////////////////////////
                        REWARD LARGER THAN PAYMENT
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_RewardSetAboveOnePercent() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionRewardTooHigh.selector, 10_001, 100));
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(10_001);
    }

    function test_WhenRewardAtMaximum_ItStaysBelowThePayment() public {
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(100);
        uint256 small = subscribe(terms(1, PERIOD), 0);
        uint256 big = subscribe(terms(type(uint96).max / 2, PERIOD), 0);
        usdc.mint(payer, type(uint96).max / 2);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (small, big);
        _batchAs(keeper, ids);
        uint256 bigAmount = type(uint96).max / 2;
        assertEq(usdc.balanceOf(keeper), bigAmount / 100, "1% of the big one, 0 of the 1-unit one");
        assertEq(_credited(recipient, address(usdc)), 1 + bigAmount - bigAmount / 100);
    }

    /*//////////////////////////////////////////////////////////////
                          FEE-ON-TRANSFER TOKEN
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_FeeOnTransferTokenCharged_BooksStayExact() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        _allow(address(fee));
        fee.mint(payer, 100 * PRICE);
        vm.prank(payer);
        fee.approve(address(subscriptions), type(uint256).max);

        // A deposit would be booked above what arrived.
        ISubscription.Terms memory t = _termsIn(address(fee));
        vm.expectRevert(
            abi.encodeWithSelector(
                ExactTransfers.ExactTransferMismatch.selector, address(fee), PRICE, PRICE - PRICE / 100
            )
        );
        vm.prank(payer);
        subscriptions.createSubscription(t, PRICE);

        uint256 id = subscribe(t, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                ExactTransfers.ExactTransferMismatch.selector, address(fee), PRICE, PRICE - PRICE / 100
            )
        );
        vm.prank(keeper);
        subscriptions.execute(id);

        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        assertEq(sub.count, 0);
        assertEq(sub.nextDue, START);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.Active));
        assertEq(fee.balanceOf(address(subscriptions)), 0);
        assertEq(fee.balanceOf(payer), 100 * PRICE);
        assertEq(_credited(recipient, address(fee)), 0);
        assertEq(fee.balanceOf(keeper), 0);
    }

    /// @dev Documented trade-off: a fee-on-transfer charge reverts the whole batch (the run check is per call), so
    /// such a token must never be allowlisted; delisting it turns its items into TokenNotAllowed skips.
    function test_WhenFeeOnTransferTokenInBatch_BatchRevertsUntilDelisted() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        _allow(address(fee));
        fee.mint(payer, 100 * PRICE);
        vm.prank(payer);
        fee.approve(address(subscriptions), type(uint256).max);
        uint256 good = subscribe();
        uint256 bad = subscribe(_termsIn(address(fee)), 0);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (good, bad);

        vm.expectPartialRevert(ExactTransfers.ExactTransferMismatch.selector);
        vm.prank(keeper);
        subscriptions.executeBatch(ids);
        assertEq(subscriptions.getSubscription(good).count, 0, "the good item was rolled back too");

        vm.prank(admin);
        subscriptions.setTokenAllowed(address(fee), false);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.TokenNotAllowed));
    }

    /*//////////////////////////////////////////////////////////////
                           BLACKLISTING TOKEN
    //////////////////////////////////////////////////////////////*/

    function test_WhenRecipientBlacklisted_ChargeSucceedsAndIsCreditedForLater() public {
        BlacklistableStablecoin token = _blacklistable();
        uint256 id = subscribe(_termsIn(address(token)), 0);
        token.setBlacklisted(recipient, true);

        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active), "the subscriber is not made past due");
        assertEq(_credited(recipient, address(token)), PRICE - REWARD);
        assertEq(token.balanceOf(keeper), REWARD);

        // The recipient cannot receive itself, but can withdraw to another address, and its balance is kept
        // when the token refuses.
        vm.expectRevert(abi.encodeWithSelector(BlacklistableStablecoin.Blacklisted.selector, recipient));
        vm.prank(recipient);
        subscriptions.withdraw(address(token), recipient);
        assertEq(_credited(recipient, address(token)), PRICE - REWARD);
        vm.prank(recipient);
        subscriptions.withdraw(address(token), payout);
        assertEq(token.balanceOf(payout), PRICE - REWARD);
    }

    function test_WhenKeeperBlacklisted_RewardIsCreditedInsteadOfPushed() public {
        BlacklistableStablecoin token = _blacklistable();
        uint256 id = subscribe(_termsIn(address(token)), 0);
        token.setBlacklisted(keeper, true);

        vm.expectEmit(address(subscriptions));
        emit ISubscription.PayoutCredited(keeper, address(token), REWARD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(token.balanceOf(keeper), 0);
        assertEq(_credited(keeper, address(token)), REWARD);
        assertEq(token.balanceOf(address(subscriptions)), PRICE, "recipient share + credited reward");

        vm.prank(keeper);
        subscriptions.withdraw(address(token), payout);
        assertEq(token.balanceOf(payout), REWARD);
    }

    function test_WhenSubscriberBlacklisted_CancelRefundIsCredited() public {
        BlacklistableStablecoin token = _blacklistable();
        uint256 id = subscribe(_termsIn(address(token)), 3 * PRICE);
        token.setBlacklisted(payer, true);

        vm.expectEmit(address(subscriptions));
        emit ISubscription.PayoutCredited(payer, address(token), 3 * PRICE);
        vm.prank(recipient);
        subscriptions.cancel(id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Cancelled));
        assertEq(_credited(payer, address(token)), 3 * PRICE);

        vm.prank(payer);
        subscriptions.withdraw(address(token), payout);
        assertEq(token.balanceOf(payout), 3 * PRICE);
        assertEq(token.balanceOf(address(subscriptions)), 0);
    }

    function test_WhenSubscriberBlacklisted_ChargeFailsAsPastDueWithoutRevertingTheBatch() public {
        BlacklistableStablecoin token = _blacklistable();
        uint256 blocked = subscribe(_termsIn(address(token)), 0);
        uint256 fine = subscribe();
        token.setBlacklisted(payer, true);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (blocked, fine);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_status(blocked), _s(ISubscription.SubscriptionStatus.PastDue));
    }

    /*//////////////////////////////////////////////////////////////
                               REENTRANCY
    //////////////////////////////////////////////////////////////*/

    function test_WhenTokenReentersExecuteDuringThePull_ReentryFails() public {
        ReentrantToken token = _reentrant();
        uint256 id = subscribe(_termsIn(address(token)), 0);
        token.arm(address(subscriptions), abi.encodeCall(ISubscription.execute, (id)));

        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        _assertReentryBlocked(token);
        assertEq(subscriptions.getSubscription(id).count, 1);
        assertEq(token.balanceOf(payer), 999 * PRICE, "charged once");
        assertEq(token.balanceOf(keeper), REWARD);
    }

    function test_WhenTokenReentersCancelDuringTheRewardPush_ReentryFails() public {
        ReentrantToken token = _reentrant();
        uint256 id = subscribe(_termsIn(address(token)), 3 * PRICE);
        token.arm(address(subscriptions), abi.encodeCall(ISubscription.cancel, (id)));

        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        _assertReentryBlocked(token);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        assertEq(subscriptions.getSubscription(id).deposit, 2 * PRICE);
        assertEq(token.balanceOf(address(subscriptions)), 2 * PRICE + PRICE - REWARD);
    }

    /// @dev The token itself is owed a balance here, so only the guard can stop it withdrawing mid-withdrawal.
    function test_WhenTokenReentersWithdrawDuringAWithdrawal_ReentryFails() public {
        ReentrantToken token = _reentrant();
        uint256 paid = subscribe(_termsIn(address(token)), 0);
        ISubscription.Terms memory toToken = _termsIn(address(token));
        toToken.recipient = address(token);
        uint256 paidToToken = subscribe(toToken, 0);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (paid, paidToToken);
        _batchAs(keeper, ids);
        assertEq(_credited(address(token), address(token)), PRICE - REWARD);

        token.arm(address(subscriptions), abi.encodeCall(ISubscription.withdraw, (address(token), address(token))));
        vm.prank(recipient);
        subscriptions.withdraw(address(token), recipient);
        _assertReentryBlocked(token);
        assertEq(token.balanceOf(recipient), PRICE - REWARD);
        assertEq(_credited(address(token), address(token)), PRICE - REWARD, "still owed, not paid twice");
        assertEq(token.balanceOf(address(subscriptions)), PRICE - REWARD);
    }

    function test_WhenTokenReentersExecuteBatchDuringADepositPull_ReentryFails() public {
        ReentrantToken token = _reentrant();
        uint256 id = subscribe(_termsIn(address(token)), 0);
        token.arm(address(subscriptions), abi.encodeCall(ISubscription.executeBatch, (_repeat(id, 3))));
        vm.prank(payer);
        subscriptions.deposit(id, 2 * PRICE);
        _assertReentryBlocked(token);
        assertEq(subscriptions.getSubscription(id).count, 0);
        assertEq(token.balanceOf(address(subscriptions)), 2 * PRICE);
    }

    function test_WhenTokenReentersCreateDuringTheInitialDepositPull_ReentryFails() public {
        ReentrantToken token = _reentrant();
        token.arm(address(subscriptions), abi.encodeCall(ISubscription.createSubscription, (terms(PRICE, PERIOD), 0)));
        subscribe(_termsIn(address(token)), PRICE);
        _assertReentryBlocked(token);
        assertEq(subscriptions.subscriptionCount(), 1);
    }

    /*//////////////////////////////////////////////////////////////
                              ADMIN POWERS
    //////////////////////////////////////////////////////////////*/

    function test_WhenAdminHoldsEveryRole_ItCannotMoveDepositsOrBalances() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 5 * PRICE);
        executeAs(keeper, id);
        uint256 held = usdc.balanceOf(address(subscriptions));
        assertEq(held, 4 * PRICE + PRICE - REWARD);

        vm.startPrank(admin);
        subscriptions.pause();
        subscriptions.setTokenAllowed(address(usdc), false);
        subscriptions.setKeeperRewardBps(100);
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionNothingToWithdraw.selector, admin, address(usdc))
        );
        subscriptions.withdraw(address(usdc), admin);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, admin));
        subscriptions.withdrawDeposit(id, PRICE, admin);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, admin));
        subscriptions.cancel(id);
        vm.stopPrank();

        assertEq(usdc.balanceOf(address(subscriptions)), held);
        assertEq(usdc.balanceOf(admin), 0);

        // Everyone still gets out while paused and delisted.
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
        vm.prank(payer);
        subscriptions.cancel(id);
        assertEq(usdc.balanceOf(recipient), PRICE - REWARD);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
    }

    function test_WhenPaused_NoChargeCanBeTaken() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.prank(admin);
        subscriptions.pause();
        vm.warp(START + 3 * PERIOD);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        executeAs(keeper, id);
        assertEq(subscriptions.getSubscription(id).deposit, PRICE);
        assertEq(subscriptions.getSubscription(id).count, 0);
    }

    function test_RevertWhen_StrangerTriesAdminActions() public {
        vm.startPrank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        subscriptions.setKeeperRewardBps(100);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        subscriptions.setTokenAllowed(address(usdc), false);
        vm.stopPrank();
        bytes32 pauser = subscriptions.PAUSER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, pauser)
        );
        vm.prank(stranger);
        subscriptions.pause();
    }

    /*//////////////////////////////////////////////////////////////
                             SCHEDULE DRIFT
    //////////////////////////////////////////////////////////////*/

    function test_WhenExecutedLate_LaterDueTimesDoNotShift() public {
        uint256 id = subscribe();
        vm.warp(START + PERIOD - 1 hours); // very late for the first period
        executeAs(keeper, id);
        assertEq(subscriptions.getSubscription(id).nextDue, START + PERIOD, "not now + period");
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START + PERIOD, PRICE, REWARD);
        executeAs(keeper, id);
        vm.warp(START + 2 * PERIOD + 17 days + 3);
        executeAs(keeper, id);
        assertEq(subscriptions.getSubscription(id).nextDue, START + 3 * PERIOD);
    }

    function test_WhenExecutedEarly_NothingIsChargedAhead() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START + 10 days;
        uint256 id = subscribe(t, 0);
        vm.warp(START + 10 days - 1);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue));
        vm.warp(START + 10 days);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(subscriptions.getSubscription(id).nextDue, START + 10 days + PERIOD);
    }

    /*//////////////////////////////////////////////////////////////
                       PAYOUTS IN THE DEBITED TOKEN
    //////////////////////////////////////////////////////////////*/

    function test_PayoutsAreInTheTokenDebited() public {
        TestStablecoin eurc = new TestStablecoin("EURC", "EURC", "2", address(this));
        _allow(address(eurc));
        eurc.mint(payer, 10 * PRICE);
        vm.prank(payer);
        eurc.approve(address(subscriptions), type(uint256).max);
        ISubscription.Terms memory later = terms(PRICE, PERIOD);
        later.startTime = START + 100 days;
        uint256 inUsdc = subscribe(later, 0);
        vm.warp(START + 1 days);
        uint256 inEurc = subscribe(_termsIn(address(eurc)), PRICE);
        vm.warp(START + PERIOD + 1 days);
        uint256 usdcBefore = usdc.balanceOf(payer);

        // Only the EURC subscription is due: both its deposit and its wallet pull are in EURC.
        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (inEurc, inUsdc, inEurc);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.NotDue));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Charged));

        assertEq(usdc.balanceOf(payer), usdcBefore);
        assertEq(eurc.balanceOf(payer), 8 * PRICE);
        assertEq(_credited(recipient, address(eurc)), 2 * (PRICE - REWARD));
        assertEq(_credited(recipient, address(usdc)), 0);
        assertEq(eurc.balanceOf(keeper), 2 * REWARD);
        assertEq(usdc.balanceOf(keeper), 0);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
        assertEq(eurc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
    }

    /*//////////////////////////////////////////////////////////////
                             GAS STARVATION
    //////////////////////////////////////////////////////////////*/

    /// @dev A keeper that sends just too little gas must not get a funded subscriber marked PastDue: across every
    /// gas limit, an execution either charges or reverts, and some limits hit the 63/64 guard.
    function test_WhenKeeperStarvesThePull_ExecuteRevertsInsteadOfMarkingPastDue() public {
        uint256 id = subscribe();
        bytes memory data = abi.encodeCall(ISubscription.execute, (id));
        (uint256 charged, uint256 guarded) = (0, 0);
        for (uint256 gasLimit = 20_000; gasLimit <= 150_000; gasLimit += 250) {
            uint256 snapshot = vm.snapshotState();
            vm.prank(keeper);
            (bool ok, bytes memory result) = address(subscriptions).call{gas: gasLimit}(data);
            if (ok) {
                assertEq(abi.decode(result, (uint256)), _o(ISubscription.ExecutionOutcome.Charged));
                ++charged;
            } else if (bytes4(result) == ISubscription.SubscriptionInsufficientGas.selector) {
                ++guarded;
            }
            assertNotEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
            vm.revertToState(snapshot);
        }
        assertGt(guarded, 0, "the guard was reached");
        assertGt(charged, 0, "and enough gas charges");
    }

    function test_WhenKeeperStarvesTheRewardPush_ExecuteRevertsInsteadOfCrediting() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        bytes memory data = abi.encodeCall(ISubscription.execute, (id));
        (uint256 charged, uint256 guarded) = (0, 0);
        for (uint256 gasLimit = 20_000; gasLimit <= 150_000; gasLimit += 250) {
            uint256 snapshot = vm.snapshotState();
            vm.prank(keeper);
            (bool ok, bytes memory result) = address(subscriptions).call{gas: gasLimit}(data);
            if (ok) {
                ++charged;
                assertEq(usdc.balanceOf(keeper), REWARD, "pushed, never credited for want of gas");
            } else if (bytes4(result) == ISubscription.SubscriptionInsufficientGas.selector) {
                ++guarded;
            }
            assertEq(_credited(keeper, address(usdc)), 0);
            vm.revertToState(snapshot);
        }
        assertGt(guarded, 0, "the guard was reached");
        assertGt(charged, 0, "and enough gas charges");
    }

    /// @dev The subscriber deposited its whole wallet, so the refund is an expensive first write of its balance:
    /// a caller can send enough gas for everything but that push.
    function test_WhenCallerStarvesTheCancelRefund_CancelRevertsInsteadOfCrediting() public {
        address alice = _subscriber("alice", PRICE);
        uint256 id = _subscribeAs(alice, terms(PRICE, PERIOD), PRICE);
        bytes memory data = abi.encodeCall(ISubscription.cancel, (id));
        (uint256 cancelled, uint256 guarded) = (0, 0);
        for (uint256 gasLimit = 20_000; gasLimit <= 150_000; gasLimit += 250) {
            uint256 snapshot = vm.snapshotState();
            vm.prank(recipient);
            (bool ok, bytes memory result) = address(subscriptions).call{gas: gasLimit}(data);
            if (ok) {
                ++cancelled;
                assertEq(usdc.balanceOf(alice), PRICE, "refund pushed, never credited for want of gas");
            } else if (bytes4(result) == ISubscription.SubscriptionInsufficientGas.selector) {
                ++guarded;
            }
            assertEq(_credited(alice, address(usdc)), 0);
            vm.revertToState(snapshot);
        }
        assertGt(guarded, 0, "the guard was reached");
        assertGt(cancelled, 0, "and enough gas cancels");
    }
}
