// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";

/// @notice Property tests of channel payouts over random vouchers, deposits, top-ups and close times.
contract PaymentChannelFuzzTest is RecurringFixture {
    /// @dev Whatever order vouchers arrive in, the recipient ends up with min(highest voucher, deposit).
    function testFuzz_ClaimsPayHighestVoucherCappedAtDeposit(uint96 deposit, uint256[6] memory vouchers) public {
        deposit = uint96(bound(deposit, 1, 500_000e6));
        bytes32 id = openChannel("fuzz", deposit, block.timestamp + 1 days);
        uint256 highest;
        for (uint256 i; i < vouchers.length; ++i) {
            uint256 amount = bound(vouchers[i], 0, uint256(deposit) * 2);
            uint256 expected = channels.claimable(id, amount);
            bytes memory signature = voucher(id, amount);
            vm.prank(recipient);
            if (expected == 0) {
                vm.expectRevert();
                channels.claim(id, amount, signature);
            } else {
                assertEq(channels.claim(id, amount, signature), expected);
            }
            if (amount > highest) highest = amount;
        }
        uint256 paid = highest < deposit ? highest : deposit;
        assertEq(usdc.balanceOf(recipient), paid);
        assertEq(channels.getChannel(id).claimed, paid);
        assertEq(usdc.balanceOf(address(channels)), deposit - paid);
    }

    /// @dev A cooperative close splits the deposit exactly, whatever was claimed before and whatever the last
    /// voucher says (lower, equal or above the deposit).
    function testFuzz_CooperativeCloseSplitsDepositExactly(uint96 deposit, uint256 claimedFirst, uint256 last) public {
        deposit = uint96(bound(deposit, 1, 500_000e6));
        bytes32 id = openChannel("fuzz", deposit, block.timestamp + 1 days);
        claimedFirst = bound(claimedFirst, 0, deposit);
        if (claimedFirst != 0) claimAs(recipient, id, claimedFirst);
        last = bound(last, 0, uint256(deposit) * 2);
        uint256 payerBefore = usdc.balanceOf(payer);
        bytes memory signature = voucher(id, last);
        vm.prank(recipient);
        channels.close(id, last, signature);
        uint256 toRecipient = last > claimedFirst ? (last < deposit ? last : deposit) : claimedFirst;
        assertEq(usdc.balanceOf(recipient), toRecipient);
        assertEq(usdc.balanceOf(payer) - payerBefore, deposit - toRecipient);
        assertEq(usdc.balanceOf(address(channels)), 0);
    }

    /// @dev The challenge always lasts at least the channel's period and never ends before the expiry; claims work
    /// until its last second and never after.
    function testFuzz_ChallengeWindow(uint256 lifetime, uint256 challenge, uint256 startAfter) public {
        lifetime = bound(lifetime, 1, 365 days);
        challenge = bound(challenge, channels.MIN_CHALLENGE_PERIOD(), channels.MAX_CHALLENGE_PERIOD());
        uint256 expiresAt = block.timestamp + lifetime;
        vm.prank(payer);
        bytes32 id = channels.openChannel("fuzz", recipient, address(usdc), DEPOSIT, expiresAt, challenge);
        vm.warp(block.timestamp + bound(startAfter, 0, 400 days));
        vm.prank(payer);
        uint256 closesAt = channels.startClose(id);
        assertGe(closesAt, block.timestamp + challenge);
        assertGe(closesAt, expiresAt);
        assertTrue(closesAt == block.timestamp + challenge || closesAt == expiresAt);

        vm.warp(closesAt - 1);
        claimAs(recipient, id, 1e6);
        vm.warp(closesAt);
        assertEq(channels.claimable(id, 2e6), 0);
        channels.finalizeClose(id);
        assertEq(uint8(channels.getChannel(id).status), uint8(IPaymentChannel.ChannelStatus.Closed));
        assertEq(usdc.balanceOf(recipient), 1e6);
    }

    /// @dev Top-ups add exactly what they pull and a voucher signed for more than the deposit becomes payable as
    /// the deposit grows.
    function testFuzz_TopUpsRaiseWhatAVoucherPays(uint96 deposit, uint96 topUp, uint256 amount) public {
        deposit = uint96(bound(deposit, 1, 100_000e6));
        topUp = uint96(bound(topUp, 1, 100_000e6));
        amount = bound(amount, 1, uint256(deposit) + topUp);
        bytes32 id = openChannel("fuzz", deposit, block.timestamp + 1 days);
        bytes memory signature = voucher(id, amount);
        uint256 first = amount < deposit ? amount : deposit;
        vm.prank(recipient);
        assertEq(channels.claim(id, amount, signature), first);
        vm.prank(payer);
        channels.topUp(id, topUp);
        assertEq(channels.claimable(id, amount), amount - first);
        assertEq(usdc.balanceOf(address(channels)), uint256(deposit) + topUp - first);
    }
}
