// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {PaymentChannelV2, ReleaseNoteV2, SubscriptionV2} from "../mocks/UpgradesV2.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";

/// @notice UUPS upgrades of PaymentChannel and Subscription with live channels and subscriptions. Storage-layout
/// compatibility with each V2 is also checked statically by bin/validate-upgrades.
contract RecurringUpgradeTest is RecurringFixture {
    bytes32 internal channelId;
    uint256 internal subscriptionId;

    function setUp() public override {
        super.setUp();
        channelId = openChannel("live");
        claimAs(recipient, channelId, 30e6);
        subscriptionId = subscribe(terms(PRICE, PERIOD), 25e6);
        executeAs(keeper, subscriptionId);
    }

    function _upgrade(address proxy, address newImplementation) internal {
        vm.prank(admin);
        UUPSUpgradeable(proxy).upgradeToAndCall(newImplementation, abi.encodeCall(ReleaseNoteV2.initializeV2, ("v2")));
    }

    function _implementation(address proxy) internal view returns (address) {
        return address(uint160(uint256(vm.load(proxy, ERC1967Utils.IMPLEMENTATION_SLOT))));
    }

    function test_WhenUpgraded_StateSurvivesAndFlowsContinue() public {
        IPaymentChannel.Channel memory channelBefore = channels.getChannel(channelId);
        ISubscription.SubscriptionData memory subscriptionBefore = subscriptions.getSubscription(subscriptionId);
        uint256 recipientBalance = subscriptions.withdrawableBalance(recipient, address(usdc));

        PaymentChannelV2 channelsV2 = new PaymentChannelV2();
        SubscriptionV2 subscriptionsV2 = new SubscriptionV2();
        _upgrade(address(channels), address(channelsV2));
        _upgrade(address(subscriptions), address(subscriptionsV2));
        assertEq(_implementation(address(channels)), address(channelsV2));
        assertEq(_implementation(address(subscriptions)), address(subscriptionsV2));
        assertEq(PaymentChannelV2(address(channels)).releaseNote(), "v2");
        assertEq(SubscriptionV2(address(subscriptions)).releaseNote(), "v2");

        assertEq(abi.encode(channels.getChannel(channelId)), abi.encode(channelBefore));
        assertEq(abi.encode(subscriptions.getSubscription(subscriptionId)), abi.encode(subscriptionBefore));
        assertEq(subscriptions.withdrawableBalance(recipient, address(usdc)), recipientBalance);
        assertEq(subscriptions.liveCount(), 1);
        assertEq(subscriptions.keeperRewardBps(), 10);
        assertTrue(channels.isTokenAllowed(address(usdc)));

        // Vouchers signed before the upgrade stay valid: the EIP-712 domain is the proxy's.
        assertEq(claimAs(recipient, channelId, 50e6), 20e6);
        vm.warp(block.timestamp + PERIOD);
        assertEq(uint8(executeAs(keeper, subscriptionId)), uint8(ISubscription.ExecutionOutcome.Charged));
        assertEq(subscriptions.getSubscription(subscriptionId).count, 2);
    }

    function test_RevertWhen_UpgradeCallerNotUpgrader() public {
        address[2] memory proxies = [address(channels), address(subscriptions)];
        address[2] memory implementations = [address(new PaymentChannelV2()), address(new SubscriptionV2())];
        for (uint256 i; i < 2; ++i) {
            bytes32 role = keccak256("UPGRADER_ROLE");
            vm.prank(stranger);
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
            );
            UUPSUpgradeable(proxies[i]).upgradeToAndCall(implementations[i], "");
        }
    }

    function test_RevertWhen_ImplementationsInitialized() public {
        PaymentChannelV2 channelsV2 = new PaymentChannelV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        channelsV2.initialize(stranger, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        channelsV2.initializeV2("x");
        SubscriptionV2 subscriptionsV2 = new SubscriptionV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        subscriptionsV2.initialize(stranger, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        subscriptionsV2.initializeV2("x");
        address deployed = _implementation(address(subscriptions));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        SubscriptionV2(deployed).initialize(stranger, new address[](0));
    }

    function test_RevertWhen_V2ReinitializedTwice() public {
        _upgrade(address(channels), address(new PaymentChannelV2()));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        PaymentChannelV2(address(channels)).initializeV2("again");
    }
}
