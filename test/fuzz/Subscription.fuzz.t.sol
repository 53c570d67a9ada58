// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice Fuzzed amounts, periods, keeper timing, deposits and limits: charges never exceed the elapsed periods,
/// the schedule stays on the start + k * period grid, each charge splits exactly into reward and recipient share,
/// deposits are spent only when they cover a whole charge, and the keeper view pages over every due subscription.
contract SubscriptionFuzzTest is RecurringFixture {
    function _repeat(uint256 id, uint256 times) internal pure returns (uint256[] memory list) {
        list = new uint256[](times);
        for (uint256 i; i < times; ++i) {
            list[i] = id;
        }
    }

    function _batch(uint256[] memory ids) internal returns (ISubscription.ExecutionOutcome[] memory outcomes) {
        vm.prank(keeper);
        outcomes = subscriptions.executeBatch(ids);
    }

    function _credited() internal view returns (uint256) {
        return subscriptions.withdrawableBalance(recipient, address(usdc));
    }

    /// @dev Catch-up rule: charged == amount * min(due periods, executions), never more than the due periods.
    function testFuzz_ChargesEqualAmountTimesMinOfDuePeriodsAndExecutions(
        uint256 amount,
        uint256 period,
        uint256 elapsed,
        uint256 executions
    ) public {
        amount = bound(amount, 1, 10_000e6);
        period = bound(period, 1 minutes, 366 days);
        elapsed = bound(elapsed, 0, 20 * period);
        executions = bound(executions, 1, 25);
        uint256 id = subscribe(terms(amount, period), 0);
        vm.warp(START + elapsed);
        uint256 before = usdc.balanceOf(payer);

        _batch(_repeat(id, executions));

        uint256 duePeriods = elapsed / period + 1; // + 1: the period due at the start itself
        uint256 expected = executions < duePeriods ? executions : duePeriods;
        uint256 charged = before - usdc.balanceOf(payer);
        assertEq(charged, amount * expected);
        assertLe(charged, amount * duePeriods);
        assertEq(usdc.balanceOf(keeper) + _credited(), charged, "reward + recipient share == charged");
        assertEq(usdc.balanceOf(address(subscriptions)), _credited());
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        assertEq(sub.count, expected);
        assertEq(sub.nextDue, START + expected * period);
    }

    function testFuzz_RewardPlusRecipientShareEqualsAmount(uint256 amount, uint256 bps) public {
        amount = bound(amount, 1, type(uint96).max);
        bps = bound(bps, 0, 100);
        usdc.mint(payer, amount);
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(bps);
        uint256 id = subscribe(terms(amount, PERIOD), 0);

        vm.recordLogs();
        vm.prank(keeper);
        subscriptions.execute(id);

        uint256 reward = usdc.balanceOf(keeper);
        assertEq(reward + _credited(), amount);
        assertEq(reward, amount * bps / 10_000, "rounded down, in the recipient's favour");
        assertLe(reward * 10_000, amount * 100, "never above 1%");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != ISubscription.SubscriptionCharged.selector) continue;
            (, uint256 charged, uint256 loggedReward) = abi.decode(logs[i].data, (uint256, uint256, uint256));
            assertEq(charged, amount);
            assertEq(loggedReward, reward);
            seen = true;
        }
        assertTrue(seen);
    }

    /// @dev Keepers call at arbitrary times, early or late; every charge is for a due time on the grid, and the
    /// next due time never moves off it.
    function testFuzz_ScheduleStaysOnTheGridWhateverTheExecutionTimes(uint256 period, uint256 startDelay, uint256 seed)
        public
    {
        period = bound(period, 1 minutes, 366 days);
        startDelay = bound(startDelay, 0, 366 days);
        ISubscription.Terms memory t = terms(PRICE, period);
        uint256 start = START + startDelay;
        t.startTime = start;
        uint256 id = subscribe(t, 0);

        uint256 expectedCount;
        for (uint256 i; i < 16; ++i) {
            vm.warp(block.timestamp + bound(uint256(keccak256(abi.encode(seed, i))), 0, 2 * period));
            uint256 due = subscriptions.getSubscription(id).nextDue;
            vm.recordLogs();
            vm.prank(keeper);
            ISubscription.ExecutionOutcome outcome = subscriptions.execute(id);
            Vm.Log[] memory logs = vm.getRecordedLogs();

            if (due <= block.timestamp) {
                assertEq(uint256(outcome), uint256(ISubscription.ExecutionOutcome.Charged));
                ++expectedCount;
                for (uint256 j; j < logs.length; ++j) {
                    if (logs[j].topics[0] != ISubscription.SubscriptionCharged.selector) continue;
                    (uint256 dueAt,,) = abi.decode(logs[j].data, (uint256, uint256, uint256));
                    assertEq(dueAt, start + (expectedCount - 1) * period, "charged for a grid time");
                    assertLe(dueAt, block.timestamp, "never ahead of time");
                }
            } else {
                assertEq(uint256(outcome), uint256(ISubscription.ExecutionOutcome.NotDue));
            }
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
            assertEq(sub.count, expectedCount);
            assertEq(sub.nextDue, start + expectedCount * period, "nextDue on the grid");
            if (block.timestamp >= start) assertLe(sub.count, (block.timestamp - start) / period + 1);
            else assertEq(sub.count, 0);
        }
    }

    function testFuzz_DepositIsSpentOnlyWhenItCoversTheWholeAmount(uint256 amount, uint256 deposit, uint256 periods)
        public
    {
        amount = bound(amount, 1, 10_000e6);
        deposit = bound(deposit, 0, 5 * amount);
        periods = bound(periods, 1, 8);
        uint256 id = subscribe(terms(amount, PERIOD), deposit);
        uint256 walletAfterDeposit = usdc.balanceOf(payer);
        vm.warp(START + (periods - 1) * PERIOD);

        _batch(_repeat(id, periods));

        uint256 fromDeposit = deposit / amount < periods ? deposit / amount : periods;
        uint256 fromWallet = periods - fromDeposit;
        assertEq(walletAfterDeposit - usdc.balanceOf(payer), fromWallet * amount);
        assertEq(subscriptions.getSubscription(id).deposit, deposit - fromDeposit * amount);
        assertEq(subscriptions.getSubscription(id).hasDeposit, deposit - fromDeposit * amount != 0);
        assertEq(usdc.balanceOf(keeper) + _credited(), periods * amount);
        assertEq(usdc.balanceOf(address(subscriptions)), deposit - fromDeposit * amount + _credited());
    }

    /// @dev No period due at or after `endsAt` is charged, nor more than `maxCount`, however late the keeper runs.
    function testFuzz_EndsAtAndMaxCountBoundCharges(uint256 period, uint256 length, uint256 maxCount) public {
        period = bound(period, 1 minutes, 366 days);
        length = bound(length, 1, 20 * period);
        maxCount = bound(maxCount, 0, 25);
        ISubscription.Terms memory t = terms(PRICE, period);
        t.endsAt = START + length;
        t.maxCount = maxCount;
        uint256 id = subscribe(t, 0);
        vm.warp(START + 30 * period);

        _batch(_repeat(id, 30));

        uint256 beforeEnd = (length + period - 1) / period; // due times START + k * period < START + length
        uint256 expected = maxCount != 0 && maxCount < beforeEnd ? maxCount : beforeEnd;
        ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
        assertEq(sub.count, expected);
        assertEq(uint256(sub.status), uint256(ISubscription.SubscriptionStatus.Ended));
        assertLt(sub.nextDue - period, START + length, "the last charge was due before the end");
        assertEq(subscriptions.liveCount(), 0);
    }

    /// @dev Paging with any page size from offset 0 to liveCount finds exactly the Active, due subscriptions.
    function testFuzz_DuePagesCoverEveryDueSubscription(uint256 n, uint256 limit, uint256 seed) public {
        n = bound(n, 1, 30);
        limit = bound(limit, 1, 12);
        uint256 expectedDue;
        for (uint256 i; i < n; ++i) {
            uint256 dice = uint256(keccak256(abi.encode(seed, i))) % 4;
            ISubscription.Terms memory t = terms(PRICE, PERIOD);
            if (dice == 1) t.startTime = START + 1 days;
            uint256 id = subscribe(t, 0);
            if (dice == 2) {
                vm.prank(payer);
                subscriptions.cancel(id);
            }
            if (dice == 0 || dice == 3) ++expectedDue;
        }

        uint256 found;
        uint256 offset;
        bool[] memory seen = new bool[](n + 1);
        while (offset < subscriptions.liveCount()) {
            uint256[] memory ids;
            (ids, offset) = subscriptions.dueSubscriptions(offset, limit);
            assertLe(ids.length, limit);
            for (uint256 i; i < ids.length; ++i) {
                ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(ids[i]);
                assertEq(uint256(sub.status), uint256(ISubscription.SubscriptionStatus.Active));
                assertLe(sub.nextDue, block.timestamp);
                assertFalse(seen[ids[i]], "listed once");
                seen[ids[i]] = true;
                ++found;
            }
        }
        assertEq(found, expectedDue);
    }

    /// @dev Whatever mix of failures and recoveries, a subscription pays each due period at most once and the
    /// payer loses exactly what the recipient and keeper gained.
    function testFuzz_FailuresAndRecoveriesNeverDoubleChargeOrLoseTokens(uint256 seed) public {
        uint256 id = subscribe(terms(PRICE, 1 days), 0);
        uint256 supply = usdc.balanceOf(payer);
        for (uint256 i; i < 20; ++i) {
            uint256 dice = uint256(keccak256(abi.encode(seed, i)));
            vm.warp(block.timestamp + dice % 2 days);
            if ((dice >> 16) % 4 == 0) {
                vm.startPrank(payer);
                usdc.approve(address(subscriptions), type(uint256).max);
                subscriptions.deposit(id, PRICE * ((dice >> 24) % 3 + 1));
                vm.stopPrank();
            }
            // A third of the time the wallet cannot pay.
            vm.prank(payer);
            usdc.approve(address(subscriptions), (dice >> 8) % 3 == 0 ? 0 : type(uint256).max);
            vm.prank(keeper);
            subscriptions.execute(id);
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
            assertEq(sub.nextDue, START + sub.count * 1 days);
            assertLe(sub.count, (block.timestamp - START) / 1 days + 1);
            assertEq(usdc.balanceOf(payer) + sub.deposit + _credited() + usdc.balanceOf(keeper), supply, "no unit lost");
            assertEq(_credited() + usdc.balanceOf(keeper), sub.count * PRICE);
        }
    }
}
