// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Subscription unit tests: execute: every outcome, the past-due state, rewards, pausing, and the end of a
/// subscription by count or date.
contract SubscriptionExecuteTest is SubscriptionFixture {
    function test_Execute_ChargesTheWallet() public {
        uint256 id = subscribe();
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START, PRICE, REWARD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));

        assertEq(before - usdc.balanceOf(payer), PRICE);
        assertEq(usdc.balanceOf(keeper), REWARD, "reward pushed to the caller");
        assertEq(_credited(recipient), PRICE - REWARD, "recipient credited, not pushed");
        assertEq(usdc.balanceOf(recipient), 0);
        assertEq(usdc.balanceOf(address(subscriptions)), PRICE - REWARD);
        ISubscription.SubscriptionData memory sub = _sub(id);
        assertEq(sub.nextDue, START + PERIOD);
        assertEq(sub.count, 1);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.Active));
    }

    function test_Execute_ChargesTheDepositWhenItCoversTheWholeAmount() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 3 * PRICE);
        uint256 before = usdc.balanceOf(payer);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(usdc.balanceOf(payer), before, "the wallet is not touched");
        assertEq(_sub(id).deposit, 2 * PRICE);
        assertTrue(_sub(id).hasDeposit);
        assertEq(usdc.balanceOf(keeper), REWARD);
        assertEq(_credited(recipient), PRICE - REWARD);
        assertEq(usdc.balanceOf(address(subscriptions)), 2 * PRICE + PRICE - REWARD);
    }

    function test_Execute_DepositOfExactlyOneAmountIsUsedAndCleared() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        uint256 before = usdc.balanceOf(payer);
        executeAs(keeper, id);
        assertEq(usdc.balanceOf(payer), before);
        assertEq(_sub(id).deposit, 0);
        assertFalse(_sub(id).hasDeposit);
    }

    function test_WhenDepositShort_ExecutePullsTheWholeAmountFromTheWallet() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE - 1);
        uint256 before = usdc.balanceOf(payer);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(before - usdc.balanceOf(payer), PRICE);
        assertEq(_sub(id).deposit, PRICE - 1, "a partial deposit is never mixed with a pull");
        assertEq(usdc.balanceOf(address(subscriptions)), PRICE - 1 + PRICE - REWARD);
    }

    function test_WhenNotFound_ExecuteSkips() public {
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(42, 0, ISubscription.ExecutionOutcome.NotFound);
        assertEq(_o(executeAs(keeper, 42)), _o(ISubscription.ExecutionOutcome.NotFound));
        assertEq(usdc.balanceOf(keeper), 0);
    }

    function test_WhenCancelled_ExecuteIsInactive() public {
        uint256 id = subscribe();
        vm.prank(payer);
        subscriptions.cancel(id);
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(id, 0, ISubscription.ExecutionOutcome.Inactive);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(usdc.balanceOf(payer), before);
    }

    function test_WhenEnded_ExecuteIsInactive() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.maxCount = 1;
        uint256 id = subscribe(t, 0);
        executeAs(keeper, id);
        vm.warp(START + PERIOD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(_sub(id).count, 1);
    }

    function test_WhenStartInFuture_ExecuteIsNotDue() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START + 1;
        uint256 id = subscribe(t, 0);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(id, 0, ISubscription.ExecutionOutcome.NotDue);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue));
        vm.warp(START + 1);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged), "due exactly at start");
    }

    function test_WhenPeriodPaid_ExecuteIsNotDueUntilTheNextDueTime() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        vm.warp(START + PERIOD - 1);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue));
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START + PERIOD, PRICE, REWARD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
    }

    function test_WhenTokenRemoved_ExecuteSkipsWithoutMarkingPastDue() public {
        uint256 id = subscribe();
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), false);
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(id, 0, ISubscription.ExecutionOutcome.TokenNotAllowed);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.TokenNotAllowed));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        assertEq(usdc.balanceOf(payer), before);
        // Allowed again: the period is still owed.
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), true);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
    }

    function test_WhenAllowanceRevoked_ExecuteFailsAndMarksPastDue() public {
        uint256 id = subscribe();
        _revokeAllowance();
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionPastDue(id, START);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(id, 0, ISubscription.ExecutionOutcome.ChargeFailed);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.ChargeFailed));

        ISubscription.SubscriptionData memory sub = _sub(id);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.PastDue));
        assertEq(sub.nextDue, START, "the unpaid period stays owed");
        assertEq(sub.count, 0);
        assertEq(usdc.balanceOf(payer), before);
        assertEq(usdc.balanceOf(keeper), 0, "no reward on failure");
        assertEq(_credited(keeper), 0);
        assertEq(_credited(recipient), 0);
        assertEq(subscriptions.liveCount(), 1, "PastDue stays live");
    }

    function test_WhenWalletEmpty_ExecuteFailsAndMarksPastDue() public {
        uint256 id = subscribe();
        uint256 all = usdc.balanceOf(payer);
        vm.prank(payer);
        usdc.transfer(stranger, all);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
    }

    function test_GivenPastDue_FailingAgainEmitsNoSecondPastDue() public {
        uint256 id = subscribe();
        _makePastDue(id);
        _revokeAllowance();
        vm.recordLogs();
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].topics[0], ISubscription.ExecutionSkipped.selector);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
    }

    function test_GivenPastDue_LaterSuccessfulChargeReactivates() public {
        uint256 id = subscribe();
        _makePastDue(id);
        vm.warp(START + 1 days);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionReactivated(id);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START, PRICE, REWARD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        assertEq(_sub(id).nextDue, START + PERIOD, "the late payment keeps the schedule");
    }

    function test_WhenRewardIsZero_NothingIsPushed() public {
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(0);
        uint256 id = subscribe();
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START, PRICE, 0);
        executeAs(keeper, id);
        assertEq(usdc.balanceOf(keeper), 0);
        assertEq(_credited(recipient), PRICE);
    }

    function test_WhenAmountTiny_RewardRoundsDownToZero() public {
        uint256 id = subscribe(terms(999, PERIOD), 0);
        executeAs(keeper, id);
        assertEq(usdc.balanceOf(keeper), 0);
        assertEq(_credited(recipient), 999);
    }

    function test_RevertWhen_Execute_Paused() public {
        uint256 id = subscribe();
        _pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        vm.prank(keeper);
        subscriptions.execute(id);
    }

    function test_GivenUnpaused_ExecuteCatchesUpThePausedPeriods() public {
        uint256 id = subscribe();
        _pause();
        vm.warp(START + PERIOD);
        vm.prank(admin);
        subscriptions.unpause();
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.NotDue));
    }

    function test_WhenMaxCountReached_SubscriptionEnds() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.maxCount = 2;
        uint256 id = subscribe(t, 0);
        executeAs(keeper, id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(id, keeper, START + PERIOD, PRICE, REWARD);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionEnded(id);
        executeAs(keeper, id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Ended));
        assertEq(_sub(id).count, 2);
        assertEq(subscriptions.liveCount(), 0);
        vm.warp(START + 5 * PERIOD);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(_credited(recipient), 2 * (PRICE - REWARD));
    }

    function test_WhenNextDueReachesEndsAt_SubscriptionEnds() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = START + 2 * PERIOD; // periods due at START and START + PERIOD only
        uint256 id = subscribe(t, 0);
        vm.warp(START + 10 * PERIOD);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, _repeat(id, 3));
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Ended));
        assertEq(_sub(id).count, 2);
    }

    function test_WhenEndsAtJustAfterADueTime_ThatPeriodIsStillCharged() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = START + 2 * PERIOD + 1;
        uint256 id = subscribe(t, 0);
        vm.warp(START + 10 * PERIOD);
        _batchAs(keeper, _repeat(id, 4));
        assertEq(_sub(id).count, 3);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Ended));
    }

    function test_WhenEndsAtBeforeSecondDueTime_OnlyOneCharge() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = START + 1;
        uint256 id = subscribe(t, 0);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionEnded(id);
        executeAs(keeper, id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Ended));
        assertEq(_sub(id).count, 1);
    }

    function test_GivenEnded_RemainingDepositIsWithdrawable() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.maxCount = 2;
        uint256 id = subscribe(t, 5 * PRICE);
        uint256 before = usdc.balanceOf(payer);
        vm.warp(START + PERIOD);
        _batchAs(keeper, _repeat(id, 2));
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Ended));
        assertEq(_sub(id).deposit, 3 * PRICE, "ending does not refund by itself");

        vm.prank(payer);
        subscriptions.withdrawDeposit(id, 3 * PRICE, payer);
        assertEq(usdc.balanceOf(payer) - before, 3 * PRICE);
        assertEq(usdc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionInsufficientDeposit.selector, 0, 1));
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, 1, payer);
    }
}
