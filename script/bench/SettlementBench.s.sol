// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {X402Payment} from "../../contracts/X402Payment.sol";
import {IERC3009} from "../../contracts/interfaces/IERC3009.sol";
import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {IX402Payment} from "../../contracts/interfaces/IX402Payment.sol";
import {FiatToken, IFiatTokenV2_2} from "../../test/utils/FiatToken.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Script} from "forge-std/Script.sol";

interface IPermitToken is IERC20, IERC3009 {
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function nonces(address owner) external view returns (uint256);
}

/// @notice Gas benchmark on anvil, run by bin/bench: real transactions, so gasUsed includes intrinsic and calldata
/// gas. For TestStablecoin and for Circle's FiatTokenV2_2 (USDC logic behind its proxy) it sends a standalone
/// `transferWithAuthorization` (to a payee that already holds tokens, and to an empty one), one `settleBatch` of
/// 100 authorizations from 100 payers to 10 payees, every invoice operation, and the tool payment paths next to a
/// plain ERC-20 transferFrom. Each measured transaction is
/// recorded with its sender and nonce in cache/bench/<phase>.json so bin/bench can match it to its receipt.
contract SettlementBench is Script {
    string internal constant MNEMONIC = "test test test test test test test test test test test junk";
    uint256 internal constant BATCH = 100;
    uint256 internal constant PAYEES = 10;
    uint64 internal constant WINDOW = 60;
    uint96 internal constant PRICE = 1_250_000;
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    uint256 internal deployerKey;
    uint256 internal operatorKey;
    uint256 internal proxyAdminKey;
    uint256 internal payerKey;
    uint256 internal payeeKey;
    uint256 internal arbiterKey;
    IPermitToken internal testToken;
    // One entry per measured transaction, matched to its receipt by (from, nonce).
    string[] internal labels;
    address[] internal senders;
    uint256[] internal nonces;

    function setUp() public {
        deployerKey = vm.deriveKey(MNEMONIC, 0);
        operatorKey = vm.deriveKey(MNEMONIC, 1);
        proxyAdminKey = vm.deriveKey(MNEMONIC, 2);
        payerKey = vm.deriveKey(MNEMONIC, 3);
        payeeKey = vm.deriveKey(MNEMONIC, 4);
        arbiterKey = vm.deriveKey(MNEMONIC, 5);
    }

    /// @notice Phase 1: deployments, standalone transfers, batches and invoice operations inside the window.
    function run() external {
        IPermitToken test = _deployTestStablecoin();
        testToken = test;
        IPermitToken usdc = _deployUsdc();
        X402Payment testPayment = _deployPayment(test);
        X402Payment usdcPayment = _deployPayment(usdc);
        bytes32 testPending = _benchmark("test", test, testPayment);
        bytes32 usdcPending = _benchmark("usdc", usdc, usdcPayment);
        _benchmarkTools("test", test);
        _benchmarkTools("usdc", usdc);

        string memory state = "state";
        vm.serializeAddress(state, "testPayment", address(testPayment));
        vm.serializeAddress(state, "usdcPayment", address(usdcPayment));
        vm.serializeAddress(state, "test", address(test));
        vm.serializeAddress(state, "usdc", address(usdc));
        vm.serializeBytes32(state, "testInvoice", testPending);
        vm.writeJson(vm.serializeBytes32(state, "usdcInvoice", usdcPending), "cache/bench/state.json");
        _writeLabels("run");
    }

    /// @notice Phase 2, after bin/bench moved anvil's clock past the refund window: release and withdraw.
    function release() external {
        string memory state = vm.readFile("cache/bench/state.json");
        _release(
            "test",
            X402Payment(vm.parseJsonAddress(state, ".testPayment")),
            vm.parseJsonAddress(state, ".test"),
            vm.parseJsonBytes32(state, ".testInvoice")
        );
        _release(
            "usdc",
            X402Payment(vm.parseJsonAddress(state, ".usdcPayment")),
            vm.parseJsonAddress(state, ".usdc"),
            vm.parseJsonBytes32(state, ".usdcInvoice")
        );
        _writeLabels("release");
    }

    /*//////////////////////////////////////////////////////////////
                                 SETUP
    //////////////////////////////////////////////////////////////*/

    function _deployTestStablecoin() internal returns (IPermitToken token) {
        vm.broadcast(deployerKey);
        token = IPermitToken(address(new TestStablecoin("USDC", "USDC", "2", vm.addr(deployerKey))));
    }

    function _deployUsdc() internal returns (IPermitToken token) {
        vm.startBroadcast(proxyAdminKey);
        address implementation =
            FiatToken.create(FiatToken.implementationCode(FiatToken.create(FiatToken.signatureCheckerCode())));
        token = IPermitToken(FiatToken.create(FiatToken.proxyCode(implementation)));
        vm.stopBroadcast();
        vm.startBroadcast(operatorKey);
        FiatToken.initialize(IFiatTokenV2_2(address(token)), vm.addr(operatorKey));
        vm.stopBroadcast();
    }

    function _deployPayment(IPermitToken token) internal returns (X402Payment payment) {
        address deployer = vm.addr(deployerKey);
        address[] memory tokens = new address[](1);
        tokens[0] = address(token);
        vm.startBroadcast(deployerKey);
        X402Payment implementation = new X402Payment();
        payment = X402Payment(
            address(
                new ERC1967Proxy(
                    address(implementation),
                    abi.encodeCall(X402Payment.initialize, (deployer, vm.addr(arbiterKey), WINDOW, tokens))
                )
            )
        );
        vm.stopBroadcast();
    }

    function _mint(IPermitToken token, address to, uint256 amount) internal {
        if (address(token) == address(testToken)) {
            vm.broadcast(deployerKey);
            TestStablecoin(address(token)).mint(to, amount);
        } else {
            vm.broadcast(operatorKey);
            IFiatTokenV2_2(address(token)).mint(to, amount);
        }
    }

    /*//////////////////////////////////////////////////////////////
                               BENCHMARK
    //////////////////////////////////////////////////////////////*/

    /// @return pending A paid invoice for phase 2 to release.
    function _benchmark(string memory name, IPermitToken token, X402Payment payment)
        internal
        returns (bytes32 pending)
    {
        _mint(token, vm.addr(payerKey), 1_000_000e6);
        for (uint256 i; i < PAYEES; ++i) {
            _mint(token, _payee(i), 1); // working merchants already hold a balance
        }
        for (uint256 i; i < BATCH; ++i) {
            _mint(token, vm.addr(_batchPayerKey(i)), 10e6);
        }

        // Standalone x402 settlement, one transaction per payment, the way facilitators do it today.
        _standalone(token, _payee(0), "salt-funded");
        _label(string.concat(name, ": transferWithAuthorization, payee holds tokens"), deployerKey);
        _standalone(token, address(uint160(uint256(keccak256("empty payee")))), "salt-empty");
        _label(string.concat(name, ": transferWithAuthorization, payee holds nothing"), deployerKey);

        IX402Payment.TransferAuthorization[] memory items = new IX402Payment.TransferAuthorization[](BATCH);
        for (uint256 i; i < BATCH; ++i) {
            items[i] = _authorization(token, _batchPayerKey(i), _payee(i % PAYEES), keccak256(abi.encode(name, i)));
        }
        vm.broadcast(deployerKey);
        payment.settleBatch(address(token), items);
        _label(string.concat(name, ": settleBatch, 100 payments to 10 payees"), deployerKey);

        // Invoices.
        bytes32 viaAllowance = _createInvoice(payment, token, "allowance");
        _label(string.concat(name, ": createInvoice"), payeeKey);
        vm.broadcast(payerKey);
        token.approve(address(payment), type(uint256).max);
        vm.broadcast(payerKey);
        payment.pay(viaAllowance);
        _label(string.concat(name, ": pay (allowance)"), payerKey);

        bytes32 viaPermit = _createInvoice(payment, token, "permit");
        vm.broadcast(payerKey);
        token.approve(address(payment), 0); // so that the permit really sets the allowance
        _payWithPermit(token, payment, viaPermit);
        _label(string.concat(name, ": payWithPermit"), payerKey);

        bytes32 viaAuthorization = _createInvoice(payment, token, "authorization");
        _payWithAuthorization(token, payment, viaAuthorization);
        _label(string.concat(name, ": payWithAuthorization (relayed)"), deployerKey);

        vm.broadcast(payeeKey);
        payment.refund(viaAllowance);
        _label(string.concat(name, ": refund"), payeeKey);

        vm.broadcast(payerKey);
        payment.dispute(viaPermit);
        _label(string.concat(name, ": dispute"), payerKey);
        vm.broadcast(arbiterKey);
        payment.resolveDispute(viaPermit, PRICE / 2);
        _label(string.concat(name, ": resolveDispute"), arbiterKey);

        vm.broadcast(payerKey);
        token.approve(address(payment), type(uint256).max);
        pending = _createInvoice(payment, token, "release");
        vm.broadcast(payerKey);
        payment.pay(pending);
    }

    /// @dev ToolRegistry, CreditSystem and RevenueSplitter in steady state (every touched balance already non-zero,
    /// as for a working tool) next to a plain transferFrom with a finite allowance to a recipient holding tokens.
    function _benchmarkTools(string memory name, IPermitToken token) internal {
        (ToolRegistry registry, CreditSystem credits, RevenueSplitter splitter) = _deployTools(token);
        address payer = vm.addr(payerKey);
        address developer = vm.addr(payeeKey);
        vm.broadcast(payeeKey);
        uint256 toolId = registry.registerTool(string.concat("weather-", name), address(token), 2500, developer);
        _label(string.concat(name, ": registerTool"), payeeKey);

        vm.startBroadcast(payerKey);
        token.approve(address(registry), type(uint256).max);
        token.approve(address(credits), type(uint256).max);
        token.approve(vm.addr(deployerKey), 1000e6);
        credits.deposit(address(token), 1e6);
        registry.payForTool(toolId, 2500);
        credits.payWithCredits(toolId, 2500);
        vm.stopBroadcast();
        _mint(token, vm.addr(arbiterKey), 1); // the plain transfer's recipient already holds tokens

        vm.broadcast(deployerKey);
        token.transferFrom(payer, vm.addr(arbiterKey), 2500);
        _label(string.concat(name, ": plain ERC-20 transferFrom"), deployerKey);
        vm.broadcast(payerKey);
        registry.payForTool(toolId, 2500);
        _label(string.concat(name, ": payForTool (allowance)"), payerKey);
        vm.broadcast(payerKey);
        credits.payWithCredits(toolId, 2500);
        _label(string.concat(name, ": payWithCredits"), payerKey);
        vm.broadcast(payerKey);
        credits.deposit(address(token), 1e6);
        _label(string.concat(name, ": deposit credits"), payerKey);

        uint256[] memory toolIds = new uint256[](1);
        toolIds[0] = toolId;
        vm.broadcast(deployerKey);
        credits.settle(address(token), toolIds);
        _label(string.concat(name, ": CreditSystem.settle (1 tool)"), deployerKey);
        vm.broadcast(deployerKey);
        registry.settle(address(token), toolIds);
        _label(string.concat(name, ": ToolRegistry.settle (1 tool)"), deployerKey);

        // An x402 facilitator with the distributor role attributing 100 payments it collected.
        _mint(token, vm.addr(deployerKey), 10e6);
        vm.startBroadcast(deployerKey);
        splitter.grantRole(splitter.DISTRIBUTOR_ROLE(), vm.addr(deployerKey));
        token.approve(address(splitter), type(uint256).max);
        splitter.processBatchPayments(address(token), _payments(100, 10, 0));
        vm.stopBroadcast();
        vm.broadcast(deployerKey);
        splitter.processBatchPayments(address(token), _payments(100, 10, 1000));
        _label(string.concat(name, ": processBatchPayments, 100 payments to 10 new payees"), deployerKey);
        vm.broadcast(deployerKey);
        splitter.processBatchPayments(address(token), _payments(100, 10, 1000));
        _label(string.concat(name, ": processBatchPayments, 100 payments to 10 payees with balances"), deployerKey);
        vm.broadcast(deployerKey);
        splitter.processBatchPayments(address(token), _payments(100, 100, 2000));
        _label(string.concat(name, ": processBatchPayments, 100 payments to 100 new payees"), deployerKey);
        vm.broadcast(payeeKey);
        splitter.withdraw(address(token), developer);
        _label(string.concat(name, ": RevenueSplitter.withdraw"), payeeKey);
    }

    function _deployTools(IPermitToken token)
        internal
        returns (ToolRegistry registry, CreditSystem credits, RevenueSplitter splitter)
    {
        address deployer = vm.addr(deployerKey);
        address[] memory tokens = new address[](1);
        tokens[0] = address(token);
        vm.startBroadcast(deployerKey);
        splitter = RevenueSplitter(
            address(
                new ERC1967Proxy(
                    address(new RevenueSplitter()), abi.encodeCall(RevenueSplitter.initialize, (deployer, deployer))
                )
            )
        );
        registry = ToolRegistry(
            address(
                new ERC1967Proxy(
                    address(new ToolRegistry()),
                    abi.encodeCall(ToolRegistry.initialize, (deployer, address(splitter), 2000, tokens))
                )
            )
        );
        credits = CreditSystem(
            address(
                new ERC1967Proxy(
                    address(new CreditSystem()), abi.encodeCall(CreditSystem.initialize, (deployer, address(registry)))
                )
            )
        );
        splitter.setRegistry(address(registry));
        splitter.grantRole(splitter.DISTRIBUTOR_ROLE(), address(registry));
        registry.setCreditSystem(address(credits));
        vm.stopBroadcast();
    }

    /// @dev `count` payments of 0.01 token (80/20) for tool ids from 1000, to `payees` payees numbered from `first`.
    function _payments(uint256 count, uint256 payees, uint256 first)
        internal
        pure
        returns (IRevenueSplitter.Payment[] memory payments)
    {
        payments = new IRevenueSplitter.Payment[](count);
        for (uint256 i; i < count; ++i) {
            payments[i] = IRevenueSplitter.Payment({
                toolId: 1000 + i,
                payee: address(uint160(uint256(keccak256(abi.encode("tool payee", first + i % payees))))),
                developerAmount: 8000,
                platformAmount: 2000
            });
        }
    }

    function _release(string memory name, X402Payment payment, address token, bytes32 invoiceId) internal {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = invoiceId;
        vm.broadcast(deployerKey); // anyone may release
        payment.release(ids);
        _label(string.concat(name, ": release (1 invoice)"), deployerKey);
        vm.broadcast(payeeKey);
        payment.withdraw(token, vm.addr(payeeKey));
        _label(string.concat(name, ": withdraw"), payeeKey);
    }

    function _standalone(IPermitToken token, address to, bytes32 nonce) internal {
        IX402Payment.TransferAuthorization memory a = _authorization(token, payerKey, to, nonce);
        vm.broadcast(deployerKey); // the facilitator pays the gas
        token.transferWithAuthorization(
            a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, _v(a), _r(a), _s(a)
        );
    }

    function _createInvoice(X402Payment payment, IPermitToken token, string memory salt) internal returns (bytes32 id) {
        vm.broadcast(payeeKey);
        id = payment.createInvoice(keccak256(bytes(salt)), address(token), PRICE, uint64(block.timestamp + 1 days));
    }

    function _payWithPermit(IPermitToken token, X402Payment payment, bytes32 id) internal {
        address payer = vm.addr(payerKey);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, payer, address(payment), PRICE, token.nonces(payer), deadline));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, _digest(token, structHash));
        vm.broadcast(payerKey);
        payment.payWithPermit(id, deadline, v, r, s);
    }

    function _payWithAuthorization(IPermitToken token, X402Payment payment, bytes32 id) internal {
        address payer = vm.addr(payerKey);
        uint256 validAfter = block.timestamp - 1;
        uint256 validBefore = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                RECEIVE_TYPEHASH,
                payer,
                address(payment),
                PRICE,
                validAfter,
                validBefore,
                payment.authorizationNonceOf(id)
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, _digest(token, structHash));
        vm.broadcast(deployerKey); // a relayer pays the gas
        payment.payWithAuthorization(id, payer, validAfter, validBefore, abi.encodePacked(r, s, v));
    }

    function _authorization(IPermitToken token, uint256 key, address to, bytes32 nonce)
        internal
        view
        returns (IX402Payment.TransferAuthorization memory a)
    {
        a.from = vm.addr(key);
        a.to = to;
        a.value = 1e6;
        a.validAfter = block.timestamp - 1;
        a.validBefore = block.timestamp + 1 hours;
        a.nonce = nonce;
        bytes32 structHash =
            keccak256(abi.encode(TRANSFER_TYPEHASH, a.from, to, a.value, a.validAfter, a.validBefore, nonce));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _digest(token, structHash));
        a.signature = abi.encodePacked(r, s, v);
    }

    function _digest(IPermitToken token, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _v(IX402Payment.TransferAuthorization memory a) internal pure returns (uint8) {
        return uint8(a.signature[64]);
    }

    function _r(IX402Payment.TransferAuthorization memory a) internal pure returns (bytes32 r) {
        bytes memory sig = a.signature;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
        }
    }

    function _s(IX402Payment.TransferAuthorization memory a) internal pure returns (bytes32 s) {
        bytes memory sig = a.signature;
        assembly ("memory-safe") {
            s := mload(add(sig, 0x40))
        }
    }

    function _payee(uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("payee", i)))));
    }

    function _batchPayerKey(uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("batch payer", i)))
            % 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140 + 1;
    }

    /// @dev Labels the transaction `key` just broadcast.
    function _label(string memory label, uint256 key) internal {
        address sender = vm.addr(key);
        labels.push(label);
        senders.push(sender);
        nonces.push(vm.getNonce(sender) - 1);
    }

    function _writeLabels(string memory phase) internal {
        string memory key = phase;
        vm.serializeString(key, "labels", labels);
        vm.serializeAddress(key, "senders", senders);
        vm.writeJson(vm.serializeUint(key, "nonces", nonces), string.concat("cache/bench/", phase, ".json"));
    }
}
