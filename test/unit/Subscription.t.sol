// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Unit tests of every external function of Subscription and each of its revert paths: creation checks,
/// deposits, cancellation, the execution outcomes, catch-up batches, withdrawals, admin setters, pausing, the
/// paged keeper view, and the end of a subscription by count or date.
contract SubscriptionTest is RecurringFixture {
    uint256 internal constant REWARD = PRICE * 10 / 10_000; // default keeper reward, 0.1%

    TestStablecoin internal eurc;
    address internal payout = makeAddr("payout");

    function setUp() public override {
        super.setUp();
        // Allowlisted second token, to check that books and payouts never mix tokens.
        eurc = new TestStablecoin("EURC", "EURC", "2", address(this));
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(eurc), true);
        eurc.mint(payer, 1_000_000e6);
        vm.prank(payer);
        eurc.approve(address(subscriptions), type(uint256).max);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _sub(uint256 id) internal view returns (ISubscription.SubscriptionData memory) {
        return subscriptions.getSubscription(id);
    }

    function _status(uint256 id) internal view returns (uint256) {
        return uint256(subscriptions.getSubscription(id).status);
    }

    function _s(ISubscription.SubscriptionStatus status) internal pure returns (uint256) {
        return uint256(status);
    }

    function _o(ISubscription.ExecutionOutcome outcome) internal pure returns (uint256) {
        return uint256(outcome);
    }

    function _credited(address account) internal view returns (uint256) {
        return subscriptions.withdrawableBalance(account, address(usdc));
    }

    function _expectCreateRevert(ISubscription.Terms memory t, uint256 initialDeposit, bytes memory reason) internal {
        vm.expectRevert(reason);
        vm.prank(payer);
        subscriptions.createSubscription(t, initialDeposit);
    }

    function _revokeAllowance() internal {
        vm.prank(payer);
        usdc.approve(address(subscriptions), 0);
    }

    function _restoreAllowance() internal {
        vm.prank(payer);
        usdc.approve(address(subscriptions), type(uint256).max);
    }

    /// @dev Leaves `id` PastDue: the wallet pull fails for want of allowance, which is then restored.
    function _makePastDue(uint256 id) internal {
        _revokeAllowance();
        assertEq(_o(executeAs(keeper, id)), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        _restoreAllowance();
        assertEq(_status(id), _s(ISubscription.SubscriptionStatus.PastDue));
    }

    function _pause() internal {
        vm.prank(admin);
        subscriptions.pause();
    }

    function _ids(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
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

    function _due(uint256 offset, uint256 limit) internal view returns (uint256[] memory ids, uint256 nextOffset) {
        return subscriptions.dueSubscriptions(offset, limit);
    }

    /*//////////////////////////////////////////////////////////////
                               INITIALIZE
    //////////////////////////////////////////////////////////////*/

    function test_Initialize_GrantsRolesSetsDefaultRewardAndAllowlist() public view {
        assertTrue(subscriptions.hasRole(subscriptions.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(subscriptions.hasRole(subscriptions.PAUSER_ROLE(), admin));
        assertTrue(subscriptions.hasRole(subscriptions.UPGRADER_ROLE(), admin));
        assertEq(subscriptions.keeperRewardBps(), subscriptions.DEFAULT_KEEPER_REWARD_BPS());
        assertEq(subscriptions.keeperRewardBps(), 10);
        assertTrue(subscriptions.isTokenAllowed(address(usdc)));
        assertFalse(subscriptions.paused());
        assertEq(subscriptions.subscriptionCount(), 0);
        assertEq(subscriptions.liveCount(), 0);
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        subscriptions.initialize(stranger, new address[](0));
    }

    function test_RevertWhen_ImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        Subscription(deployment.subscriptionImplementation).initialize(stranger, new address[](0));
    }

    function test_RevertWhen_InitializedWithZeroAdmin() public {
        address implementation = address(new Subscription());
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        new ERC1967Proxy(implementation, abi.encodeCall(Subscription.initialize, (address(0), new address[](0))));
    }

    function test_RevertWhen_InitializedWithTokenWithoutCode() public {
        address implementation = address(new Subscription());
        address[] memory tokens = new address[](1);
        tokens[0] = stranger;
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionTokenHasNoCode.selector, stranger));
        new ERC1967Proxy(implementation, abi.encodeCall(Subscription.initialize, (admin, tokens)));
    }

    /*//////////////////////////////////////////////////////////////
                          CREATE SUBSCRIPTION
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                                DEPOSIT
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                            WITHDRAW DEPOSIT
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                                 CANCEL
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                                EXECUTE
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                             EXECUTE BATCH
    //////////////////////////////////////////////////////////////*/

    function test_ExecuteBatch_ReportsEveryOutcomeWithItsIndex() public {
        uint256 charged = subscribe();
        uint256 cancelled = subscribe();
        vm.prank(payer);
        subscriptions.cancel(cancelled);
        ISubscription.Terms memory later = terms(PRICE, PERIOD);
        later.startTime = START + 1 days;
        uint256 notDue = subscribe(later, 0);
        ISubscription.Terms memory inEurc = terms(PRICE, PERIOD);
        inEurc.token = address(eurc);
        uint256 removedToken = subscribe(inEurc, 0);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(eurc), false);
        // A second subscriber with no allowance.
        vm.prank(stranger);
        uint256 failing = subscriptions.createSubscription(terms(PRICE, PERIOD), 0);

        uint256[] memory ids = new uint256[](6);
        (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]) = (charged, 99, cancelled, notDue, removedToken, failing);

        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionCharged(charged, keeper, START, PRICE, REWARD);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(99, 1, ISubscription.ExecutionOutcome.NotFound);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(cancelled, 2, ISubscription.ExecutionOutcome.Inactive);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(notDue, 3, ISubscription.ExecutionOutcome.NotDue);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(removedToken, 4, ISubscription.ExecutionOutcome.TokenNotAllowed);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.SubscriptionPastDue(failing, START);
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(failing, 5, ISubscription.ExecutionOutcome.ChargeFailed);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, ids);

        assertEq(outcomes.length, 6);
        assertEq(_o(outcomes[0]), _o(ISubscription.ExecutionOutcome.Charged));
        assertEq(_o(outcomes[1]), _o(ISubscription.ExecutionOutcome.NotFound));
        assertEq(_o(outcomes[2]), _o(ISubscription.ExecutionOutcome.Inactive));
        assertEq(_o(outcomes[3]), _o(ISubscription.ExecutionOutcome.NotDue));
        assertEq(_o(outcomes[4]), _o(ISubscription.ExecutionOutcome.TokenNotAllowed));
        assertEq(_o(outcomes[5]), _o(ISubscription.ExecutionOutcome.ChargeFailed));
        assertEq(usdc.balanceOf(keeper), REWARD, "one reward, for the one charge");
        assertEq(usdc.balanceOf(address(subscriptions)), PRICE - REWARD);
    }

    function test_RevertWhen_ExecuteBatch_Empty() public {
        vm.expectRevert(ISubscription.SubscriptionEmptyBatch.selector);
        vm.prank(keeper);
        subscriptions.executeBatch(new uint256[](0));
    }

    function test_RevertWhen_ExecuteBatch_Paused() public {
        uint256 id = subscribe();
        _pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        vm.prank(keeper);
        subscriptions.executeBatch(one(id));
    }

    function test_WhenIdRepeated_BatchCatchesUpMissedPeriodsOnePerItem() public {
        uint256 id = subscribe();
        vm.warp(START + 3 * PERIOD + 1 days);
        uint256 before = usdc.balanceOf(payer);
        for (uint256 k; k < 4; ++k) {
            vm.expectEmit(address(subscriptions));
            emit ISubscription.SubscriptionCharged(id, keeper, START + k * PERIOD, PRICE, REWARD);
        }
        vm.expectEmit(address(subscriptions));
        emit ISubscription.ExecutionSkipped(id, 4, ISubscription.ExecutionOutcome.NotDue);
        ISubscription.ExecutionOutcome[] memory outcomes = _batchAs(keeper, _repeat(id, 5));
        for (uint256 k; k < 4; ++k) {
            assertEq(_o(outcomes[k]), _o(ISubscription.ExecutionOutcome.Charged));
        }
        assertEq(_o(outcomes[4]), _o(ISubscription.ExecutionOutcome.NotDue));
        assertEq(before - usdc.balanceOf(payer), 4 * PRICE);
        assertEq(usdc.balanceOf(keeper), 4 * REWARD);
        assertEq(_credited(recipient), 4 * (PRICE - REWARD));
        assertEq(_sub(id).nextDue, START + 4 * PERIOD);
        assertEq(_sub(id).count, 4);
    }

    function test_ExecuteBatch_PaysRewardsInEachTokenCharged() public {
        uint256 inUsdc = subscribe();
        ISubscription.Terms memory t = terms(2 * PRICE, PERIOD);
        t.token = address(eurc);
        uint256 inEurc = subscribe(t, 0);
        uint256 inUsdc2 = subscribe();
        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (inUsdc, inEurc, inUsdc2);
        _batchAs(keeper, ids);
        assertEq(usdc.balanceOf(keeper), 2 * REWARD);
        assertEq(eurc.balanceOf(keeper), 2 * REWARD);
        assertEq(_credited(recipient), 2 * (PRICE - REWARD));
        assertEq(subscriptions.withdrawableBalance(recipient, address(eurc)), 2 * (PRICE - REWARD));
        assertEq(usdc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
        assertEq(eurc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
    }

    function test_ExecuteBatch_MixesDepositAndWalletCharges() public {
        uint256 fromDeposit = subscribe(terms(PRICE, PERIOD), PRICE);
        uint256 fromWallet = subscribe();
        uint256 before = usdc.balanceOf(payer);
        _batchAs(keeper, _ids(fromDeposit, fromWallet));
        assertEq(before - usdc.balanceOf(payer), PRICE);
        assertEq(_sub(fromDeposit).deposit, 0);
        assertEq(usdc.balanceOf(keeper), 2 * REWARD);
        assertEq(usdc.balanceOf(address(subscriptions)), 2 * (PRICE - REWARD));
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

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

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    function test_SetKeeperRewardBps_UpToTheMaximum() public {
        vm.expectEmit(address(subscriptions));
        emit ISubscription.KeeperRewardUpdated(10, 100);
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(100);
        assertEq(subscriptions.keeperRewardBps(), 100);

        uint256 id = subscribe();
        executeAs(keeper, id);
        assertEq(usdc.balanceOf(keeper), PRICE / 100);
        assertEq(_credited(recipient), PRICE - PRICE / 100);
    }

    function test_RevertWhen_SetKeeperRewardBps_AboveMaximum() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionRewardTooHigh.selector, 101, 100));
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(101);
        assertEq(subscriptions.keeperRewardBps(), 10);
    }

    function test_RevertWhen_SetKeeperRewardBps_CallerIsNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        vm.prank(stranger);
        subscriptions.setKeeperRewardBps(0);
    }

    function test_SetTokenAllowed_AddsAndRemoves() public {
        TestStablecoin other = new TestStablecoin("X", "X", "2", address(this));
        vm.expectEmit(address(subscriptions));
        emit ISubscription.TokenAllowanceUpdated(address(other), true);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(other), true);
        assertTrue(subscriptions.isTokenAllowed(address(other)));

        vm.expectEmit(address(subscriptions));
        emit ISubscription.TokenAllowanceUpdated(address(other), false);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(other), false);
        assertFalse(subscriptions.isTokenAllowed(address(other)));
    }

    function test_RevertWhen_SetTokenAllowed_ZeroAddress() public {
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(0), true);
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(0), false);
    }

    function test_RevertWhen_SetTokenAllowed_NoCode() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionTokenHasNoCode.selector, stranger));
        vm.prank(admin);
        subscriptions.setTokenAllowed(stranger, true);
    }

    /// @dev Only adding needs code: removing a token that self-destructed or never existed must stay possible.
    function test_SetTokenAllowed_RemovingAnAddressWithoutCodeWorks() public {
        vm.prank(admin);
        subscriptions.setTokenAllowed(stranger, false);
        assertFalse(subscriptions.isTokenAllowed(stranger));
    }

    function test_RevertWhen_SetTokenAllowed_CallerIsNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        vm.prank(stranger);
        subscriptions.setTokenAllowed(address(usdc), false);
    }

    function test_PauseAndUnpause() public {
        vm.expectEmit(address(subscriptions));
        emit PausableUpgradeable.Paused(admin);
        vm.prank(admin);
        subscriptions.pause();
        assertTrue(subscriptions.paused());
        vm.expectEmit(address(subscriptions));
        emit PausableUpgradeable.Unpaused(admin);
        vm.prank(admin);
        subscriptions.unpause();
        assertFalse(subscriptions.paused());
    }

    function test_GivenPauserRole_AnotherAccountCanPause() public {
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.prank(admin);
        subscriptions.grantRole(role, stranger);
        vm.prank(stranger);
        subscriptions.pause();
        assertTrue(subscriptions.paused());
    }

    function test_RevertWhen_Pause_CallerIsNotPauser() public {
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, role));
        vm.prank(keeper);
        subscriptions.pause();
    }

    function test_RevertWhen_Unpause_CallerIsNotPauser() public {
        _pause();
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, payer, role));
        vm.prank(payer);
        subscriptions.unpause();
    }

    function test_RevertWhen_Pause_AlreadyPaused() public {
        _pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        vm.prank(admin);
        subscriptions.pause();
    }

    function test_RevertWhen_Unpause_NotPaused() public {
        vm.expectRevert(PausableUpgradeable.ExpectedPause.selector);
        vm.prank(admin);
        subscriptions.unpause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function test_GetSubscription_UnknownIdIsEmpty() public view {
        ISubscription.SubscriptionData memory sub = _sub(1);
        assertEq(_s(sub.status), _s(ISubscription.SubscriptionStatus.None));
        assertEq(sub.subscriber, address(0));
    }

    function test_DueSubscriptions_ListsOnlyActiveDueEntries() public {
        uint256 due = subscribe();
        ISubscription.Terms memory later = terms(PRICE, PERIOD);
        later.startTime = START + 1 days;
        subscribe(later, 0);
        uint256 pastDue = subscribe();
        _makePastDue(pastDue);
        uint256 paid = subscribe();
        executeAs(keeper, paid);

        (uint256[] memory ids, uint256 nextOffset) = _due(0, 10);
        assertEq(ids.length, 1);
        assertEq(ids[0], due);
        assertEq(nextOffset, 4);
        assertEq(subscriptions.liveCount(), 4);
    }

    function test_DueSubscriptions_SkipsDelistedTokens() public {
        uint256 id = subscribe();
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), false);
        (uint256[] memory ids, uint256 nextOffset) = _due(0, 10);
        assertEq(ids.length, 0, "a keeper would only get a TokenNotAllowed skip");
        assertEq(nextOffset, 1);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(usdc), true);
        (ids,) = _due(0, 10);
        assertEq(ids[0], id);
    }

    function test_DueSubscriptions_PagesUpToLiveCount() public {
        for (uint256 i; i < 5; ++i) {
            subscribe();
        }
        ISubscription.Terms memory later = terms(PRICE, PERIOD);
        later.startTime = START + 1;
        subscribe(later, 0); // id 6, not due

        (uint256[] memory ids, uint256 nextOffset) = _due(0, 2);
        assertEq(nextOffset, 2);
        assertEq(ids.length, 2);
        assertEq(ids[0], 1);
        assertEq(ids[1], 2);
        (ids, nextOffset) = _due(2, 2);
        assertEq(nextOffset, 4);
        assertEq(ids.length, 2);
        assertEq(ids[0], 3);
        assertEq(ids[1], 4);
        (ids, nextOffset) = _due(4, 2);
        assertEq(nextOffset, 6);
        assertEq(ids.length, 1, "entry 5 (id 6) is scanned but not due");
        assertEq(ids[0], 5);
        (ids, nextOffset) = _due(6, 2);
        assertEq(nextOffset, 6);
        assertEq(ids.length, 0);
    }

    function test_DueSubscriptions_OffsetBeyondLengthReturnsNothing() public {
        subscribe();
        subscribe();
        (uint256[] memory ids, uint256 nextOffset) = _due(50, 10);
        assertEq(ids.length, 0);
        assertEq(nextOffset, 2, "nextOffset is clamped to liveCount");
        (ids, nextOffset) = _due(type(uint256).max, 1000);
        assertEq(ids.length, 0);
        assertEq(nextOffset, 2);
    }

    function test_DueSubscriptions_EmptyLiveSet() public view {
        (uint256[] memory ids, uint256 nextOffset) = _due(0, 1);
        assertEq(ids.length, 0);
        assertEq(nextOffset, 0);
    }

    function test_DueSubscriptions_MaximumPageSizeIsAccepted() public {
        subscribe();
        (uint256[] memory ids, uint256 nextOffset) = _due(0, subscriptions.MAX_PAGE_SIZE());
        assertEq(ids.length, 1);
        assertEq(nextOffset, 1);
    }

    function test_RevertWhen_DueSubscriptions_PageSizeZero() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionInvalidPageSize.selector, 0, 1000));
        subscriptions.dueSubscriptions(0, 0);
    }

    function test_RevertWhen_DueSubscriptions_PageSizeAboveMaximum() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionInvalidPageSize.selector, 1001, 1000));
        subscriptions.dueSubscriptions(0, 1001);
    }

    /// @dev The live set is an EnumerableSet: removing an entry moves the last one into its place.
    function test_DueSubscriptions_CompactsAfterCancelAndEnd() public {
        subscribe(); // 1
        ISubscription.Terms memory once = terms(PRICE, PERIOD);
        once.maxCount = 1;
        subscribe(once, 0); // 2
        subscribe(); // 3
        subscribe(); // 4
        assertEq(subscriptions.liveCount(), 4);

        vm.prank(payer);
        subscriptions.cancel(1);
        assertEq(subscriptions.liveCount(), 3);
        (uint256[] memory ids,) = _due(0, 1);
        assertEq(ids[0], 4, "the last entry took the cancelled one's place");

        executeAs(keeper, 2); // ends it
        assertEq(subscriptions.liveCount(), 2);
        (ids,) = _due(0, 10);
        assertEq(ids.length, 2);
        assertEq(ids[0], 4);
        assertEq(ids[1], 3);
    }

    function test_LiveCountAndSubscriptionCount() public {
        uint256 a = subscribe();
        uint256 b = subscribe();
        _makePastDue(b);
        assertEq(subscriptions.liveCount(), 2, "PastDue is live");
        vm.prank(payer);
        subscriptions.cancel(a);
        assertEq(subscriptions.liveCount(), 1);
        assertEq(subscriptions.subscriptionCount(), 2, "cancelled ids still count");
    }

    /*//////////////////////////////////////////////////////////////
                                 ENDING
    //////////////////////////////////////////////////////////////*/

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
