// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {FiatToken, IFiatTokenV2_2} from "../utils/FiatToken.sol";
import {Fixture} from "../utils/Fixture.sol";

/// @dev Payee `i` of the benchmarks; i < 10.
function merchant(uint256 i) pure returns (address) {
    // forge-lint: disable-next-line(unsafe-typecast)
    return address(uint160(0x1000 + i));
}

/// @notice Gas of each user-facing operation, written to snapshots/X402Payment.json by
/// `vm.snapshotGasLastCall` and compared in CI (FORGE_SNAPSHOT_CHECK). Tests run isolated (foundry.toml), so each
/// figure is a whole transaction's gas, intrinsic and calldata gas included; bin/bench measures the same on anvil.
contract X402PaymentGasTest is Fixture {
    string internal constant GROUP = "X402Payment";

    function setUp() public override {
        super.setUp();
        vm.prank(payer);
        usdc.approve(address(payment), type(uint256).max);
        // Payees that already hold tokens, like working merchants.
        for (uint256 i; i < 10; ++i) {
            usdc.mint(merchant(i), 1);
        }
    }

    function test_Gas_CreateInvoice() public {
        vm.prank(payee);
        payment.createInvoice(keccak256("a"), address(usdc), AMOUNT, uint64(block.timestamp + 1 hours));
        vm.snapshotGasLastCall(GROUP, "createInvoice");
    }

    function test_Gas_Pay() public {
        bytes32 id = createInvoice(keccak256("a"));
        vm.prank(payer);
        payment.pay(id);
        vm.snapshotGasLastCall(GROUP, "pay");
    }

    function test_Gas_PayWithPermit() public {
        bytes32 id = createInvoice(keccak256("a"));
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, address(payment), AMOUNT, deadline);
        vm.prank(payer);
        payment.payWithPermit(id, deadline, v, r, s);
        vm.snapshotGasLastCall(GROUP, "payWithPermit");
    }

    function test_Gas_PayWithAuthorization() public {
        bytes32 id = createInvoice(keccak256("a"));
        bytes memory sig = signReceive(
            payerKey,
            usdc,
            payer,
            address(payment),
            AMOUNT,
            block.timestamp - 1,
            block.timestamp + 1 hours,
            payment.authorizationNonceOf(id)
        );
        payment.payWithAuthorization(id, payer, block.timestamp - 1, block.timestamp + 1 hours, sig);
        vm.snapshotGasLastCall(GROUP, "payWithAuthorization");
    }

    function test_Gas_Refund() public {
        bytes32 id = createAndPay(keccak256("a"));
        vm.prank(payee);
        payment.refund(id);
        vm.snapshotGasLastCall(GROUP, "refund");
    }

    function test_Gas_DisputeAndResolve() public {
        bytes32 id = createAndPay(keccak256("a"));
        vm.prank(payer);
        payment.dispute(id);
        vm.snapshotGasLastCall(GROUP, "dispute");
        vm.prank(arbiter);
        payment.resolveDispute(id, AMOUNT / 2);
        vm.snapshotGasLastCall(GROUP, "resolveDispute");
    }

    function test_Gas_ReleaseAndWithdraw() public {
        bytes32[] memory ids = new bytes32[](10);
        for (uint256 i; i < 10; ++i) {
            ids[i] = createAndPay(bytes32(i));
        }
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory one = new bytes32[](1);
        one[0] = ids[0];
        payment.release(one);
        vm.snapshotGasLastCall(GROUP, "release_1");
        bytes32[] memory nine = new bytes32[](9);
        for (uint256 i; i < 9; ++i) {
            nine[i] = ids[i + 1];
        }
        payment.release(nine);
        vm.snapshotGasLastCall(GROUP, "release_9");
        vm.prank(payee);
        payment.withdraw(address(usdc), payee);
        vm.snapshotGasLastCall(GROUP, "withdraw");
    }

    function test_Gas_TransferWithAuthorizationDirect() public {
        IX402Payment.TransferAuthorization memory a = authorization(payerKey, merchant(0), 1e6, bytes32(0));
        usdc.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, a.signature);
        vm.snapshotGasLastCall(GROUP, "token_transferWithAuthorization");
    }

    function test_Gas_SettleBatch_1() public {
        _settle(1, "settleBatch_1");
    }

    function test_Gas_SettleBatch_10() public {
        _settle(10, "settleBatch_10");
    }

    function test_Gas_SettleBatch_100() public {
        _settle(100, "settleBatch_100");
    }

    /// @dev `count` authorizations from `count` distinct payers to 10 merchants.
    function _settle(uint256 count, string memory name) internal {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](count);
        for (uint256 i; i < count; ++i) {
            uint256 key = uint256(keccak256(abi.encode("payer", i))) % (SECP256K1_N - 1) + 1;
            usdc.mint(vm.addr(key), 10e6);
            items[i] = authorization(key, merchant(i % 10), 1e6, keccak256(abi.encode(i)));
        }
        payment.settleBatch(address(usdc), items);
        vm.snapshotGasLastCall(GROUP, name);
    }
}

/// @notice The same batch against Circle's FiatTokenV2_2 behind FiatTokenProxy (real USDC logic).
contract X402PaymentUsdcGasTest is Fixture {
    IFiatTokenV2_2 internal fiat;
    X402Payment internal fiatPayment;
    address internal operator = makeAddr("operator");

    function setUp() public override {
        super.setUp();
        fiat = FiatToken.deploy(FiatToken.Roles({proxyAdmin: makeAddr("proxyAdmin"), operator: operator}));
        fiatPayment = deployPayment(address(fiat));
        vm.startPrank(operator);
        for (uint256 i; i < 10; ++i) {
            fiat.mint(merchant(i), 1);
        }
        vm.stopPrank();
    }

    function _auth(uint256 key, address to, bytes32 nonce)
        internal
        view
        returns (IX402Payment.TransferAuthorization memory auth)
    {
        address from = vm.addr(key);
        uint256 validAfter = block.timestamp - 60;
        uint256 validBefore = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
                ),
                from,
                to,
                1e6,
                validAfter,
                validBefore,
                nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", fiat.DOMAIN_SEPARATOR(), structHash)));
        auth = IX402Payment.TransferAuthorization(
            from, to, 1e6, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    function _payer(uint256 i) internal returns (uint256 key) {
        key = uint256(keccak256(abi.encode("payer", i))) % (SECP256K1_N - 1) + 1;
        vm.prank(operator);
        fiat.mint(vm.addr(key), 10e6);
    }

    function test_Gas_Usdc_TransferWithAuthorizationDirect() public {
        IX402Payment.TransferAuthorization memory a = _auth(_payer(0), merchant(0), bytes32(0));
        fiat.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, a.signature);
        vm.snapshotGasLastCall("X402Payment", "usdc_transferWithAuthorization");
    }

    function test_Gas_Usdc_SettleBatch_100() public {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](100);
        for (uint256 i; i < 100; ++i) {
            items[i] = _auth(_payer(i), merchant(i % 10), keccak256(abi.encode(i)));
        }
        fiatPayment.settleBatch(address(fiat), items);
        vm.snapshotGasLastCall("X402Payment", "usdc_settleBatch_100");
    }
}
