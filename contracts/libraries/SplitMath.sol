// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SplitMath
/// @notice Rounding rules for every split in the system. No split creates or loses a unit of the token:
/// - platform fee: `fee = floor(amount * feeBps / 10_000)`, the developer gets `amount - fee` (the developer gets
///   the rounding dust);
/// - multi-recipient split: recipient `i` gets `floor(amount * shares[i] / 10_000)` and the first recipient also
///   gets what flooring left over (at most `shares.length - 1` units).
library SplitMath {
    /// @notice Basis points in one whole.
    uint256 internal constant BPS = 10_000;

    /// @notice Splits `amount` into the platform's fee and the developer's share.
    function splitFee(uint256 amount, uint256 feeBps) internal pure returns (uint256 developer, uint256 fee) {
        // feeBps <= BPS is enforced where fees are set, so fee <= amount and the subtraction cannot underflow.
        // The product is checked: it only overflows for amounts above 2^256 / 10_000, beyond any real supply.
        fee = amount * feeBps / BPS;
        developer = amount - fee;
    }

    /// @notice Splits `amount` by `shares` (basis points summing to BPS); dust goes to `parts[0]`.
    function splitShares(uint256 amount, uint16[] memory shares) internal pure returns (uint256[] memory parts) {
        uint256 count = shares.length;
        parts = new uint256[](count);
        uint256 assigned;
        for (uint256 i; i < count; ++i) {
            uint256 part = amount * shares[i] / BPS;
            parts[i] = part;
            assigned += part;
        }
        // Shares sum to BPS, so the floors add up to at most `amount`.
        parts[0] += amount - assigned;
    }
}
