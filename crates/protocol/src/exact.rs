//! The `exact` scheme's payload on EVM chains: an EIP-3009 `TransferWithAuthorization` with its numbers as decimal
//! strings, and the payer's signature over it in the token's EIP-712 domain.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::parse_amount;

/// `payload` of an `exact` EVM payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactEvmPayload {
    /// 65-byte ECDSA signature (`r || s || v`), or a contract wallet's ERC-1271 signature.
    pub signature: Bytes,
    /// The signed message.
    pub authorization: ExactEvmAuthorization,
}

/// The authorization with the numbers as decimal strings, as x402 clients send them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmAuthorization {
    /// The payer, who signed.
    #[serde(with = "checksummed")]
    pub from: Address,
    /// The merchant.
    #[serde(with = "checksummed")]
    pub to: Address,
    /// Amount, decimal.
    pub value: String,
    /// Unix seconds, decimal; valid strictly after.
    pub valid_after: String,
    /// Unix seconds, decimal; valid strictly before.
    pub valid_before: String,
    /// Random 32 bytes, unique per payer.
    pub nonce: B256,
}

/// The authorization's numbers, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Amount.
    pub value: U256,
    /// Valid strictly after.
    pub valid_after: U256,
    /// Valid strictly before.
    pub valid_before: U256,
}

impl ExactEvmAuthorization {
    /// The value and the validity window, if every number is decimal digits within 256 bits.
    pub fn numbers(&self) -> Option<Window> {
        Some(Window {
            value: parse_amount(&self.value)?,
            valid_after: parse_amount(&self.valid_after)?,
            valid_before: parse_amount(&self.valid_before)?,
        })
    }
}

/// Addresses written EIP-55 checksummed, as the official packages write them; read in any case.
pub mod checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `address` checksummed.
    pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_checksum(None))
    }

    /// Reads an address in any case.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        Address::deserialize(deserializer)
    }
}
