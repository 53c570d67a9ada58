// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPaymentChannel} from "../../contracts/interfaces/IPaymentChannel.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {RecurringFixture} from "../utils/RecurringFixture.sol";

/// @notice Transaction-level gas (tests run isolated) of PaymentChannel and Subscription next to a plain ERC-20
/// transfer measured the same way, written to snapshots/Recurring.json and compared in CI. Batch figures are also
/// recorded per item. Steady state: every account already holds tokens and every channel or subscription has been
/// claimed or charged once, as in a running service.
contract RecurringGasTest is RecurringFixture {
    string internal constant GROUP = "Recurring";
    uint256 internal constant CHANNELS = 10;
    uint256 internal constant SUBSCRIPTIONS = 100;

    bytes32 internal channelId;
    uint256 internal subscriptionId;

    function setUp() public override {
        super.setUp();
        usdc.mint(recipient, 1);
        usdc.mint(keeper, 1);
        channelId = openChannel("gas");
        claimAs(recipient, channelId, 1e6);
        subscriptionId = subscribe();
        executeAs(keeper, subscriptionId);
        vm.warp(block.timestamp + PERIOD);
    }

    function test_Gas_PlainTransfer() public {
        vm.prank(payer);
        assertTrue(usdc.transfer(recipient, 1e6));
        vm.snapshotGasLastCall(GROUP, "erc20_transfer");
    }

    /*//////////////////////////////////////////////////////////////
                                CHANNELS
    //////////////////////////////////////////////////////////////*/

    function test_Gas_OpenChannel() public {
        uint256 expiresAt = block.timestamp + 1 days;
        vm.prank(payer);
        channels.openChannel("second", recipient, address(usdc), DEPOSIT, expiresAt, CHALLENGE);
        vm.snapshotGasLastCall(GROUP, "channel_open");
    }

    function test_Gas_TopUp() public {
        vm.prank(payer);
        channels.topUp(channelId, 10e6);
        vm.snapshotGasLastCall(GROUP, "channel_topUp");
    }

    function test_Gas_Claim() public {
        bytes memory signature = voucher(channelId, 2e6);
        vm.prank(recipient);
        channels.claim(channelId, 2e6, signature);
        vm.snapshotGasLastCall(GROUP, "channel_claim");
    }

    function test_Gas_CooperativeClose() public {
        bytes memory signature = voucher(channelId, 2e6);
        vm.prank(recipient);
        channels.close(channelId, 2e6, signature);
        vm.snapshotGasLastCall(GROUP, "channel_close_cooperative");
    }

    function test_Gas_UnilateralClose() public {
        vm.prank(payer);
        uint256 closesAt = channels.startClose(channelId);
        vm.snapshotGasLastCall(GROUP, "channel_startClose");
        vm.warp(closesAt);
        channels.finalizeClose(channelId);
        vm.snapshotGasLastCall(GROUP, "channel_finalizeClose");
    }

    /// @dev Ten agents, each with its own channel to one API, claimed together by the API.
    function test_Gas_ClaimBatch_10() public {
        _claimBatch(CHANNELS, "channel_claimBatch_10");
    }

    /// @dev The same with one channel: (batch of 10 - batch of 1) / 9 is the marginal cost of a channel.
    function test_Gas_ClaimBatch_1() public {
        _claimBatch(1, "channel_claimBatch_1");
    }

    function _claimBatch(uint256 count, string memory name) internal {
        IPaymentChannel.VoucherClaim[] memory items = new IPaymentChannel.VoucherClaim[](count);
        for (uint256 i; i < count; ++i) {
            (address agent, uint256 key) = makeAddrAndKey(string.concat("agent-", vm.toString(i)));
            usdc.mint(agent, DEPOSIT);
            vm.startPrank(agent);
            usdc.approve(address(channels), DEPOSIT);
            bytes32 id =
                channels.openChannel("gas", recipient, address(usdc), DEPOSIT, block.timestamp + 1 days, CHALLENGE);
            vm.stopPrank();
            items[i] = IPaymentChannel.VoucherClaim(id, 2e6, signVoucher(key, id, 2e6));
            bytes memory first = signVoucher(key, id, 1e6);
            vm.prank(recipient);
            channels.claim(id, 1e6, first);
        }
        vm.prank(recipient);
        channels.claimBatch(items);
        uint256 used = vm.snapshotGasLastCall(GROUP, name);
        if (count > 1) vm.snapshotValue(GROUP, string.concat(name, "_perChannel"), used / count);
    }

    /*//////////////////////////////////////////////////////////////
                             SUBSCRIPTIONS
    //////////////////////////////////////////////////////////////*/

    function test_Gas_CreateSubscription() public {
        ISubscription.Terms memory t = terms(PRICE, PERIOD);
        vm.prank(payer);
        subscriptions.createSubscription(t, 0);
        vm.snapshotGasLastCall(GROUP, "subscription_create");
    }

    function test_Gas_Execute() public {
        vm.prank(keeper);
        subscriptions.execute(subscriptionId);
        vm.snapshotGasLastCall(GROUP, "subscription_execute");
    }

    function test_Gas_Cancel() public {
        vm.prank(payer);
        subscriptions.cancel(subscriptionId);
        vm.snapshotGasLastCall(GROUP, "subscription_cancel");
    }

    /// @dev 100 subscribers paying one recipient from their wallets (unlimited allowance), second period.
    function test_Gas_ExecuteBatch_100_Allowance() public {
        _executeBatch100(type(uint256).max, 0, "subscription_executeBatch_100_allowance");
    }

    /// @dev As above, with allowances for a year of charges, so each charge also writes the allowance.
    function test_Gas_ExecuteBatch_100_FiniteAllowance() public {
        _executeBatch100(12 * PRICE, 0, "subscription_executeBatch_100_finiteAllowance");
    }

    /// @dev As above, paid from deposits held by the contract: no token call per charge.
    function test_Gas_ExecuteBatch_100_Deposit() public {
        _executeBatch100(0, 12 * PRICE, "subscription_executeBatch_100_deposit");
    }

    function _executeBatch100(uint256 allowance, uint256 initialDeposit, string memory name) internal {
        uint256[] memory ids = new uint256[](SUBSCRIPTIONS);
        uint256 start = block.timestamp;
        for (uint256 i; i < SUBSCRIPTIONS; ++i) {
            address subscriber = makeAddr(string.concat("subscriber-", vm.toString(i)));
            usdc.mint(subscriber, 1000e6);
            ISubscription.Terms memory t = terms(PRICE, PERIOD);
            vm.startPrank(subscriber);
            usdc.approve(address(subscriptions), allowance + initialDeposit);
            ids[i] = subscriptions.createSubscription(t, initialDeposit);
            vm.stopPrank();
        }
        vm.prank(keeper);
        subscriptions.executeBatch(ids);
        vm.warp(start + PERIOD);
        vm.prank(keeper);
        subscriptions.executeBatch(ids);
        uint256 used = vm.snapshotGasLastCall(GROUP, name);
        vm.snapshotValue(GROUP, string.concat(name, "_perSubscription"), used / SUBSCRIPTIONS);
        assertEq(subscriptions.getSubscription(ids[SUBSCRIPTIONS - 1]).count, 2);
    }
}
