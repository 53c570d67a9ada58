// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";

/// @notice Subscription unit tests: withdrawDeposit (a subscriber's unspent deposit) and withdraw (credited charges and
/// rewards).
contract SubscriptionWithdrawTest is SubscriptionFixture {
    function test_WithdrawDeposit_PartThenAll() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 3 * PRICE);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.DepositWithdrawn(id, payout, PRICE);
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, PRICE, payout);
        assertEq(_sub(id).deposit, 2 * PRICE);
        assertTrue(_sub(id).hasDeposit);
        assertEq(usdc.balanceOf(payout), PRICE);

        vm.prank(payer);
        subscriptions.withdrawDeposit(id, 2 * PRICE, payout);
        assertEq(_sub(id).deposit, 0);
        assertFalse(_sub(id).hasDeposit);
        assertEq(usdc.balanceOf(payout), 3 * PRICE);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active), "status is untouched");
    }

    function test_RevertWhen_WithdrawDeposit_ToZeroAddress() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, PRICE, address(0));
    }

    function test_RevertWhen_WithdrawDeposit_AmountIsZero() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.expectRevert(ISubscription.SubscriptionZeroAmount.selector);
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, 0, payer);
    }

    function test_RevertWhen_WithdrawDeposit_NotFound() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionNotFound.selector, 3));
        vm.prank(payer);
        subscriptions.withdrawDeposit(3, 1, payer);
    }

    function test_RevertWhen_WithdrawDeposit_CallerIsRecipient() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, recipient));
        vm.prank(recipient);
        subscriptions.withdrawDeposit(id, PRICE, recipient);
    }

    function test_RevertWhen_WithdrawDeposit_MoreThanDeposit() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionInsufficientDeposit.selector, PRICE, PRICE + 1)
        );
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, PRICE + 1, payer);
    }

    function test_WhenPaused_WithdrawDepositStillWorks() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        _pause();
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, PRICE, payout);
        assertEq(usdc.balanceOf(payout), PRICE);
    }

    function test_WhenTokenRemoved_WithdrawDepositStillWorks() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), false);
        vm.prank(payer);
        subscriptions.withdrawDeposit(id, PRICE, payout);
        assertEq(usdc.balanceOf(payout), PRICE);
    }

    function test_Withdraw_PaysTheCreditedBalanceToAnyAddress() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.Withdrawn(recipient, address(usdc), payout, PRICE - REWARD);
        vm.prank(recipient);
        uint256 amount = subscriptions.withdraw(address(usdc), payout);
        assertEq(amount, PRICE - REWARD);
        assertEq(usdc.balanceOf(payout), PRICE - REWARD);
        assertEq(_credited(recipient), 0);
        assertEq(usdc.balanceOf(address(subscriptions)), 0);
    }

    function test_Withdraw_OnlyTheNamedToken() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.token = address(eurc);
        uint256 id = subscribe(t, 0);
        executeAs(keeper, id);
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionNothingToWithdraw.selector, recipient, address(usdc))
        );
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
        vm.prank(recipient);
        subscriptions.withdraw(address(eurc), recipient);
        assertEq(eurc.balanceOf(recipient), PRICE - REWARD);
    }

    function test_RevertWhen_Withdraw_NothingToWithdraw() public {
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionNothingToWithdraw.selector, recipient, address(usdc))
        );
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
    }

    function test_RevertWhen_Withdraw_Twice() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
        vm.expectRevert(
            abi.encodeWithSelector(ISubscription.SubscriptionNothingToWithdraw.selector, recipient, address(usdc))
        );
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
    }

    function test_RevertWhen_Withdraw_ToZeroAddress() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), address(0));
    }

    function test_WhenPausedOrTokenRemoved_WithdrawStillWorks() public {
        uint256 id = subscribe();
        executeAs(keeper, id);
        _pause();
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), false);
        vm.prank(recipient);
        subscriptions.withdraw(address(usdc), recipient);
        assertEq(usdc.balanceOf(recipient), PRICE - REWARD);
    }
}
