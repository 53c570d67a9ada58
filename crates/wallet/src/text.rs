//! How results read: amounts as decimal strings (a U256 would otherwise be hex), addresses checksummed.

use alloy::primitives::{Address, U256};
use serde::Serializer;

/// `amount` as a decimal string.
pub(crate) fn decimal<S: Serializer>(amount: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(amount)
}

/// `address` checksummed (EIP-55).
pub(crate) fn address<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(address)
}
