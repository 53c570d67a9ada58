// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {FiatToken, IFiatTokenV2_2} from "../utils/FiatToken.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Test} from "forge-std/Test.sol";

/// @notice X402Payment against Circle's real FiatTokenV2_2 bytecode behind FiatTokenProxy: the code path used
/// with USDC on Base and Arbitrum (string revert reasons, proxy, pause and blacklist included).
contract X402PaymentUsdcTest is Test {
    IFiatTokenV2_2 internal usdc;
    X402Payment internal payment;
    address internal operator = makeAddr("operator");
    address internal admin = makeAddr("admin");
    address internal payee = makeAddr("payee");
    address internal merchant = makeAddr("merchant");
    address internal payer;
    uint256 internal payerKey;

    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function setUp() public {
        vm.warp(1_700_000_000);
        (payer, payerKey) = makeAddrAndKey("payer");
        usdc = FiatToken.deploy(FiatToken.Roles({proxyAdmin: makeAddr("proxyAdmin"), operator: operator}));
        address[] memory tokens = new address[](1);
        tokens[0] = address(usdc);
        payment = X402Payment(
            address(
                new ERC1967Proxy(
                    address(new X402Payment()),
                    abi.encodeCall(X402Payment.initialize, (admin, makeAddr("arbiter"), 600, tokens))
                )
            )
        );
        vm.prank(operator);
        usdc.mint(payer, 1000e6);
    }

    function _sign(uint256 key, bytes32 structHash) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    function _transferAuth(uint256 key, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (IX402Payment.TransferAuthorization memory auth)
    {
        address from = vm.addr(key);
        uint256 validAfter = block.timestamp - 1;
        uint256 validBefore = block.timestamp + 1 hours;
        auth = IX402Payment.TransferAuthorization(
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            _sign(key, keccak256(abi.encode(TRANSFER_TYPEHASH, from, to, value, validAfter, validBefore, nonce)))
        );
    }

    function _invoice(bytes32 salt, uint96 amount) internal returns (bytes32 id) {
        vm.prank(payee);
        id = payment.createInvoice(salt, address(usdc), amount, uint64(block.timestamp + 1 hours));
    }

    function test_UsdcDomainMatchesBase() public view {
        assertEq(usdc.version(), "2");
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("USDC"),
                keccak256("2"),
                block.chainid,
                address(usdc)
            )
        );
        assertEq(usdc.DOMAIN_SEPARATOR(), expected);
    }

    function test_PayWithAuthorization_Usdc() public {
        bytes32 id = _invoice("a", 5e6);
        uint256 validAfter = block.timestamp - 1;
        uint256 validBefore = block.timestamp + 1 hours;
        bytes memory sig = _sign(
            payerKey,
            keccak256(
                abi.encode(
                    RECEIVE_TYPEHASH,
                    payer,
                    address(payment),
                    5e6,
                    validAfter,
                    validBefore,
                    payment.authorizationNonceOf(id)
                )
            )
        );
        payment.payWithAuthorization(id, payer, validAfter, validBefore, sig);
        assertEq(usdc.balanceOf(address(payment)), 5e6);
        assertEq(uint8(payment.getInvoice(id).status), uint8(IX402Payment.InvoiceStatus.Confirmed));
        vm.expectRevert(); // replay: the invoice is paid and the USDC nonce is used
        payment.payWithAuthorization(id, payer, validAfter, validBefore, sig);
    }

    function test_WhenPayerIsContractWallet_PayWithAuthorizationUsesUsdcBytesOverload() public {
        (address owner, uint256 ownerKey) = makeAddrAndKey("owner");
        address wallet = address(new MockERC1271Wallet(owner));
        vm.prank(operator);
        usdc.mint(wallet, 5e6);
        bytes32 id = _invoice("a", 5e6);
        uint256 validAfter = block.timestamp - 1;
        uint256 validBefore = block.timestamp + 1 hours;
        bytes memory sig = _sign(
            ownerKey,
            keccak256(
                abi.encode(
                    RECEIVE_TYPEHASH,
                    wallet,
                    address(payment),
                    5e6,
                    validAfter,
                    validBefore,
                    payment.authorizationNonceOf(id)
                )
            )
        );
        payment.payWithAuthorization(id, wallet, validAfter, validBefore, abi.encodePacked(sig, bytes1(0x01)));
        assertEq(payment.getInvoice(id).payer, wallet);
    }

    function test_PayWithPermit_Usdc() public {
        bytes32 id = _invoice("a", 5e6);
        uint256 deadline = block.timestamp + 60;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, payer, address(payment), 5e6, usdc.nonces(payer), deadline));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(payerKey, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        vm.prank(payer);
        payment.payWithPermit(id, deadline, v, r, s);
        assertEq(usdc.balanceOf(address(payment)), 5e6);
    }

    function test_WhenPayerBlacklistedByUsdc_RefundIsCredited() public {
        bytes32 id = _invoice("a", 5e6);
        vm.startPrank(payer);
        usdc.approve(address(payment), 5e6);
        payment.pay(id);
        vm.stopPrank();
        vm.prank(operator);
        usdc.blacklist(payer);
        vm.prank(payee);
        payment.refund(id);
        assertEq(payment.withdrawableBalance(payer, address(usdc)), 5e6);
        assertEq(usdc.balanceOf(address(payment)), 5e6);
    }

    function test_SettleBatch_UsdcOutcomes() public {
        (address blocked, uint256 blockedKey) = makeAddrAndKey("blocked");
        vm.startPrank(operator);
        usdc.mint(blocked, 10e6);
        usdc.blacklist(blocked);
        vm.stopPrank();

        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](4);
        items[0] = _transferAuth(payerKey, merchant, 1e6, "n0");
        items[1] = _transferAuth(blockedKey, merchant, 1e6, "n1");
        items[2] = _transferAuth(payerKey, merchant, 2e6, "n2");
        items[3] = items[0];
        // Front-run item 2 directly on USDC.
        usdc.transferWithAuthorization(
            payer, merchant, 2e6, items[2].validAfter, items[2].validBefore, "n2", items[2].signature
        );

        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            blocked,
            "n1",
            1,
            IX402Payment.SettlementOutcome.Failed,
            abi.encodeWithSignature("Error(string)", "Blacklistable: account is blacklisted")
        );
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);
        assertEq(uint8(outcomes[0]), uint8(IX402Payment.SettlementOutcome.Settled));
        assertEq(uint8(outcomes[1]), uint8(IX402Payment.SettlementOutcome.Failed));
        assertEq(uint8(outcomes[2]), uint8(IX402Payment.SettlementOutcome.AlreadyUsed));
        assertEq(uint8(outcomes[3]), uint8(IX402Payment.SettlementOutcome.AlreadyUsed));
        assertEq(usdc.balanceOf(merchant), 3e6);
    }

    function test_WhenUsdcPaused_BatchItemsFailWithoutReverting() public {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](1);
        items[0] = _transferAuth(payerKey, merchant, 1e6, "n0");
        vm.prank(operator);
        usdc.pause();
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);
        assertEq(uint8(outcomes[0]), uint8(IX402Payment.SettlementOutcome.Failed));
        assertFalse(usdc.authorizationState(payer, "n0"));
    }

    function test_WhenGasIsShortWithUsdc_NoItemIsReportedFailed() public {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](2);
        items[0] = _transferAuth(payerKey, merchant, 1e6, "n0");
        items[1] = _transferAuth(payerKey, merchant, 1e6, "n1");
        for (uint256 gasLimit = 500_000; gasLimit < 900_000; gasLimit += 2000) {
            try payment.settleBatch{gas: gasLimit}(address(usdc), items) returns (
                IX402Payment.SettlementOutcome[] memory outcomes
            ) {
                for (uint256 i; i < outcomes.length; ++i) {
                    assertTrue(outcomes[i] != IX402Payment.SettlementOutcome.Failed, "item failed for lack of gas");
                }
                return;
            } catch {}
        }
        fail();
    }
}
