// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {Fixture} from "../utils/Fixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

/// @notice initialize, roles, refund window, token allowlist and pausing.
contract X402PaymentAdminTest is Fixture {
    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    function _deployWith(address admin_, address arbiter_, uint64 window, address[] memory tokens)
        internal
        returns (X402Payment)
    {
        X402Payment impl = new X402Payment();
        return X402Payment(
            address(
                new ERC1967Proxy(
                    address(impl), abi.encodeCall(X402Payment.initialize, (admin_, arbiter_, window, tokens))
                )
            )
        );
    }

    /*//////////////////////////////////////////////////////////////
                               INITIALIZE
    //////////////////////////////////////////////////////////////*/

    function test_Initialize() public view {
        assertTrue(payment.hasRole(payment.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(payment.hasRole(payment.PAUSER_ROLE(), admin));
        assertTrue(payment.hasRole(payment.UPGRADER_ROLE(), admin));
        assertTrue(payment.hasRole(payment.ARBITER_ROLE(), arbiter));
        assertFalse(payment.hasRole(payment.ARBITER_ROLE(), admin));
        assertEq(payment.refundWindow(), WINDOW);
        assertTrue(payment.isTokenAllowed(address(usdc)));
        assertFalse(payment.paused());
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        payment.initialize(stranger, stranger, WINDOW, new address[](0));
    }

    function test_RevertWhen_ImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        implementation.initialize(stranger, stranger, WINDOW, new address[](0));
    }

    function test_RevertWhen_InitializeWithZeroAdmin() public {
        X402Payment impl = new X402Payment();
        vm.expectRevert(IX402Payment.X402PaymentZeroAddress.selector);
        new ERC1967Proxy(
            address(impl), abi.encodeCall(X402Payment.initialize, (address(0), arbiter, WINDOW, new address[](0)))
        );
    }

    function test_RevertWhen_InitializeWithZeroArbiter() public {
        X402Payment impl = new X402Payment();
        vm.expectRevert(IX402Payment.X402PaymentZeroAddress.selector);
        new ERC1967Proxy(
            address(impl), abi.encodeCall(X402Payment.initialize, (admin, address(0), WINDOW, new address[](0)))
        );
    }

    function test_RevertWhen_InitializeWithWindowOutOfBounds() public {
        X402Payment impl = new X402Payment();
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowOutOfBounds.selector, 59, 60, 30 days)
        );
        new ERC1967Proxy(address(impl), abi.encodeCall(X402Payment.initialize, (admin, arbiter, 59, new address[](0))));
    }

    function test_RevertWhen_InitializeWithTokenWithoutCode() public {
        address[] memory tokens = new address[](1);
        tokens[0] = makeAddr("eoa");
        X402Payment impl = new X402Payment();
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentTokenHasNoCode.selector, tokens[0]));
        new ERC1967Proxy(address(impl), abi.encodeCall(X402Payment.initialize, (admin, arbiter, WINDOW, tokens)));
    }

    /*//////////////////////////////////////////////////////////////
                             REFUND WINDOW
    //////////////////////////////////////////////////////////////*/

    function test_SetRefundWindow() public {
        vm.expectEmit(address(payment));
        emit IX402Payment.RefundWindowUpdated(WINDOW, 1 days);
        vm.prank(admin);
        payment.setRefundWindow(1 days);
        assertEq(payment.refundWindow(), 1 days);
        bytes32 id = createAndPay(keccak256("x"));
        assertEq(payment.getInvoice(id).refundDeadline, block.timestamp + 1 days);
    }

    function test_SetRefundWindow_Bounds() public {
        vm.startPrank(admin);
        payment.setRefundWindow(60);
        assertEq(payment.refundWindow(), 60);
        payment.setRefundWindow(30 days);
        assertEq(payment.refundWindow(), 30 days);
        vm.stopPrank();
    }

    function test_RevertWhen_RefundWindowTooShort() public {
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowOutOfBounds.selector, 59, 60, 30 days)
        );
        payment.setRefundWindow(59);
    }

    function test_RevertWhen_RefundWindowTooLong() public {
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowOutOfBounds.selector, 30 days + 1, 60, 30 days)
        );
        payment.setRefundWindow(30 days + 1);
    }

    function test_RevertWhen_SetRefundWindowCallerNotAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, bytes32(0)));
        payment.setRefundWindow(1 days);
    }

    /*//////////////////////////////////////////////////////////////
                            TOKEN ALLOWLIST
    //////////////////////////////////////////////////////////////*/

    function test_SetTokenAllowed() public {
        vm.expectEmit(address(payment));
        emit IX402Payment.TokenAllowanceUpdated(address(usdc), false);
        vm.prank(admin);
        payment.setTokenAllowed(address(usdc), false);
        assertFalse(payment.isTokenAllowed(address(usdc)));
        vm.prank(admin);
        payment.setTokenAllowed(address(usdc), true);
        assertTrue(payment.isTokenAllowed(address(usdc)));
    }

    function test_RevertWhen_AllowedTokenIsZero() public {
        vm.prank(admin);
        vm.expectRevert(IX402Payment.X402PaymentZeroAddress.selector);
        payment.setTokenAllowed(address(0), true);
    }

    function test_RevertWhen_AllowedTokenHasNoCode() public {
        address eoa = makeAddr("eoa");
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentTokenHasNoCode.selector, eoa));
        payment.setTokenAllowed(eoa, true);
    }

    function test_RevertWhen_SetTokenAllowedCallerNotAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, bytes32(0)));
        payment.setTokenAllowed(address(usdc), false);
    }

    /*//////////////////////////////////////////////////////////////
                                 PAUSE
    //////////////////////////////////////////////////////////////*/

    function test_PauseAndUnpause() public {
        vm.startPrank(admin);
        payment.pause();
        assertTrue(payment.paused());
        payment.unpause();
        assertFalse(payment.paused());
        vm.stopPrank();
        createInvoice(keccak256("after-unpause"));
    }

    function test_RevertWhen_PauseCallerNotPauser() public {
        bytes32 role = payment.PAUSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, role));
        payment.pause();
    }

    function test_RevertWhen_UnpauseCallerNotPauser() public {
        vm.prank(admin);
        payment.pause();
        bytes32 role = payment.PAUSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, role));
        payment.unpause();
    }

    function test_RevertWhen_PauseTwice() public {
        vm.startPrank(admin);
        payment.pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.pause();
        vm.stopPrank();
    }

    function test_RevertWhen_UnpauseWhileNotPaused() public {
        vm.prank(admin);
        vm.expectRevert(PausableUpgradeable.ExpectedPause.selector);
        payment.unpause();
    }

    /*//////////////////////////////////////////////////////////////
                          NO ADMIN TAKES FUNDS
    //////////////////////////////////////////////////////////////*/

    /// @dev Every role together cannot withdraw escrowed or released user funds: admin functions only touch
    /// configuration, and withdraw pays the caller's own balance.
    function test_WhenAdminHoldsEveryRole_UserFundsStayOut() public {
        bytes32 escrowed = createAndPay(keccak256("escrowed"));
        bytes32 released = createAndPay(keccak256("released"));
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = released;
        payment.release(ids);
        vm.startPrank(admin);
        payment.grantRole(payment.ARBITER_ROLE(), admin);
        payment.pause();
        payment.setTokenAllowed(address(usdc), false);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentNothingToWithdraw.selector, admin, address(usdc))
        );
        payment.withdraw(address(usdc), admin);
        vm.expectRevert(
            abi.encodeWithSelector(
                IX402Payment.X402PaymentInvalidStatus.selector, escrowed, IX402Payment.InvoiceStatus.Confirmed
            )
        );
        payment.resolveDispute(escrowed, 0);
        vm.stopPrank();
        assertEq(usdc.balanceOf(admin), 0);
        assertEq(usdc.balanceOf(address(payment)), 2 * AMOUNT);
    }
}
