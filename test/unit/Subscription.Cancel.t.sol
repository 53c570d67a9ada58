// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";

/// @notice Subscription unit tests: cancel: by either party, refunds, and what stays withdrawable.
contract SubscriptionCancelTest is SubscriptionFixture {
    function test_Cancel_BySubscriber_RefundsDeposit() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 2 * PRICE);
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCancelled(id, payer, 2 * PRICE);
        vm.prank(payer);
        subscriptions.cancel(id);
        ISubscription.SubscriptionData memory sub = _sub(id);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.Cancelled));
        assertEq(sub.deposit, 0);
        assertFalse(sub.hasDeposit);
        assertEq(usdc.balanceOf(payer) - before, 2 * PRICE);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
        assertEq(subscriptions.liveCount(), 0);
    }

    function test_Cancel_ByRecipient_RefundsTheSubscriber() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 2 * PRICE);
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCancelled(id, recipient, 2 * PRICE);
        vm.prank(recipient);
        subscriptions.cancel(id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Cancelled));
        assertEq(usdc.balanceOf(payer) - before, 2 * PRICE);
        assertEq(usdc.balanceOf(recipient), 0);
    }

    function test_Cancel_WithoutDeposit_MovesNoTokens() public {
        uint256 id = subscribe();
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCancelled(id, payer, 0);
        vm.prank(payer);
        subscriptions.cancel(id);
        assertEq(usdc.balanceOf(payer), before);
    }

    function test_GivenPastDue_CancelWorksAndForgivesUnpaidPeriods() public {
        uint256 id = subscribe();
        _makePastDue(id);
        vm.warp(START + 3 * PERIOD);
        uint256 before = usdc.balanceOf(payer);
        vm.prank(payer);
        subscriptions.cancel(id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Cancelled));
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(usdc.balanceOf(payer), before, "the four unpaid periods are forgiven");
    }

    function test_GivenCancelled_ChargedBalanceStaysWithdrawable() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        vm.prank(payer);
        subscriptions.cancel(id);
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
        assertEq(usdc.balanceOf(recipient), PRICE - REWARD);
    }

    function test_RevertWhen_Cancel_ByStranger() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, stranger));
        vm.prank(stranger);
        subscriptions.cancel(id);
    }

    function test_RevertWhen_Cancel_NotFound() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionNotFound.selector, 1));
        vm.prank(payer);
        subscriptions.cancel(1);
    }

    function test_RevertWhen_Cancel_AlreadyCancelled() public {
        uint256 id = subscribe();
        vm.prank(payer);
        subscriptions.cancel(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISubscription.SubscriptionInvalidStatus.selector, id, ISubscription.SubscriptionStatus.Cancelled
            )
        );
        vm.prank(recipient);
        subscriptions.cancel(id);
    }

    function test_RevertWhen_Cancel_Ended() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.maxCount = 1;
        uint256 id = subscribe(t, 0);
        executeAs(keeper, id);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISubscription.SubscriptionInvalidStatus.selector, id, ISubscription.SubscriptionStatus.Ended
            )
        );
        vm.prank(payer);
        subscriptions.cancel(id);
    }

    function test_WhenPaused_CancelStillWorks() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        _pause();
        uint256 before = usdc.balanceOf(payer);
        vm.prank(payer);
        subscriptions.cancel(id);
        assertEq(usdc.balanceOf(payer) - before, PRICE);
    }
}
