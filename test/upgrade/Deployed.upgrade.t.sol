// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";
import {Test} from "forge-std/Test.sol";

/// @notice Upgrades from the implementations deployed today (release fa118ec, whose creation code is kept in
/// test/upgrade/deployed/) to the current ToolRegistry, CreditSystem and Subscription, with live state made by the
/// old code: credit spends pending under the old split rule, a past-due subscription of an unfunded subscriber.
/// crates/cli/tests/upgrade.rs runs the same upgrade through `x402 upgrade` on a chain the old binary deployed.
contract DeployedUpgradeTest is Test {
    uint96 internal constant PRICE = 1e6;

    TestStablecoin internal usdc;
    RevenueSplitter internal splitter;
    ToolRegistry internal registry;
    CreditSystem internal credits;
    Subscription internal subscriptions;
    uint256 internal toolId;
    uint256 internal unfunded;

    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal developer = makeAddr("developer");
    address internal user = makeAddr("user");
    address internal recipient = makeAddr("recipient");
    address internal broke = makeAddr("broke");

    function _proxy(address implementation, bytes memory init) internal returns (address) {
        return address(new ERC1967Proxy(implementation, init));
    }

    /// @dev The stack as script/Deploy.s.sol wired it at fa118ec, with RevenueSplitter (unchanged since) as is.
    function setUp() public {
        vm.warp(1_700_000_000);
        usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        address[] memory tokens = new address[](1);
        tokens[0] = address(usdc);
        splitter = RevenueSplitter(
            _proxy(address(new RevenueSplitter()), abi.encodeCall(RevenueSplitter.initialize, (admin, treasury)))
        );
        registry = ToolRegistry(
            _proxy(
                deployCode("test/upgrade/deployed/ToolRegistry.json"),
                abi.encodeCall(ToolRegistry.initialize, (admin, address(splitter), 2000, tokens))
            )
        );
        credits = CreditSystem(
            _proxy(
                deployCode("test/upgrade/deployed/CreditSystem.json"),
                abi.encodeCall(CreditSystem.initialize, (admin, address(registry)))
            )
        );
        subscriptions = Subscription(
            _proxy(
                deployCode("test/upgrade/deployed/Subscription.json"),
                abi.encodeCall(Subscription.initialize, (admin, tokens))
            )
        );
        vm.startPrank(admin);
        splitter.setRegistry(address(registry));
        splitter.grantRole(splitter.DISTRIBUTOR_ROLE(), address(registry));
        registry.setCreditSystem(address(credits));
        vm.stopPrank();

        // Live state, made by the old code: three credit calls pending unsplit, two direct calls split.
        vm.prank(developer);
        toolId = registry.registerTool("weather", address(usdc), PRICE, developer);
        usdc.mint(user, 1000e6);
        vm.startPrank(user);
        usdc.approve(address(credits), type(uint256).max);
        usdc.approve(address(registry), type(uint256).max);
        credits.deposit(address(usdc), 100e6);
        for (uint256 i; i < 3; ++i) {
            credits.payWithCredits(toolId, PRICE);
        }
        registry.payForTool(toolId, PRICE);
        vm.stopPrank();
        // A subscriber without funds, charged once and past due.
        ISubscription.Terms memory terms = ISubscription.Terms({
            recipient: recipient,
            token: address(usdc),
            amount: 10e6,
            period: 1 hours,
            startTime: 0,
            endsAt: 0,
            maxCount: 0
        });
        vm.prank(broke);
        unfunded = subscriptions.createSubscription(terms, 0);
        subscriptions.execute(unfunded);
    }

    function _upgrade(address proxy, address implementation) internal {
        vm.prank(admin);
        UUPSUpgradeable(proxy).upgradeToAndCall(implementation, "");
    }

    function test_UpgradeFromDeployed_KeepsStateAndAppliesTheFixes() public {
        // The order `x402 upgrade` enforces: the registry first, since the new CreditSystem settles through it.
        _upgrade(address(registry), address(new ToolRegistry()));
        _upgrade(address(credits), address(new CreditSystem()));
        _upgrade(address(subscriptions), address(new Subscription()));

        (address token, uint96 price, uint256 calls, uint256 pending) = credits.toolTerms(toolId);
        assertEq(token, address(usdc));
        assertEq(price, PRICE);
        assertEq(calls, 3, "the old code's pending spends survive");
        assertEq(pending, 3 * PRICE);
        (uint256 principal,) = credits.creditsOf(user, address(usdc));
        assertEq(principal, 97e6);
        // No initializer was needed: the fee copy is read from the registry on first use.
        assertEq(credits.platformFeeBps(), 2000);

        // A new spend is split now; the old code's three are split at the fee in force when they are settled.
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
        vm.prank(admin);
        registry.setPlatformFee(1000);
        (uint256 developerShare, uint256 platformShare) = credits.pendingShares(toolId);
        assertEq(developerShare, 3 * 0.9e6 + 0.8e6);
        assertEq(platformShare, 3 * 0.1e6 + 0.2e6);
        credits.settle(address(usdc), _one(toolId));
        IToolRegistry.ToolStats memory stats = registry.getToolStats(toolId);
        assertEq(stats.calls, 5);
        assertEq(stats.pendingDeveloper, 3.5e6 + 0.8e6, "direct 0.8 + credits 3.5");
        assertEq(stats.pendingPlatform, 0.5e6 + 0.2e6);
        registry.settle(address(usdc), _one(toolId));
        assertEq(splitter.balanceOf(developer, address(usdc)), 4.3e6);
        assertEq(usdc.balanceOf(address(credits)), 96e6, "only the user's principal is left");

        // The past-due subscription of an unfunded subscriber stays off the due list.
        vm.prank(broke);
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionUnfunded.selector, unfunded, 10e6));
        subscriptions.reactivate(unfunded);
        (uint256[] memory due,) = subscriptions.dueSubscriptions(0, 10);
        assertEq(due.length, 0);
    }

    /// @dev Between the two upgrades nothing moves wrongly: the new registry refuses the old CreditSystem's
    /// settlement call and a fee change (both revert until the CreditSystem is upgraded too).
    function test_UpgradeFromDeployed_RegistryAloneHoldsCreditSettlementBack() public {
        _upgrade(address(registry), address(new ToolRegistry()));
        vm.expectRevert();
        credits.settle(address(usdc), _one(toolId));
        vm.prank(admin);
        vm.expectRevert();
        registry.setPlatformFee(1000);
        _upgrade(address(credits), address(new CreditSystem()));
        credits.settle(address(usdc), _one(toolId));
        assertEq(registry.getToolStats(toolId).pendingDeveloper, 0.8e6 + 2.4e6);
    }

    function _one(uint256 id) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = id;
    }
}
