// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {GasBurningWallet} from "../mocks/GasBurningWallet.sol";
import {ReentrantToken} from "../mocks/ReentrantToken.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @notice One named test per attack from ../shared/notes/contract-threats.md that applies to payment channels,
/// all against real tokens (no mocked transfer), checking balances rather than only storage.
contract PaymentChannelThreatsTest is RecurringFixture {
    /// @dev secp256k1 group order; s values above n/2 are the malleable twins.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    bytes32 internal a;
    bytes32 internal b;

    function setUp() public override {
        super.setUp();
        a = openChannel(keccak256("a"), DEPOSIT, block.timestamp + 1);
        b = openChannel(keccak256("b"), DEPOSIT, block.timestamp + 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 REPLAY
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_VoucherReplayedOnAnotherChannel() public {
        bytes memory forA = voucher(a, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, b));
        channels.claim(b, 10e6, forA);
    }

    function test_RevertWhen_VoucherReplayedOnAnotherContract() public {
        PaymentChannel twin = PaymentChannel(
            address(
                new ERC1967Proxy(
                    address(new PaymentChannel()), abi.encodeCall(PaymentChannel.initialize, (admin, _tokens()))
                )
            )
        );
        vm.startPrank(payer);
        usdc.approve(address(twin), DEPOSIT);
        bytes32 twinId =
            twin.openChannel(keccak256("a"), recipient, address(usdc), DEPOSIT, block.timestamp + 1, CHALLENGE);
        vm.stopPrank();
        assertEq(twinId, a, "same payer and salt give the same id on both contracts");
        bytes memory forA = voucher(a, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, a));
        twin.claim(a, 10e6, forA);
    }

    function test_RevertWhen_VoucherReplayedOnAnotherChain() public {
        bytes memory forA = voucher(a, 10e6);
        vm.chainId(block.chainid + 1);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, a));
        channels.claim(a, 10e6, forA);
    }

    function test_RevertWhen_TokenSignatureReplayedAsVoucher() public {
        // A signature over the token's EIP-712 domain (what EIP-3009 and permits sign) is not a voucher.
        bytes32 tokenDigest = keccak256(
            abi.encodePacked(
                "\x19\x01", usdc.DOMAIN_SEPARATOR(), keccak256(abi.encode(channels.VOUCHER_TYPEHASH(), a, 10e6))
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, tokenDigest);
        bytes memory signature = abi.encodePacked(r, s, v);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, a));
        channels.claim(a, 10e6, signature);
        assertTrue(channels.openAuthorizationNonce(a, recipient, 0, 0) != channels.topUpAuthorizationNonce(a, 0));
    }

    function test_WhenVoucherReplayed_PaysNothingTwice() public {
        claimAs(recipient, a, 10e6);
        bytes memory again = voucher(a, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelNothingToClaim.selector, a, 10e6, 10e6));
        channels.claim(a, 10e6, again);
        assertEq(usdc.balanceOf(recipient), 10e6);
    }

    /*//////////////////////////////////////////////////////////////
                         DRAINS AND DOUBLE COUNTING
    //////////////////////////////////////////////////////////////*/

    /// @dev The peer bug: closing with an amount below what was withdrawn refunded deposit - amount, taking other
    /// channels' escrow. Here the refund is deposit - claimed, and channel b's escrow stays whole.
    function test_WhenClosedWithVoucherBelowClaimed_RefundIsDepositMinusClaimed() public {
        claimAs(recipient, a, 50e6);
        uint256 payerBefore = usdc.balanceOf(payer);
        bytes memory old = voucher(a, 10e6);
        vm.prank(recipient);
        channels.close(a, 10e6, old);
        assertEq(usdc.balanceOf(payer) - payerBefore, 50e6);
        assertEq(usdc.balanceOf(recipient), 50e6);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT, "channel b untouched");
        assertEq(channels.getChannel(a).claimed, 50e6);
    }

    function test_WhenPayerClosesUnilaterally_RecipientKeepsClaimsAndTokensMove() public {
        claimAs(recipient, a, 50e6);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(a);
        vm.warp(closesAt);
        uint256 payerBefore = usdc.balanceOf(payer);
        channels.finalizeClose(a);
        assertEq(usdc.balanceOf(payer) - payerBefore, 50e6);
        assertEq(usdc.balanceOf(recipient), 50e6);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT, "only channel b is left");
    }

    function test_WhenVoucherAboveDeposit_PaidOutCappedAtDeposit() public {
        bytes memory huge = voucher(a, 1_000_000e6);
        vm.prank(recipient);
        channels.close(a, 1_000_000e6, huge);
        assertEq(usdc.balanceOf(recipient), DEPOSIT);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT, "channel b untouched");
    }

    function test_WhenPartialClaimThenClose_NoDoubleCounting() public {
        claimAs(recipient, a, 30e6);
        uint256 payerBefore = usdc.balanceOf(payer);
        bytes memory same = voucher(a, 30e6);
        vm.prank(recipient);
        channels.close(a, 30e6, same);
        assertEq(usdc.balanceOf(recipient), 30e6);
        assertEq(usdc.balanceOf(payer) - payerBefore, 70e6);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT);
    }

    function test_RevertWhen_TopUpDuringChallenge() public {
        vm.prank(payer);
        channels.startClose(a);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelInvalidStatus.selector, a, IPaymentChannel.ChannelStatus.Closing
            )
        );
        channels.topUp(a, 1e6);
    }

    function test_WhenRecipientMissesChallengeWindow_PayerGetsUnclaimed() public {
        bytes memory late = voucher(a, 80e6);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(a);
        vm.warp(closesAt);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengeOver.selector, a, closesAt));
        channels.claim(a, 80e6, late);
        uint256 payerBefore = usdc.balanceOf(payer);
        channels.finalizeClose(a);
        assertEq(usdc.balanceOf(payer) - payerBefore, DEPOSIT);
        assertEq(usdc.balanceOf(recipient), 0);
    }

    /*//////////////////////////////////////////////////////////////
                               SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_VoucherSignatureHighS() public {
        bytes memory good = voucher(a, 10e6);
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            r := mload(add(good, 0x20))
            s := mload(add(good, 0x40))
        }
        uint8 v = uint8(good[64]);
        bytes memory twin = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, a));
        channels.claim(a, 10e6, twin);
    }

    function test_RevertWhen_VoucherSignedByRecipient() public {
        (address signer, uint256 key) = makeAddrAndKey("recipient-key");
        signer;
        bytes memory selfSigned = signVoucher(key, a, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, a));
        channels.claim(a, 10e6, selfSigned);
    }

    function test_WhenWalletBurnsGasInBatch_OnlyItsItemFails() public {
        GasBurningWallet wallet = new GasBurningWallet();
        usdc.mint(address(wallet), DEPOSIT);
        vm.prank(address(wallet));
        usdc.approve(address(channels), DEPOSIT);
        vm.prank(address(wallet));
        bytes32 burner =
            channels.openChannel(keccak256("w"), recipient, address(usdc), DEPOSIT, block.timestamp + 1, CHALLENGE);
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](2);
        items[0] = IPaymentChannel.VoucherClaim(burner, 10e6, hex"00");
        items[1] = IPaymentChannel.VoucherClaim(a, 10e6, voucher(a, 10e6));
        vm.prank(recipient);
        IPaymentChannel.ClaimOutcome[] memory outcomes = channels.claimBatch{gas: 2_000_000}(items);
        assertEq(uint8(outcomes[0]), uint8(IPaymentChannel.ClaimOutcome.InvalidSignature));
        assertEq(uint8(outcomes[1]), uint8(IPaymentChannel.ClaimOutcome.Claimed));
        assertEq(usdc.balanceOf(recipient), 10e6);
    }

    function test_RevertWhen_BatchTooShortOfGasForWalletCheck() public {
        GasBurningWallet wallet = new GasBurningWallet();
        usdc.mint(address(wallet), DEPOSIT);
        vm.prank(address(wallet));
        usdc.approve(address(channels), DEPOSIT);
        vm.prank(address(wallet));
        bytes32 burner =
            channels.openChannel(keccak256("w"), recipient, address(usdc), DEPOSIT, block.timestamp + 1, CHALLENGE);
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](1);
        items[0] = IPaymentChannel.VoucherClaim(burner, 10e6, hex"00");
        // Reported as a bad signature only when the wallet really had its full budget; otherwise the call reverts.
        vm.prank(recipient);
        vm.expectRevert(IPaymentChannel.PaymentChannelInsufficientGas.selector);
        channels.claimBatch{gas: 300_000}(items);
    }

    /*//////////////////////////////////////////////////////////////
                             HOSTILE TOKENS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_FeeOnTransferTokenDeposited() public {
        FeeOnTransferToken token = new FeeOnTransferToken();
        token.mint(payer, DEPOSIT);
        vm.prank(admin);
        channels.setTokenAllowed(address(token), true);
        vm.startPrank(payer);
        token.approve(address(channels), DEPOSIT);
        vm.expectRevert(
            abi.encodeWithSelector(ExactTransfers.ExactTransferMismatch.selector, address(token), DEPOSIT, 99e6)
        );
        channels.openChannel(keccak256("fee"), recipient, address(token), DEPOSIT, block.timestamp + 1, CHALLENGE);
        vm.stopPrank();
    }

    function test_WhenTokenReentersOnPayout_GuardBlocksIt() public {
        ReentrantToken token = new ReentrantToken();
        token.mint(payer, DEPOSIT);
        vm.prank(admin);
        channels.setTokenAllowed(address(token), true);
        vm.startPrank(payer);
        token.approve(address(channels), DEPOSIT);
        bytes32 id =
            channels.openChannel(keccak256("re"), recipient, address(token), DEPOSIT, block.timestamp + 1, CHALLENGE);
        uint256 closesAt = channels.startClose(id);
        vm.stopPrank();
        // On the refund push, the token calls back into finalizeClose to get the refund paid twice.
        token.arm(address(channels), abi.encodeCall(PaymentChannel.finalizeClose, (id)));
        vm.warp(closesAt);
        channels.finalizeClose(id);
        assertTrue(token.reentered());
        assertFalse(token.reentrySucceeded());
        assertEq(bytes4(token.reentryRevertData()), ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        assertEq(token.balanceOf(payer), DEPOSIT);
        assertEq(token.balanceOf(address(channels)), 0);
    }

    /*//////////////////////////////////////////////////////////////
                              ADMIN POWERS
    //////////////////////////////////////////////////////////////*/

    function test_WhenPausedAndTokenDelisted_FundsStillFlowToTheirOwners() public {
        vm.startPrank(admin);
        channels.pause();
        channels.setTokenAllowed(address(usdc), false);
        vm.stopPrank();
        claimAs(recipient, a, 10e6);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(b);
        vm.warp(closesAt);
        uint256 payerBefore = usdc.balanceOf(payer);
        channels.finalizeClose(b);
        assertEq(usdc.balanceOf(recipient), 10e6);
        assertEq(usdc.balanceOf(payer) - payerBefore, DEPOSIT);
    }

    function test_RevertWhen_AdminTriesToClaimOrClose() public {
        bytes memory signature = voucher(a, 10e6);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, a, admin));
        channels.claim(a, 10e6, signature);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, a, admin));
        channels.close(a, 0, "");
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, a, admin));
        channels.startClose(a);
        vm.stopPrank();
    }

    function _tokens() internal view returns (address[] memory tokens) {
        tokens = new address[](1);
        tokens[0] = address(usdc);
    }
}
