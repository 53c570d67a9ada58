// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @notice Subscription unit tests: createSubscription: stored terms, initial deposits and every creation check.
contract SubscriptionCreateTest is SubscriptionFixture {
    function test_CreateSubscription_StoresTermsAndEmits() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = START + 12 * PERIOD;
        t.maxCount = 6;
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCreated(1, payer, recipient, address(usdc), PRICE, PERIOD, START, t.endsAt, 6);
        uint256 id = subscribe(t, 0);

        assertEq(id, 1);
        ISubscription.SubscriptionData memory sub = _sub(id);
        assertEq(sub.subscriber, payer);
        assertEq(sub.amount, PRICE);
        assertEq(sub.recipient, recipient);
        assertEq(sub.nextDue, START, "a zero start means now");
        assertEq(sub.count, 0);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.Active));
        assertFalse(sub.hasDeposit);
        assertEq(sub.token, address(usdc));
        assertEq(sub.period, PERIOD);
        assertEq(sub.endsAt, START + 12 * PERIOD);
        assertEq(sub.maxCount, 6);
        assertEq(sub.deposit, 0);
        assertEq(subscriptions.subscriptionCount(), 1);
        assertEq(subscriptions.liveCount(), 1);
        assertEq(usdc.balanceOf(address(subscriptions)), 0, "no deposit, nothing pulled");
    }

    function test_CreateSubscription_IdsAreSequential() public {
        assertEq(subscribe(), 1);
        assertEq(subscribe(), 2);
        assertEq(subscribe(), 3);
        assertEq(subscriptions.subscriptionCount(), 3);
    }

    function test_CreateSubscription_WithFutureStart() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START + 3 days;
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCreated(1, payer, recipient, address(usdc), PRICE, PERIOD, START + 3 days, 0, 0);
        uint256 id = subscribe(t, 0);
        assertEq(_sub(id).nextDue, START + 3 days);
    }

    function test_CreateSubscription_WithInitialDeposit_PullsExactly() public {
        uint256 before = usdc.balanceOf(payer);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.DepositAdded(1, 3 * PRICE, 3 * PRICE);
        uint256 id = subscribe(terms(PRICE, PERIOD), 3 * PRICE);
        assertEq(_sub(id).deposit, 3 * PRICE);
        assertTrue(_sub(id).hasDeposit);
        assertEq(before - usdc.balanceOf(payer), 3 * PRICE);
        assertEq(usdc.balanceOf(address(subscriptions)), 3 * PRICE);
    }

    function test_CreateSubscription_AcceptsBoundaryValues() public {
        ISubscription.Terms memory t = terms(type(uint96).max, 1 minutes);
        t.startTime = type(uint40).max - 1;
        t.endsAt = type(uint40).max;
        t.maxCount = type(uint24).max;
        uint256 id = subscribe(t, 0);
        ISubscription.SubscriptionData memory sub = _sub(id);
        assertEq(sub.amount, type(uint96).max);
        assertEq(sub.period, 1 minutes);
        assertEq(sub.nextDue, type(uint40).max - 1);
        assertEq(sub.endsAt, type(uint40).max);
        assertEq(sub.maxCount, type(uint24).max);
        subscribe(terms(1, 366 days), 0);
    }

    function test_RevertWhen_Create_RecipientIsZero() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.recipient = address(0);
        _expectCreateRevert(t, 0, abi.encodeWithSelector(ISubscription.SubscriptionZeroAddress.selector));
    }

    function test_RevertWhen_Create_RecipientIsSubscriber() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.recipient = payer;
        _expectCreateRevert(t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidRecipient.selector, payer));
    }

    function test_RevertWhen_Create_RecipientIsTheContract() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.recipient = address(subscriptions);
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidRecipient.selector, address(subscriptions))
        );
    }

    function test_RevertWhen_Create_TokenNotAllowed() public {
        TestStablecoin other = new TestStablecoin("X", "X", "2", address(this));
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.token = address(other);
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionTokenNotAllowed.selector, address(other))
        );
    }

    function test_RevertWhen_Create_AmountIsZero() public {
        _expectCreateRevert(terms(0, PERIOD), 0, abi.encodeWithSelector(ISubscription.SubscriptionZeroAmount.selector));
    }

    function test_RevertWhen_Create_AmountAboveUint96() public {
        uint256 amount = uint256(type(uint96).max) + 1;
        _expectCreateRevert(
            terms(amount, PERIOD), 0, abi.encodeWithSelector(ISubscription.SubscriptionAmountTooLarge.selector, amount)
        );
    }

    function test_RevertWhen_Create_InitialDepositAboveUint96() public {
        uint256 amount = uint256(type(uint96).max) + 1;
        _expectCreateRevert(
            terms(PRICE, PERIOD),
            amount,
            abi.encodeWithSelector(ISubscription.SubscriptionAmountTooLarge.selector, amount)
        );
    }

    function test_RevertWhen_Create_PeriodBelowMinimum() public {
        _expectCreateRevert(
            terms(PRICE, 1 minutes - 1),
            0,
            abi.encodeWithSelector(
                ISubscription.SubscriptionPeriodOutOfBounds.selector, 1 minutes - 1, 1 minutes, 366 days
            )
        );
    }

    function test_RevertWhen_Create_PeriodIsZero() public {
        _expectCreateRevert(
            terms(PRICE, 0),
            0,
            abi.encodeWithSelector(ISubscription.SubscriptionPeriodOutOfBounds.selector, 0, 1 minutes, 366 days)
        );
    }

    function test_RevertWhen_Create_PeriodAboveMaximum() public {
        _expectCreateRevert(
            terms(PRICE, 366 days + 1),
            0,
            abi.encodeWithSelector(
                ISubscription.SubscriptionPeriodOutOfBounds.selector, 366 days + 1, 1 minutes, 366 days
            )
        );
    }

    function test_RevertWhen_Create_StartInThePast() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START - 1;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, START - 1, 0)
        );
    }

    function test_RevertWhen_Create_StartAboveUint40() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = uint256(type(uint40).max) + 1;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, t.startTime, 0)
        );
    }

    function test_RevertWhen_Create_EndsAtEqualsStart() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START + 1 days;
        t.endsAt = START + 1 days;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, t.startTime, t.endsAt)
        );
    }

    function test_RevertWhen_Create_EndsAtBeforeStart() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.startTime = START + 1 days;
        t.endsAt = START + 1 days - 1;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, t.startTime, t.endsAt)
        );
    }

    /// @dev A zero start means now, so an end at now is not after the start.
    function test_RevertWhen_Create_EndsAtNowWithZeroStart() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = START;
        _expectCreateRevert(t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, 0, START));
    }

    function test_RevertWhen_Create_EndsAtAboveUint40() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.endsAt = uint256(type(uint40).max) + 1;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionInvalidSchedule.selector, 0, t.endsAt)
        );
    }

    function test_RevertWhen_Create_MaxCountAboveUint24() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        t.maxCount = uint256(type(uint24).max) + 1;
        _expectCreateRevert(
            t, 0, abi.encodeWithSelector(ISubscription.SubscriptionMaxCountTooLarge.selector, t.maxCount)
        );
    }

    function test_RevertWhen_Create_Paused() public {
        _pause();
        _expectCreateRevert(terms(PRICE, PERIOD), 0, abi.encodeWithSelector(PausableUpgradeable.EnforcedPause.selector));
    }

    function test_RevertWhen_Create_InitialDepositWithoutAllowance() public {
        usdc.mint(stranger, PRICE);
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(subscriptions), 0, PRICE)
        );
        vm.prank(stranger);
        subscriptions.createSubscription(t, PRICE);
        assertEq(subscriptions.subscriptionCount(), 0);
    }
}
