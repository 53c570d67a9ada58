//! Receipts: the one of several hashes (fee bumps of one nonce) that was mined, and waiting for one.

use std::time::Duration;

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use tokio::time::Instant;

use crate::ChainError;

/// First and longest pause between polls in [`wait`]: an automining anvil answers in milliseconds, a real chain in
/// seconds, and alloy's own watcher waits a whole poll interval even for the first.
const FIRST_POLL: Duration = Duration::from_millis(2);
const LONGEST_POLL: Duration = Duration::from_millis(500);

/// The receipt of whichever of `hashes` (signed at one nonce, so at most one of them) was mined; the newest is
/// asked first.
pub async fn find<P: Provider>(
    provider: &P,
    hashes: &[B256],
) -> Result<Option<TransactionReceipt>, ChainError> {
    for hash in hashes.iter().rev() {
        if let Some(receipt) = provider.get_transaction_receipt(*hash).await? {
            return Ok(Some(receipt));
        }
    }
    Ok(None)
}

/// Waits up to `timeout` for the receipt of `hash`, polling with a growing pause; `None` if it did not come.
pub async fn wait<P: Provider>(
    provider: &P,
    hash: B256,
    timeout: Duration,
) -> Result<Option<TransactionReceipt>, ChainError> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await? {
            return Ok(Some(receipt));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(LONGEST_POLL);
    }
}
