// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICreditSystem} from "../../contracts/interfaces/ICreditSystem.sol";
import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";

/// @notice Regression tests for the bug classes of ../shared/notes/contract-threats.md seen in a peer
/// implementation of these contracts.
contract ToolsThreatsTest is ToolsFixture {
    /// @dev Peer bug: a deactivated tool's name could be re-registered by anyone.
    function test_Regression_DeactivatedToolNameIsNeverReusable() public {
        uint256 toolId = registerTool("weather");
        vm.prank(developer);
        registry.setActive(toolId, false);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNameTaken.selector, "weather", developer));
        registry.registerTool("weather", address(usdc), 1, stranger);
        assertEq(registry.toolIdOf("weather"), toolId);
        assertEq(registry.getTool(toolId).developer, developer);
    }

    /// @dev Peer bug: a pay function accepted less than the listed price.
    function test_Regression_PaymentIsAlwaysExactlyTheListedPrice() public {
        uint256 toolId = registerTool("weather");
        // The caller cannot name a lower price: it only states the most it accepts.
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(IToolRegistry.ToolRegistryPriceAboveMax.selector, toolId, PRICE, PRICE - 1)
        );
        registry.payForTool(toolId, PRICE - 1);

        // A price raised between quote and call never overcharges the caller.
        vm.prank(developer);
        registry.setPrice(toolId, PRICE * 2);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(IToolRegistry.ToolRegistryPriceAboveMax.selector, toolId, PRICE * 2, PRICE)
        );
        registry.payForTool(toolId, PRICE);

        // A lowered price charges the new, listed price, not the caller's maximum.
        vm.prank(developer);
        registry.setPrice(toolId, PRICE / 2);
        uint256 before = usdc.balanceOf(user);
        vm.prank(user);
        registry.payForTool(toolId, PRICE);
        assertEq(before - usdc.balanceOf(user), PRICE / 2);

        // Same rules with credits.
        depositCredits(10_000);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(ICreditSystem.CreditSystemPriceAboveMax.selector, toolId, PRICE / 2, PRICE / 2 - 1)
        );
        credits.payWithCredits(toolId, PRICE / 2 - 1);
    }

    /// @dev Peer bugs: a bonus was announced but never credited, or paid from other users' deposits.
    function test_Regression_BonusComesOnlyFromTheFundedPool() public {
        address other = makeAddr("other");
        usdc.mint(other, 100e6);
        vm.prank(other);
        usdc.approve(address(credits), type(uint256).max);
        vm.prank(other);
        credits.deposit(address(usdc), 100e6);

        // A policy with an empty pool grants nothing, even though the contract holds another user's deposit.
        vm.prank(admin);
        credits.setBonusPolicy(address(usdc), 5000, 0);
        depositCredits(10e6);
        (, uint256 bonus) = credits.creditsOf(user, address(usdc));
        assertEq(bonus, 0);

        // Once funded, the bonus is really credited, and only up to the pool.
        usdc.mint(admin, 2e6);
        vm.startPrank(admin);
        usdc.approve(address(credits), 2e6);
        credits.fundBonusPool(address(usdc), 2e6);
        vm.stopPrank();
        depositCredits(10e6);
        (uint256 principal, uint256 bonusAfter) = credits.creditsOf(user, address(usdc));
        assertEq(bonusAfter, 2e6);
        assertEq(principal, 20e6);
        (uint256 otherPrincipal,) = credits.creditsOf(other, address(usdc));
        assertEq(otherPrincipal, 100e6, "nobody else's deposit paid for it");
        assertEq(usdc.balanceOf(address(credits)), 100e6 + 20e6 + 2e6);

        // Bonus credits are spendable but never withdrawable.
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemInsufficientPrincipal.selector, 20e6, 22e6));
        credits.withdraw(address(usdc), 22e6, user);
    }

    /// @dev Review finding: deposit (flash-borrowed) principal, withdraw it, keep the bonus, spend the bonus on a
    /// tool of one's own and cash it out through settlement.
    function test_Regression_BonusCannotBeHarvested() public {
        usdc.mint(admin, 500_000e6);
        vm.startPrank(admin);
        usdc.approve(address(credits), type(uint256).max);
        credits.fundBonusPool(address(usdc), 500_000e6);
        credits.setBonusPolicy(address(usdc), 5000, 0);
        vm.stopPrank();

        // Deposit-and-withdraw in one go leaves nothing behind.
        depositCredits(1_000_000e6);
        vm.prank(user);
        credits.withdraw(address(usdc), 1_000_000e6, user);
        (uint256 principal, uint256 bonus) = credits.creditsOf(user, address(usdc));
        assertEq(principal + bonus, 0);
        assertEq(credits.bonusPool(address(usdc)), 500_000e6, "the whole bonus went back to the pool");

        // Spending everything on one's own tool returns at most the principal paid in.
        vm.prank(user);
        uint256 own = registry.registerTool("my-own-tool", address(usdc), 1000e6, user);
        depositCredits(100_000e6);
        (principal, bonus) = credits.creditsOf(user, address(usdc));
        uint256 calls = (principal + bonus) / 1000e6;
        for (uint256 i; i < calls; ++i) {
            vm.prank(user);
            credits.payWithCredits(own, 1000e6);
        }
        (principal,) = credits.creditsOf(user, address(usdc));
        if (principal > 0) {
            vm.prank(user);
            credits.withdraw(address(usdc), principal, user);
        }
        credits.settle(address(usdc), ids(own));
        registry.settle(address(usdc), ids(own));
        vm.prank(user);
        splitter.withdraw(address(usdc), user);
        assertLe(usdc.balanceOf(user), 1_000_000e6, "no profit from the bonus pool");
    }

    /// @dev Spends every credit the user can on `toolId`, withdraws what principal is left, settles, and takes
    /// the tool's revenue out of the splitter to `user` (the tool's payout). Returns what came back to the user.
    function _cashOut(uint256 toolId, uint256 price, uint16 feeBeforeSettle) internal returns (uint256) {
        uint256 before = usdc.balanceOf(user);
        spendCredits(toolId, price, 1000);
        (uint256 principal,) = credits.creditsOf(user, address(usdc));
        if (principal != 0) {
            vm.prank(user);
            credits.withdraw(address(usdc), principal, user);
        }
        setPlatformFee(feeBeforeSettle);
        credits.settle(address(usdc), ids(toolId));
        registry.settle(address(usdc), ids(toolId));
        vm.prank(user);
        splitter.withdraw(address(usdc), user);
        return usdc.balanceOf(user) - before;
    }

    /// @dev Review finding: the bonus cap fee/(1-fee) was fixed at deposit, but spends were split at the fee in
    /// force at `settle`. After a fee cut from 20% to 10%, principal + bonus spent on one's own tool paid 12,500
    /// USDC more than the 100,000 deposited. Now the bonus pays at most the platform's share of each spend.
    function test_Regression_BonusCannotBeCashedOutAfterAFeeCut() public {
        fundBonus(1_000_000e6, 2500);
        vm.prank(user);
        uint256 own = registry.registerTool("my-own-tool", address(usdc), 1000e6, user);
        depositCredits(100_000e6);
        (, uint256 bonus) = credits.creditsOf(user, address(usdc));
        assertEq(bonus, 25_000e6, "the full fee/(1-fee) bonus at 20%");
        setPlatformFee(1000);
        uint256 received = _cashOut(own, 1000e6, 1000);
        assertLe(received, 100_000e6, "no more than the principal comes back");
        assertEq(received, 100_000e6, "and all of it does");
        // At a 0% fee no bonus is spent at all.
        depositCredits(100_000e6);
        setPlatformFee(0);
        assertEq(_cashOut(own, 1000e6, 0), 100_000e6);
    }

    /// @dev Second review: with the bonus capped at the platform's share, the principal runs out first; the bonus
    /// left then could neither be spent nor withdrawn, and the pool's money sat in the account for good. Spending
    /// the last principal now sends it back to the pool.
    function test_Regression_BonusLeftWhenThePrincipalIsSpentGoesBackToThePool() public {
        fundBonus(1_000_000e6, 2500);
        uint256 toolId = registerTool("weather", 1000e6);
        depositCredits(90_000e6);
        setPlatformFee(1000);
        uint256 poolBefore = credits.bonusPool(address(usdc));
        // 100 calls of 1,000: 900 from principal and 100 from bonus each, so the 90,000 principal is gone with
        // 12,500 of the 22,500 bonus still there.
        assertEq(spendCredits(toolId, 1000e6, 1000), 100);
        (uint256 principal, uint256 bonus) = credits.creditsOf(user, address(usdc));
        assertEq(principal + bonus, 0, "nothing stranded");
        assertEq(credits.bonusPool(address(usdc)), poolBefore + 12_500e6);
        // The spends themselves still add up: developer 90%, platform 10% of 100,000.
        (uint256 developer, uint256 platform) = credits.pendingShares(toolId);
        assertEq(developer, 90_000e6);
        assertEq(platform, 10_000e6);
    }

    /// @dev Review finding: depositing during a temporary fee rise to 30% (bonus cap 42.86%) and settling after it
    /// returned to 20% yielded 14,280 USDC per 100,000 deposited.
    function test_Regression_BonusCannotBeCashedOutAfterATemporaryFeeRise() public {
        fundBonus(1_000_000e6, 5000);
        vm.prank(user);
        uint256 own = registry.registerTool("my-own-tool", address(usdc), 1000e6, user);
        setPlatformFee(3000);
        depositCredits(100_000e6);
        setPlatformFee(2000);
        assertEq(_cashOut(own, 1000e6, 2000), 100_000e6, "the principal comes back, no more");
    }

    /// @dev Review finding: a fee raise from 20% to 30% after 100 credit calls and 100 direct calls of 1 USDC left the
    /// developer 150 instead of 160: credit spends were split at the fee in force at settlement. They are split
    /// when spent now, so no fee change moves an earned share.
    function test_Regression_FeeRaiseDoesNotTakeRevenueEarnedThroughCredits() public {
        uint256 toolId = registerTool("weather", 1e6);
        depositCredits(100e6);
        for (uint256 i; i < 100; ++i) {
            vm.prank(user);
            credits.payWithCredits(toolId, 1e6);
            payForTool(toolId);
        }
        (uint256 developer, uint256 platform) = credits.pendingShares(toolId);
        assertEq(developer, 80e6);
        assertEq(platform, 20e6);
        setPlatformFee(3000);
        (developer, platform) = credits.pendingShares(toolId);
        assertEq(developer, 80e6, "a fee change moves no pending share");
        assertEq(platform, 20e6);
        credits.settle(address(usdc), ids(toolId));
        registry.settle(address(usdc), ids(toolId));
        assertEq(splitter.balanceOf(payout, address(usdc)), 160e6);
        assertEq(splitter.balanceOf(treasury, address(usdc)), 40e6);
    }

    /// @dev Peer bug: a minimum deposit assumed 18 decimals (USDC has 6).
    function test_Regression_SixDecimalAmountsWork() public {
        uint256 toolId = registerTool("micro", 1); // 0.000001 USDC per call
        depositCredits(1);
        vm.prank(user);
        credits.payWithCredits(toolId, 1);
        payForTool(toolId);
        // A fee that rounds to zero leaves the whole unit to the developer; nothing is lost.
        IToolRegistry.ToolStats memory stats = registry.getToolStats(toolId);
        assertEq(stats.pendingDeveloper, 1);
        assertEq(stats.pendingPlatform, 0);
        credits.settle(address(usdc), ids(toolId));
        registry.settle(address(usdc), ids(toolId));
        assertEq(splitter.balanceOf(payout, address(usdc)), 2);
        // A bonus minimum is stated in the token's own units.
        usdc.mint(admin, 1e6);
        vm.startPrank(admin);
        usdc.approve(address(credits), 1e6);
        credits.fundBonusPool(address(usdc), 1e6);
        credits.setBonusPolicy(address(usdc), 1000, 5e6); // 10% from 5 USDC
        vm.stopPrank();
        depositCredits(5e6);
        (, uint256 bonus) = credits.creditsOf(user, address(usdc));
        assertEq(bonus, 5e5);
    }

    /// @dev Peer bug: an emergency withdraw let the owner take escrowed user funds.
    function test_Regression_AdminCannotTakeUserFunds() public {
        uint256 toolId = registerTool("weather");
        depositCredits(10_000);
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
        payForTool(toolId);
        usdc.mint(admin, 1e6);
        vm.startPrank(admin);
        usdc.approve(address(credits), 1e6);
        credits.fundBonusPool(address(usdc), 1e6);

        // Every admin power at once: pause all, change fee and treasury, drain what is the admin's own.
        credits.pause();
        registry.pause();
        splitter.pause();
        registry.setPlatformFee(3000);
        splitter.setPlatformTreasury(admin);
        credits.defundBonusPool(address(usdc), 1e6, admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemBonusPoolShort.selector, 0, 1));
        credits.defundBonusPool(address(usdc), 1, admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemInsufficientPrincipal.selector, 0, 1));
        credits.withdraw(address(usdc), 1, admin);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterNothingToWithdraw.selector, admin, address(usdc))
        );
        splitter.withdraw(address(usdc), admin);
        vm.stopPrank();

        assertEq(usdc.balanceOf(admin), 1e6, "only the admin's own bonus funding came back");
        // The user's principal, the spent credits and the paid revenue are all still there, and still flow.
        vm.prank(user);
        credits.withdraw(address(usdc), 10_000 - PRICE, user);
        credits.settle(address(usdc), ids(toolId));
        vm.startPrank(admin);
        splitter.unpause();
        vm.stopPrank();
        registry.settle(address(usdc), ids(toolId));
        // Revenue already paid, directly or with credits, was split at the fee in force when it was paid.
        assertEq(splitter.balanceOf(payout, address(usdc)), 2000 + 2000);
    }
}
