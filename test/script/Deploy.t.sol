// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
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

    function _config(address token) internal view returns (Deploy.Config memory) {
        return Deploy.Config({admin: admin, arbiter: arbiter, refundWindow: 900, token: token});
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

    function test_ProxyIsInitializedAtDeployment() public {
        vm.chainId(31_337);
        Deploy.Deployment memory d = script.deploy(_config(address(0)), signer);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        X402Payment(d.x402Payment).initialize(signer, signer, 600, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        X402Payment(d.x402PaymentImplementation).initialize(signer, signer, 600, new address[](0));
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
    }
}
