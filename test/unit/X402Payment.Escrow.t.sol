// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {BlacklistableStablecoin} from "../mocks/BlacklistableStablecoin.sol";
import {ReentrantToken} from "../mocks/ReentrantToken.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @notice What happens to escrowed funds: refund, dispute, resolution, release and withdrawal.
contract X402PaymentEscrowTest is Fixture {
    bytes32 internal constant SALT = keccak256("order-1");

    function _invalidStatus(bytes32 id, IX402Payment.InvoiceStatus status) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IX402Payment.X402PaymentInvalidStatus.selector, id, status);
    }

    function _release(bytes32 id) internal {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        payment.release(ids);
    }

    function _dispute(bytes32 id) internal {
        vm.prank(payer);
        payment.dispute(id);
    }

    /*//////////////////////////////////////////////////////////////
                                 REFUND
    //////////////////////////////////////////////////////////////*/

    function test_Refund() public {
        bytes32 id = createAndPay(SALT);
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoiceRefunded(id, payer, AMOUNT, false);
        vm.prank(payee);
        payment.refund(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Refunded));
        assertEq(usdc.balanceOf(payer), payerBefore + AMOUNT);
        assertEq(usdc.balanceOf(address(payment)), 0);
    }

    function test_WhenRefundWindowAboutToClose_RefundSucceeds() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW - 1);
        vm.prank(payee);
        payment.refund(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Refunded));
    }

    function test_WhenPaused_RefundSucceeds() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(admin);
        payment.pause();
        vm.prank(payee);
        payment.refund(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Refunded));
    }

    function test_WhenPayerBlacklisted_RefundIsCreditedAndWithdrawableElsewhere() public {
        BlacklistableStablecoin token = new BlacklistableStablecoin(address(this));
        X402Payment p = deployPayment(address(token));
        token.mint(payer, AMOUNT);
        vm.prank(payee);
        bytes32 id = p.createInvoice(SALT, address(token), AMOUNT, uint64(block.timestamp + 1 hours));
        vm.startPrank(payer);
        token.approve(address(p), AMOUNT);
        p.pay(id);
        vm.stopPrank();
        token.setBlacklisted(payer, true);

        vm.expectEmit(address(p));
        emit IX402Payment.InvoiceRefunded(id, payer, AMOUNT, true);
        vm.prank(payee);
        p.refund(id);
        assertEq(p.withdrawableBalance(payer, address(token)), AMOUNT);

        address fresh = makeAddr("fresh");
        vm.prank(payer);
        p.withdraw(address(token), fresh);
        assertEq(token.balanceOf(fresh), AMOUNT);
    }

    /// @dev A payee cannot starve the refund transfer of gas to force a credit instead of a payment.
    function test_WhenRefundGasIsShort_RefundRevertsOrPays() public {
        bytes32 id = createAndPay(SALT);
        uint256 payerBefore = usdc.balanceOf(payer);
        uint256 paid;
        for (uint256 gasLimit = 20_000; gasLimit < 120_000; gasLimit += 250) {
            vm.prank(payee);
            try payment.refund{gas: gasLimit}(id) {
                paid = gasLimit;
                break;
            } catch {}
        }
        assertGt(paid, 0, "some gas limit lets the refund through");
        assertEq(usdc.balanceOf(payer), payerBefore + AMOUNT, "paid, not credited");
        assertEq(payment.withdrawableBalance(payer, address(usdc)), 0);
    }

    function test_RevertWhen_RefundCallerNotPayee() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentUnauthorizedCaller.selector, id, payer));
        payment.refund(id);
    }

    function test_RevertWhen_RefundAfterWindow() public {
        bytes32 id = createAndPay(SALT);
        uint64 deadline = uint64(block.timestamp + WINDOW);
        vm.warp(deadline);
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowClosed.selector, id, deadline));
        payment.refund(id);
    }

    function test_RevertWhen_RefundPendingInvoice() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(payee);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Pending));
        payment.refund(id);
    }

    function test_RevertWhen_RefundExpiredInvoice() public {
        bytes32 id = createInvoice(SALT, AMOUNT, uint64(block.timestamp + 1));
        vm.warp(block.timestamp + 1);
        vm.prank(payee);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Expired));
        payment.refund(id);
    }

    function test_RevertWhen_RefundTwice() public {
        bytes32 id = createAndPay(SALT);
        vm.startPrank(payee);
        payment.refund(id);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Refunded));
        payment.refund(id);
        vm.stopPrank();
    }

    function test_RevertWhen_RefundReleasedInvoice() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW);
        _release(id);
        vm.prank(payee);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Released));
        payment.refund(id);
    }

    function test_RevertWhen_RefundUnknownInvoice() public {
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceNotFound.selector, bytes32(0)));
        payment.refund(bytes32(0));
    }

    /*//////////////////////////////////////////////////////////////
                                DISPUTE
    //////////////////////////////////////////////////////////////*/

    function test_Dispute() public {
        bytes32 id = createAndPay(SALT);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoiceDisputed(id, payer);
        _dispute(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Disputed));
    }

    function test_WhenDisputed_FundsStayFrozenAfterWindow() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.warp(block.timestamp + WINDOW * 10);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Disputed));
        payment.release(ids);
        assertEq(usdc.balanceOf(address(payment)), AMOUNT);
    }

    function test_WhenDisputed_PayeeCanConcedeWithRefund() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.warp(block.timestamp + WINDOW * 10);
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.prank(payee);
        payment.refund(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Refunded));
        assertEq(usdc.balanceOf(payer), payerBefore + AMOUNT);
    }

    function test_WhenPaused_DisputeSucceeds() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(admin);
        payment.pause();
        _dispute(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Disputed));
    }

    function test_RevertWhen_DisputeCallerNotPayer() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentUnauthorizedCaller.selector, id, payee));
        payment.dispute(id);
    }

    function test_RevertWhen_DisputeAfterWindow() public {
        bytes32 id = createAndPay(SALT);
        uint64 deadline = uint64(block.timestamp + WINDOW);
        vm.warp(deadline);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowClosed.selector, id, deadline));
        payment.dispute(id);
    }

    function test_RevertWhen_DisputeTwice() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(payer);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Disputed));
        payment.dispute(id);
    }

    function test_RevertWhen_DisputeRefundedInvoice() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(payee);
        payment.refund(id);
        vm.prank(payer);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Refunded));
        payment.dispute(id);
    }

    function test_RevertWhen_DisputeUnpaidInvoice() public {
        bytes32 id = createInvoice(SALT);
        // Nobody has paid, so nobody is the payer yet.
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentUnauthorizedCaller.selector, id, payer));
        payment.dispute(id);
    }

    function test_RevertWhen_DisputeUnknownInvoice() public {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceNotFound.selector, bytes32(0)));
        payment.dispute(bytes32(0));
    }

    /*//////////////////////////////////////////////////////////////
                            RESOLVE DISPUTE
    //////////////////////////////////////////////////////////////*/

    function test_ResolveDispute_Split() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        uint96 payerShare = AMOUNT / 4;
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.expectEmit(address(payment));
        emit IX402Payment.DisputeResolved(id, arbiter, payerShare, AMOUNT - payerShare, false);
        vm.prank(arbiter);
        payment.resolveDispute(id, payerShare);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Resolved));
        assertEq(usdc.balanceOf(payer), payerBefore + payerShare);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), AMOUNT - payerShare);
        assertEq(usdc.balanceOf(address(payment)), AMOUNT - payerShare);
    }

    function test_ResolveDispute_AllToPayee() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(arbiter);
        payment.resolveDispute(id, 0);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), AMOUNT);
    }

    function test_ResolveDispute_AllToPayer() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(arbiter);
        payment.resolveDispute(id, AMOUNT);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), 0);
        assertEq(usdc.balanceOf(address(payment)), 0);
    }

    function test_WhenPaused_ResolveDisputeSucceeds() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(admin);
        payment.pause();
        vm.prank(arbiter);
        payment.resolveDispute(id, 1);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Resolved));
    }

    function test_RevertWhen_ResolveCallerNotArbiter() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        bytes32 role = payment.ARBITER_ROLE();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, role));
        payment.resolveDispute(id, 0);
    }

    function test_RevertWhen_ArbiterIsPayee() public {
        bytes32 role = payment.ARBITER_ROLE();
        vm.prank(admin);
        payment.grantRole(role, payee);
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentUnauthorizedCaller.selector, id, payee));
        payment.resolveDispute(id, 0);
    }

    function test_RevertWhen_PayerShareExceedsAmount() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.prank(arbiter);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentPayerAmountTooLarge.selector, AMOUNT + 1, AMOUNT)
        );
        payment.resolveDispute(id, AMOUNT + 1);
    }

    function test_RevertWhen_ResolveUndisputedInvoice() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(arbiter);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Confirmed));
        payment.resolveDispute(id, 0);
    }

    function test_RevertWhen_ResolveTwice() public {
        bytes32 id = createAndPay(SALT);
        _dispute(id);
        vm.startPrank(arbiter);
        payment.resolveDispute(id, 0);
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Resolved));
        payment.resolveDispute(id, 0);
        vm.stopPrank();
    }

    function test_RevertWhen_ResolveUnknownInvoice() public {
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceNotFound.selector, bytes32(0)));
        payment.resolveDispute(bytes32(0), 0);
    }

    /*//////////////////////////////////////////////////////////////
                                RELEASE
    //////////////////////////////////////////////////////////////*/

    function test_Release() public {
        bytes32 a = createAndPay(SALT);
        bytes32 b = createAndPay(keccak256("order-2"));
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = a;
        ids[1] = b;
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoiceReleased(a, payee, AMOUNT);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoiceReleased(b, payee, AMOUNT);
        vm.prank(stranger); // anyone, e.g. a keeper
        payment.release(ids);
        assertEq(uint8(statusOf(a)), uint8(IX402Payment.InvoiceStatus.Released));
        assertEq(payment.withdrawableBalance(payee, address(usdc)), 2 * AMOUNT);
    }

    function test_WhenPaused_ReleaseSucceeds() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW);
        vm.prank(admin);
        payment.pause();
        _release(id);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), AMOUNT);
    }

    function test_WhenWindowChangesAfterPayment_DeadlineIsKept() public {
        bytes32 id = createAndPay(SALT);
        uint64 longest = payment.MAX_REFUND_WINDOW();
        vm.prank(admin);
        payment.setRefundWindow(longest);
        vm.warp(block.timestamp + WINDOW);
        _release(id);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Released));
    }

    function test_RevertWhen_ReleaseInsideWindow() public {
        bytes32 id = createAndPay(SALT);
        uint64 deadline = uint64(block.timestamp + WINDOW);
        vm.warp(deadline - 1);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentRefundWindowOpen.selector, id, deadline));
        payment.release(ids);
    }

    function test_RevertWhen_ReleaseTwice() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = id;
        ids[1] = id;
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Released));
        payment.release(ids);
    }

    function test_RevertWhen_ReleasePendingInvoice() public {
        bytes32 id = createInvoice(SALT);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        vm.expectRevert(_invalidStatus(id, IX402Payment.InvoiceStatus.Pending));
        payment.release(ids);
    }

    function test_RevertWhen_ReleaseUnknownInvoice() public {
        bytes32[] memory ids = new bytes32[](1);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceNotFound.selector, bytes32(0)));
        payment.release(ids);
    }

    function test_RevertWhen_ReleaseEmptyList() public {
        vm.expectRevert(IX402Payment.X402PaymentEmptyBatch.selector);
        payment.release(new bytes32[](0));
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_Withdraw() public {
        createAndPay(SALT);
        bytes32 id2 = createAndPay(keccak256("order-2"));
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = payment.invoiceIdOf(payee, SALT);
        ids[1] = id2;
        payment.release(ids);

        address treasury = makeAddr("treasury");
        vm.expectEmit(address(payment));
        emit IX402Payment.Withdrawn(payee, address(usdc), treasury, 2 * AMOUNT);
        vm.prank(payee);
        uint256 amount = payment.withdraw(address(usdc), treasury);
        assertEq(amount, 2 * AMOUNT);
        assertEq(usdc.balanceOf(treasury), 2 * AMOUNT);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), 0);
    }

    function test_WhenPausedAndTokenDisallowed_WithdrawSucceeds() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW);
        _release(id);
        vm.startPrank(admin);
        payment.pause();
        payment.setTokenAllowed(address(usdc), false);
        vm.stopPrank();
        vm.prank(payee);
        payment.withdraw(address(usdc), payee);
        assertEq(usdc.balanceOf(payee), AMOUNT);
    }

    function test_RevertWhen_WithdrawNothing() public {
        vm.prank(payee);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentNothingToWithdraw.selector, payee, address(usdc))
        );
        payment.withdraw(address(usdc), payee);
    }

    function test_RevertWhen_WithdrawTwice() public {
        bytes32 id = createAndPay(SALT);
        vm.warp(block.timestamp + WINDOW);
        _release(id);
        vm.startPrank(payee);
        payment.withdraw(address(usdc), payee);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentNothingToWithdraw.selector, payee, address(usdc))
        );
        payment.withdraw(address(usdc), payee);
        vm.stopPrank();
    }

    function test_RevertWhen_WithdrawToZeroAddress() public {
        vm.prank(payee);
        vm.expectRevert(IX402Payment.X402PaymentZeroAddress.selector);
        payment.withdraw(address(usdc), address(0));
    }

    function test_RevertWhen_EscrowedFundsWithdrawnBeforeRelease() public {
        createAndPay(SALT);
        vm.prank(payee);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentNothingToWithdraw.selector, payee, address(usdc))
        );
        payment.withdraw(address(usdc), payee);
    }

    function test_WhenTokenReentersWithdraw_ReentryIsRejected() public {
        ReentrantToken token = new ReentrantToken();
        X402Payment p = deployPayment(address(token));
        token.mint(payer, 2 * AMOUNT);
        vm.prank(payee);
        bytes32 id = p.createInvoice(SALT, address(token), AMOUNT, uint64(block.timestamp + 1 hours));
        vm.startPrank(payer);
        token.approve(address(p), AMOUNT);
        p.pay(id);
        vm.stopPrank();
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        p.release(ids);

        token.arm(address(p), abi.encodeCall(X402Payment.withdraw, (address(token), payee)));
        vm.prank(payee);
        p.withdraw(address(token), payee);
        assertTrue(token.reentered());
        assertFalse(token.reentrySucceeded());
        assertEq(
            token.reentryRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
        assertEq(token.balanceOf(payee), AMOUNT);
        assertEq(token.balanceOf(address(p)), 0);
    }
}
