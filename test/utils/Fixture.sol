// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {X402Payment} from "../../contracts/X402Payment.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Test} from "forge-std/Test.sol";

/// @notice Shared deployment and signing helpers: a TestStablecoin and an X402Payment behind an ERC1967 proxy,
/// initialized in the proxy constructor exactly as script/Deploy.s.sol does.
abstract contract Fixture is Test {
    /// @dev secp256k1 group order; s values above n/2 are the malleable twins EIP-2 forbids.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    TestStablecoin internal usdc;
    X402Payment internal payment;
    X402Payment internal implementation;

    address internal admin = makeAddr("admin");
    address internal arbiter = makeAddr("arbiter");
    address internal payee = makeAddr("payee");
    address internal stranger = makeAddr("stranger");
    address internal payer;
    uint256 internal payerKey;

    uint64 internal constant WINDOW = 600;
    uint96 internal constant AMOUNT = 1_250_000; // 1.25 USDC
    uint256 internal constant START = 1_700_000_000;

    function setUp() public virtual {
        vm.warp(START);
        (payer, payerKey) = makeAddrAndKey("payer");
        usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        payment = deployPayment(address(usdc));
        usdc.mint(payer, 1_000_000e6);
    }

    function deployPayment(address token) internal returns (X402Payment proxy) {
        implementation = new X402Payment();
        address[] memory tokens = new address[](1);
        tokens[0] = token;
        proxy = X402Payment(
            address(
                new ERC1967Proxy(
                    address(implementation), abi.encodeCall(X402Payment.initialize, (admin, arbiter, WINDOW, tokens))
                )
            )
        );
    }

    /*//////////////////////////////////////////////////////////////
                                INVOICES
    //////////////////////////////////////////////////////////////*/

    function createInvoice(bytes32 salt) internal returns (bytes32 id) {
        return createInvoice(salt, AMOUNT, uint64(block.timestamp + 1 hours));
    }

    function createInvoice(bytes32 salt, uint96 amount, uint64 expiresAt) internal returns (bytes32 id) {
        vm.prank(payee);
        id = payment.createInvoice(salt, address(usdc), amount, expiresAt);
    }

    function payInvoice(bytes32 id) internal {
        vm.startPrank(payer);
        usdc.approve(address(payment), type(uint256).max);
        payment.pay(id);
        vm.stopPrank();
    }

    function createAndPay(bytes32 salt) internal returns (bytes32 id) {
        id = createInvoice(salt);
        payInvoice(id);
    }

    function statusOf(bytes32 id) internal view returns (IX402Payment.InvoiceStatus) {
        return payment.getInvoice(id).status;
    }

    /*//////////////////////////////////////////////////////////////
                                SIGNING
    //////////////////////////////////////////////////////////////*/

    function digestOf(TestStablecoin token, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function signTransfer(
        uint256 key,
        TestStablecoin token,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        bytes32 structHash = keccak256(
            abi.encode(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), from, to, value, validAfter, validBefore, nonce)
        );
        return sign(key, digestOf(token, structHash));
    }

    function signReceive(
        uint256 key,
        TestStablecoin token,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        bytes32 structHash = keccak256(
            abi.encode(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), from, to, value, validAfter, validBefore, nonce)
        );
        return sign(key, digestOf(token, structHash));
    }

    function signPermit(
        uint256 key,
        TestStablecoin token,
        address owner,
        address spender,
        uint256 value,
        uint256 deadline
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(token.PERMIT_TYPEHASH(), owner, spender, value, token.nonces(owner), deadline)
        );
        return vm.sign(key, digestOf(token, structHash));
    }

    /// @dev An x402 `exact` payload paying `to`, valid from a minute ago for an hour.
    function authorization(uint256 key, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (IX402Payment.TransferAuthorization memory auth)
    {
        auth = IX402Payment.TransferAuthorization({
            from: vm.addr(key),
            to: to,
            value: value,
            validAfter: block.timestamp - 60,
            validBefore: block.timestamp + 1 hours,
            nonce: nonce,
            signature: ""
        });
        auth.signature = signTransfer(key, usdc, auth.from, to, value, auth.validAfter, auth.validBefore, nonce);
    }

    /// @dev The same ECDSA signature with s replaced by n - s and v flipped: valid math, rejected by EIP-2 rules.
    function malleate(bytes memory signature) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
        }
        uint8 v = uint8(signature[64]);
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function single(IX402Payment.TransferAuthorization memory auth)
        internal
        pure
        returns (IX402Payment.TransferAuthorization[] memory items)
    {
        items = new IX402Payment.TransferAuthorization[](1);
        items[0] = auth;
    }
}
