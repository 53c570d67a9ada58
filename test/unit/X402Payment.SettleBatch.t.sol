// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {GasBurningWallet} from "../mocks/GasBurningWallet.sol";
import {GasGuzzlerToken} from "../mocks/GasGuzzlerToken.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {Fixture} from "../utils/Fixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @notice settleBatch: per-item isolation of signed x402 `exact` authorizations.
contract X402PaymentSettleBatchTest is Fixture {
    address internal merchantA = makeAddr("merchantA");
    address internal merchantB = makeAddr("merchantB");

    function _nonce(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("nonce", i));
    }

    function _outcome(IX402Payment.SettlementOutcome outcome) internal pure returns (uint8) {
        return uint8(outcome);
    }

    function test_SettleBatch_AllSettled() public {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](3);
        items[0] = authorization(payerKey, merchantA, 1e6, _nonce(0));
        items[1] = authorization(payerKey, merchantB, 2e6, _nonce(1));
        items[2] = authorization(payerKey, merchantA, 3e6, _nonce(2));

        vm.expectEmit(address(payment));
        emit IX402Payment.BatchSettled(address(usdc), stranger, 3, 6e6, hex"010101");
        vm.prank(stranger); // any facilitator may submit
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);

        assertEq(outcomes.length, 3);
        for (uint256 i; i < 3; ++i) {
            assertEq(_outcome(outcomes[i]), _outcome(IX402Payment.SettlementOutcome.Settled));
            assertTrue(usdc.authorizationState(payer, _nonce(i)));
        }
        assertEq(usdc.balanceOf(merchantA), 4e6);
        assertEq(usdc.balanceOf(merchantB), 2e6);
        assertEq(usdc.balanceOf(address(payment)), 0, "batch funds never pass through the contract");
    }

    function test_WhenItemsFailForEveryReason_OthersStillSettle() public {
        (address poor, uint256 poorKey) = makeAddrAndKey("poor");
        (, uint256 otherKey) = makeAddrAndKey("other");
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](9);
        // 0: settles.
        items[0] = authorization(payerKey, merchantA, 1e6, _nonce(0));
        // 1: expired.
        items[1] = authorization(payerKey, merchantA, 1e6, _nonce(1));
        items[1].validBefore = block.timestamp;
        // 2: not yet valid.
        items[2] = authorization(payerKey, merchantA, 1e6, _nonce(2));
        items[2].validAfter = block.timestamp;
        // 3: front-run: executed directly on the token before the batch.
        items[3] = authorization(payerKey, merchantA, 1e6, _nonce(3));
        usdc.transferWithAuthorization(
            payer, merchantA, 1e6, items[3].validAfter, items[3].validBefore, _nonce(3), items[3].signature
        );
        // 4: cancelled by the payer.
        items[4] = authorization(payerKey, merchantA, 1e6, _nonce(4));
        usdc.cancelAuthorization(
            payer,
            _nonce(4),
            sign(
                payerKey, digestOf(usdc, keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), payer, _nonce(4))))
            )
        );
        // 5: signed by someone else.
        items[5] = authorization(otherKey, merchantA, 1e6, _nonce(5));
        items[5].from = payer;
        // 6: payer cannot cover it.
        items[6] = authorization(poorKey, merchantA, 1e6, _nonce(6));
        // 7: duplicate of item 0 inside the same batch.
        items[7] = items[0];
        // 8: malleated (high-s) signature.
        items[8] = authorization(payerKey, merchantB, 1e6, _nonce(8));
        items[8].signature = malleate(items[8].signature);

        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc), payer, _nonce(1), 1, IX402Payment.SettlementOutcome.Expired, ""
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc), payer, _nonce(2), 2, IX402Payment.SettlementOutcome.NotYetValid, ""
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(3),
            3,
            IX402Payment.SettlementOutcome.AlreadyUsed,
            abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, _nonce(3))
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(4),
            4,
            IX402Payment.SettlementOutcome.AlreadyUsed,
            abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, _nonce(4))
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(5),
            5,
            IX402Payment.SettlementOutcome.Failed,
            abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer)
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            poor,
            _nonce(6),
            6,
            IX402Payment.SettlementOutcome.Failed,
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, 0, 1e6)
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(0),
            7,
            IX402Payment.SettlementOutcome.AlreadyUsed,
            abi.encodeWithSelector(TestStablecoin.TestStablecoinAuthorizationUsed.selector, payer, _nonce(0))
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(8),
            8,
            IX402Payment.SettlementOutcome.Failed,
            abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, payer)
        );
        vm.expectEmit(address(payment));
        emit IX402Payment.BatchSettled(address(usdc), address(this), 1, 1e6, hex"010304020205050205");
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);

        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Settled));
        assertEq(_outcome(outcomes[1]), _outcome(IX402Payment.SettlementOutcome.Expired));
        assertEq(_outcome(outcomes[2]), _outcome(IX402Payment.SettlementOutcome.NotYetValid));
        assertEq(_outcome(outcomes[3]), _outcome(IX402Payment.SettlementOutcome.AlreadyUsed));
        assertEq(_outcome(outcomes[4]), _outcome(IX402Payment.SettlementOutcome.AlreadyUsed));
        assertEq(_outcome(outcomes[5]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertEq(_outcome(outcomes[6]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertEq(_outcome(outcomes[7]), _outcome(IX402Payment.SettlementOutcome.AlreadyUsed));
        assertEq(_outcome(outcomes[8]), _outcome(IX402Payment.SettlementOutcome.Failed));
        // Item 0 and the front-run item 3 reached merchantA; nothing else moved.
        assertEq(usdc.balanceOf(merchantA), 2e6);
        assertEq(usdc.balanceOf(merchantB), 0);
        assertFalse(usdc.authorizationState(payer, _nonce(1)));
        assertFalse(usdc.authorizationState(payer, _nonce(2)));
        assertFalse(usdc.authorizationState(payer, _nonce(8)));
    }

    function test_WhenPayerIsContractWallet_ItemUsesBytesOverload() public {
        (address owner, uint256 ownerKey) = makeAddrAndKey("walletOwner");
        address wallet = address(new MockERC1271Wallet(owner));
        usdc.mint(wallet, 5e6);
        IX402Payment.TransferAuthorization memory item = authorization(ownerKey, merchantA, 5e6, _nonce(0));
        item.from = wallet;
        item.signature = abi.encodePacked(
            signTransfer(ownerKey, usdc, wallet, merchantA, 5e6, item.validAfter, item.validBefore, _nonce(0)),
            bytes2(0xbeef)
        );
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), single(item));
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Settled));
        assertEq(usdc.balanceOf(merchantA), 5e6);
    }

    function test_WhenSignatureIsEmpty_ItemFails() public {
        IX402Payment.TransferAuthorization memory item = authorization(payerKey, merchantA, 1, _nonce(0));
        item.signature = "";
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), single(item));
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
    }

    function test_WhenRecipientIsZero_ItemFails() public {
        IX402Payment.TransferAuthorization memory item = authorization(payerKey, address(0), 1, _nonce(0));
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), single(item));
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertFalse(usdc.authorizationState(payer, _nonce(0)));
    }

    function test_WhenAuthorizationSignedForAnotherChain_ItemFails() public {
        IX402Payment.TransferAuthorization memory item = authorization(payerKey, merchantA, 1, _nonce(0));
        vm.chainId(block.chainid + 1);
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), single(item));
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
    }

    function test_WhenTokenBurnsItsWholeBudget_ItemsFailAndBatchCompletes() public {
        GasGuzzlerToken guzzler = new GasGuzzlerToken();
        vm.prank(admin);
        payment.setTokenAllowed(address(guzzler), true);
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](2);
        items[0] = authorization(payerKey, merchantA, 1, _nonce(0));
        items[1] = authorization(payerKey, merchantA, 1, _nonce(1));
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch{gas: 2_000_000}(address(guzzler), items);
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertEq(_outcome(outcomes[1]), _outcome(IX402Payment.SettlementOutcome.Failed));
    }

    /// @dev A smart wallet that burns gas in isValidSignature only fails its own item; the next one settles.
    function test_WhenContractWalletBurnsGas_LaterItemsStillSettle() public {
        GasBurningWallet wallet = new GasBurningWallet();
        usdc.mint(address(wallet), 1e6);
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](2);
        items[0] = authorization(payerKey, merchantA, 1e6, _nonce(0));
        items[0].from = address(wallet);
        items[1] = authorization(payerKey, merchantB, 1e6, _nonce(1));
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch{gas: 3_000_000}(address(usdc), items);
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertEq(_outcome(outcomes[1]), _outcome(IX402Payment.SettlementOutcome.Settled));
        assertEq(usdc.balanceOf(merchantB), 1e6);
    }

    function test_WhenItemPaysTheSettlementContract_ItemFails() public {
        IX402Payment.TransferAuthorization memory item = authorization(payerKey, address(payment), 1e6, _nonce(0));
        vm.expectEmit(address(payment));
        emit IX402Payment.AuthorizationSkipped(
            address(usdc),
            payer,
            _nonce(0),
            0,
            IX402Payment.SettlementOutcome.Failed,
            abi.encodeWithSelector(IX402Payment.X402PaymentInvalidRecipient.selector, address(payment))
        );
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), single(item));
        assertEq(_outcome(outcomes[0]), _outcome(IX402Payment.SettlementOutcome.Failed));
        assertEq(usdc.balanceOf(address(payment)), 0);
        assertFalse(usdc.authorizationState(payer, _nonce(0)));
    }

    /// @dev With a real token, some gas limits leave less than a full budget for the second item; those must
    /// surface as BatchOutOfGas(1), never as a failed item.
    function test_WhenLessThanAnItemBudgetIsLeft_BatchRevertsWithOutOfGas() public {
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](2);
        items[0] = authorization(payerKey, merchantA, 1e6, _nonce(0));
        items[1] = authorization(payerKey, merchantA, 1e6, _nonce(1));
        bytes memory starved = abi.encodeWithSelector(IX402Payment.X402PaymentBatchOutOfGas.selector, 1);
        uint256 starvedRuns;
        for (uint256 gasLimit = 500_000; gasLimit < 700_000; gasLimit += 1000) {
            try payment.settleBatch{gas: gasLimit}(address(usdc), items) {}
            catch (bytes memory reason) {
                if (keccak256(reason) == keccak256(starved)) ++starvedRuns;
            }
        }
        assertGt(starvedRuns, 0, "no gas limit left the second item short");
    }

    function test_ItemGasReserveCoversAFullBudget() public view {
        assertEq(payment.ITEM_GAS_RESERVE(), payment.ITEM_GAS_LIMIT() * 64 / 63 + 10_000);
    }

    function test_RevertWhen_BatchEmpty() public {
        vm.expectRevert(IX402Payment.X402PaymentEmptyBatch.selector);
        payment.settleBatch(address(usdc), new IX402Payment.TransferAuthorization[](0));
    }

    function test_RevertWhen_BatchTokenNotAllowed() public {
        TestStablecoin other = new TestStablecoin("USDC", "USDC", "2", address(this));
        IX402Payment.TransferAuthorization[] memory items = single(authorization(payerKey, merchantA, 1, _nonce(0)));
        vm.expectRevert(abi.encodeWithSelector(IX402Payment.X402PaymentTokenNotAllowed.selector, address(other)));
        payment.settleBatch(address(other), items);
    }

    function test_RevertWhen_BatchWhilePaused() public {
        IX402Payment.TransferAuthorization[] memory items = single(authorization(payerKey, merchantA, 1, _nonce(0)));
        vm.prank(admin);
        payment.pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        payment.settleBatch(address(usdc), items);
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Whatever gas the submitter gives, an item is never reported Failed for lack of gas: the batch either
    /// settles everything or reverts as a whole.
    function testFuzz_WhenGasIsShort_NoItemIsReportedFailed(uint256 gasLimit) public {
        uint256 count = 4;
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](count);
        for (uint256 i; i < count; ++i) {
            items[i] = authorization(payerKey, merchantA, 1e6, _nonce(i));
        }
        gasLimit = bound(gasLimit, 20_000, 800_000);
        try payment.settleBatch{gas: gasLimit}(address(usdc), items) returns (
            IX402Payment.SettlementOutcome[] memory outcomes
        ) {
            for (uint256 i; i < count; ++i) {
                assertEq(_outcome(outcomes[i]), _outcome(IX402Payment.SettlementOutcome.Settled));
            }
            assertEq(usdc.balanceOf(merchantA), count * 1e6);
        } catch {
            assertEq(usdc.balanceOf(merchantA), 0);
            for (uint256 i; i < count; ++i) {
                assertFalse(usdc.authorizationState(payer, _nonce(i)));
            }
        }
    }

    /// @dev Random mixes of good, expired, used and unfunded items: outcomes match a model and value is conserved.
    function testFuzz_OutcomesMatchModel(uint256 seed) public {
        uint256 count = bound(seed, 1, 12);
        (address poor, uint256 poorKey) = makeAddrAndKey("poor");
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](count);
        IX402Payment.SettlementOutcome[] memory expected = new IX402Payment.SettlementOutcome[](count);
        uint256 expectedValue;
        uint256 supplyBefore = usdc.balanceOf(payer) + usdc.balanceOf(poor);
        for (uint256 i; i < count; ++i) {
            uint256 kind = uint256(keccak256(abi.encode(seed, i))) % 4;
            uint256 value = 1 + uint256(keccak256(abi.encode(seed, i, "v"))) % 1e9;
            if (kind == 0) {
                items[i] = authorization(payerKey, merchantA, value, _nonce(i));
                expected[i] = IX402Payment.SettlementOutcome.Settled;
                expectedValue += value;
            } else if (kind == 1) {
                items[i] = authorization(payerKey, merchantA, value, _nonce(i));
                items[i].validBefore = block.timestamp;
                expected[i] = IX402Payment.SettlementOutcome.Expired;
            } else if (kind == 2) {
                items[i] = authorization(payerKey, merchantA, value, _nonce(i));
                vm.prank(payer);
                usdc.cancelAuthorization(
                    payer,
                    _nonce(i),
                    sign(
                        payerKey,
                        digestOf(usdc, keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), payer, _nonce(i))))
                    )
                );
                expected[i] = IX402Payment.SettlementOutcome.AlreadyUsed;
            } else {
                items[i] = authorization(poorKey, merchantA, value, _nonce(i));
                expected[i] = IX402Payment.SettlementOutcome.Failed;
            }
        }
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);
        for (uint256 i; i < count; ++i) {
            assertEq(_outcome(outcomes[i]), _outcome(expected[i]));
        }
        assertEq(usdc.balanceOf(merchantA), expectedValue);
        assertEq(usdc.balanceOf(payer) + usdc.balanceOf(poor) + usdc.balanceOf(merchantA), supplyBefore);
    }
}
