// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {CreditSystemV2, ReleaseNoteV2, RevenueSplitterV2, ToolRegistryV2} from "../mocks/UpgradesV2.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";

/// @notice UUPS upgrades of ToolRegistry, RevenueSplitter and CreditSystem with live state in every contract.
/// Storage-layout compatibility with each V2 is also checked statically by bin/validate-upgrades.
contract ToolsUpgradeTest is ToolsFixture {
    uint256 internal weather;
    uint256 internal search;
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");

    function setUp() public override {
        super.setUp();
        weather = registerTool("weather");
        search = registerTool("search", 10_000);
        address[] memory recipients = new address[](2);
        recipients[0] = alice;
        recipients[1] = bob;
        uint16[] memory shares = new uint16[](2);
        shares[0] = 6000;
        shares[1] = 4000;
        vm.prank(developer);
        splitter.setSplit(search, recipients, shares);

        payForTool(weather);
        payForTool(search);
        registry.settle(address(usdc), ids(search)); // alice and bob hold balances
        payForTool(search); // pending again in the registry
        depositCredits(100_000);
        vm.prank(user);
        credits.payWithCredits(weather, PRICE); // pending in the credit system
    }

    function _upgrade(address proxy, address newImplementation) internal {
        vm.prank(admin);
        UUPSUpgradeable(proxy).upgradeToAndCall(newImplementation, abi.encodeCall(ReleaseNoteV2.initializeV2, ("v2")));
    }

    function _implementation(address proxy) internal view returns (address) {
        return address(uint160(uint256(vm.load(proxy, ERC1967Utils.IMPLEMENTATION_SLOT))));
    }

    function test_WhenAllUpgraded_StateSurvivesAndFlowsContinue() public {
        IToolRegistry.Tool memory toolBefore = registry.getTool(search);
        IToolRegistry.ToolStats memory statsBefore = registry.getToolStats(search);
        (uint256 principalBefore,) = credits.creditsOf(user, address(usdc));

        ToolRegistryV2 registryV2 = new ToolRegistryV2();
        RevenueSplitterV2 splitterV2 = new RevenueSplitterV2();
        CreditSystemV2 creditsV2 = new CreditSystemV2();
        _upgrade(address(registry), address(registryV2));
        _upgrade(address(splitter), address(splitterV2));
        _upgrade(address(credits), address(creditsV2));
        assertEq(_implementation(address(registry)), address(registryV2));
        assertEq(ToolRegistryV2(address(registry)).releaseNote(), "v2");
        assertEq(RevenueSplitterV2(address(splitter)).releaseNote(), "v2");
        assertEq(CreditSystemV2(address(credits)).releaseNote(), "v2");

        assertEq(abi.encode(registry.getTool(search)), abi.encode(toolBefore));
        assertEq(abi.encode(registry.getToolStats(search)), abi.encode(statsBefore));
        assertEq(registry.toolIdOf("weather"), weather);
        assertEq(registry.platformFeeBps(), FEE_BPS);
        assertEq(registry.creditSystem(), address(credits));
        assertEq(splitter.balanceOf(alice, address(usdc)), 4800);
        assertEq(splitter.balanceOf(bob, address(usdc)), 3200);
        (address[] memory recipients,) = splitter.getSplit(search);
        assertEq(recipients.length, 2);
        (uint256 principal,) = credits.creditsOf(user, address(usdc));
        assertEq(principal, principalBefore);
        (,, uint256 pendingCalls, uint256 pendingAmount) = credits.toolTerms(weather);
        assertEq(pendingCalls, 1);
        assertEq(pendingAmount, PRICE);

        // Everything keeps working across the upgraded contracts.
        credits.settle(address(usdc), ids(weather));
        registry.settle(address(usdc), ids(weather, search));
        vm.prank(alice);
        splitter.withdraw(address(usdc), alice);
        assertEq(usdc.balanceOf(alice), 9600);
        vm.prank(user);
        credits.payWithCredits(weather, PRICE);
        payForTool(weather);
        // 2 direct payments + 1 settled credit spend; the newest credit spend is pending in the credit system.
        assertEq(registry.getToolStats(weather).calls, 3);
        (,, pendingCalls,) = credits.toolTerms(weather);
        assertEq(pendingCalls, 1);
    }

    function test_RevertWhen_UpgradeCallerNotUpgrader() public {
        address[3] memory proxies = [address(registry), address(splitter), address(credits)];
        address[3] memory implementations =
            [address(new ToolRegistryV2()), address(new RevenueSplitterV2()), address(new CreditSystemV2())];
        for (uint256 i; i < 3; ++i) {
            bytes32 role = keccak256("UPGRADER_ROLE");
            vm.prank(developer);
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, developer, role)
            );
            UUPSUpgradeable(proxies[i]).upgradeToAndCall(implementations[i], "");
        }
    }

    function test_RevertWhen_V2ImplementationsInitialized() public {
        ToolRegistryV2 registryV2 = new ToolRegistryV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registryV2.initializeV2("x");
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registryV2.initialize(stranger, stranger, 0, new address[](0));
        CreditSystemV2 creditsV2 = new CreditSystemV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        creditsV2.initialize(stranger, stranger);
        RevenueSplitterV2 splitterV2 = new RevenueSplitterV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        splitterV2.initialize(stranger, stranger);
    }

    function test_RevertWhen_ReinitializerRunsTwice() public {
        _upgrade(address(registry), address(new ToolRegistryV2()));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        ToolRegistryV2(address(registry)).initializeV2("again");
    }

    function test_RevertWhen_UpgradeToNonUupsContract() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ERC1967Utils.ERC1967InvalidImplementation.selector, address(usdc)));
        UUPSUpgradeable(address(credits)).upgradeToAndCall(address(usdc), "");
    }

    function test_StorageLivesInNamespacedSlots() public view {
        assertEq(
            keccak256(abi.encode(uint256(keccak256("x402.storage.ToolRegistry")) - 1)) & ~bytes32(uint256(0xff)),
            0xbb6080dda007374859edb02ed45cdc3b99ef9e5a468e79db6bb0ca1888130100
        );
        assertEq(
            keccak256(abi.encode(uint256(keccak256("x402.storage.RevenueSplitter")) - 1)) & ~bytes32(uint256(0xff)),
            0x64a0788ae14136c1dcec3c8c87957b65ce7fb81d32ec64edb624eac1fe28a100
        );
        assertEq(
            keccak256(abi.encode(uint256(keccak256("x402.storage.CreditSystem")) - 1)) & ~bytes32(uint256(0xff)),
            0x6be724ddb9c1211f2b014520d6463d08952f8f8cbfbbefd56d2f5b8edfab3c00
        );
        // The registry's first slot is its config: splitter address, fee and pause flag.
        bytes32 config = vm.load(address(registry), 0xbb6080dda007374859edb02ed45cdc3b99ef9e5a468e79db6bb0ca1888130100);
        assertEq(address(uint160(uint256(config))), address(splitter));
        assertEq(uint16(uint256(config) >> 160), FEE_BPS);
        for (uint256 i; i < 8; ++i) {
            assertEq(vm.load(address(registry), bytes32(i)), bytes32(0));
            assertEq(vm.load(address(splitter), bytes32(i)), bytes32(0));
            assertEq(vm.load(address(credits), bytes32(i)), bytes32(0));
        }
    }
}
