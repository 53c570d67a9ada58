// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {RecurringFixture} from "./RecurringFixture.sol";

/// @notice What the Subscription unit tests share: a second allowlisted token (books and payouts never mix tokens)
/// and helpers to read, break and batch subscriptions.
abstract contract SubscriptionFixture is RecurringFixture {
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
}
