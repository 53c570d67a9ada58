// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {SubscriptionFixture} from "../utils/SubscriptionFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

/// @notice Subscription unit tests: initialize, the keeper reward, the token allowlist and pausing.
contract SubscriptionAdminTest is SubscriptionFixture {
    function test_Initialize_GrantsRolesSetsDefaultRewardAndAllowlist() public view {
        assertTrue(subscriptions.hasRole(subscriptions.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(subscriptions.hasRole(subscriptions.PAUSER_ROLE(), admin));
        assertTrue(subscriptions.hasRole(subscriptions.UPGRADER_ROLE(), admin));
        assertEq(subscriptions.keeperRewardBps(), subscriptions.DEFAULT_KEEPER_REWARD_BPS());
        assertEq(subscriptions.keeperRewardBps(), 10);
        assertTrue(subscriptions.isTokenAllowed(address(usdc)));
        assertFalse(subscriptions.paused());
        assertEq(subscriptions.subscriptionCount(), 0);
        assertEq(subscriptions.liveCount(), 0);
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        subscriptions.initialize(stranger, new address[](0));
    }

    function test_RevertWhen_ImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        Subscription(deployment.subscriptionImplementation).initialize(stranger, new address[](0));
    }

    function test_RevertWhen_InitializedWithZeroAdmin() public {
        address implementation = address(new Subscription());
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        new ERC1967Proxy(implementation, abi.encodeCall(Subscription.initialize, (address(0), new address[](0))));
    }

    function test_RevertWhen_InitializedWithTokenWithoutCode() public {
        address implementation = address(new Subscription());
        address[] memory tokens = new address[](1);
        tokens[0] = stranger;
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionTokenHasNoCode.selector, stranger));
        new ERC1967Proxy(implementation, abi.encodeCall(Subscription.initialize, (admin, tokens)));
    }

    function test_SetKeeperRewardBps_UpToTheMaximum() public {
        vm.expectEmit(address(subscriptions));
        emit ISubscription.KeeperRewardUpdated(10, 100);
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(100);
        assertEq(subscriptions.keeperRewardBps(), 100);

        uint256 id = subscribe();
        executeAs(keeper, id);
        assertEq(usdc.balanceOf(keeper), PRICE / 100);
        assertEq(_credited(recipient), PRICE - PRICE / 100);
    }

    function test_RevertWhen_SetKeeperRewardBps_AboveMaximum() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionRewardTooHigh.selector, 101, 100));
        vm.prank(admin);
        subscriptions.setKeeperRewardBps(101);
        assertEq(subscriptions.keeperRewardBps(), 10);
    }

    function test_RevertWhen_SetKeeperRewardBps_CallerIsNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        vm.prank(stranger);
        subscriptions.setKeeperRewardBps(0);
    }

    function test_SetTokenAllowed_AddsAndRemoves() public {
        TestStablecoin other = new TestStablecoin("X", "X", "2", address(this));
        vm.expectEmit(address(subscriptions));
        emit ISubscription.TokenAllowanceUpdated(address(other), true);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(other), true);
        assertTrue(subscriptions.isTokenAllowed(address(other)));

        vm.expectEmit(address(subscriptions));
        emit ISubscription.TokenAllowanceUpdated(address(other), false);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(other), false);
        assertFalse(subscriptions.isTokenAllowed(address(other)));
    }

    function test_RevertWhen_SetTokenAllowed_ZeroAddress() public {
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(0), true);
        vm.expectRevert(ISubscription.SubscriptionZeroAddress.selector);
        vm.prank(admin);
        subscriptions.setTokenAllowed(address(0), false);
    }

    function test_RevertWhen_SetTokenAllowed_NoCode() public {
        vm.expectRevert(abi.encodeWithSelector(ISubscription.SubscriptionTokenHasNoCode.selector, stranger));
        vm.prank(admin);
        subscriptions.setTokenAllowed(stranger, true);
    }

    /// @dev Only adding needs code: removing a token that self-destructed or never existed must stay possible.
    function test_SetTokenAllowed_RemovingAnAddressWithoutCodeWorks() public {
        vm.prank(admin);
        subscriptions.setTokenAllowed(stranger, false);
        assertFalse(subscriptions.isTokenAllowed(stranger));
    }

    function test_RevertWhen_SetTokenAllowed_CallerIsNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        vm.prank(stranger);
        subscriptions.setTokenAllowed(address(usdc), false);
    }

    function test_PauseAndUnpause() public {
        vm.expectEmit(address(subscriptions));
        emit PausableUpgradeable.Paused(admin);
        vm.prank(admin);
        subscriptions.pause();
        assertTrue(subscriptions.paused());
        vm.expectEmit(address(subscriptions));
        emit PausableUpgradeable.Unpaused(admin);
        vm.prank(admin);
        subscriptions.unpause();
        assertFalse(subscriptions.paused());
    }

    function test_GivenPauserRole_AnotherAccountCanPause() public {
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.prank(admin);
        subscriptions.grantRole(role, stranger);
        vm.prank(stranger);
        subscriptions.pause();
        assertTrue(subscriptions.paused());
    }

    function test_RevertWhen_Pause_CallerIsNotPauser() public {
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, role));
        vm.prank(keeper);
        subscriptions.pause();
    }

    function test_RevertWhen_Unpause_CallerIsNotPauser() public {
        _pause();
        bytes32 role = subscriptions.PAUSER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, payer, role));
        vm.prank(payer);
        subscriptions.unpause();
    }

    function test_RevertWhen_Pause_AlreadyPaused() public {
        _pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        vm.prank(admin);
        subscriptions.pause();
    }

    function test_RevertWhen_Unpause_NotPaused() public {
        vm.expectRevert(PausableUpgradeable.ExpectedPause.selector);
        vm.prank(admin);
        subscriptions.unpause();
    }
}
