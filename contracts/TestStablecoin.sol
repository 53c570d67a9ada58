// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC3009} from "./interfaces/IERC3009.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title TestStablecoin
/// @notice A 6-decimal stablecoin for local chains and tests with USDC's signed-transfer surface: EIP-2612
/// `permit` and EIP-3009 `transferWithAuthorization`, `receiveWithAuthorization` and `cancelAuthorization`, each
/// in the v/r/s and the `bytes signature` form, with the EIP-712 type strings USDC (FiatTokenV2_2) uses.
/// @dev Signatures are checked ECDSA first (malleable high-s signatures are rejected) and through ERC-1271 only
/// when that fails and the signer has code. USDC checks code first; both accept the same signatures for plain
/// EOAs and contract wallets, and ECDSA-first also accepts the key of an EIP-7702 delegated account.
/// Minting is restricted to the owner: this token is for local chains, never a production asset.
contract TestStablecoin is ERC20, EIP712, Nonces, Ownable, IERC20Permit, IERC3009 {
    /// @notice keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH =
        0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;

    /// @notice keccak256("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH =
        0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;

    /// @notice keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;

    /// @notice keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
    bytes32 public constant PERMIT_TYPEHASH = 0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9;

    string private _version;
    mapping(address authorizer => mapping(bytes32 nonce => bool used)) private _authorizationStates;

    /// @notice Thrown when an authorization is submitted at or before its `validAfter` time.
    error TestStablecoinAuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);

    /// @notice Thrown when an authorization is submitted at or after its `validBefore` time.
    error TestStablecoinAuthorizationExpired(uint256 validBefore, uint256 timestamp);

    /// @notice Thrown when an authorization nonce was already used or cancelled.
    error TestStablecoinAuthorizationUsed(address authorizer, bytes32 nonce);

    /// @notice Thrown when `receiveWithAuthorization` is called by someone other than the payee.
    error TestStablecoinCallerNotPayee(address caller, address payee);

    /// @notice Thrown when a signature does not come from the expected signer.
    error TestStablecoinInvalidSignature(address expectedSigner);

    /// @notice Thrown when a permit is submitted after its deadline.
    error TestStablecoinPermitExpired(uint256 deadline, uint256 timestamp);

    constructor(string memory name_, string memory symbol_, string memory version_, address owner_)
        ERC20(name_, symbol_)
        EIP712(name_, version_)
        Ownable(owner_)
    {
        _version = version_;
    }

    /// @notice Mints `amount` to `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice The EIP-712 domain version, as USDC exposes it.
    function version() external view returns (string memory) {
        return _version;
    }

    /// @inheritdoc IERC20Permit
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IERC20Permit
    function nonces(address owner) public view override(IERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @inheritdoc IERC20Permit
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        _requireBeforeDeadline(deadline);
        _requireValidSignature(owner, _permitHash(owner, spender, value, deadline), v, r, s);
        _approve(owner, spender, value);
    }

    /// @notice EIP-2612 permit with a packed ECDSA or an ERC-1271 signature (USDC v2.2 form).
    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes memory signature) external {
        _requireBeforeDeadline(deadline);
        _requireValidSignature(owner, _permitHash(owner, spender, value, deadline), signature);
        _approve(owner, spender, value);
    }

    /// @inheritdoc IERC3009
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @inheritdoc IERC3009
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        bytes32 structHash = _useAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, structHash, v, r, s);
        _transfer(from, to, value);
    }

    /// @inheritdoc IERC3009
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        bytes32 structHash = _useAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, structHash, signature);
        _transfer(from, to, value);
    }

    /// @inheritdoc IERC3009
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (to != msg.sender) revert TestStablecoinCallerNotPayee(msg.sender, to);
        bytes32 structHash =
            _useAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _requireValidSignature(from, structHash, v, r, s);
        _transfer(from, to, value);
    }

    /// @inheritdoc IERC3009
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        if (to != msg.sender) revert TestStablecoinCallerNotPayee(msg.sender, to);
        bytes32 structHash =
            _useAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _requireValidSignature(from, structHash, signature);
        _transfer(from, to, value);
    }

    /// @inheritdoc IERC3009
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _requireValidSignature(authorizer, _cancelAuthorization(authorizer, nonce), v, r, s);
    }

    /// @inheritdoc IERC3009
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external {
        _requireValidSignature(authorizer, _cancelAuthorization(authorizer, nonce), signature);
    }

    /// @dev Checks the validity window and the nonce, marks the nonce used and returns the struct hash to verify.
    /// The signature is checked by the caller before any token moves; a bad one reverts everything.
    function _useAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private returns (bytes32 structHash) {
        if (block.timestamp <= validAfter) {
            revert TestStablecoinAuthorizationNotYetValid(validAfter, block.timestamp);
        }
        if (block.timestamp >= validBefore) revert TestStablecoinAuthorizationExpired(validBefore, block.timestamp);
        _requireUnusedAuthorization(from, nonce);
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        return keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce));
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce) private returns (bytes32 structHash) {
        _requireUnusedAuthorization(authorizer, nonce);
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
        return keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce));
    }

    function _requireBeforeDeadline(uint256 deadline) private view {
        if (block.timestamp > deadline) revert TestStablecoinPermitExpired(deadline, block.timestamp);
    }

    function _permitHash(address owner, address spender, uint256 value, uint256 deadline) private returns (bytes32) {
        return keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) private view {
        if (_authorizationStates[authorizer][nonce]) revert TestStablecoinAuthorizationUsed(authorizer, nonce);
    }

    /// @dev v/r/s form: plain ECDSA first, without packing the signature into memory.
    function _requireValidSignature(address signer, bytes32 structHash, uint8 v, bytes32 r, bytes32 s) private view {
        bytes32 digest = _hashTypedDataV4(structHash);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        _requireValidErc1271Signature(signer, digest, abi.encodePacked(r, s, v));
    }

    function _requireValidSignature(address signer, bytes32 structHash, bytes memory signature) private view {
        bytes32 digest = _hashTypedDataV4(structHash);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        _requireValidErc1271Signature(signer, digest, signature);
    }

    function _requireValidErc1271Signature(address signer, bytes32 digest, bytes memory signature) private view {
        if (signer.code.length != 0) {
            (bool ok, bytes memory result) =
                signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
            if (ok && result.length >= 32 && abi.decode(result, (bytes32)) == IERC1271.isValidSignature.selector) {
                return;
            }
        }
        revert TestStablecoinInvalidSignature(signer);
    }
}
