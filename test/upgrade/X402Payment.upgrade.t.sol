// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {ReleaseNoteV2, X402PaymentV2} from "../mocks/UpgradesV2.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

/// @notice UUPS upgrade safety. Storage-layout compatibility is also checked statically by the OpenZeppelin
/// upgrades-core `validate` command in bin/test (X402PaymentV2 is annotated `oz-upgrades-from X402Payment`).
contract X402PaymentUpgradeTest is Fixture {
    bytes32 internal pending;
    bytes32 internal confirmed;
    bytes32 internal disputed;
    bytes32 internal released;

    function setUp() public override {
        super.setUp();
        pending = createInvoice(keccak256("pending"));
        confirmed = createAndPay(keccak256("confirmed"));
        disputed = createAndPay(keccak256("disputed"));
        vm.prank(payer);
        payment.dispute(disputed);
        released = createAndPay(keccak256("released"));
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = released;
        payment.release(ids);
        vm.prank(admin);
        payment.setRefundWindow(1 days);
    }

    function _upgrade() internal returns (X402PaymentV2 v2) {
        X402PaymentV2 newImplementation = new X402PaymentV2();
        vm.prank(admin);
        payment.upgradeToAndCall(address(newImplementation), abi.encodeCall(ReleaseNoteV2.initializeV2, ("v2")));
        return X402PaymentV2(address(payment));
    }

    function test_WhenUpgraded_StateSurvives() public {
        IX402Payment.Invoice memory before = payment.getInvoice(disputed);
        X402PaymentV2 v2 = _upgrade();

        assertEq(v2.releaseNote(), "v2");
        assertEq(uint8(v2.getInvoice(pending).status), uint8(IX402Payment.InvoiceStatus.Pending));
        assertEq(uint8(v2.getInvoice(confirmed).status), uint8(IX402Payment.InvoiceStatus.Confirmed));
        assertEq(uint8(v2.getInvoice(released).status), uint8(IX402Payment.InvoiceStatus.Released));
        IX402Payment.Invoice memory afterUpgrade = v2.getInvoice(disputed);
        assertEq(abi.encode(afterUpgrade), abi.encode(before));
        assertEq(v2.withdrawableBalance(payee, address(usdc)), AMOUNT);
        assertEq(v2.refundWindow(), 1 days);
        assertTrue(v2.isTokenAllowed(address(usdc)));
        assertTrue(v2.hasRole(v2.ARBITER_ROLE(), arbiter));
        assertTrue(v2.hasRole(v2.UPGRADER_ROLE(), admin));
    }

    function test_WhenUpgraded_FlowsContinue() public {
        X402PaymentV2 v2 = _upgrade();
        vm.prank(arbiter);
        v2.resolveDispute(disputed, 0);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = confirmed;
        v2.release(ids);
        vm.prank(payee);
        uint256 amount = v2.withdraw(address(usdc), payee);
        assertEq(amount, 3 * AMOUNT);
        payInvoice(pending);
        assertEq(uint8(v2.getInvoice(pending).status), uint8(IX402Payment.InvoiceStatus.Confirmed));
    }

    function test_WhenUpgraded_ImplementationSlotPointsToV2() public {
        X402PaymentV2 newImplementation = new X402PaymentV2();
        vm.prank(admin);
        payment.upgradeToAndCall(address(newImplementation), "");
        address stored = address(uint160(uint256(vm.load(address(payment), ERC1967Utils.IMPLEMENTATION_SLOT))));
        assertEq(stored, address(newImplementation));
    }

    function test_RevertWhen_UpgradeCallerNotUpgrader() public {
        X402PaymentV2 newImplementation = new X402PaymentV2();
        bytes32 role = payment.UPGRADER_ROLE();
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, arbiter, role));
        payment.upgradeToAndCall(address(newImplementation), "");
    }

    function test_RevertWhen_UpgradeToNonUupsContract() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ERC1967Utils.ERC1967InvalidImplementation.selector, address(usdc)));
        payment.upgradeToAndCall(address(usdc), "");
    }

    function test_RevertWhen_ReinitializerRunsTwice() public {
        X402PaymentV2 v2 = _upgrade();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        v2.initializeV2("again");
    }

    function test_RevertWhen_V2ImplementationInitialized() public {
        X402PaymentV2 newImplementation = new X402PaymentV2();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        newImplementation.initialize(stranger, stranger, WINDOW, new address[](0));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        newImplementation.initializeV2("x");
    }

    function test_RevertWhen_UpgradeCalledOnImplementationDirectly() public {
        X402PaymentV2 newImplementation = new X402PaymentV2();
        vm.prank(admin);
        vm.expectRevert(); // UUPSUnauthorizedCallContext: only callable through a proxy
        implementation.upgradeToAndCall(address(newImplementation), "");
    }

    function test_StorageLivesInNamespacedSlot() public view {
        // The first struct member (invoices mapping) anchors at the ERC-7201 slot: invoice slot 0 packs payee,
        // expiresAt and status at keccak256(id . location).
        bytes32 location = 0x3568b7157291baaffc9117ae995898cfaa927b9e00c5a043ed9f296e88637400;
        assertEq(
            location,
            keccak256(abi.encode(uint256(keccak256("x402.storage.X402Payment")) - 1)) & ~bytes32(uint256(0xff))
        );
        bytes32 slot0 = vm.load(address(payment), keccak256(abi.encode(pending, location)));
        assertEq(address(uint160(uint256(slot0))), payee);
        // Nothing is stored in the low slots a non-namespaced layout would use.
        for (uint256 i; i < 8; ++i) {
            assertEq(vm.load(address(payment), bytes32(i)), bytes32(0));
        }
    }
}
