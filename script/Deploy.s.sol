// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../contracts/CreditSystem.sol";
import {PaymentChannel} from "../contracts/PaymentChannel.sol";
import {RevenueSplitter} from "../contracts/RevenueSplitter.sol";
import {Subscription} from "../contracts/Subscription.sol";
import {TestStablecoin} from "../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../contracts/ToolRegistry.sol";
import {X402Payment} from "../contracts/X402Payment.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Script} from "forge-std/Script.sol";

/// @notice Deploys the settlement contracts behind ERC1967 proxies, each initialized inside its proxy's
/// constructor (no front-runnable initialize), wires them to each other, and writes their addresses to
/// deployments/<chainId>.json. Contracts: X402Payment, RevenueSplitter, ToolRegistry (a distributor of the
/// splitter), CreditSystem (wired into the registry), PaymentChannel and Subscription. The signer administers the splitter and registry only
/// while wiring them, then hands every role to X402_ADMIN and renounces its own.
///
/// The signer comes from forge's wallet options (`--account`, `--keystore`, `--ledger`, or `--unlocked --sender`
/// on anvil); this script never reads a private key. Configuration, all optional:
///   X402_ADMIN           admin, pauser and upgrader of every contract (default: the signer)
///   X402_ARBITER         dispute arbiter of X402Payment (default: X402_ADMIN)
///   X402_REFUND_WINDOW   refund window in seconds (default: 600)
///   X402_TREASURY        where platform fees are credited (default: X402_ADMIN)
///   X402_PLATFORM_FEE_BPS platform fee of the tool registry in basis points (default: 2000, an 80/20 split)
///   X402_TOKEN           the stablecoin to accept, e.g. USDC. Unset: a TestStablecoin is deployed, which is only
///                        allowed on a local chain (chain id 31337), and anvil's 10 dev accounts get 1,000,000 each.
///   X402_DEPLOYMENT_FILE where to write the addresses, inside deployments/ (default: deployments/<chainId>.json)
contract Deploy is Script {
    uint256 internal constant LOCAL_CHAIN_ID = 31_337;
    uint256 internal constant DEVNET_ACCOUNTS = 10;
    uint256 internal constant DEVNET_MINT = 1_000_000e6;
    string internal constant ANVIL_MNEMONIC = "test test test test test test test test test test test junk";

    struct Config {
        address admin;
        address arbiter;
        uint64 refundWindow;
        address token;
        address treasury;
        uint16 platformFeeBps;
    }

    struct Deployment {
        address token;
        bool testToken;
        address x402Payment;
        address x402PaymentImplementation;
        address revenueSplitter;
        address revenueSplitterImplementation;
        address toolRegistry;
        address toolRegistryImplementation;
        address creditSystem;
        address creditSystemImplementation;
        address paymentChannel;
        address paymentChannelImplementation;
        address subscription;
        address subscriptionImplementation;
    }

    error DeployTestTokenOnlyOnLocalChain(uint256 chainId);
    error DeployInvalidPlatformFee(uint256 feeBps);

    function run() external returns (Deployment memory deployment) {
        vm.startBroadcast();
        (, address signer,) = vm.readCallers();
        deployment = deploy(configFromEnv(signer), signer);
        vm.stopBroadcast();
        write(deployment, configFromEnv(signer));
    }

    function configFromEnv(address signer) public view returns (Config memory config) {
        config.admin = vm.envOr("X402_ADMIN", signer);
        config.arbiter = vm.envOr("X402_ARBITER", config.admin);
        config.refundWindow = uint64(vm.envOr("X402_REFUND_WINDOW", uint256(600)));
        config.token = vm.envOr("X402_TOKEN", address(0));
        config.treasury = vm.envOr("X402_TREASURY", config.admin);
        uint256 feeBps = vm.envOr("X402_PLATFORM_FEE_BPS", uint256(2000));
        if (feeBps > type(uint16).max) revert DeployInvalidPlatformFee(feeBps);
        // forge-lint: disable-next-line(unsafe-typecast)
        config.platformFeeBps = uint16(feeBps); // checked above; the registry enforces its own maximum
    }

    /// @notice Deploys everything; must run inside a broadcast (or a test) as `signer`.
    function deploy(Config memory config, address signer) public returns (Deployment memory deployment) {
        deployment.token = config.token;
        if (deployment.token == address(0)) {
            if (block.chainid != LOCAL_CHAIN_ID) revert DeployTestTokenOnlyOnLocalChain(block.chainid);
            deployment.token = _deployTestToken(signer);
            deployment.testToken = true;
        }
        address[] memory tokens = new address[](1);
        tokens[0] = deployment.token;
        deployment.x402PaymentImplementation = address(new X402Payment());
        deployment.x402Payment = address(
            new ERC1967Proxy(
                deployment.x402PaymentImplementation,
                abi.encodeCall(X402Payment.initialize, (config.admin, config.arbiter, config.refundWindow, tokens))
            )
        );
        _deployTools(deployment, config, signer, tokens);
        _deployRecurring(deployment, config, tokens);
    }

    /// @dev PaymentChannel and Subscription: stand-alone, administered by the admin from the start.
    function _deployRecurring(Deployment memory deployment, Config memory config, address[] memory tokens) internal {
        deployment.paymentChannelImplementation = address(new PaymentChannel());
        deployment.paymentChannel = address(
            new ERC1967Proxy(
                deployment.paymentChannelImplementation,
                abi.encodeCall(PaymentChannel.initialize, (config.admin, tokens))
            )
        );
        deployment.subscriptionImplementation = address(new Subscription());
        deployment.subscription = address(
            new ERC1967Proxy(
                deployment.subscriptionImplementation, abi.encodeCall(Subscription.initialize, (config.admin, tokens))
            )
        );
    }

    /// @dev RevenueSplitter, ToolRegistry and CreditSystem, wired to each other.
    function _deployTools(Deployment memory deployment, Config memory config, address signer, address[] memory tokens)
        internal
    {
        deployment.revenueSplitterImplementation = address(new RevenueSplitter());
        RevenueSplitter splitter = RevenueSplitter(
            address(
                new ERC1967Proxy(
                    deployment.revenueSplitterImplementation,
                    abi.encodeCall(RevenueSplitter.initialize, (signer, config.treasury))
                )
            )
        );
        deployment.toolRegistryImplementation = address(new ToolRegistry());
        ToolRegistry registry = ToolRegistry(
            address(
                new ERC1967Proxy(
                    deployment.toolRegistryImplementation,
                    abi.encodeCall(ToolRegistry.initialize, (signer, address(splitter), config.platformFeeBps, tokens))
                )
            )
        );
        deployment.creditSystemImplementation = address(new CreditSystem());
        deployment.creditSystem = address(
            new ERC1967Proxy(
                deployment.creditSystemImplementation,
                abi.encodeCall(CreditSystem.initialize, (config.admin, address(registry)))
            )
        );
        deployment.revenueSplitter = address(splitter);
        deployment.toolRegistry = address(registry);

        splitter.setRegistry(address(registry));
        splitter.grantRole(splitter.DISTRIBUTOR_ROLE(), address(registry));
        registry.setCreditSystem(deployment.creditSystem);

        if (config.admin != signer) {
            bytes32[] memory splitterRoles = new bytes32[](3);
            splitterRoles[0] = splitter.PAUSER_ROLE();
            splitterRoles[1] = splitter.UPGRADER_ROLE();
            splitterRoles[2] = splitter.DEFAULT_ADMIN_ROLE();
            _handOver(address(splitter), splitterRoles, config.admin, signer);
            bytes32[] memory registryRoles = new bytes32[](4);
            registryRoles[0] = registry.PAUSER_ROLE();
            registryRoles[1] = registry.FEE_MANAGER_ROLE();
            registryRoles[2] = registry.UPGRADER_ROLE();
            registryRoles[3] = registry.DEFAULT_ADMIN_ROLE();
            _handOver(address(registry), registryRoles, config.admin, signer);
        }
    }

    /// @dev Grants `roles` to `admin` and renounces them for `signer`; the admin role goes last.
    function _handOver(address target, bytes32[] memory roles, address admin, address signer) internal {
        IAccessControl access = IAccessControl(target);
        for (uint256 i; i < roles.length; ++i) {
            access.grantRole(roles[i], admin);
        }
        for (uint256 i; i < roles.length; ++i) {
            access.renounceRole(roles[i], signer);
        }
    }

    /// @notice Writes deployments/<chainId>.json.
    function write(Deployment memory deployment, Config memory config) public {
        string memory key = "deployment";
        vm.serializeUint(key, "chainId", block.chainid);
        vm.serializeAddress(key, "admin", config.admin);
        vm.serializeAddress(key, "arbiter", config.arbiter);
        vm.serializeUint(key, "refundWindow", config.refundWindow);
        vm.serializeAddress(key, "token", deployment.token);
        vm.serializeBool(key, "testToken", deployment.testToken);
        vm.serializeAddress(key, "treasury", config.treasury);
        vm.serializeUint(key, "platformFeeBps", config.platformFeeBps);
        vm.serializeAddress(key, "x402PaymentImplementation", deployment.x402PaymentImplementation);
        vm.serializeAddress(key, "revenueSplitter", deployment.revenueSplitter);
        vm.serializeAddress(key, "revenueSplitterImplementation", deployment.revenueSplitterImplementation);
        vm.serializeAddress(key, "toolRegistry", deployment.toolRegistry);
        vm.serializeAddress(key, "toolRegistryImplementation", deployment.toolRegistryImplementation);
        vm.serializeAddress(key, "creditSystem", deployment.creditSystem);
        vm.serializeAddress(key, "creditSystemImplementation", deployment.creditSystemImplementation);
        vm.serializeAddress(key, "paymentChannel", deployment.paymentChannel);
        vm.serializeAddress(key, "paymentChannelImplementation", deployment.paymentChannelImplementation);
        vm.serializeAddress(key, "subscription", deployment.subscription);
        vm.serializeAddress(key, "subscriptionImplementation", deployment.subscriptionImplementation);
        string memory json = vm.serializeAddress(key, "x402Payment", deployment.x402Payment);
        string memory file =
            vm.envOr("X402_DEPLOYMENT_FILE", string.concat("deployments/", vm.toString(block.chainid), ".json"));
        vm.writeJson(json, string.concat(vm.projectRoot(), "/", file));
    }

    function _deployTestToken(address signer) internal returns (address) {
        TestStablecoin token = new TestStablecoin("USDC", "USDC", "2", signer);
        for (uint32 i; i < DEVNET_ACCOUNTS; ++i) {
            token.mint(vm.addr(vm.deriveKey(ANVIL_MNEMONIC, i)), DEVNET_MINT);
        }
        return address(token);
    }
}
