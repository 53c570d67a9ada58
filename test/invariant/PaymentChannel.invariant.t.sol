// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {BlacklistableStablecoin} from "../mocks/BlacklistableStablecoin.sol";
import {PaymentChannelHandler} from "./handlers/PaymentChannelHandler.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Test} from "forge-std/Test.sol";
import {console} from "forge-std/console.sol";

/// @notice PaymentChannel under random opens, top-ups, vouchers of any amount, batch claims, both kinds of close,
/// blacklisted accounts and time jumps, with a USDC-like blacklisting token so refused pushes are exercised.
contract PaymentChannelInvariantTest is Test {
    uint256 internal constant MINT = 1_000_000e6;

    BlacklistableStablecoin internal token;
    PaymentChannel internal channels;
    PaymentChannelHandler internal handler;
    uint256 internal supply;

    function setUp() public {
        vm.warp(1_700_000_000);
        token = new BlacklistableStablecoin(address(this));
        address[] memory tokens = new address[](1);
        tokens[0] = address(token);
        channels = PaymentChannel(
            address(
                new ERC1967Proxy(
                    address(new PaymentChannel()), abi.encodeCall(PaymentChannel.initialize, (address(this), tokens))
                )
            )
        );
        handler = new PaymentChannelHandler(channels, token);
        for (uint256 i; i < 3; ++i) {
            address from = handler.payer(i);
            token.mint(from, MINT);
            vm.prank(from);
            token.approve(address(channels), type(uint256).max);
        }
        // The handler blacklists and unblacklists accounts.
        token.transferOwnership(address(handler));
        supply = token.totalSupply();
        targetContract(address(handler));
    }

    function _channel(uint256 i) internal view returns (bytes32 id, IPaymentChannel.Channel memory c) {
        id = handler.channelIds(i);
        c = channels.getChannel(id);
    }

    function invariant_TokensHeldEqualOpenBalancesPlusCredits() public view {
        uint256 owed;
        for (uint256 i; i < handler.channelCount(); ++i) {
            (, IPaymentChannel.Channel memory c) = _channel(i);
            if (c.status != IPaymentChannel.ChannelStatus.Closed) owed += uint256(c.deposit) - c.claimed;
        }
        for (uint256 i; i < 3; ++i) {
            owed += channels.withdrawableBalance(handler.payer(i), address(token));
            owed += channels.withdrawableBalance(handler.recipient(i), address(token));
        }
        assertEq(token.balanceOf(address(channels)), owed);
    }

    function invariant_PaidOutNeverExceedsDeposit() public view {
        for (uint256 i; i < handler.channelCount(); ++i) {
            (bytes32 id, IPaymentChannel.Channel memory c) = _channel(i);
            assertLe(c.claimed, c.deposit);
            if (c.status == IPaymentChannel.ChannelStatus.Closed) {
                assertEq(uint256(c.claimed) + handler.refunded(id), c.deposit, "closed: claimed + refund == deposit");
            }
        }
    }

    function invariant_RecipientsReceivedExactlyWhatWasClaimed() public view {
        uint256 claimed;
        for (uint256 i; i < handler.channelCount(); ++i) {
            (, IPaymentChannel.Channel memory c) = _channel(i);
            claimed += c.claimed;
        }
        uint256 received;
        for (uint256 i; i < 3; ++i) {
            address account = handler.recipient(i);
            received += token.balanceOf(account) + channels.withdrawableBalance(account, address(token))
            + handler.withdrawnBy(account);
        }
        assertEq(received, claimed);
    }

    function invariant_PayersGotBackExactlyTheRefunds() public view {
        uint256 held;
        for (uint256 i; i < 3; ++i) {
            address account = handler.payer(i);
            held += token.balanceOf(account) + channels.withdrawableBalance(account, address(token))
            + handler.withdrawnBy(account);
        }
        assertEq(held, 3 * MINT - handler.totalDeposited() + handler.totalRefunded());
    }

    function invariant_ClaimedNeverDecreases() public view {
        assertFalse(handler.claimedEverDecreased());
    }

    function invariant_NoTokensCreated() public view {
        assertEq(token.totalSupply(), supply);
    }

    function afterInvariant() external view {
        console.log("channels opened", handler.channelCount());
        console.log("claims", handler.calls(handler.claim.selector));
        console.log("batch claims", handler.calls(handler.claimBatch.selector));
        console.log("recipient closes", handler.calls(handler.closeByRecipient.selector));
        console.log("finalized", handler.calls(handler.finalize.selector));
        console.log("withdrawals", handler.calls(handler.withdraw.selector));
    }
}
