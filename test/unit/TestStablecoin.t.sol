// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {IERC3009} from "../../contracts/interfaces/IERC3009.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {Fixture} from "../utils/Fixture.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract TestStablecoinTest is Fixture {
    address internal recipient = makeAddr("recipient");
    bytes32 internal constant NONCE = keccak256("nonce");

    function _validity() internal view returns (uint256 validAfter, uint256 validBefore) {
        return (block.timestamp - 1, block.timestamp + 1 hours);
    }

    /*//////////////////////////////////////////////////////////////
                            METADATA AND MINT
    //////////////////////////////////////////////////////////////*/

    function test_Metadata() public view {
        assertEq(usdc.name(), "USDC");
        assertEq(usdc.symbol(), "USDC");
        assertEq(usdc.version(), "2");
        assertEq(usdc.decimals(), 6);
    }

    function test_TypeHashesMatchUsdc() public view {
        assertEq(
            usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            keccak256(
                "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
            )
        );
        assertEq(
            usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            keccak256(
                "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
            )
        );
        assertEq(
            usdc.CANCEL_AUTHORIZATION_TYPEHASH(), keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
        );
        assertEq(
            usdc.PERMIT_TYPEHASH(),
            keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
        );
    }

    function test_DomainSeparatorMatchesUsdcDomain() public view {
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

    function test_Mint() public {
        usdc.mint(recipient, 7);
        assertEq(usdc.balanceOf(recipient), 7);
    }

    function test_RevertWhen_MintCallerNotOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        usdc.mint(stranger, 1);
    }

    /*//////////////////////////////////////////////////////////////
                        TRANSFER WITH AUTHORIZATION
    //////////////////////////////////////////////////////////////*/

    function test_TransferWithAuthorization_Vrs() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes32 structHash = keccak256(
            abi.encode(
                usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), payer, recipient, 5e6, validAfter, validBefore, NONCE
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, digestOf(usdc, structHash));
        vm.expectEmit(address(usdc));
        emit IERC3009.AuthorizationUsed(payer, NONCE);
        vm.prank(stranger);
        usdc.transferWithAuthorization(payer, recipient, 5e6, validAfter, validBefore, NONCE, v, r, s);
        assertEq(usdc.balanceOf(recipient), 5e6);
        assertTrue(usdc.authorizationState(payer, NONCE));
    }

    function test_TransferWithAuthorization_Bytes() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 5e6, validAfter, validBefore, NONCE);
        usdc.transferWithAuthorization(payer, recipient, 5e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(recipient), 5e6);
    }

    function test_WhenSignerIsContractWallet_TransferWithAuthorizationUsesErc1271() public {
        (address owner, uint256 ownerKey) = makeAddrAndKey("walletOwner");
        MockERC1271Wallet wallet = new MockERC1271Wallet(owner);
        usdc.mint(address(wallet), 10e6);
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(ownerKey, usdc, address(wallet), recipient, 5e6, validAfter, validBefore, NONCE);
        usdc.transferWithAuthorization(address(wallet), recipient, 5e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(recipient), 5e6);
    }

    function test_RevertWhen_ContractWalletRejectsSignature() public {
        MockERC1271Wallet wallet = new MockERC1271Wallet(makeAddr("walletOwner"));
        usdc.mint(address(wallet), 10e6);
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, address(wallet), recipient, 5e6, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, address(wallet)));
        usdc.transferWithAuthorization(address(wallet), recipient, 5e6, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationNotYetValid() public {
        uint256 validAfter = block.timestamp;
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validAfter + 1 hours, NONCE);
        vm.expectRevert(
            abi.encodeWithSelector(
                TestStablecoin.TestStablecoinAuthorizationNotYetValid.selector, validAfter, block.timestamp
            )
        );
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validAfter + 1 hours, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationExpired() public {
        uint256 validBefore = block.timestamp;
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, 0, validBefore, NONCE);
        vm.expectRevert(
            abi.encodeWithSelector(
                TestStablecoin.TestStablecoinAuthorizationExpired.selector, validBefore, block.timestamp
            )
        );
        usdc.transferWithAuthorization(payer, recipient, 1, 0, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationReplayed() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, NONCE));
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationSignedByAnotherKey() public {
        (, uint256 otherKey) = makeAddrAndKey("other");
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(otherKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationValueTampered() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.transferWithAuthorization(payer, recipient, 2, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationSignatureHasHighS() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, malleate(sig));
    }

    function test_RevertWhen_AuthorizationReplayedOnAnotherChain() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_AuthorizationReplayedOnAnotherToken() public {
        TestStablecoin other = new TestStablecoin("USDC", "USDC", "2", address(this));
        other.mint(payer, 10);
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        other.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_TransferSignatureUsedForReceive() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.prank(recipient);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.receiveWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    /*//////////////////////////////////////////////////////////////
                        RECEIVE WITH AUTHORIZATION
    //////////////////////////////////////////////////////////////*/

    function test_ReceiveWithAuthorization_Vrs() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes32 structHash = keccak256(
            abi.encode(usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), payer, recipient, 3, validAfter, validBefore, NONCE)
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, digestOf(usdc, structHash));
        vm.prank(recipient);
        usdc.receiveWithAuthorization(payer, recipient, 3, validAfter, validBefore, NONCE, v, r, s);
        assertEq(usdc.balanceOf(recipient), 3);
        assertTrue(usdc.authorizationState(payer, NONCE));
    }

    function test_ReceiveWithAuthorization_Bytes() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signReceive(payerKey, usdc, payer, recipient, 3, validAfter, validBefore, NONCE);
        vm.prank(recipient);
        usdc.receiveWithAuthorization(payer, recipient, 3, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(recipient), 3);
    }

    function test_RevertWhen_ReceiveCallerNotPayee() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signReceive(payerKey, usdc, payer, recipient, 3, validAfter, validBefore, NONCE);
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(TestStablecoin.TestStablecoinCallerNotPayee.selector, stranger, recipient)
        );
        usdc.receiveWithAuthorization(payer, recipient, 3, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_ReceiveCallerNotPayee_Vrs() public {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(TestStablecoin.TestStablecoinCallerNotPayee.selector, stranger, recipient)
        );
        usdc.receiveWithAuthorization(payer, recipient, 3, 0, 1, NONCE, 27, bytes32(0), bytes32(0));
    }

    /*//////////////////////////////////////////////////////////////
                          CANCEL AUTHORIZATION
    //////////////////////////////////////////////////////////////*/

    function test_CancelAuthorization_BlocksLaterUse() public {
        bytes32 structHash = keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), payer, NONCE));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, digestOf(usdc, structHash));
        vm.expectEmit(address(usdc));
        emit IERC3009.AuthorizationCanceled(payer, NONCE);
        usdc.cancelAuthorization(payer, NONCE, v, r, s);
        assertTrue(usdc.authorizationState(payer, NONCE));

        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, NONCE));
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }

    function test_RevertWhen_CancelSignedByAnotherKey() public {
        (, uint256 otherKey) = makeAddrAndKey("other");
        bytes memory sig =
            sign(otherKey, digestOf(usdc, keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), payer, NONCE))));
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.cancelAuthorization(payer, NONCE, sig);
    }

    function test_RevertWhen_CancelAfterUse() public {
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
        bytes memory cancel =
            sign(payerKey, digestOf(usdc, keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), payer, NONCE))));
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, NONCE));
        usdc.cancelAuthorization(payer, NONCE, cancel);
    }

    /*//////////////////////////////////////////////////////////////
                                 PERMIT
    //////////////////////////////////////////////////////////////*/

    function test_Permit_Vrs() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, recipient, 9, deadline);
        usdc.permit(payer, recipient, 9, deadline, v, r, s);
        assertEq(usdc.allowance(payer, recipient), 9);
        assertEq(usdc.nonces(payer), 1);
    }

    function test_Permit_Bytes() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, recipient, 9, deadline);
        usdc.permit(payer, recipient, 9, deadline, abi.encodePacked(r, s, v));
        assertEq(usdc.allowance(payer, recipient), 9);
    }

    function test_RevertWhen_PermitExpired() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, recipient, 9, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(TestStablecoin.TestStablecoinPermitExpired.selector, deadline, block.timestamp)
        );
        usdc.permit(payer, recipient, 9, deadline, v, r, s);
    }

    function test_RevertWhen_PermitReplayed() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(payerKey, usdc, payer, recipient, 9, deadline);
        usdc.permit(payer, recipient, 9, deadline, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.permit(payer, recipient, 9, deadline, v, r, s);
    }

    function test_RevertWhen_PermitSignedByAnotherKey() public {
        (, uint256 otherKey) = makeAddrAndKey("other");
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = signPermit(otherKey, usdc, payer, recipient, 9, deadline);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer));
        usdc.permit(payer, recipient, 9, deadline, v, r, s);
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    function testFuzz_TransferWithAuthorization_MovesExactValue(uint256 value, bytes32 nonce, uint256 keySeed) public {
        uint256 key = bound(keySeed, 1, SECP256K1_N - 1);
        address from = vm.addr(key);
        value = bound(value, 0, 1e30);
        usdc.mint(from, value);
        (uint256 validAfter, uint256 validBefore) = _validity();
        bytes memory sig = signTransfer(key, usdc, from, recipient, value, validAfter, validBefore, nonce);
        usdc.transferWithAuthorization(from, recipient, value, validAfter, validBefore, nonce, sig);
        assertEq(usdc.balanceOf(recipient), value);
        assertEq(usdc.balanceOf(from), 0);
        assertTrue(usdc.authorizationState(from, nonce));
    }

    function testFuzz_RevertWhen_AuthorizationOutsideValidity(uint256 validAfter, uint256 validBefore) public {
        validAfter = bound(validAfter, 0, type(uint256).max);
        validBefore = bound(validBefore, 0, type(uint256).max);
        vm.assume(block.timestamp <= validAfter || block.timestamp >= validBefore);
        bytes memory sig = signTransfer(payerKey, usdc, payer, recipient, 1, validAfter, validBefore, NONCE);
        vm.expectRevert();
        usdc.transferWithAuthorization(payer, recipient, 1, validAfter, validBefore, NONCE, sig);
    }
}
