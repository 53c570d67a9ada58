//! The x402 wire format, versions 1 and 2, as the specification and the official TypeScript packages put it on
//! the wire, with no I/O. Servers, clients and facilitators of this project all speak through these types.
//!
//! - [`v2`] and [`v1`]: what a server requires ([`v2::PaymentRequired`]) and what a client pays with
//!   ([`v2::PaymentPayload`]), in each version's shape;
//! - [`facilitator`]: the body of `POST /verify` and `POST /settle`, and the facilitator's answers, `/supported`
//!   included;
//! - [`exact`]: the `exact` scheme's EVM payload (an EIP-3009 authorization and its signature);
//! - [`channel`]: the `channel` scheme (a PaymentChannel voucher per request) and its receipts;
//! - [`headers`]: the base64 JSON header codecs (`X-PAYMENT`, `PAYMENT-SIGNATURE`, ...);
//! - [`network`]: the networks this project deploys to, by chain id, CAIP-2 id and v1 name;
//! - [`price`]: prices in dollars or token units, converted with a token's decimals;
//! - [`reason`]: the error reasons of the specification and the reference implementation.
//!
//! Addresses and amounts of requirements stay strings here, as on the wire: a server may offer networks this
//! project does not settle (Solana, say), and a client must still read the rest of its answer.

pub mod channel;
pub mod exact;
pub mod facilitator;
pub mod headers;
pub mod network;
pub mod price;
pub mod reason;
pub mod v1;
pub mod v2;

pub use reason::Reason;

/// A decimal amount in a token's smallest unit, as requirements and authorizations write it: digits only.
pub fn parse_amount(text: &str) -> Option<alloy_primitives::U256> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    alloy_primitives::U256::from_str_radix(text, 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimal_digits_only() {
        assert_eq!(parse_amount("10000"), Some(alloy_primitives::U256::from(10_000)));
        for bad in ["", "-1", "1e6", "0x10", " 1", "1.5"] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
        assert_eq!(parse_amount(&"9".repeat(78)), None, "above 2^256");
    }
}
