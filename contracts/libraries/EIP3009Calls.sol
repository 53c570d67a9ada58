// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EIP3009Calls
/// @notice Call data for EIP-3009 `receiveWithAuthorization`, picking the overload a signature needs: v/r/s for a
/// 65-byte ECDSA signature (every USDC version has it), `bytes` otherwise (ERC-1271 contract wallets, USDC v2.2+).
library EIP3009Calls {
    // The overloads cannot be named in `abi.encodeCall`, so their selectors are spelled out.
    // bytes4(keccak256("receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"))
    bytes4 internal constant RECEIVE_WITH_AUTHORIZATION_VRS = 0xef55bec6;
    // bytes4(keccak256("receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"))
    bytes4 internal constant RECEIVE_WITH_AUTHORIZATION_BYTES = 0x88b7ab63;

    /// @notice The six leading, static arguments of `receiveWithAuthorization`. A static struct is ABI-encoded in
    /// place, so encoding it equals encoding its fields one by one.
    struct Authorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// @notice Call data for `receiveWithAuthorization(authorization, signature)`.
    function receiveCallData(Authorization memory authorization, bytes calldata signature)
        internal
        pure
        returns (bytes memory)
    {
        if (signature.length != 65) {
            return abi.encodeWithSelector(RECEIVE_WITH_AUTHORIZATION_BYTES, authorization, signature);
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        return abi.encodeWithSelector(RECEIVE_WITH_AUTHORIZATION_VRS, authorization, v, r, s);
    }
}
