// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../../contracts/TestStablecoin.sol";
import {X402Payment} from "../../../contracts/X402Payment.sol";
import {IX402Payment} from "../../../contracts/interfaces/IX402Payment.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

/// @notice Drives X402Payment through every user and admin action with bounded, always-valid inputs: with
/// `fail_on_revert = true`, any revert of a call the handler believes legal fails the run.
contract X402PaymentHandler is CommonBase, StdCheats, StdUtils {
    X402Payment public immutable payment;
    TestStablecoin public immutable usdc;
    address public immutable admin;
    address public immutable arbiter;

    uint256 internal constant ACTORS = 4;
    address[ACTORS] internal payers;
    uint256[ACTORS] internal payerKeys;
    address[ACTORS] internal payees;

    bytes32[] public invoiceIds;
    mapping(bytes32 id => uint256) public timesPaid;
    mapping(bytes32 id => IX402Payment.InvoiceStatus) public lastStatus;
    bool public illegalTransitionSeen;

    mapping(address from => mapping(bytes32 nonce => uint256)) public timesSettled;
    bool public authorizationSettledTwice;
    bytes32[] internal usedNonces;
    address[] internal usedNonceOwners;
    uint256 internal nonceCounter;

    mapping(bytes4 selector => uint256) public calls;

    constructor(X402Payment payment_, TestStablecoin usdc_, address admin_, address arbiter_) {
        payment = payment_;
        usdc = usdc_;
        admin = admin_;
        arbiter = arbiter_;
        for (uint256 i; i < ACTORS; ++i) {
            (payers[i], payerKeys[i]) = makeAddrAndKey(string.concat("payer", vm.toString(i)));
            payees[i] = makeAddr(string.concat("payee", vm.toString(i)));
            vm.prank(payers[i]);
            usdc.approve(address(payment_), type(uint256).max);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                ACTIONS
    //////////////////////////////////////////////////////////////*/

    function createInvoice(uint256 payeeSeed, uint96 amount, uint64 lifetime) external {
        if (payment.paused()) return;
        ++calls[this.createInvoice.selector];
        address payee = payees[payeeSeed % ACTORS];
        amount = uint96(_bound(amount, 1, 50_000e6));
        lifetime = uint64(_bound(lifetime, 1, 2 days));
        vm.prank(payee);
        bytes32 id = payment.createInvoice(
            bytes32(invoiceIds.length), address(usdc), amount, uint64(block.timestamp) + lifetime
        );
        invoiceIds.push(id);
        _track(id);
    }

    function pay(uint256 invoiceSeed, uint256 payerSeed, bool gasless) external {
        if (payment.paused()) return;
        (bool found, bytes32 id) = _pick(invoiceSeed, Need.Payable);
        if (!found) return;
        ++calls[this.pay.selector];
        uint256 index = payerSeed % ACTORS;
        if (gasless) {
            IX402Payment.Invoice memory invoice = payment.getInvoice(id);
            uint256 validAfter = block.timestamp - 1;
            uint256 validBefore = block.timestamp + 1 hours;
            bytes32 structHash = keccak256(
                abi.encode(
                    usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
                    payers[index],
                    address(payment),
                    uint256(invoice.amount),
                    validAfter,
                    validBefore,
                    payment.authorizationNonceOf(id)
                )
            );
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKeys[index], _digest(structHash));
            payment.payWithAuthorization(id, payers[index], validAfter, validBefore, abi.encodePacked(r, s, v));
        } else {
            vm.prank(payers[index]);
            payment.pay(id);
        }
        ++timesPaid[id];
        _track(id);
    }

    function refund(uint256 invoiceSeed) external {
        (bool found, bytes32 id) = _pick(invoiceSeed, Need.Refundable);
        if (!found) return;
        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        ++calls[this.refund.selector];
        vm.prank(invoice.payee);
        payment.refund(id);
        _track(id);
    }

    function dispute(uint256 invoiceSeed) external {
        (bool found, bytes32 id) = _pick(invoiceSeed, Need.InWindow);
        if (!found) return;
        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        ++calls[this.dispute.selector];
        vm.prank(invoice.payer);
        payment.dispute(id);
        _track(id);
    }

    function resolve(uint256 invoiceSeed, uint96 payerAmount) external {
        (bool found, bytes32 id) = _pick(invoiceSeed, Need.Disputed);
        if (!found) return;
        IX402Payment.Invoice memory invoice = payment.getInvoice(id);
        ++calls[this.resolve.selector];
        payerAmount = uint96(_bound(payerAmount, 0, invoice.amount));
        vm.prank(arbiter);
        payment.resolveDispute(id, payerAmount);
        _track(id);
    }

    function release(uint256 invoiceSeed) external {
        (bool found, bytes32 id) = _pick(invoiceSeed, Need.Releasable);
        if (!found) return;
        ++calls[this.release.selector];
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        payment.release(ids);
        _track(id);
    }

    function withdraw(uint256 actorSeed, bool asPayee) external {
        address account = asPayee ? payees[actorSeed % ACTORS] : payers[actorSeed % ACTORS];
        if (payment.withdrawableBalance(account, address(usdc)) == 0) return;
        ++calls[this.withdraw.selector];
        vm.prank(account);
        payment.withdraw(address(usdc), account);
    }

    /// @dev A batch of fresh, duplicated, replayed, expired and unfunded authorizations.
    function settleBatch(uint256 seed, uint8 size) external {
        if (payment.paused()) return;
        ++calls[this.settleBatch.selector];
        uint256 count = _bound(size, 1, 8);
        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](count);
        for (uint256 i; i < count; ++i) {
            uint256 kind = uint256(keccak256(abi.encode(seed, i))) % 5;
            uint256 index = uint256(keccak256(abi.encode(seed, i, "actor"))) % ACTORS;
            if (kind == 1 && i > 0) {
                items[i] = items[i - 1]; // duplicate inside the batch
                continue;
            }
            if (kind == 2 && usedNonces.length > 0) {
                // replay of an authorization settled in an earlier batch (re-signed, same nonce)
                uint256 pick = seed % usedNonces.length;
                items[i] = _authorization(_keyOf(usedNonceOwners[pick]), payees[index], 1, usedNonces[pick]);
                continue;
            }
            uint256 value = kind == 4 ? 1e30 : 1 + uint256(keccak256(abi.encode(seed, i, "value"))) % 1000e6;
            items[i] = _authorization(payerKeys[index], payees[index], value, bytes32(++nonceCounter));
            if (kind == 3) items[i].validBefore = block.timestamp;
        }
        IX402Payment.SettlementOutcome[] memory outcomes = payment.settleBatch(address(usdc), items);
        for (uint256 i; i < count; ++i) {
            if (outcomes[i] != IX402Payment.SettlementOutcome.Settled) continue;
            if (++timesSettled[items[i].from][items[i].nonce] > 1) authorizationSettledTwice = true;
            usedNonces.push(items[i].nonce);
            usedNonceOwners.push(items[i].from);
        }
    }

    function warp(uint256 secondsForward) external {
        ++calls[this.warp.selector];
        vm.warp(block.timestamp + _bound(secondsForward, 1, 1 hours));
    }

    /// @dev Pauses rarely and unpauses quickly, so that paused periods interleave with normal use.
    function togglePause(uint8 dice) external {
        bool paused = payment.paused();
        if (!paused && dice % 8 != 0) return;
        ++calls[this.togglePause.selector];
        vm.prank(admin);
        if (paused) payment.unpause();
        else payment.pause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function invoiceCount() external view returns (uint256) {
        return invoiceIds.length;
    }

    function actorCount() external pure returns (uint256) {
        return ACTORS;
    }

    function payerAt(uint256 i) external view returns (address) {
        return payers[i];
    }

    function payeeAt(uint256 i) external view returns (address) {
        return payees[i];
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    enum Need {
        Payable,
        InWindow,
        Refundable,
        Disputed,
        Releasable
    }

    /// @dev The first invoice at or after `seed` (cyclically) that the action can legally take.
    function _pick(uint256 seed, Need need) internal view returns (bool found, bytes32 id) {
        uint256 count = invoiceIds.length;
        for (uint256 i; i < count; ++i) {
            id = invoiceIds[(seed % count + i) % count];
            IX402Payment.Invoice memory invoice = payment.getInvoice(id);
            bool inWindow = block.timestamp < invoice.refundDeadline;
            IX402Payment.InvoiceStatus status = invoice.status;
            if (
                (need == Need.Payable && status == IX402Payment.InvoiceStatus.Pending)
                    || (need == Need.InWindow && status == IX402Payment.InvoiceStatus.Confirmed && inWindow)
                    || (need == Need.Refundable
                        && ((status == IX402Payment.InvoiceStatus.Confirmed && inWindow)
                            || status == IX402Payment.InvoiceStatus.Disputed))
                    || (need == Need.Disputed && status == IX402Payment.InvoiceStatus.Disputed)
                    || (need == Need.Releasable && status == IX402Payment.InvoiceStatus.Confirmed && !inWindow)
            ) return (true, id);
        }
        return (false, bytes32(0));
    }

    /// @dev Records the status and flags any transition the state machine does not allow.
    function _track(bytes32 id) internal {
        IX402Payment.InvoiceStatus previous = lastStatus[id];
        IX402Payment.InvoiceStatus current = payment.getInvoice(id).status;
        if (!_legal(previous, current)) illegalTransitionSeen = true;
        lastStatus[id] = current;
    }

    function _legal(IX402Payment.InvoiceStatus from, IX402Payment.InvoiceStatus to) internal pure returns (bool) {
        if (from == to) return true;
        if (from == IX402Payment.InvoiceStatus.None) return to == IX402Payment.InvoiceStatus.Pending;
        if (from == IX402Payment.InvoiceStatus.Pending) return to == IX402Payment.InvoiceStatus.Confirmed;
        if (from == IX402Payment.InvoiceStatus.Confirmed) {
            return to == IX402Payment.InvoiceStatus.Refunded || to == IX402Payment.InvoiceStatus.Disputed
                || to == IX402Payment.InvoiceStatus.Released;
        }
        if (from == IX402Payment.InvoiceStatus.Disputed) {
            return to == IX402Payment.InvoiceStatus.Resolved || to == IX402Payment.InvoiceStatus.Refunded;
        }
        return false; // Refunded, Released and Resolved are final
    }

    function _keyOf(address account) internal view returns (uint256) {
        for (uint256 i; i < ACTORS; ++i) {
            if (payers[i] == account) return payerKeys[i];
        }
        revert("unknown signer");
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash));
    }

    function _authorization(uint256 key, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (IX402Payment.TransferAuthorization memory auth)
    {
        auth = IX402Payment.TransferAuthorization({
            from: vm.addr(key),
            to: to,
            value: value,
            validAfter: block.timestamp - 1,
            validBefore: block.timestamp + 1 hours,
            nonce: nonce,
            signature: ""
        });
        bytes32 structHash = keccak256(
            abi.encode(
                usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
                auth.from,
                to,
                value,
                auth.validAfter,
                auth.validBefore,
                nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _digest(structHash));
        auth.signature = abi.encodePacked(r, s, v);
    }
}
