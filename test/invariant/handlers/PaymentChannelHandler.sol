// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PaymentChannel} from "../../../contracts/PaymentChannel.sol";
import {IPaymentChannel} from "../../../contracts/interfaces/IPaymentChannel.sol";
import {BlacklistableStablecoin} from "../../mocks/BlacklistableStablecoin.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

/// @notice Drives PaymentChannel with three payers (known keys) and three recipients: opens, tops up, extends,
/// signs and claims vouchers of any amount (lower, replayed, above the deposit), batch claims, closes both ways,
/// blacklists accounts so pushes fall back to credits, withdraws, and moves time. Every action checks its
/// preconditions and returns early instead of reverting; ghost totals record what each party was paid.
contract PaymentChannelHandler is CommonBase, StdUtils {
    uint256 internal constant ACTORS = 3;

    PaymentChannel public immutable channels;
    BlacklistableStablecoin public immutable token;

    bytes32[] public channelIds;
    mapping(bytes4 selector => uint256) public calls;
    mapping(bytes32 channelId => uint256) public refunded;
    mapping(bytes32 channelId => uint256) public highestClaimedSeen;
    mapping(address account => uint256) public withdrawnBy;
    uint256 public totalDeposited;
    uint256 public totalRefunded;
    bool public claimedEverDecreased;
    uint256 internal saltCounter;

    constructor(PaymentChannel channels_, BlacklistableStablecoin token_) {
        channels = channels_;
        token = token_;
    }

    function payer(uint256 seed) public pure returns (address) {
        return vm.addr(_payerKey(seed));
    }

    function recipient(uint256 seed) public pure returns (address) {
        return address(uint160(0xBEEF0000 + seed % ACTORS));
    }

    function channelCount() external view returns (uint256) {
        return channelIds.length;
    }

    /*//////////////////////////////////////////////////////////////
                                 ACTIONS
    //////////////////////////////////////////////////////////////*/

    function open(uint256 payerSeed, uint256 recipientSeed, uint256 amount, uint256 lifetime, uint256 challenge)
        external
    {
        if (channels.paused()) return;
        address from = payer(payerSeed);
        amount = _bound(amount, 1, 50_000e6);
        if (token.balanceOf(from) < amount || token.isBlacklisted(from)) return;
        ++calls[this.open.selector];
        lifetime = _bound(lifetime, 1, 10 days);
        challenge = _bound(challenge, 15 minutes, 3 days);
        bytes32 salt = bytes32(++saltCounter);
        vm.prank(from);
        bytes32 id = channels.openChannel(
            salt, recipient(recipientSeed), address(token), amount, block.timestamp + lifetime, challenge
        );
        channelIds.push(id);
        totalDeposited += amount;
    }

    function topUp(uint256 channelSeed, uint256 amount) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found || c.status != IPaymentChannel.ChannelStatus.Open || channels.paused()) return;
        amount = _bound(amount, 1, 10_000e6);
        if (token.balanceOf(c.payer) < amount || token.isBlacklisted(c.payer)) return;
        ++calls[this.topUp.selector];
        vm.prank(c.payer);
        channels.topUp(id, amount);
        totalDeposited += amount;
    }

    function extend(uint256 channelSeed, uint256 by) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found || c.status != IPaymentChannel.ChannelStatus.Open) return;
        ++calls[this.extend.selector];
        vm.prank(c.payer);
        channels.extend(id, uint256(c.expiresAt) + _bound(by, 1, 5 days));
    }

    /// @dev Any voucher amount: lower than claimed, equal (a replay), within or above the deposit.
    function claim(uint256 channelSeed, uint256 amount) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found) return;
        amount = _bound(amount, 0, uint256(c.deposit) * 2);
        uint256 expected = channels.claimable(id, amount);
        if (expected == 0) return;
        ++calls[this.claim.selector];
        bytes memory signature = _sign(c.payer, id, amount);
        vm.prank(c.recipient);
        uint256 paid = channels.claim(id, amount, signature);
        require(paid == expected, "claim paid other than claimable");
        _observe(id);
    }

    function claimBatch(uint256 seed, uint256 count) external {
        uint256 total = channelIds.length;
        if (total == 0) return;
        ++calls[this.claimBatch.selector];
        count = _bound(count, 1, 6);
        address caller = recipient(seed);
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](count);
        uint256[] memory expected = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            bytes32 id = channelIds[uint256(keccak256(abi.encode(seed, i))) % total];
            IPaymentChannel.Channel memory c = channels.getChannel(id);
            uint256 amount = uint256(keccak256(abi.encode(seed, i, "amount"))) % (uint256(c.deposit) * 2 + 1);
            items[i] = IPaymentChannel.VoucherClaim(id, amount, _sign(c.payer, id, amount));
            // Items repeating a channel see the claims of the earlier items; only a caller's own channels pay.
            expected[i] = c.recipient == caller ? 1 : 0;
        }
        vm.prank(caller);
        IPaymentChannel.ClaimOutcome[] memory outcomes = channels.claimBatch(items);
        for (uint256 i; i < count; ++i) {
            if (outcomes[i] == IPaymentChannel.ClaimOutcome.Claimed) {
                require(expected[i] == 1, "batch paid another recipient's channel");
            }
            _observe(items[i].channelId);
        }
    }

    function closeByRecipient(uint256 channelSeed, uint256 amount) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found || !_claimableStatus(c)) return;
        ++calls[this.closeByRecipient.selector];
        amount = _bound(amount, 0, uint256(c.deposit) * 2);
        uint256 paid = channels.claimable(id, amount);
        bytes memory signature = paid == 0 ? bytes("") : _sign(c.payer, id, amount);
        vm.prank(c.recipient);
        channels.close(id, amount, signature);
        uint256 refund = uint256(c.deposit) - c.claimed - paid;
        refunded[id] = refund;
        totalRefunded += refund;
        _observe(id);
    }

    function startClose(uint256 channelSeed) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found || c.status != IPaymentChannel.ChannelStatus.Open) return;
        ++calls[this.startClose.selector];
        vm.prank(c.payer);
        channels.startClose(id);
    }

    function finalize(uint256 channelSeed) external {
        (bool found, bytes32 id, IPaymentChannel.Channel memory c) = _channel(channelSeed);
        if (!found || c.status != IPaymentChannel.ChannelStatus.Closing || block.timestamp < c.closesAt) return;
        ++calls[this.finalize.selector];
        channels.finalizeClose(id);
        uint256 refund = uint256(c.deposit) - c.claimed;
        refunded[id] = refund;
        totalRefunded += refund;
        _observe(id);
    }

    function setBlacklisted(uint256 seed, bool listed) external {
        ++calls[this.setBlacklisted.selector];
        address account = seed % 2 == 0 ? payer(seed / 2) : recipient(seed / 2);
        token.setBlacklisted(account, listed);
    }

    function withdraw(uint256 seed) external {
        address account = seed % 2 == 0 ? payer(seed / 2) : recipient(seed / 2);
        uint256 balance = channels.withdrawableBalance(account, address(token));
        if (balance == 0) return;
        ++calls[this.withdraw.selector];
        vm.prank(account);
        channels.withdraw(address(token), address(0xCAFE));
        withdrawnBy[account] += balance;
    }

    function warp(uint256 seconds_) external {
        ++calls[this.warp.selector];
        vm.warp(block.timestamp + _bound(seconds_, 1, 2 days));
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    function _channel(uint256 seed) internal view returns (bool, bytes32, IPaymentChannel.Channel memory c) {
        if (channelIds.length == 0) return (false, bytes32(0), c);
        bytes32 id = channelIds[seed % channelIds.length];
        return (true, id, channels.getChannel(id));
    }

    function _claimableStatus(IPaymentChannel.Channel memory c) internal view returns (bool) {
        return c.status == IPaymentChannel.ChannelStatus.Open
            || (c.status == IPaymentChannel.ChannelStatus.Closing && block.timestamp < c.closesAt);
    }

    function _sign(address from, bytes32 id, uint256 amount) internal view returns (bytes memory) {
        uint256 key;
        for (uint256 i; i < ACTORS; ++i) {
            if (payer(i) == from) key = _payerKey(i);
        }
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, channels.voucherDigest(id, amount));
        return abi.encodePacked(r, s, v);
    }

    function _payerKey(uint256 seed) internal pure returns (uint256) {
        return 0xA11CE + seed % ACTORS;
    }

    /// @dev Records whether a channel's claimed total ever went down.
    function _observe(bytes32 id) internal {
        uint256 claimed = channels.getChannel(id).claimed;
        if (claimed < highestClaimedSeen[id]) claimedEverDecreased = true;
        highestClaimedSeen[id] = claimed;
    }
}
