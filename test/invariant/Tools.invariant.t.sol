// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";
import {CreditSystemHandler} from "./handlers/CreditSystemHandler.sol";
import {RevenueSplitterHandler} from "./handlers/RevenueSplitterHandler.sol";
import {ToolRegistryHandler} from "./handlers/ToolRegistryHandler.sol";
import {ToolsActors} from "./handlers/ToolsActors.sol";
import {ToolsStore} from "./handlers/ToolsStore.sol";
import {console} from "forge-std/console.sol";

/// @notice ToolRegistry, CreditSystem and RevenueSplitter driven together by one handler each.
contract ToolsInvariantTest is ToolsFixture {
    ToolsStore internal store;
    ToolRegistryHandler internal registryHandler;
    CreditSystemHandler internal creditHandler;
    RevenueSplitterHandler internal splitterHandler;
    uint256 internal supply;

    function setUp() public override {
        super.setUp();
        store = new ToolsStore();
        ToolsActors.Deployed memory d = ToolsActors.Deployed(usdc, registry, credits, splitter, store, admin);
        registryHandler = new ToolRegistryHandler(d);
        creditHandler = new CreditSystemHandler(d);
        address distributor = makeAddr("distributor");
        splitterHandler = new RevenueSplitterHandler(d, distributor);
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(admin);
        splitter.grantRole(role, distributor);

        for (uint256 i; i < 3; ++i) {
            address account = registryHandler.user(i);
            usdc.mint(account, 10_000_000e6);
            vm.startPrank(account);
            usdc.approve(address(registry), type(uint256).max);
            usdc.approve(address(credits), type(uint256).max);
            vm.stopPrank();
        }
        usdc.mint(admin, 10_000_000e6);
        vm.prank(admin);
        usdc.approve(address(credits), type(uint256).max);
        usdc.mint(distributor, 10_000_000e6);
        vm.prank(distributor);
        usdc.approve(address(splitter), type(uint256).max);
        supply = usdc.totalSupply();

        targetContract(address(registryHandler));
        targetContract(address(creditHandler));
        targetContract(address(splitterHandler));
    }

    function _pendingInRegistry() internal view returns (uint256 pending, uint256 revenue) {
        for (uint256 i; i < store.toolCount(); ++i) {
            IToolRegistry.ToolStats memory stats = registry.getToolStats(store.toolIds(i));
            pending += uint256(stats.pendingDeveloper) + stats.pendingPlatform;
            revenue += stats.revenue;
        }
    }

    function _pendingInCredits() internal view returns (uint256 pending) {
        for (uint256 i; i < store.toolCount(); ++i) {
            (,,, uint256 amount) = credits.toolTerms(store.toolIds(i));
            pending += amount;
        }
    }

    function _creditsHeld() internal view returns (uint256 held) {
        for (uint256 i; i < 3; ++i) {
            (uint256 principal, uint256 bonus) = credits.creditsOf(registryHandler.user(i), address(usdc));
            held += principal + bonus;
        }
    }

    function _splitterBalances() internal view returns (uint256 total) {
        for (uint256 i; i < splitterHandler.accountCount(); ++i) {
            total += splitter.balanceOf(splitterHandler.account(i), address(usdc));
        }
    }

    /// @dev The registry holds exactly the pending revenue of its tools.
    function invariant_RegistryHoldsPendingRevenue() public view {
        (uint256 pending,) = _pendingInRegistry();
        assertEq(usdc.balanceOf(address(registry)), pending);
    }

    /// @dev The credit system holds exactly credits + bonus pool + spends awaiting settlement.
    function invariant_CreditSystemHoldsItsLiabilities() public view {
        assertEq(
            usdc.balanceOf(address(credits)), _creditsHeld() + credits.bonusPool(address(usdc)) + _pendingInCredits()
        );
    }

    /// @dev The splitter holds exactly the sum of its internal balances.
    function invariant_SplitterHoldsItsBalances() public view {
        assertEq(usdc.balanceOf(address(splitter)), _splitterBalances());
    }

    /// @dev credits spent + credits held + withdrawn == deposited + bonus granted (bonus forfeited on withdrawal
    /// counts as handed back).
    function invariant_CreditsAreConserved() public view {
        assertEq(
            store.creditsSpent() + _creditsHeld() + store.creditsWithdrawn() + store.bonusForfeited(),
            store.creditsDeposited() + store.bonusGranted()
        );
        assertEq(store.creditsSpent(), store.creditsSettled() + _pendingInCredits());
    }

    /// @dev platform + developer shares == payments: everything paid is in a tool's revenue, and every unit of
    /// revenue is either pending in the registry or was credited to a developer, split recipient or the platform.
    function invariant_SharesAddUpToPayments() public view {
        (uint256 pending, uint256 revenue) = _pendingInRegistry();
        assertEq(revenue, store.directPaid() + store.creditsSettled());
        assertEq(pending + store.registrySettled(), revenue);
        assertEq(_splitterBalances() + store.splitterWithdrawn(), store.registrySettled() + store.directBatches());
    }

    /// @dev Each payment's platform share is at most 30%, so pending platform revenue is too.
    function invariant_PlatformShareWithinMaximum() public view {
        for (uint256 i; i < store.toolCount(); ++i) {
            IToolRegistry.ToolStats memory stats = registry.getToolStats(store.toolIds(i));
            assertLe(
                uint256(stats.pendingPlatform) * 10_000,
                (uint256(stats.pendingDeveloper) + stats.pendingPlatform) * 3000
            );
        }
    }

    function invariant_NoTokensCreatedOrLost() public view {
        assertEq(usdc.totalSupply(), supply);
    }

    function afterInvariant() external view {
        console.log("tools", store.toolCount());
        console.log("direct payments", registryHandler.calls(ToolRegistryHandler.payForTool.selector));
        console.log("registry settlements", registryHandler.calls(ToolRegistryHandler.settle.selector));
        console.log("deposits", creditHandler.calls(CreditSystemHandler.deposit.selector));
        console.log("credit spends", creditHandler.calls(CreditSystemHandler.payWithCredits.selector));
        console.log("credit settlements", creditHandler.calls(CreditSystemHandler.settle.selector));
        console.log("splitter withdrawals", splitterHandler.calls(RevenueSplitterHandler.withdraw.selector));
        console.log("outside batches", splitterHandler.calls(RevenueSplitterHandler.outsideBatch.selector));
    }
}
