// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EIP-3009: transfer with authorization
/// @notice The subset of USDC's (FiatTokenV2_2) EIP-3009 surface that this project calls. Function and event
/// names, argument order and EIP-712 type strings match USDC so that the same code runs against real USDC on
/// Base and Arbitrum and against {TestStablecoin} on local chains.
interface IERC3009 {
    /// @notice Emitted when an authorization is executed.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice Emitted when an authorization is cancelled before use. USDC spells it with one "l".
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice Whether `nonce` of `authorizer` has been used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

    /// @notice Executes a signed `TransferWithAuthorization`; anyone may submit it.
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
    ) external;

    /// @notice Same as the v/r/s form; `signature` may also be an ERC-1271 signature of a contract wallet.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;

    /// @notice Executes a signed `ReceiveWithAuthorization`; only `to` may submit it, which makes it safe from
    /// front-running when the recipient is a contract that must account for the incoming funds.
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
    ) external;

    /// @notice Same as the v/r/s form; `signature` may also be an ERC-1271 signature of a contract wallet.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;

    /// @notice Cancels an unused authorization with a signed `CancelAuthorization`.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Same as the v/r/s form, with a packed or ERC-1271 signature.
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external;
}
