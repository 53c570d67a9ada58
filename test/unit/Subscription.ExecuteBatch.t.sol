// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";

/// @notice Subscription unit tests: executeBatch: outcomes with their index, catch-up of missed periods, rewards per
/// token.
contract SubscriptionExecuteBatchTest is SubscriptionFixture {
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
}
