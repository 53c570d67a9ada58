// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {Subscription} from "../../contracts/Subscription.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {X402Payment} from "../../contracts/X402Payment.sol";
import {Deploy} from "../../script/Deploy.s.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {Test} from "forge-std/Test.sol";

/// @dev Outside a broadcast the script contract itself sends the deployment calls, so it plays the signer.
contract DeployScriptTest is Test {
    Deploy internal script = new Deploy();
    address internal signer = address(script);
    address internal admin = makeAddr("admin");
    address internal arbiter = makeAddr("arbiter");
    address internal treasury = makeAddr("treasury");

    function _config(address token) internal view returns (Deploy.Config memory) {
        return Deploy.Config({
            admin: admin, arbiter: arbiter, refundWindow: 900, token: token, treasury: treasury, platformFeeBps: 1500
        });
    }

    function test_WhenNoTokenGivenOnLocalChain_DeploysAndFundsTestToken() public {
        vm.chainId(31_337);
        Deploy.Deployment memory d = script.deploy(_config(address(0)), signer);
        assertTrue(d.testToken);
        TestStablecoin token = TestStablecoin(d.token);
        assertEq(token.decimals(), 6);
        // anvil's first dev account
        assertEq(token.balanceOf(0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266), 1_000_000e6);

        X402Payment payment = X402Payment(d.x402Payment);
        assertTrue(payment.isTokenAllowed(d.token));
        assertEq(payment.refundWindow(), 900);
        assertTrue(payment.hasRole(payment.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(payment.hasRole(payment.UPGRADER_ROLE(), admin));
        assertTrue(payment.hasRole(payment.ARBITER_ROLE(), arbiter));
        assertFalse(payment.hasRole(payment.DEFAULT_ADMIN_ROLE(), address(script)));
        address implementation = address(uint160(uint256(vm.load(d.x402Payment, ERC1967Utils.IMPLEMENTATION_SLOT))));
        assertEq(implementation, d.x402PaymentImplementation);
    }

    function test_ToolContractsAreWiredAndHandedToAdmin() public {
        TestStablecoin usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        Deploy.Deployment memory d = script.deploy(_config(address(usdc)), signer);
        RevenueSplitter splitter = RevenueSplitter(d.revenueSplitter);
        ToolRegistry registry = ToolRegistry(d.toolRegistry);
        CreditSystem credits = CreditSystem(d.creditSystem);

        assertEq(registry.splitter(), d.revenueSplitter);
        assertEq(registry.creditSystem(), d.creditSystem);
        assertEq(registry.platformFeeBps(), 1500);
        assertTrue(registry.isTokenAllowed(address(usdc)));
        assertEq(splitter.registry(), d.toolRegistry);
        assertEq(splitter.platformTreasury(), treasury);
        assertTrue(splitter.hasRole(splitter.DISTRIBUTOR_ROLE(), d.toolRegistry));
        assertEq(credits.registry(), d.toolRegistry);

        bytes32[4] memory registryRoles = [
            registry.DEFAULT_ADMIN_ROLE(), registry.PAUSER_ROLE(), registry.FEE_MANAGER_ROLE(), registry.UPGRADER_ROLE()
        ];
        for (uint256 i; i < 4; ++i) {
            assertTrue(registry.hasRole(registryRoles[i], admin));
            assertFalse(registry.hasRole(registryRoles[i], signer), "signer renounced registry role");
        }
        bytes32[3] memory splitterRoles =
            [splitter.DEFAULT_ADMIN_ROLE(), splitter.PAUSER_ROLE(), splitter.UPGRADER_ROLE()];
        for (uint256 i; i < 3; ++i) {
            assertTrue(splitter.hasRole(splitterRoles[i], admin));
            assertFalse(splitter.hasRole(splitterRoles[i], signer), "signer renounced splitter role");
        }
        assertTrue(credits.hasRole(credits.DEFAULT_ADMIN_ROLE(), admin));
        assertFalse(credits.hasRole(credits.DEFAULT_ADMIN_ROLE(), signer));
    }

    function test_WhenSignerIsAdmin_SignerKeepsItsRoles() public {
        TestStablecoin usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        Deploy.Config memory config = _config(address(usdc));
        config.admin = signer;
        Deploy.Deployment memory d = script.deploy(config, signer);
        assertTrue(ToolRegistry(d.toolRegistry).hasRole(bytes32(0), signer));
        assertTrue(RevenueSplitter(d.revenueSplitter).hasRole(bytes32(0), signer));
    }

    function test_ProxyIsInitializedAtDeployment() public {
        vm.chainId(31_337);
        Deploy.Deployment memory d = script.deploy(_config(address(0)), signer);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        X402Payment(d.x402Payment).initialize(signer, signer, 600, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        X402Payment(d.x402PaymentImplementation).initialize(signer, signer, 600, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        ToolRegistry(d.toolRegistry).initialize(signer, signer, 0, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        RevenueSplitter(d.revenueSplitter).initialize(signer, signer);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        CreditSystem(d.creditSystem).initialize(signer, signer);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        PaymentChannel(d.paymentChannel).initialize(signer, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        Subscription(d.subscription).initialize(signer, new address[](0));
    }

    function test_ChannelAndSubscriptionDeployedForAdminWithToken() public {
        TestStablecoin usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        Deploy.Deployment memory d = script.deploy(_config(address(usdc)), signer);
        PaymentChannel channels = PaymentChannel(d.paymentChannel);
        Subscription subscriptions = Subscription(d.subscription);
        assertTrue(channels.isTokenAllowed(address(usdc)));
        assertTrue(subscriptions.isTokenAllowed(address(usdc)));
        assertEq(subscriptions.keeperRewardBps(), subscriptions.DEFAULT_KEEPER_REWARD_BPS());
        bytes32[3] memory roles = [bytes32(0), keccak256("PAUSER_ROLE"), keccak256("UPGRADER_ROLE")];
        for (uint256 i; i < 3; ++i) {
            assertTrue(channels.hasRole(roles[i], admin));
            assertFalse(channels.hasRole(roles[i], signer));
            assertTrue(subscriptions.hasRole(roles[i], admin));
            assertFalse(subscriptions.hasRole(roles[i], signer));
        }
        assertEq(
            address(uint160(uint256(vm.load(d.paymentChannel, ERC1967Utils.IMPLEMENTATION_SLOT)))),
            d.paymentChannelImplementation
        );
        assertEq(
            address(uint160(uint256(vm.load(d.subscription, ERC1967Utils.IMPLEMENTATION_SLOT)))),
            d.subscriptionImplementation
        );
    }

    function test_WhenTokenGiven_UsesIt() public {
        TestStablecoin usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        vm.chainId(84_532);
        Deploy.Deployment memory d = script.deploy(_config(address(usdc)), signer);
        assertEq(d.token, address(usdc));
        assertFalse(d.testToken);
        assertTrue(X402Payment(d.x402Payment).isTokenAllowed(address(usdc)));
    }

    function test_RevertWhen_NoTokenGivenOffLocalChain() public {
        vm.chainId(8453);
        vm.expectRevert(abi.encodeWithSelector(Deploy.DeployTestTokenOnlyOnLocalChain.selector, 8453));
        script.deploy(_config(address(0)), signer);
    }

    function test_ConfigFromEnvDefaultsToSigner() public view {
        Deploy.Config memory config = script.configFromEnv(signer);
        assertEq(config.admin, vm.envOr("X402_ADMIN", signer));
        assertEq(config.arbiter, vm.envOr("X402_ARBITER", config.admin));
        assertEq(config.refundWindow, vm.envOr("X402_REFUND_WINDOW", uint256(600)));
        assertEq(config.treasury, vm.envOr("X402_TREASURY", config.admin));
        assertEq(config.platformFeeBps, vm.envOr("X402_PLATFORM_FEE_BPS", uint256(2000)));
    }
}
