// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {Fixture} from "../utils/Fixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @notice createInvoice and the three ways to pay: allowance, permit, EIP-3009 authorization.
contract X402PaymentInvoicesTest is Fixture {
    bytes32 internal constant SALT = keccak256("order-1");

    /*//////////////////////////////////////////////////////////////
                             CREATE INVOICE
    //////////////////////////////////////////////////////////////*/

    function test_CreateInvoice() public {
        uint64 expiresAt = uint64(block.timestamp + 1 hours);
        bytes32 expectedId = payment.invoiceIdOf(payee, SALT);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoiceCreated(expectedId, payee, address(usdc), AMOUNT, expiresAt);
        bytes32 id = createInvoice(SALT, AMOUNT, expiresAt);

        assertEq(id, expectedId);
        assertEq(id, keccak256(abi.encode(payee, SALT)));
        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        assertEq(invoice.payee, payee);
        assertEq(invoice.token, address(usdc));
        assertEq(invoice.amount, AMOUNT);
        assertEq(invoice.expiresAt, expiresAt);
        assertEq(uint8(invoice.status), uint8(IX402Payment.InvoiceStatus.Pending));
        assertEq(invoice.payer, address(0));
        assertEq(invoice.refundDeadline, 0);
    }

    function test_WhenTwoPayeesUseTheSameSalt_TheirInvoicesDiffer() public {
        bytes32 first = createInvoice(SALT);
        vm.prank(stranger);
        bytes32 second = payment.createInvoice(SALT, address(usdc), AMOUNT, uint64(block.timestamp + 1));
        assertTrue(first != second);
    }

    function test_RevertWhen_InvoiceIdAlreadyExists() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceExists.selector, id));
        payment.createInvoice(SALT, address(usdc), AMOUNT, uint64(block.timestamp + 1));
    }

    function test_RevertWhen_InvoiceTokenNotAllowed() public {
        address other = address(new TestStablecoin("X", "X", "1", address(this)));
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentTokenNotAllowed.selector, other));
        payment.createInvoice(SALT, other, AMOUNT, uint64(block.timestamp + 1));
    }

    function test_RevertWhen_InvoiceAmountZero() public {
        vm.prank(payee);
        vm.expectRevert(IX402Payment.X402PaymentZeroAmount.selector);
        payment.createInvoice(SALT, address(usdc), 0, uint64(block.timestamp + 1));
    }

    function test_RevertWhen_InvoiceExpiryNotInFuture() public {
        uint64 expiresAt = uint64(block.timestamp);
        vm.prank(payee);
        vm.expectRevert(
            abi.encodeWithSelector(IX402Payment.X402PaymentInvalidExpiry.selector, expiresAt, block.timestamp)
        );
        payment.createInvoice(SALT, address(usdc), AMOUNT, expiresAt);
    }

    function test_RevertWhen_CreateInvoiceWhilePaused() public {
        vm.prank(admin);
        payment.pause();
        vm.prank(payee);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.createInvoice(SALT, address(usdc), AMOUNT, uint64(block.timestamp + 1));
    }

    function test_WhenPendingInvoicePassesExpiry_StatusIsExpired() public {
        bytes32 id = createInvoice(SALT, AMOUNT, uint64(block.timestamp + 10));
        vm.warp(block.timestamp + 9);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Pending));
        vm.warp(block.timestamp + 1);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Expired));
    }

    function test_WhenInvoiceUnknown_GetInvoiceReturnsNone() public view {
        assertEq(uint8(statusOf(keccak256("nope"))), uint8(IX402Payment.InvoiceStatus.None));
    }

    /*//////////////////////////////////////////////////////////////
                            PAY (ALLOWANCE)
    //////////////////////////////////////////////////////////////*/

    function test_Pay() public {
        bytes32 id = createInvoice(SALT);
        vm.startPrank(payer);
        usdc.approve(address(payment), AMOUNT);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoicePaid(id, payer, AMOUNT, uint64(block.timestamp + WINDOW));
        payment.pay(id);
        vm.stopPrank();

        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        assertEq(uint8(invoice.status), uint8(IX402Payment.InvoiceStatus.Confirmed));
        assertEq(invoice.payer, payer);
        assertEq(invoice.refundDeadline, block.timestamp + WINDOW);
        assertEq(usdc.balanceOf(address(payment)), AMOUNT);
        assertEq(payment.withdrawableBalance(payee, address(usdc)), 0);
    }

    function test_RevertWhen_PayInvoiceInDisallowedToken() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(admin);
        payment.setTokenAllowed(address(usdc), false);
        vm.startPrank(payer);
        usdc.approve(address(payment), AMOUNT);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentTokenNotAllowed.selector, address(usdc)));
        payment.pay(id);
        vm.stopPrank();
    }

    function test_RevertWhen_PayUnknownInvoice() public {
        bytes32 id = keccak256("unknown");
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceNotFound.selector, id));
        payment.pay(id);
    }

    function test_RevertWhen_PayInvoiceTwice() public {
        bytes32 id = createAndPay(SALT);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IX402Payment.X402PaymentInvalidStatus.selector, id, IX402Payment.InvoiceStatus.Confirmed
            )
        );
        payment.pay(id);
    }

    function test_RevertWhen_PayExpiredInvoice() public {
        uint64 expiresAt = uint64(block.timestamp + 10);
        bytes32 id = createInvoice(SALT, AMOUNT, expiresAt);
        vm.warp(expiresAt);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentInvoiceExpired.selector, id, expiresAt));
        payment.pay(id);
    }

    function test_RevertWhen_PayWithoutAllowance() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(payment), 0, AMOUNT)
        );
        payment.pay(id);
    }

    function test_RevertWhen_PayWhilePaused() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(admin);
        payment.pause();
        vm.prank(payer);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.pay(id);
    }

    function test_RevertWhen_TokenChargesTransferFee() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        vm.prank(admin);
        payment.setTokenAllowed(address(fee), true);
        vm.prank(payee);
        bytes32 id = payment.createInvoice(SALT, address(fee), 1000, uint64(block.timestamp + 1));
        fee.mint(payer, 1000);
        vm.startPrank(payer);
        fee.approve(address(payment), 1000);
        vm.expectRevert(abi.encodeWithSelector(ExactTransfers.ExactTransferMismatch.selector, address(fee), 1000, 990));
        payment.pay(id);
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////
                            PAY WITH PERMIT
    //////////////////////////////////////////////////////////////*/

    function test_PayWithPermit() public {
        bytes32 id = createInvoice(SALT);
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, address(payment), AMOUNT, deadline);
        vm.prank(payer);
        payment.payWithPermit(id, deadline, v, r, s);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Confirmed));
        assertEq(usdc.balanceOf(address(payment)), AMOUNT);
        assertEq(usdc.allowance(payer, address(payment)), 0);
    }

    function test_WhenPermitFrontRun_PayWithPermitStillSucceeds() public {
        bytes32 id = createInvoice(SALT);
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, address(payment), AMOUNT, deadline);
        vm.prank(stranger);
        usdc.permit(payer, address(payment), AMOUNT, deadline, v, r, s);
        vm.prank(payer);
        payment.payWithPermit(id, deadline, v, r, s);
        assertEq(uint8(statusOf(id)), uint8(IX402Payment.InvoiceStatus.Confirmed));
    }

    function test_RevertWhen_PermitInvalidAndAllowanceShort() public {
        bytes32 id = createInvoice(SALT);
        uint256 deadline = block.timestamp + 60;
        (, uint256 otherKey) = makeAddrAndKey("other");
        (uint8 v, bytes32 r, bytes32 s) = signPermit(otherKey, usdc, payer, address(payment), AMOUNT, deadline);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithPermit(id, deadline, v, r, s);
    }

    function test_RevertWhen_PermitSignedByAnotherPayer() public {
        // Only the permit's owner can spend it through payWithPermit: a relayer cannot redirect it to an invoice.
        bytes32 id = createInvoice(SALT);
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, address(payment), AMOUNT, deadline);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, stranger));
        payment.payWithPermit(id, deadline, v, r, s);
    }

    function test_RevertWhen_PayWithPermitWhilePaused() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(admin);
        payment.pause();
        vm.prank(payer);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.payWithPermit(id, 0, 0, 0, 0);
    }

    /*//////////////////////////////////////////////////////////////
                        PAY WITH AUTHORIZATION
    //////////////////////////////////////////////////////////////*/

    function _receiveSignature(uint256 key, address from, bytes32 id, uint256 value)
        internal
        view
        returns (bytes memory)
    {
        return signReceive(
            key,
            usdc,
            from,
            address(payment),
            value,
            block.timestamp - 1,
            block.timestamp + 1 hours,
            payment.authorizationNonceOf(id)
        );
    }

    function test_PayWithAuthorization() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(payerKey, payer, id, AMOUNT);
        vm.expectEmit(address(payment));
        emit IX402Payment.InvoicePaid(id, payer, AMOUNT, uint64(block.timestamp + WINDOW));
        vm.prank(stranger); // a relayer pays the gas
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        assertEq(uint8(invoice.status), uint8(IX402Payment.InvoiceStatus.Confirmed));
        assertEq(invoice.payer, payer);
        assertEq(usdc.balanceOf(address(payment)), AMOUNT);
        assertTrue(usdc.authorizationState(payer, payment.authorizationNonceOf(id)));
    }

    function test_WhenPayerIsContractWallet_PayWithAuthorizationUsesErc1271() public {
        (address owner, uint256 ownerKey) = makeAddrAndKey("walletOwner");
        address wallet = address(new MockERC1271Wallet(owner));
        usdc.mint(wallet, AMOUNT);
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(ownerKey, wallet, id, AMOUNT);
        // A wrapped (longer than 65 bytes) signature goes through the token's `bytes` overload.
        bytes memory wrapped = abi.encodePacked(sig, bytes4(0xdeadbeef));
        payment.payWithAuthorization(id, wallet, block.timestamp - 1, block.timestamp + 1 hours, wrapped);
        assertEq(payment.getInvoice(id).payer, wallet);
        assertEq(usdc.balanceOf(wallet), 0);
    }

    function test_RevertWhen_AuthorizationReusedForAnotherInvoice() public {
        bytes32 first = createInvoice(SALT);
        bytes32 second = createInvoice(keccak256("order-2"));
        bytes memory sig = _receiveSignature(payerKey, payer, first, AMOUNT);
        // The nonce is derived from the invoice id, so the signature does not verify for another invoice.
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(second, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        payment.payWithAuthorization(first, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationReplayedOnPaidInvoice() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(payerKey, payer, id, AMOUNT);
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        vm.expectRevert(
            abi.encodeWithSelector(
                IX402Payment.X402PaymentInvalidStatus.selector, id, IX402Payment.InvoiceStatus.Confirmed
            )
        );
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationForWrongAmount() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(payerKey, payer, id, AMOUNT - 1);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationFromAnotherSigner() public {
        bytes32 id = createInvoice(SALT);
        (, uint256 otherKey) = makeAddrAndKey("other");
        bytes memory sig = _receiveSignature(otherKey, payer, id, AMOUNT);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationHasHighS() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = malleate(_receiveSignature(payerKey, payer, id, AMOUNT));
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationForAnotherPaymentContract() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(payerKey, payer, id, AMOUNT);
        // A second deployment with the same invoice id derives a different nonce and is a different recipient.
        X402Payment other = deployPayment(address(usdc));
        vm.prank(payee);
        bytes32 otherId = other.createInvoice(SALT, address(usdc), AMOUNT, uint64(block.timestamp + 1 hours));
        assertEq(otherId, id);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        other.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationReplayedOnAnotherChain() public {
        bytes32 id = createInvoice(SALT);
        bytes memory sig = _receiveSignature(payerKey, payer, id, AMOUNT);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
    }

    function test_RevertWhen_AuthorizationExpired() public {
        bytes32 id = createInvoice(SALT);
        uint256 validBefore = block.timestamp;
        bytes memory sig = signReceive(
            payerKey, usdc, payer, address(payment), AMOUNT, 0, validBefore, payment.authorizationNonceOf(id)
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                TestStablecoin.TestStablecoinAuthorizationExpired.selector, validBefore, block.timestamp
            )
        );
        payment.payWithAuthorization(id, payer, 0, validBefore, sig);
    }

    function test_RevertWhen_PayWithAuthorizationWhilePaused() public {
        bytes32 id = createInvoice(SALT);
        vm.prank(admin);
        payment.pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.payWithAuthorization(id, payer, 0, 0, "");
    }

    function test_AuthorizationNonceBindsChainContractAndInvoice() public view {
        bytes32 id = keccak256("id");
        assertEq(payment.authorizationNonceOf(id), keccak256(abi.encode(block.chainid, address(payment), id)));
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    function testFuzz_PayEscrowsExactAmount(uint96 amount, bytes32 salt, uint64 lifetime) public {
        amount = uint96(bound(amount, 1, 1_000_000e6));
        lifetime = uint64(bound(lifetime, 1, 365 days));
        bytes32 id = createInvoice(salt, amount, uint64(block.timestamp) + lifetime);
        uint256 payerBefore = usdc.balanceOf(payer);
        payInvoice(id);
        assertEq(usdc.balanceOf(address(payment)), amount);
        assertEq(usdc.balanceOf(payer), payerBefore - amount);
    }

    function testFuzz_PayWithAuthorization_OneSignaturePaysOneInvoice(bytes32 saltA, bytes32 saltB) public {
        vm.assume(saltA != saltB);
        bytes32 a = createInvoice(saltA);
        bytes32 b = createInvoice(saltB);
        bytes memory sig = _receiveSignature(payerKey, payer, a, AMOUNT);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        payment.payWithAuthorization(b, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        payment.payWithAuthorization(a, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        assertEq(usdc.balanceOf(address(payment)), AMOUNT);
    }
}
