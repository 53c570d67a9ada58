// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {SubscriptionHandler} from "./handlers/SubscriptionHandler.sol";
import {console} from "forge-std/console.sol";

/// @notice Subscription driven by one handler with four subscribers, three recipients and two keepers: the books
/// always match the tokens held, no period is charged twice or ahead of its due time, the schedule stays on its
/// grid, rewards stay within their bound and no token is created or lost.
contract SubscriptionInvariantTest is RecurringFixture {
    uint256 internal constant FUNDS = 10_000_000e6;

    SubscriptionHandler internal handler;
    uint256 internal supply;

    function setUp() public override {
        super.setUp();
        handler = new SubscriptionHandler(subscriptions, usdc, admin);
        for (uint256 i; i < handler.SUBSCRIBERS(); ++i) {
            usdc.mint(handler.subscriber(i), FUNDS);
        }
        // Every run starts with a few subscriptions, one funded by a deposit and one starting later.
        handler.create(0, 0, 10e6, 1 days, 0, 0, 0, 0);
        handler.create(1, 1, 250e6, 7 days, 0, 1, 1, 100e6);
        handler.create(2, 2, 1e6, 1 hours, 1, 0, 3, 0);
        handler.create(3, 0, 99e6, 30 days, 3 days + 1, 3, 0, 0);
        supply = usdc.totalSupply();
        targetContract(address(handler));
    }

    /*//////////////////////////////////////////////////////////////
                                 SUMS
    //////////////////////////////////////////////////////////////*/

    function _sumDeposits() internal view returns (uint256 total) {
        for (uint256 i; i < handler.idCount(); ++i) {
            total += subscriptions.getSubscription(handler.ids(i)).deposit;
        }
    }

    function _credited(address account) internal view returns (uint256) {
        return subscriptions.withdrawableBalance(account, address(usdc));
    }

    function _sumCredited() internal view returns (uint256 total) {
        for (uint256 i; i < handler.SUBSCRIBERS(); ++i) {
            total += _credited(handler.subscriber(i));
        }
        for (uint256 i; i < handler.RECIPIENTS(); ++i) {
            total += _credited(handler.recipient(i));
        }
        for (uint256 i; i < handler.KEEPERS(); ++i) {
            total += _credited(handler.keeper(i));
        }
    }

    /*//////////////////////////////////////////////////////////////
                               INVARIANTS
    //////////////////////////////////////////////////////////////*/

    /// @dev usdc.balanceOf(subscriptions) == sum of deposits + sum of withdrawable balances.
    function invariant_TokensHeldEqualDepositsPlusBalances() public view {
        assertEq(usdc.balanceOf(address(subscriptions)), _sumDeposits() + _sumCredited());
    }

    /// @dev Per subscription: nothing before the start, then at most one charge per elapsed period plus the one
    /// due at the start.
    function invariant_ChargesNeverExceedElapsedPeriods() public view {
        for (uint256 i; i < handler.idCount(); ++i) {
            uint256 id = handler.ids(i);
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
            uint256 start = handler.startOf(id);
            if (block.timestamp < start) assertEq(sub.count, 0);
            else assertLe(sub.count, (block.timestamp - start) / sub.period + 1);
        }
        assertFalse(handler.chargedAheadOfTime(), "a period was charged before its due time");
    }

    /// @dev Each (id, dueAt) is charged at most once, and the schedule is nextDue == start + count * period.
    function invariant_NeverChargedTwiceInOnePeriod() public view {
        assertFalse(handler.chargedTwice());
        assertFalse(handler.chargedOffTheGrid(), "a charge was for a time off start + k * period");
        for (uint256 i; i < handler.idCount(); ++i) {
            uint256 id = handler.ids(i);
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(id);
            assertEq(sub.nextDue, handler.startOf(id) + uint256(sub.count) * sub.period);
            assertEq(sub.count, handler.chargesSeen(id), "every charge was announced");
        }
    }

    /// @dev Rewards are at most 1% of charges, each charge's reward too, and keepers hold exactly their rewards.
    function invariant_RewardsNeverExceedCharges() public view {
        assertFalse(handler.rewardAboveMaximum());
        assertLe(handler.totalRewards() * 10_000, handler.totalCharged() * subscriptions.MAX_KEEPER_REWARD_BPS());
        uint256 keepersHold;
        for (uint256 i; i < handler.KEEPERS(); ++i) {
            address k = handler.keeper(i);
            uint256 holds = usdc.balanceOf(k) + _credited(k);
            assertEq(holds, handler.rewardsOf(k));
            keepersHold += holds;
        }
        assertEq(keepersHold, handler.totalRewards());
    }

    /// @dev Recipients hold (withdrawn or credited) exactly the charges minus the keepers' rewards.
    function invariant_RecipientsGetChargesMinusRewards() public view {
        uint256 held;
        for (uint256 i; i < handler.RECIPIENTS(); ++i) {
            address r = handler.recipient(i);
            held += usdc.balanceOf(r) + _credited(r);
        }
        assertEq(held, handler.totalCharged() - handler.totalRewards());
    }

    /// @dev What subscribers still own (wallets, parked funds, deposits, credited refunds) is what they started
    /// with minus exactly what was charged.
    function invariant_SubscribersLoseExactlyWhatWasCharged() public view {
        uint256 owned = usdc.balanceOf(handler.SINK()) + _sumDeposits();
        for (uint256 i; i < handler.SUBSCRIBERS(); ++i) {
            address s = handler.subscriber(i);
            owned += usdc.balanceOf(s) + _credited(s);
        }
        assertEq(owned, handler.SUBSCRIBERS() * FUNDS - handler.totalCharged());
    }

    function invariant_NoTokensCreated() public view {
        assertEq(usdc.totalSupply(), supply);
        uint256 total = usdc.balanceOf(address(subscriptions)) + usdc.balanceOf(handler.SINK()) + usdc.balanceOf(payer);
        for (uint256 i; i < handler.SUBSCRIBERS(); ++i) {
            total += usdc.balanceOf(handler.subscriber(i));
        }
        for (uint256 i; i < handler.RECIPIENTS(); ++i) {
            total += usdc.balanceOf(handler.recipient(i));
        }
        for (uint256 i; i < handler.KEEPERS(); ++i) {
            total += usdc.balanceOf(handler.keeper(i));
        }
        assertEq(total, supply, "every unit is with a known holder");
    }

    /// @dev No period due at or after endsAt is charged and maxCount is never exceeded.
    function invariant_LimitsAreRespected() public view {
        assertFalse(handler.chargedAtOrAfterEnd());
        for (uint256 i; i < handler.idCount(); ++i) {
            ISubscription.SubscriptionData memory sub = subscriptions.getSubscription(handler.ids(i));
            if (sub.maxCount != 0) assertLe(sub.count, sub.maxCount);
            if (sub.status == ISubscription.SubscriptionStatus.Ended) {
                assertTrue(
                    (sub.maxCount != 0 && sub.count == sub.maxCount) || (sub.endsAt != 0 && sub.nextDue >= sub.endsAt),
                    "ended only by its limits"
                );
            }
        }
    }

    /// @dev The live list holds exactly the Active and PastDue subscriptions.
    function invariant_LiveCountMatchesActiveAndPastDue() public view {
        uint256 live;
        for (uint256 i; i < handler.idCount(); ++i) {
            ISubscription.SubscriptionStatus status = subscriptions.getSubscription(handler.ids(i)).status;
            if (status == ISubscription.SubscriptionStatus.Active || status == ISubscription.SubscriptionStatus.PastDue)
            {
                ++live;
            }
        }
        assertEq(subscriptions.liveCount(), live);
        assertEq(subscriptions.subscriptionCount(), handler.idCount());
    }

    function invariant_StatusFollowsStateMachine() public view {
        assertFalse(handler.illegalTransitionSeen());
    }

    function afterInvariant() external view {
        console.log("subscriptions", handler.idCount());
        console.log("charges", handler.chargeCount());
        console.log("failed charges", handler.failedCharges());
        console.log("live", subscriptions.liveCount());
        console.log("executes", handler.calls(SubscriptionHandler.execute.selector));
        console.log("batches", handler.calls(SubscriptionHandler.executeBatch.selector));
        console.log("keeper runs", handler.calls(SubscriptionHandler.keeperRun.selector));
        console.log("deposits", handler.calls(SubscriptionHandler.deposit.selector));
        console.log("deposit withdrawals", handler.calls(SubscriptionHandler.withdrawDeposit.selector));
        console.log("cancels", handler.calls(SubscriptionHandler.cancel.selector));
        console.log("withdrawals", handler.calls(SubscriptionHandler.withdraw.selector));
        console.log("revocations", handler.calls(bytes4(keccak256("revokeAllowance"))));
        console.log("emptied wallets", handler.calls(bytes4(keccak256("emptyWallet"))));
        console.log("pauses", handler.calls(bytes4(keccak256("pause"))));
        console.log("delistings", handler.calls(bytes4(keccak256("delist"))));
        console.log("warps", handler.calls(SubscriptionHandler.warp.selector));
    }
}
