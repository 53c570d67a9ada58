// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PaymentChannel} from "../../contracts/PaymentChannel.sol";
import {Subscription} from "../../contracts/Subscription.sol";
import {ISubscription} from "../../contracts/interfaces/ISubscription.sol";
import {DeploymentFixture} from "./DeploymentFixture.sol";

/// @notice PaymentChannel and Subscription as script/Deploy.s.sol deploys them, a funded payer/subscriber with a
/// known key, and voucher signing helpers.
abstract contract RecurringFixture is DeploymentFixture {
    uint256 internal constant DEPOSIT = 100e6; // 100 USDC
    uint256 internal constant CHALLENGE = 1 hours;
    uint256 internal constant PERIOD = 30 days;
    uint256 internal constant PRICE = 10e6; // 10 USDC per period

    PaymentChannel internal channels;
    Subscription internal subscriptions;

    address internal recipient = makeAddr("recipient");
    address internal keeper = makeAddr("keeper");
    address internal payer;
    uint256 internal payerKey;

    function setUp() public virtual {
        (payer, payerKey) = makeAddrAndKey("payer");
        deployStack(admin, 2000);
        channels = PaymentChannel(deployment.paymentChannel);
        subscriptions = Subscription(deployment.subscription);
        fundAndApprove(payer, address(channels), address(subscriptions));
    }

    /*//////////////////////////////////////////////////////////////
                                CHANNELS
    //////////////////////////////////////////////////////////////*/

    function openChannel(bytes32 salt) internal returns (bytes32 id) {
        return openChannel(salt, DEPOSIT, block.timestamp + 1 days);
    }

    function openChannel(bytes32 salt, uint256 amount, uint256 expiresAt) internal returns (bytes32 id) {
        vm.prank(payer);
        id = channels.openChannel(salt, recipient, address(usdc), amount, expiresAt, CHALLENGE);
    }

    function signVoucher(uint256 key, bytes32 channelId, uint256 amount) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, channels.voucherDigest(channelId, amount));
        return abi.encodePacked(r, s, v);
    }

    function voucher(bytes32 channelId, uint256 amount) internal view returns (bytes memory) {
        return signVoucher(payerKey, channelId, amount);
    }

    function claimAs(address caller, bytes32 channelId, uint256 amount) internal returns (uint256 paid) {
        bytes memory signature = voucher(channelId, amount);
        vm.prank(caller);
        paid = channels.claim(channelId, amount, signature);
    }

    /*//////////////////////////////////////////////////////////////
                             SUBSCRIPTIONS
    //////////////////////////////////////////////////////////////*/

    function terms(uint256 amount, uint256 period) internal view returns (ISubscription.Terms memory) {
        return ISubscription.Terms({
            recipient: recipient,
            token: address(usdc),
            amount: amount,
            period: period,
            startTime: 0,
            endsAt: 0,
            maxCount: 0
        });
    }

    function subscribe() internal returns (uint256 id) {
        return subscribe(terms(PRICE, PERIOD), 0);
    }

    function subscribe(ISubscription.Terms memory t, uint256 initialDeposit) internal returns (uint256 id) {
        vm.prank(payer);
        id = subscriptions.createSubscription(t, initialDeposit);
    }

    function executeAs(address caller, uint256 id) internal returns (ISubscription.ExecutionOutcome outcome) {
        vm.prank(caller);
        outcome = subscriptions.execute(id);
    }

    function one(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }
}
