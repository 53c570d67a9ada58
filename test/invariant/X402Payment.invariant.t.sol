// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {Fixture} from "../utils/Fixture.sol";
import {X402PaymentHandler} from "./handlers/X402PaymentHandler.sol";
import {console} from "forge-std/console.sol";

contract X402PaymentInvariantTest is Fixture {
    X402PaymentHandler internal handler;
    uint256 internal supply;

    function setUp() public override {
        super.setUp();
        handler = new X402PaymentHandler(payment, usdc, admin, arbiter);
        for (uint256 i; i < handler.actorCount(); ++i) {
            usdc.mint(handler.payerAt(i), 10_000_000e6);
        }
        supply = usdc.totalSupply();
        targetContract(address(handler));
    }

    /// @dev tokens held == escrow (Confirmed) + frozen (Disputed) + withdrawable balances.
    function invariant_TokensHeldEqualEscrowPlusWithdrawable() public view {
        uint256 escrow;
        for (uint256 i; i < handler.invoiceCount(); ++i) {
            IX402Payment.Invoice memory invoice = payment.getInvoice(handler.invoiceIds(i));
            if (
                invoice.status == IX402Payment.InvoiceStatus.Confirmed
                    || invoice.status == IX402Payment.InvoiceStatus.Disputed
            ) escrow += invoice.amount;
        }
        uint256 withdrawable;
        for (uint256 i; i < handler.actorCount(); ++i) {
            withdrawable += payment.withdrawableBalance(handler.payerAt(i), address(usdc));
            withdrawable += payment.withdrawableBalance(handler.payeeAt(i), address(usdc));
        }
        assertEq(usdc.balanceOf(address(payment)), escrow + withdrawable);
    }

    function invariant_NoInvoicePaidTwice() public view {
        for (uint256 i; i < handler.invoiceCount(); ++i) {
            assertLe(handler.timesPaid(handler.invoiceIds(i)), 1);
        }
    }

    function invariant_SettledAuthorizationNeverSettledAgain() public view {
        assertFalse(handler.authorizationSettledTwice());
    }

    function invariant_StatusFollowsStateMachine() public view {
        assertFalse(handler.illegalTransitionSeen());
    }

    function invariant_NoTokensCreatedOrLost() public view {
        uint256 total = usdc.balanceOf(address(payment)) + usdc.balanceOf(payer);
        for (uint256 i; i < handler.actorCount(); ++i) {
            total += usdc.balanceOf(handler.payerAt(i)) + usdc.balanceOf(handler.payeeAt(i));
        }
        assertEq(total, supply);
        assertEq(usdc.totalSupply(), supply);
    }

    function afterInvariant() external view {
        console.log("invoices", handler.invoiceCount());
        console.log("pays", handler.calls(X402PaymentHandler.pay.selector));
        console.log("refunds", handler.calls(X402PaymentHandler.refund.selector));
        console.log("disputes", handler.calls(X402PaymentHandler.dispute.selector));
        console.log("resolves", handler.calls(X402PaymentHandler.resolve.selector));
        console.log("releases", handler.calls(X402PaymentHandler.release.selector));
        console.log("withdraws", handler.calls(X402PaymentHandler.withdraw.selector));
        console.log("batches", handler.calls(X402PaymentHandler.settleBatch.selector));
    }
}
