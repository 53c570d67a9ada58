// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";

/// @notice Subscription unit tests: getSubscription, the paged dueSubscriptions keeper view and the counts.
contract SubscriptionViewsTest is SubscriptionFixture {
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
}
