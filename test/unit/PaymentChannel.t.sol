// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {BlacklistableStablecoin} from "../mocks/BlacklistableStablecoin.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice Every PaymentChannel function and revert path, against the real TestStablecoin.
contract PaymentChannelTest is RecurringFixture {
    bytes32 internal constant SALT = keccak256("channel-1");
    address internal operator = makeAddr("operator");

    function _expiry() internal view returns (uint256) {
        return block.timestamp + 1 days;
    }

    function _status(bytes32 id) internal view returns (IPaymentChannel.ChannelStatus) {
        return channels.getChannel(id).status;
    }

    /*//////////////////////////////////////////////////////////////
                                 OPEN
    //////////////////////////////////////////////////////////////*/

    function test_WhenOpened_RecordsChannelAndPullsDeposit() public {
        bytes32 expectedId = channels.channelIdOf(payer, SALT);
        uint256 expiresAt = _expiry();
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelOpened(expectedId, payer, recipient, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        bytes32 id = openChannel(SALT);
        assertEq(id, expectedId);
        IPaymentChannel.Channel memory c = channels.getChannel(id);
        assertEq(c.payer, payer);
        assertEq(c.recipient, recipient);
        assertEq(c.token, address(usdc));
        assertEq(c.deposit, DEPOSIT);
        assertEq(c.claimed, 0);
        assertEq(c.expiresAt, expiresAt);
        assertEq(c.closesAt, 0);
        assertEq(c.challengePeriod, CHALLENGE);
        assertEq(uint8(c.status), uint8(IPaymentChannel.ChannelStatus.Open));
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT);
    }

    function test_RevertWhen_OpenedTwiceWithSameSalt() public {
        bytes32 id = openChannel(SALT);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelExists.selector, id));
        openChannel(SALT);
    }

    function test_RevertWhen_ClosedChannelIdReopened() public {
        bytes32 id = openChannel(SALT);
        vm.prank(recipient);
        channels.close(id, 0, "");
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelExists.selector, id));
        openChannel(SALT);
    }

    function test_RevertWhen_OpenRecipientZero() public {
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAddress.selector);
        channels.openChannel(SALT, address(0), address(usdc), DEPOSIT, expiresAt, CHALLENGE);
    }

    function test_RevertWhen_OpenRecipientIsPayerOrContract() public {
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidRecipient.selector, payer));
        channels.openChannel(SALT, payer, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidRecipient.selector, address(channels))
        );
        channels.openChannel(SALT, address(channels), address(usdc), DEPOSIT, expiresAt, CHALLENGE);
    }

    function test_RevertWhen_OpenTokenNotAllowed() public {
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelTokenNotAllowed.selector, stranger));
        channels.openChannel(SALT, recipient, stranger, DEPOSIT, expiresAt, CHALLENGE);
    }

    function test_RevertWhen_OpenDepositZeroOrTooLarge() public {
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAmount.selector);
        channels.openChannel(SALT, recipient, address(usdc), 0, expiresAt, CHALLENGE);
        uint256 tooLarge = uint256(type(uint96).max) + 1;
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelDepositTooLarge.selector, tooLarge));
        channels.openChannel(SALT, recipient, address(usdc), tooLarge, expiresAt, CHALLENGE);
    }

    function test_RevertWhen_OpenExpiryNotInFutureOrTooLarge() public {
        uint256 minimum = block.timestamp + 1;
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidExpiry.selector, block.timestamp, minimum)
        );
        channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, block.timestamp, CHALLENGE);
        uint256 tooLate = uint256(type(uint40).max) + 1;
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidExpiry.selector, tooLate, minimum));
        channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, tooLate, CHALLENGE);
    }

    function test_RevertWhen_OpenChallengePeriodOutOfBounds() public {
        uint256 expiresAt = _expiry();
        uint256 min = channels.MIN_CHALLENGE_PERIOD();
        uint256 max = channels.MAX_CHALLENGE_PERIOD();
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengePeriodOutOfBounds.selector, min - 1, min, max)
        );
        channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, expiresAt, min - 1);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengePeriodOutOfBounds.selector, max + 1, min, max)
        );
        channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, expiresAt, max + 1);
    }

    function test_RevertWhen_OpenWhilePaused() public {
        vm.prank(admin);
        channels.pause();
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
    }

    function test_WhenOpenedWithPermit_PullsDeposit() public {
        vm.prank(payer);
        usdc.approve(address(channels), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(address(channels), DEPOSIT, deadline);
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        bytes32 id = channels.openChannelWithPermit(
            SALT, recipient, address(usdc), DEPOSIT, expiresAt, CHALLENGE, deadline, v, r, s
        );
        assertEq(channels.getChannel(id).deposit, DEPOSIT);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT);
    }

    function test_WhenOpenedWithAuthorization_RelayerOpensForPayer() public {
        bytes32 id = channels.channelIdOf(payer, SALT);
        uint256 expiresAt = _expiry();
        bytes memory signature = _signOpenAuthorization(id, recipient, DEPOSIT, expiresAt, CHALLENGE);
        vm.prank(stranger);
        channels.openChannelWithAuthorization(
            SALT,
            payer,
            recipient,
            address(usdc),
            DEPOSIT,
            expiresAt,
            CHALLENGE,
            0,
            block.timestamp + 1 hours,
            signature
        );
        IPaymentChannel.Channel memory c = channels.getChannel(id);
        assertEq(c.payer, payer);
        assertEq(c.recipient, recipient);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT);
    }

    function test_RevertWhen_OpenAuthorizationUsedForOtherRecipient() public {
        bytes32 id = channels.channelIdOf(payer, SALT);
        uint256 expiresAt = _expiry();
        bytes memory signature = _signOpenAuthorization(id, recipient, DEPOSIT, expiresAt, CHALLENGE);
        // A relayer redirecting the deposit to itself changes the nonce the token checks the signature against.
        vm.prank(stranger);
        vm.expectRevert();
        channels.openChannelWithAuthorization(
            SALT, payer, stranger, address(usdc), DEPOSIT, expiresAt, CHALLENGE, 0, block.timestamp + 1 hours, signature
        );
        assertEq(uint8(_status(id)), uint8(IPaymentChannel.ChannelStatus.None));
    }

    /*//////////////////////////////////////////////////////////////
                            TOP UP AND EXTEND
    //////////////////////////////////////////////////////////////*/

    function test_WhenToppedUp_DepositGrows() public {
        bytes32 id = openChannel(SALT);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelToppedUp(id, 5e6, DEPOSIT + 5e6);
        vm.prank(payer);
        channels.topUp(id, 5e6);
        assertEq(channels.getChannel(id).deposit, DEPOSIT + 5e6);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT + 5e6);
    }

    function test_RevertWhen_TopUpByOtherThanPayer() public {
        bytes32 id = openChannel(SALT);
        vm.prank(recipient);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, recipient)
        );
        channels.topUp(id, 1);
    }

    function test_RevertWhen_TopUpUnknownChannelOrZero() public {
        bytes32 unknown = keccak256("unknown");
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelNotFound.selector, unknown));
        channels.topUp(unknown, 1);
        bytes32 id = openChannel(SALT);
        vm.prank(payer);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAmount.selector);
        channels.topUp(id, 0);
    }

    function test_RevertWhen_TopUpBeyondUint96() public {
        bytes32 id = openChannel(SALT);
        uint256 amount = uint256(type(uint96).max) - DEPOSIT + 1;
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelDepositTooLarge.selector, uint256(type(uint96).max) + 1
            )
        );
        channels.topUp(id, amount);
    }

    function test_RevertWhen_TopUpTokenRemovedFromAllowlist() public {
        bytes32 id = openChannel(SALT);
        vm.prank(admin);
        channels.setTokenAllowed(address(usdc), false);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelTokenNotAllowed.selector, address(usdc)));
        channels.topUp(id, 1);
    }

    function test_RevertWhen_TopUpWhilePaused() public {
        bytes32 id = openChannel(SALT);
        vm.prank(admin);
        channels.pause();
        vm.prank(payer);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        channels.topUp(id, 1);
    }

    function test_WhenToppedUpWithAuthorization_AnyoneSubmits() public {
        bytes32 id = openChannel(SALT);
        bytes32 salt = keccak256("top-up-1");
        bytes32 nonce = channels.topUpAuthorizationNonce(id, salt);
        bytes memory signature = _signReceive(5e6, nonce);
        vm.prank(stranger);
        channels.topUpWithAuthorization(id, 5e6, 0, block.timestamp + 1 hours, salt, signature);
        assertEq(channels.getChannel(id).deposit, DEPOSIT + 5e6);
    }

    function test_RevertWhen_TopUpAuthorizationAppliedToAnotherChannel() public {
        bytes32 id = openChannel(SALT);
        bytes32 other = openChannel(keccak256("channel-2"));
        bytes32 salt = keccak256("top-up-1");
        bytes memory signature = _signReceive(5e6, channels.topUpAuthorizationNonce(id, salt));
        vm.prank(stranger);
        vm.expectRevert();
        channels.topUpWithAuthorization(other, 5e6, 0, block.timestamp + 1 hours, salt, signature);
        assertEq(channels.getChannel(other).deposit, DEPOSIT);
    }

    function test_WhenExtended_ExpiryMovesLater() public {
        bytes32 id = openChannel(SALT);
        uint256 later = block.timestamp + 7 days;
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelExtended(id, later);
        vm.prank(payer);
        channels.extend(id, later);
        assertEq(channels.getChannel(id).expiresAt, later);
    }

    function test_RevertWhen_ExtendNotLaterOrByOther() public {
        bytes32 id = openChannel(SALT);
        uint256 current = channels.getChannel(id).expiresAt;
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidExpiry.selector, current, current + 1)
        );
        channels.extend(id, current);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, stranger));
        channels.extend(id, current + 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 CLAIM
    //////////////////////////////////////////////////////////////*/

    function test_WhenClaimed_PaysTheIncrementOnly() public {
        bytes32 id = openChannel(SALT);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelClaimed(id, recipient, 30e6, 30e6);
        assertEq(claimAs(recipient, id, 30e6), 30e6);
        assertEq(claimAs(recipient, id, 45e6), 15e6);
        assertEq(usdc.balanceOf(recipient), 45e6);
        assertEq(channels.getChannel(id).claimed, 45e6);
        assertEq(usdc.balanceOf(address(channels)), DEPOSIT - 45e6);
    }

    function test_RevertWhen_ClaimWithLowerOrSameVoucher() public {
        bytes32 id = openChannel(SALT);
        claimAs(recipient, id, 30e6);
        bytes memory lower = voucher(id, 20e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelNothingToClaim.selector, id, 20e6, 30e6));
        channels.claim(id, 20e6, lower);
        bytes memory same = voucher(id, 30e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelNothingToClaim.selector, id, 30e6, 30e6));
        channels.claim(id, 30e6, same);
        assertEq(channels.getChannel(id).claimed, 30e6);
    }

    function test_WhenVoucherAboveDeposit_PaysDepositThenRestAfterTopUp() public {
        bytes32 id = openChannel(SALT);
        bytes memory signature = voucher(id, 150e6);
        vm.prank(recipient);
        assertEq(channels.claim(id, 150e6, signature), DEPOSIT);
        vm.prank(payer);
        channels.topUp(id, 80e6);
        vm.prank(recipient);
        assertEq(channels.claim(id, 150e6, signature), 50e6);
        assertEq(usdc.balanceOf(recipient), 150e6);
        assertEq(channels.getChannel(id).claimed, 150e6);
    }

    function test_RevertWhen_ClaimByStranger() public {
        bytes32 id = openChannel(SALT);
        bytes memory signature = voucher(id, 10e6);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, stranger));
        channels.claim(id, 10e6, signature);
    }

    function test_WhenOperatorClaims_RecipientIsPaid() public {
        bytes32 id = openChannel(SALT);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ClaimOperatorSet(recipient, operator, true);
        vm.prank(recipient);
        channels.setClaimOperator(operator, true);
        assertTrue(channels.isClaimOperator(recipient, operator));
        claimAs(operator, id, 10e6);
        assertEq(usdc.balanceOf(recipient), 10e6);
        assertEq(usdc.balanceOf(operator), 0);

        vm.prank(recipient);
        channels.setClaimOperator(operator, false);
        bytes memory signature = voucher(id, 20e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, operator));
        channels.claim(id, 20e6, signature);
    }

    function test_RevertWhen_OperatorZero() public {
        vm.prank(recipient);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAddress.selector);
        channels.setClaimOperator(address(0), true);
    }

    function test_RevertWhen_ClaimSignedByOtherKey() public {
        bytes32 id = openChannel(SALT);
        (, uint256 otherKey) = makeAddrAndKey("other");
        bytes memory signature = signVoucher(otherKey, id, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, id));
        channels.claim(id, 10e6, signature);
    }

    function test_RevertWhen_ClaimSignatureMalformed() public {
        bytes32 id = openChannel(SALT);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, id));
        channels.claim(id, 10e6, hex"1234");
    }

    function test_RevertWhen_ClaimUnknownChannel() public {
        bytes32 unknown = keccak256("unknown");
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelNotFound.selector, unknown));
        channels.claim(unknown, 1, "");
    }

    function test_WhenClaimWhilePaused_StillPays() public {
        bytes32 id = openChannel(SALT);
        vm.prank(admin);
        channels.pause();
        claimAs(recipient, id, 10e6);
        assertEq(usdc.balanceOf(recipient), 10e6);
    }

    function test_WhenPayerIsSmartWallet_ERC1271VoucherAccepted() public {
        MockERC1271Wallet wallet = new MockERC1271Wallet(payer);
        usdc.mint(address(wallet), DEPOSIT);
        vm.prank(address(wallet));
        usdc.approve(address(channels), DEPOSIT);
        uint256 expiresAt = _expiry();
        vm.prank(address(wallet));
        bytes32 id = channels.openChannel(SALT, recipient, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        // The wallet's owner key signs; the wallet approves through ERC-1271 (with a trailing byte, as wallets that
        // wrap signatures send).
        bytes memory signature = abi.encodePacked(voucher(id, 10e6), hex"00");
        vm.prank(recipient);
        assertEq(channels.claim(id, 10e6, signature), 10e6);
        (, uint256 otherKey) = makeAddrAndKey("other");
        bytes memory forged = signVoucher(otherKey, id, 20e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, id));
        channels.claim(id, 20e6, forged);
    }

    function test_ClaimableView() public {
        bytes32 id = openChannel(SALT);
        assertEq(channels.claimable(id, 30e6), 30e6);
        assertEq(channels.claimable(id, 300e6), DEPOSIT);
        claimAs(recipient, id, 30e6);
        assertEq(channels.claimable(id, 20e6), 0);
        assertEq(channels.claimable(id, 40e6), 10e6);
        assertEq(channels.claimable(keccak256("unknown"), 40e6), 0);
        vm.prank(payer);
        channels.startClose(id);
        assertEq(channels.claimable(id, 40e6), 10e6);
        vm.warp(block.timestamp + 1 days);
        assertEq(channels.claimable(id, 40e6), 0);
    }

    /*//////////////////////////////////////////////////////////////
                              CLAIM BATCH
    //////////////////////////////////////////////////////////////*/

    function test_WhenBatchClaimed_EachItemIsolated() public {
        bytes32 a = openChannel(keccak256("a"));
        bytes32 b = openChannel(keccak256("b"));
        bytes32 c = openChannel(keccak256("c"));
        claimAs(recipient, c, 50e6);
        (, uint256 otherKey) = makeAddrAndKey("other");

        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](5);
        items[0] = IPaymentChannel.VoucherClaim(a, 10e6, voucher(a, 10e6));
        items[1] = IPaymentChannel.VoucherClaim(b, 20e6, signVoucher(otherKey, b, 20e6)); // bad signature
        items[2] = IPaymentChannel.VoucherClaim(c, 40e6, voucher(c, 40e6)); // below what was claimed
        items[3] = IPaymentChannel.VoucherClaim(keccak256("nope"), 1, ""); // unknown
        items[4] = IPaymentChannel.VoucherClaim(b, 25e6, voucher(b, 25e6));

        vm.expectEmit(address(channels));
        emit IPaymentChannel.ClaimSkipped(b, 1, IPaymentChannel.ClaimOutcome.InvalidSignature);
        vm.prank(recipient);
        IPaymentChannel.ClaimOutcome[] memory outcomes = channels.claimBatch(items);
        assertEq(uint8(outcomes[0]), uint8(IPaymentChannel.ClaimOutcome.Claimed));
        assertEq(uint8(outcomes[1]), uint8(IPaymentChannel.ClaimOutcome.InvalidSignature));
        assertEq(uint8(outcomes[2]), uint8(IPaymentChannel.ClaimOutcome.NothingToClaim));
        assertEq(uint8(outcomes[3]), uint8(IPaymentChannel.ClaimOutcome.NotFound));
        assertEq(uint8(outcomes[4]), uint8(IPaymentChannel.ClaimOutcome.Claimed));
        assertEq(usdc.balanceOf(recipient), 50e6 + 10e6 + 25e6);
        assertEq(channels.getChannel(a).claimed, 10e6);
        assertEq(channels.getChannel(b).claimed, 25e6);
        assertEq(channels.getChannel(c).claimed, 50e6);
    }

    function test_WhenBatchHasOtherRecipientsChannel_ItemUnauthorized() public {
        bytes32 mine = openChannel(keccak256("a"));
        address other = makeAddr("otherRecipient");
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        bytes32 theirs = channels.openChannel(keccak256("b"), other, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](2);
        items[0] = IPaymentChannel.VoucherClaim(theirs, 10e6, voucher(theirs, 10e6));
        items[1] = IPaymentChannel.VoucherClaim(mine, 10e6, voucher(mine, 10e6));
        vm.prank(recipient);
        IPaymentChannel.ClaimOutcome[] memory outcomes = channels.claimBatch(items);
        assertEq(uint8(outcomes[0]), uint8(IPaymentChannel.ClaimOutcome.Unauthorized));
        assertEq(uint8(outcomes[1]), uint8(IPaymentChannel.ClaimOutcome.Claimed));
        assertEq(usdc.balanceOf(other), 0);
        assertEq(channels.getChannel(theirs).claimed, 0);
    }

    function test_WhenOperatorBatchesManyRecipients_EachIsPaid() public {
        address second = makeAddr("second");
        vm.prank(recipient);
        channels.setClaimOperator(operator, true);
        vm.prank(second);
        channels.setClaimOperator(operator, true);
        bytes32 a = openChannel(keccak256("a"));
        uint256 expiresAt = _expiry();
        vm.prank(payer);
        bytes32 b = channels.openChannel(keccak256("b"), second, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        bytes32 c = openChannel(keccak256("c"));
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](3);
        items[0] = IPaymentChannel.VoucherClaim(a, 1e6, voucher(a, 1e6));
        items[1] = IPaymentChannel.VoucherClaim(b, 2e6, voucher(b, 2e6));
        items[2] = IPaymentChannel.VoucherClaim(c, 3e6, voucher(c, 3e6));
        vm.prank(operator);
        channels.claimBatch(items);
        assertEq(usdc.balanceOf(recipient), 4e6);
        assertEq(usdc.balanceOf(second), 2e6);
        assertEq(usdc.balanceOf(operator), 0);
    }

    function test_WhenBatchClosedOrChallengeOver_ItemNotClaimable() public {
        bytes32 closed = openChannel(keccak256("a"));
        vm.prank(recipient);
        channels.close(closed, 0, "");
        bytes32 over = openChannel(keccak256("b"), DEPOSIT, block.timestamp + 1);
        vm.prank(payer);
        channels.startClose(over);
        vm.warp(block.timestamp + CHALLENGE);
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](2);
        items[0] = IPaymentChannel.VoucherClaim(closed, 1e6, voucher(closed, 1e6));
        items[1] = IPaymentChannel.VoucherClaim(over, 1e6, voucher(over, 1e6));
        vm.prank(recipient);
        IPaymentChannel.ClaimOutcome[] memory outcomes = channels.claimBatch(items);
        assertEq(uint8(outcomes[0]), uint8(IPaymentChannel.ClaimOutcome.NotClaimable));
        assertEq(uint8(outcomes[1]), uint8(IPaymentChannel.ClaimOutcome.NotClaimable));
        assertEq(usdc.balanceOf(recipient), 0);
    }

    function test_RevertWhen_BatchEmpty() public {
        vm.prank(recipient);
        vm.expectRevert(IPaymentChannel.PaymentChannelEmptyBatch.selector);
        channels.claimBatch(new IPaymentChannel.VoucherClaim[](0));
    }

    /*//////////////////////////////////////////////////////////////
                                 CLOSE
    //////////////////////////////////////////////////////////////*/

    function test_WhenRecipientCloses_PaysVoucherAndRefundsRest() public {
        bytes32 id = openChannel(SALT);
        claimAs(recipient, id, 10e6);
        uint256 payerBefore = usdc.balanceOf(payer);
        bytes memory signature = voucher(id, 35e6);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelClosed(id, 35e6, DEPOSIT - 35e6);
        vm.prank(recipient);
        channels.close(id, 35e6, signature);
        assertEq(usdc.balanceOf(recipient), 35e6);
        assertEq(usdc.balanceOf(payer) - payerBefore, DEPOSIT - 35e6);
        assertEq(usdc.balanceOf(address(channels)), 0);
        assertEq(uint8(_status(id)), uint8(IPaymentChannel.ChannelStatus.Closed));
    }

    function test_WhenRecipientClosesWithoutVoucher_RefundsUnclaimed() public {
        bytes32 id = openChannel(SALT);
        claimAs(recipient, id, 10e6);
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.prank(recipient);
        channels.close(id, 0, "");
        assertEq(usdc.balanceOf(payer) - payerBefore, DEPOSIT - 10e6);
        assertEq(usdc.balanceOf(address(channels)), 0);
    }

    function test_RevertWhen_CloseByPayerOrStranger() public {
        bytes32 id = openChannel(SALT);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, payer));
        channels.close(id, 0, "");
    }

    function test_RevertWhen_CloseWithBadVoucher() public {
        bytes32 id = openChannel(SALT);
        (, uint256 otherKey) = makeAddrAndKey("other");
        bytes memory signature = signVoucher(otherKey, id, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelInvalidSignature.selector, id));
        channels.close(id, 10e6, signature);
    }

    function test_RevertWhen_CloseAlreadyClosed() public {
        bytes32 id = openChannel(SALT);
        vm.prank(recipient);
        channels.close(id, 0, "");
        vm.prank(recipient);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelInvalidStatus.selector, id, IPaymentChannel.ChannelStatus.Closed
            )
        );
        channels.close(id, 0, "");
    }

    function test_WhenPayerStartsClose_ChallengeRunsUntilLaterOfPeriodAndExpiry() public {
        uint256 expiresAt = block.timestamp + 1 days;
        bytes32 id = openChannel(SALT, DEPOSIT, expiresAt);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.ChannelCloseStarted(id, expiresAt);
        vm.prank(payer);
        assertEq(channels.startClose(id), expiresAt);
        assertEq(uint8(_status(id)), uint8(IPaymentChannel.ChannelStatus.Closing));

        vm.warp(expiresAt + 1);
        bytes32 other = openChannel(keccak256("other"), DEPOSIT, block.timestamp + 10);
        vm.prank(payer);
        assertEq(channels.startClose(other), block.timestamp + CHALLENGE);
    }

    function test_RevertWhen_StartCloseByOtherOrTwice() public {
        bytes32 id = openChannel(SALT);
        vm.prank(recipient);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelUnauthorizedCaller.selector, id, recipient)
        );
        channels.startClose(id);
        vm.prank(payer);
        channels.startClose(id);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelInvalidStatus.selector, id, IPaymentChannel.ChannelStatus.Closing
            )
        );
        channels.startClose(id);
    }

    function test_WhenChallengeRunning_RecipientClaimsThenFinalizeRefundsRest() public {
        bytes32 id = openChannel(SALT, DEPOSIT, block.timestamp + 1);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(id);
        vm.warp(closesAt - 1);
        claimAs(recipient, id, 70e6);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengeNotOver.selector, id, closesAt));
        channels.finalizeClose(id);
        vm.warp(closesAt);
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.prank(stranger);
        channels.finalizeClose(id);
        assertEq(usdc.balanceOf(payer) - payerBefore, 30e6);
        assertEq(usdc.balanceOf(recipient), 70e6);
        assertEq(usdc.balanceOf(address(channels)), 0);
        assertEq(uint8(_status(id)), uint8(IPaymentChannel.ChannelStatus.Closed));
    }

    function test_RevertWhen_ClaimAfterChallengeOver() public {
        bytes32 id = openChannel(SALT, DEPOSIT, block.timestamp + 1);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(id);
        vm.warp(closesAt);
        bytes memory signature = voucher(id, 10e6);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengeOver.selector, id, closesAt));
        channels.claim(id, 10e6, signature);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelChallengeOver.selector, id, closesAt));
        channels.close(id, 10e6, signature);
    }

    function test_WhenChallengeRunning_RecipientClosesCooperatively() public {
        bytes32 id = openChannel(SALT);
        vm.prank(payer);
        channels.startClose(id);
        bytes memory signature = voucher(id, 60e6);
        vm.prank(recipient);
        channels.close(id, 60e6, signature);
        assertEq(usdc.balanceOf(recipient), 60e6);
        assertEq(usdc.balanceOf(address(channels)), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelInvalidStatus.selector, id, IPaymentChannel.ChannelStatus.Closed
            )
        );
        channels.finalizeClose(id);
    }

    function test_RevertWhen_TopUpOrExtendDuringChallenge() public {
        bytes32 id = openChannel(SALT);
        vm.prank(payer);
        channels.startClose(id);
        bytes memory closing = abi.encodeWithSelector(
            IPaymentChannel.PaymentChannelInvalidStatus.selector, id, IPaymentChannel.ChannelStatus.Closing
        );
        vm.prank(payer);
        vm.expectRevert(closing);
        channels.topUp(id, 1e6);
        vm.prank(payer);
        vm.expectRevert(closing);
        channels.extend(id, block.timestamp + 30 days);
    }

    function test_RevertWhen_FinalizeOpenChannel() public {
        bytes32 id = openChannel(SALT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPaymentChannel.PaymentChannelInvalidStatus.selector, id, IPaymentChannel.ChannelStatus.Open
            )
        );
        channels.finalizeClose(id);
    }

    /*//////////////////////////////////////////////////////////////
                          PUSH FALLBACK AND WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_WhenRecipientBlacklisted_ClaimCreditedAndPayerRefundUnaffected() public {
        BlacklistableStablecoin token = _blacklistableChannelToken();
        vm.prank(payer);
        bytes32 id = channels.openChannel(SALT, recipient, address(token), DEPOSIT, block.timestamp + 1, CHALLENGE);
        token.setBlacklisted(recipient, true);
        bytes memory signature = voucher(id, 40e6);
        vm.expectEmit(address(channels));
        emit IPaymentChannel.PayoutCredited(recipient, address(token), 40e6);
        vm.prank(recipient);
        channels.close(id, 40e6, signature);
        assertEq(token.balanceOf(payer), 1_000_000e6 - 40e6);
        assertEq(channels.withdrawableBalance(recipient, address(token)), 40e6);

        address cold = makeAddr("cold");
        vm.prank(recipient);
        assertEq(channels.withdraw(address(token), cold), 40e6);
        assertEq(token.balanceOf(cold), 40e6);
        assertEq(token.balanceOf(address(channels)), 0);
    }

    function test_WhenPayerBlacklisted_FinalizeCreditsRefund() public {
        BlacklistableStablecoin token = _blacklistableChannelToken();
        vm.prank(payer);
        bytes32 id = channels.openChannel(SALT, recipient, address(token), DEPOSIT, block.timestamp + 1, CHALLENGE);
        vm.prank(payer);
        uint256 closesAt = channels.startClose(id);
        token.setBlacklisted(payer, true);
        vm.warp(closesAt);
        channels.finalizeClose(id);
        assertEq(channels.withdrawableBalance(payer, address(token)), DEPOSIT);
        assertEq(uint8(_status(id)), uint8(IPaymentChannel.ChannelStatus.Closed));
    }

    function test_RevertWhen_WithdrawNothingOrToZero() public {
        vm.prank(recipient);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentChannel.PaymentChannelNothingToWithdraw.selector, recipient, address(usdc))
        );
        channels.withdraw(address(usdc), recipient);
        vm.prank(recipient);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAddress.selector);
        channels.withdraw(address(usdc), address(0));
    }

    /*//////////////////////////////////////////////////////////////
                             ADMIN AND VIEWS
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_AdminFunctionsCalledByStranger() public {
        bytes32 adminRole = channels.DEFAULT_ADMIN_ROLE();
        bytes32 pauserRole = channels.PAUSER_ROLE();
        vm.startPrank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, adminRole)
        );
        channels.setTokenAllowed(address(usdc), false);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, pauserRole)
        );
        channels.pause();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, pauserRole)
        );
        channels.unpause();
        vm.stopPrank();
    }

    function test_RevertWhen_AllowlistingZeroOrCodeless() public {
        vm.startPrank(admin);
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAddress.selector);
        channels.setTokenAllowed(address(0), true);
        vm.expectRevert(abi.encodeWithSelector(IPaymentChannel.PaymentChannelTokenHasNoCode.selector, stranger));
        channels.setTokenAllowed(stranger, true);
        vm.stopPrank();
    }

    function test_WhenUnpaused_OpensAgain() public {
        vm.startPrank(admin);
        channels.pause();
        channels.unpause();
        vm.stopPrank();
        openChannel(SALT);
        assertTrue(channels.isTokenAllowed(address(usdc)));
    }

    function test_DomainMatchesEIP712() public view {
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            channels.eip712Domain();
        assertEq(fields, hex"0f");
        assertEq(name, "x402 PaymentChannel");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(channels));
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifying
            )
        );
        assertEq(channels.DOMAIN_SEPARATOR(), expected);
        bytes32 id = keccak256("x");
        bytes32 structHash = keccak256(abi.encode(keccak256("Voucher(bytes32 channelId,uint256 amount)"), id, 5));
        assertEq(channels.voucherDigest(id, 5), keccak256(abi.encodePacked("\x19\x01", expected, structHash)));
    }

    function test_RevertWhen_InitializedTwiceOrImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        channels.initialize(stranger, new address[](0));
        PaymentChannel implementation = new PaymentChannel();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        implementation.initialize(stranger, new address[](0));
    }

    function test_RevertWhen_InitializedWithZeroAdmin() public {
        PaymentChannel implementation = new PaymentChannel();
        vm.expectRevert(IPaymentChannel.PaymentChannelZeroAddress.selector);
        new ERC1967Proxy(
            address(implementation), abi.encodeCall(PaymentChannel.initialize, (address(0), new address[](0)))
        );
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _blacklistableChannelToken() internal returns (BlacklistableStablecoin token) {
        token = new BlacklistableStablecoin(address(this));
        token.mint(payer, 1_000_000e6);
        vm.prank(admin);
        channels.setTokenAllowed(address(token), true);
        vm.prank(payer);
        token.approve(address(channels), type(uint256).max);
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash));
    }

    function _signPermit(address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8, bytes32, bytes32)
    {
        bytes32 structHash =
            keccak256(abi.encode(usdc.PERMIT_TYPEHASH(), payer, spender, value, usdc.nonces(payer), deadline));
        return vm.sign(payerKey, _digest(structHash));
    }

    function _signReceive(uint256 value, bytes32 nonce) internal view returns (bytes memory) {
        bytes32 structHash = keccak256(
            abi.encode(
                usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
                payer,
                address(channels),
                value,
                0,
                block.timestamp + 1 hours,
                nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, _digest(structHash));
        return abi.encodePacked(r, s, v);
    }

    function _signOpenAuthorization(bytes32 id, address to, uint256 value, uint256 expiresAt, uint256 challengePeriod)
        internal
        view
        returns (bytes memory)
    {
        return _signReceive(value, channels.openAuthorizationNonce(id, to, expiresAt, challengePeriod));
    }
}
