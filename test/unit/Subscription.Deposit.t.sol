// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Subscription unit tests: deposit and reactivate: funding a subscription and putting a past-due one back on
/// the due list.
contract SubscriptionDepositTest is SubscriptionFixture {
    function test_Deposit_AddsToDepositAndPullsExactly() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), PRICE);
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.DepositAdded(id, 2 * PRICE, 3 * PRICE);
        vm.prank(payer);
        subscriptions.deposit(id, 2 * PRICE);
        assertEq(_sub(id).deposit, 3 * PRICE);
        assertTrue(_sub(id).hasDeposit);
        assertEq(before - usdc.balanceOf(payer), 2 * PRICE);
        assertEq(usdc.balanceOf(address(subscriptions)), 3 * PRICE);
    }

    function test_Deposit_SetsHasDepositOnFirstDeposit() public {
        uint256 id = subscribe();
        vm.prank(payer);
        subscriptions.deposit(id, 1);
        assertTrue(_sub(id).hasDeposit);
        assertEq(_sub(id).deposit, 1);
    }

    function test_GivenPastDue_DepositReactivates() public {
        uint256 id = subscribe();
        _makePastDue(id);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.DepositAdded(id, PRICE, PRICE);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionReactivated(id);
        vm.prank(payer);
        subscriptions.deposit(id, PRICE);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        // The missed period is still owed and is now paid from the deposit.
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_sub(id).deposit, 0);
        assertEq(_sub(id).nextDue, START + PERIOD);
    }

    function test_GivenPastDue_ReactivateListsItForKeepersAgain() public {
        uint256 id = subscribe();
        _makePastDue(id); // and the allowance restored
        (uint256[] memory due,) = _due(0, 10);
        assertEq(due.length, 0, "past due: hidden from keepers");
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionReactivated(id);
        vm.prank(payer);
        subscriptions.reactivate(id);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
        (due,) = _due(0, 10);
        assertEq(due.length, 1);
        assertEq(due[0], id);
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.Charged));
    }

    function test_RevertWhen_Reactivate_Unfunded() public {
        uint256 id = subscribe();
        _revokeAllowance();
        executeAs(keeper, id);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnfunded.selector, id, PRICE));
        subscriptions.reactivate(id);
        // An allowance without the balance behind it is not enough either.
        _restoreAllowance();
        uint256 balance = usdc.balanceOf(payer);
        vm.prank(payer);
        usdc.transfer(recipient, balance - PRICE + 1);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnfunded.selector, id, PRICE));
        subscriptions.reactivate(id);
        // A deposit covering the amount is.
        usdc.mint(payer, PRICE);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionReactivated(id);
        vm.prank(payer);
        subscriptions.deposit(id, PRICE);
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.Active));
    }

    function test_GivenPastDue_DepositThatCannotPayKeepsItPastDue() public {
        uint256 id = subscribe();
        _makePastDue(id);
        // The wallet holds exactly what this deposit pulls: afterwards neither deposit nor wallet can pay.
        uint256 balance = usdc.balanceOf(payer);
        vm.prank(payer);
        usdc.transfer(recipient, balance - 1);
        vm.recordLogs();
        vm.prank(payer);
        subscriptions.deposit(id, 1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != ISubscription.SubscriptionReactivated.selector, "not reactivated");
        }
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
        assertEq(_sub(id).deposit, 1);
    }

    function test_RevertWhen_Reactivate_NotPastDueOrNotSubscriber() public {
        uint256 id = subscribe();
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISubscription.SubscriptionInvalidStatus.selector, id, ISubscription.SubscriptionStatus.Active
            )
        );
        subscriptions.reactivate(id);
        _makePastDue(id);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, recipient));
        subscriptions.reactivate(id);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionNotFound.selector, 99));
        subscriptions.reactivate(99);
    }

    function test_RevertWhen_Deposit_NotFound() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionNotFound.selector, 7));
        vm.prank(payer);
        subscriptions.deposit(7, PRICE);
    }

    function test_RevertWhen_Deposit_CallerIsNotSubscriber() public {
        uint256 id = subscribe();
        usdc.mint(recipient, PRICE);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnauthorizedCaller.selector, id, recipient));
        vm.prank(recipient);
        subscriptions.deposit(id, PRICE);
    }

    function test_RevertWhen_Deposit_Cancelled() public {
        uint256 id = subscribe();
        vm.prank(payer);
        subscriptions.cancel(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISubscription.SubscriptionInvalidStatus.selector, id, ISubscription.SubscriptionStatus.Cancelled
            )
        );
        vm.prank(payer);
        subscriptions.deposit(id, PRICE);
    }

    function test_RevertWhen_Deposit_Ended() public {
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
        subscriptions.deposit(id, PRICE);
    }

    function test_RevertWhen_Deposit_AmountIsZero() public {
        uint256 id = subscribe();
        vm.expectRevert(ISubscription.SubscriptionZeroAmount.selector);
        vm.prank(payer);
        subscriptions.deposit(id, 0);
    }

    function test_RevertWhen_Deposit_TokenRemovedFromAllowlist() public {
        uint256 id = subscribe();
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), false);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionTokenNotAllowed.selector, address(usdc)));
        vm.prank(payer);
        subscriptions.deposit(id, PRICE);
    }

    function test_RevertWhen_Deposit_TotalAboveUint96() public {
        uint256 id = subscribe(terms(PRICE, PERIOD), 1);
        uint256 amount = type(uint96).max;
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionAmountTooLarge.selector, amount + 1));
        vm.prank(payer);
        subscriptions.deposit(id, amount);
    }

    function test_RevertWhen_Deposit_Paused() public {
        uint256 id = subscribe();
        _pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        vm.prank(payer);
        subscriptions.deposit(id, PRICE);
    }
}
