// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {SplitMath} from "../../contracts/libraries/SplitMath.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";

contract ToolsFuzzTest is ToolsFixture {
    function testFuzz_SplitFee_NeverCreatesOrLosesAUnit(uint256 amount, uint256 feeBps) public pure {
        amount = bound(amount, 0, type(uint256).max / 10_000);
        feeBps = bound(feeBps, 0, 10_000);
        (uint256 developerShare, uint256 fee) = SplitMath.splitFee(amount, feeBps);
        assertEq(developerShare + fee, amount);
        assertLe(fee * 10_000, amount * feeBps, "the fee is rounded down");
        assertLt(amount * feeBps - fee * 10_000, 10_000, "by less than one unit");
    }

    function testFuzz_SplitShares_NeverCreatesOrLosesAUnit(uint256 amount, uint256 seed, uint8 count) public pure {
        amount = bound(amount, 0, type(uint256).max / 10_000);
        uint256 n = bound(count, 1, 20);
        uint16[] memory shares = new uint16[](n);
        uint256 left = 10_000;
        for (uint256 i; i < n - 1; ++i) {
            // Leave at least one basis point for each later recipient.
            uint256 share = 1 + uint256(keccak256(abi.encode(seed, i))) % (left - (n - 1 - i));
            shares[i] = uint16(share);
            left -= share;
        }
        shares[n - 1] = uint16(left);
        uint256[] memory parts = SplitMath.splitShares(amount, shares);
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            sum += parts[i];
            uint256 exact = amount * shares[i] / 10_000;
            if (i == 0) assertLe(parts[i] - exact, n - 1, "dust is less than one unit per other recipient");
            else assertEq(parts[i], exact);
        }
        assertEq(sum, amount);
    }

    function testFuzz_PayForTool_ChargesExactlyAndSplitsExactly(uint96 price, uint16 feeBps, uint8 calls) public {
        price = uint96(bound(price, 1, 1000e6));
        feeBps = uint16(bound(feeBps, 0, 3000));
        uint256 n = bound(calls, 1, 10);
        vm.prank(admin);
        registry.setPlatformFee(feeBps);
        uint256 toolId = registerTool("fuzz", price);
        uint256 before = usdc.balanceOf(user);
        for (uint256 i; i < n; ++i) {
            payForTool(toolId);
        }
        assertEq(before - usdc.balanceOf(user), n * price);
        IToolRegistry.ToolStats memory stats = registry.getToolStats(toolId);
        assertEq(uint256(stats.pendingDeveloper) + stats.pendingPlatform, n * price);
        assertEq(stats.pendingPlatform, n * (uint256(price) * feeBps / 10_000));
        registry.settle(address(usdc), ids(toolId));
        assertEq(splitter.balanceOf(payout, address(usdc)) + splitter.balanceOf(treasury, address(usdc)), n * price);
        assertEq(usdc.balanceOf(address(splitter)), n * price);
        assertEq(usdc.balanceOf(address(registry)), 0);
    }

    function testFuzz_Credits_DepositSpendWithdrawConserve(uint128 deposit, uint96 price, uint8 spends, uint16 bonusBps)
        public
    {
        price = uint96(bound(price, 1, 100e6));
        deposit = uint128(bound(deposit, price, 1000e6));
        bonusBps = uint16(bound(bonusBps, 0, 5000));
        usdc.mint(admin, 1000e6);
        vm.startPrank(admin);
        usdc.approve(address(credits), type(uint256).max);
        credits.fundBonusPool(address(usdc), 1000e6);
        credits.setBonusPolicy(address(usdc), bonusBps, 0);
        vm.stopPrank();
        uint256 toolId = registerTool("fuzz", price);
        depositCredits(deposit);
        (uint256 principal, uint256 bonus) = credits.creditsOf(user, address(usdc));
        uint256 granted = bonus;
        // Capped at fee / (1 - fee) = 2000 / 8000 of the deposit.
        uint256 rate = bonusBps < 2500 ? bonusBps : 2500;
        assertEq(granted, uint256(deposit) * rate / 10_000);
        uint256 n = bound(spends, 0, (principal + bonus) / price);
        n = n > 20 ? 20 : n;
        for (uint256 i; i < n; ++i) {
            vm.prank(user);
            credits.payWithCredits(toolId, price);
        }
        (principal, bonus) = credits.creditsOf(user, address(usdc));
        // credits spent + credits held == deposited + bonus granted
        assertEq(n * price + principal + bonus, uint256(deposit) + granted);
        // Self-dealing check: what the developer side of the spends earns never exceeds the principal spent.
        uint256 principalSpent = uint256(deposit) - principal;
        assertLe(n * price * 8000 / 10_000, principalSpent + 1);
        if (principal > 0) {
            vm.prank(user);
            credits.withdraw(address(usdc), principal, user);
        }
        (principal, bonus) = credits.creditsOf(user, address(usdc));
        assertEq(bonus, 0, "withdrawing all principal hands all bonus back");
        (,, uint256 pendingCalls, uint256 pendingAmount) = credits.toolTerms(toolId);
        assertEq(pendingCalls, n);
        assertEq(pendingAmount, n * price);
        assertEq(usdc.balanceOf(address(credits)), credits.bonusPool(address(usdc)) + pendingAmount);
    }

    function testFuzz_ProcessBatchPayments_CreditsEveryUnit(uint256 seed, uint8 count) public {
        uint256 n = bound(count, 1, 30);
        address distributor = makeAddr("distributor");
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(admin);
        splitter.grantRole(role, distributor);
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 developerAmount = uint256(keccak256(abi.encode(seed, i))) % 1e12;
            uint256 platformAmount = uint256(keccak256(abi.encode(seed, i, 1))) % 1e11;
            address payee = address(uint160(1 + uint256(keccak256(abi.encode(seed, i, 2))) % 5));
            payments[i] = IRevenueSplitter.Payment(1000 + i, payee, developerAmount, platformAmount);
            total += developerAmount + platformAmount;
        }
        usdc.mint(distributor, total);
        vm.startPrank(distributor);
        usdc.approve(address(splitter), total);
        splitter.processBatchPayments(address(usdc), payments);
        vm.stopPrank();
        uint256 credited = splitter.balanceOf(treasury, address(usdc));
        for (uint160 p = 1; p <= 5; ++p) {
            credited += splitter.balanceOf(address(p), address(usdc));
        }
        assertEq(credited, total);
        assertEq(usdc.balanceOf(address(splitter)), total);
    }

    /// @dev Review finding (a bonus cash-out after a fee change): whatever the platform fee is before the deposit,
    /// during each of two rounds of spends and before settlement, principal + bonus spent on a tool of one's own
    /// never returns more than the principal.
    function testFuzz_BonusSpentOnOwnToolNeverReturnsMoreThanThePrincipal(
        uint16[4] memory fees,
        uint16 bonusBps,
        uint256 deposit,
        uint256 price,
        uint256 firstRound
    ) public {
        for (uint256 i; i < 4; ++i) {
            fees[i] = uint16(bound(fees[i], 0, 3000));
        }
        bonusBps = uint16(bound(bonusBps, 0, 5000));
        deposit = bound(deposit, 1, 500_000e6);
        // At most about 100 calls spend everything (principal + bonus <= 1.5 x deposit).
        price = bound(price, deposit / 64 + 1, deposit + 1);
        firstRound = bound(firstRound, 0, 64);
        fundBonus(10_000_000e6, bonusBps);
        vm.prank(user);
        uint256 own = registry.registerTool("own", address(usdc), uint96(price), user);
        uint256 before = usdc.balanceOf(user);

        setPlatformFee(fees[0]);
        vm.prank(user);
        credits.deposit(address(usdc), deposit);
        setPlatformFee(fees[1]);
        uint256 calls = spendCredits(own, price, firstRound);
        setPlatformFee(fees[2]);
        calls += spendCredits(own, price, 200);
        (uint256 principal,) = credits.creditsOf(user, address(usdc));
        if (principal != 0) {
            vm.prank(user);
            credits.withdraw(address(usdc), principal, user);
        }
        setPlatformFee(fees[3]);
        if (calls != 0) {
            credits.settle(address(usdc), ids(own));
            registry.settle(address(usdc), ids(own));
            vm.prank(user);
            splitter.withdraw(address(usdc), user);
        }
        assertLe(usdc.balanceOf(user), before, "never more than the principal back");
    }
}
