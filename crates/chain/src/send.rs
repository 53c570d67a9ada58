//! Broadcasting a signed transaction. A node that has the transaction already ("already known", "already
//! imported", "known transaction": a re-broadcast after a restart) counts as sent; every other refusal is an
//! error for the caller, who stored the transaction before and finds out later what became of it.

use alloy::primitives::Bytes;
use alloy::providers::Provider;

use crate::ChainError;

/// Sends `raw` (an EIP-2718 encoded, signed transaction).
pub async fn broadcast<P: Provider>(provider: &P, raw: &Bytes) -> Result<(), ChainError> {
    match provider.send_raw_transaction(raw).await {
        Ok(_) => Ok(()),
        Err(err) if is_already_known(&err.to_string()) => Ok(()),
        Err(err) => Err(ChainError::Rpc(err)),
    }
}

/// Whether a node's refusal says it holds the transaction already.
pub fn is_already_known(message: &str) -> bool {
    let message = message.to_lowercase();
    ["already known", "already imported", "known transaction"].iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_node_that_has_the_transaction_counts_as_sent() {
        for sent in [
            "already known",
            "ALREADY_KNOWN: already known",
            "Transaction already imported",
            "known transaction: 0xab",
        ] {
            assert!(is_already_known(sent), "{sent}");
        }
        for refused in
            ["nonce too low", "replacement transaction underpriced", "insufficient funds", "already used"]
        {
            assert!(!is_already_known(refused), "{refused}");
        }
    }
}
