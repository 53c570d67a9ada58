//! The latest block: the chain's time (what "due" and "expired" are decided by) and its gas limit, which moves
//! slowly if at all and is cached for a second so that sizing a batch and sending it read it once.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider;
use alloy::rpc::types::Header;

use crate::ChainError;
use crate::error::unusable;

/// How long [`GasLimitCache`] trusts a reading.
const GAS_LIMIT_FRESH: Duration = Duration::from_secs(1);

/// The latest block's header.
pub async fn latest<P: Provider>(provider: &P) -> Result<Header, ChainError> {
    let block = provider.get_block_by_number(BlockNumberOrTag::Latest).await?;
    block.map(|b| b.header).ok_or_else(|| unusable("the node has no latest block"))
}

/// The latest block's timestamp.
pub async fn time<P: Provider>(provider: &P) -> Result<u64, ChainError> {
    Ok(latest(provider).await?.timestamp)
}

/// The latest block's gas limit, read at most once a [`GAS_LIMIT_FRESH`].
#[derive(Debug, Default)]
pub struct GasLimitCache {
    reading: Mutex<Option<(Instant, u64)>>,
}

impl GasLimitCache {
    /// The gas limit, from the cache or the chain.
    pub async fn get<P: Provider>(&self, provider: &P) -> Result<u64, ChainError> {
        // A plain value behind the lock: a panicking holder cannot leave it half-written.
        let cached = *self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, limit)) = cached
            && at.elapsed() < GAS_LIMIT_FRESH
        {
            return Ok(limit);
        }
        let limit = latest(provider).await?.gas_limit;
        *self.reading.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), limit));
        Ok(limit)
    }
}
