// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../contracts/TestStablecoin.sol";
import {X402Payment} from "../contracts/X402Payment.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Script} from "forge-std/Script.sol";

/// @notice Deploys the settlement contracts behind ERC1967 proxies, each initialized inside its proxy's
/// constructor (no front-runnable initialize), and writes their addresses to deployments/<chainId>.json.
///
/// The signer comes from forge's wallet options (`--account`, `--keystore`, `--ledger`, or `--unlocked --sender`
/// on anvil); this script never reads a private key. Configuration, all optional:
///   X402_ADMIN           admin, pauser and upgrader of every contract (default: the signer)
///   X402_ARBITER         dispute arbiter of X402Payment (default: X402_ADMIN)
///   X402_REFUND_WINDOW   refund window in seconds (default: 600)
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
    }

    struct Deployment {
        address token;
        bool testToken;
        address x402Payment;
        address x402PaymentImplementation;
    }

    error DeployTestTokenOnlyOnLocalChain(uint256 chainId);

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
        vm.serializeAddress(key, "x402PaymentImplementation", deployment.x402PaymentImplementation);
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
