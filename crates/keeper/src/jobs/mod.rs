//! The keeper's three jobs. Each one simulates its call, drops the items that would fail (recording why), sends
//! the rest through the [`Sender`](crate::sender::Sender), and turns the receipt into per-item outcomes in the
//! store. [`apply`] does the last step for any stored transaction, so a transaction resolved after a restart
//! ends exactly like one confirmed in the same tick.

pub(crate) mod channels;
pub(crate) mod payments;
pub(crate) mod subscriptions;

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::rpc::types::TransactionReceipt;
use x402_chain::ChainError;

use crate::context::{Context, Event};
use crate::sender::{Resolution, SendError, Sender};
use crate::store::{PendingTx, StoreError, TxJob};
use crate::vouchers::OutcomesError;

/// What a job works with: the shared state, the transaction sender, and whether the tick was started early
/// because a full batch of payments is queued (then only full batches go out).
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) shared: Arc<Context>,
    pub(crate) sender: Sender,
    pub(crate) woken: bool,
    /// Someone waits for the payments being settled (a settle tick): batches may be pipelined.
    pub(crate) urgent: bool,
}

/// Why a job stopped for this tick.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain could not be read, or a simulated call reverted as a whole.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A contract view could not be called.
    #[error(transparent)]
    Contract(#[from] alloy::contract::Error),
    /// A `claimBatch` simulation gave no verdict.
    #[error(transparent)]
    Outcomes(#[from] OutcomesError),
    /// A call's answer does not decode.
    #[error("cannot decode {call}'s answer: {source}")]
    Decode {
        /// The call.
        call: &'static str,
        /// Why.
        source: alloy::sol_types::Error,
    },
    /// A lookup task panicked or was cancelled.
    #[error("a lookup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A value from the chain does not fit where it goes.
    #[error("{0} does not fit 64 bits")]
    Overflow(&'static str),
}

impl JobError {
    /// Whether a simulated or estimated call reverted (rather than the chain failing to answer).
    pub fn is_revert(&self) -> bool {
        matches!(self, Self::Chain(err) | Self::Send(SendError::WouldRevert(err)) if err.is_revert())
    }
}

/// `estimate` plus a full `budget` (the contract's per-item gas reserve) for each of `wallets` items a contract
/// wallet checks: a wallet may burn on chain what it did not in the estimate, and with its budget reserved it
/// fails its own item instead of running the batch out of gas.
pub(crate) fn with_wallet_budgets(estimate: u64, wallets: u64, budget: U256) -> u64 {
    estimate.saturating_add(wallets.saturating_mul(u64::try_from(budget).unwrap_or(u64::MAX)))
}

/// Applies what happened to a stored transaction to the store and the metrics.
pub(crate) async fn apply(
    keeper: &Worker,
    pending: &PendingTx,
    resolution: Resolution,
) -> Result<(), JobError> {
    let job = pending.job.name();
    let receipt = match &resolution {
        Resolution::Mined(receipt) => Some(receipt.as_ref()),
        Resolution::Dropped => None,
    };
    if let Some(receipt) = receipt {
        let result = if receipt.status() { "confirmed" } else { "reverted" };
        keeper.shared.metrics.transaction(job, result, Some(receipt.gas_used));
        if !receipt.status() {
            tracing::error!(job, tx = %receipt.transaction_hash, "keeper transaction reverted");
        }
    } else {
        keeper.shared.metrics.transaction(job, "dropped", None);
    }
    let (action, items, succeeded) = match &pending.job {
        TxJob::Payments { token, items } => {
            let ok = payments::apply(keeper, pending.nonce, *token, items, receipt).await?;
            ("settleBatch", items.len(), ok)
        }
        TxJob::Subscriptions { ids } => {
            let ok = subscriptions::apply(keeper, pending.nonce, ids, receipt)?;
            ("executeBatch", ids.len(), ok)
        }
        TxJob::ChannelClaims { channels, amounts } => {
            let ok = channels::apply_claims(keeper, pending.nonce, channels, amounts, receipt)?;
            ("claimBatch", channels.len(), ok)
        }
        TxJob::ChannelFinalize { channel } => {
            let ok = channels::apply_finalize(keeper, pending.nonce, *channel, receipt)?;
            ("finalizeClose", 1, ok)
        }
    };
    if let Some(receipt) = receipt {
        tracing::info!(
            job,
            action,
            tx = %receipt.transaction_hash,
            block = receipt.block_number.unwrap_or_default(),
            items,
            succeeded,
            gas_used = receipt.gas_used,
            "transaction confirmed"
        );
        keeper.shared.emit(Event::Batch {
            job,
            action,
            tx: receipt.transaction_hash,
            items,
            succeeded,
            gas_used: receipt.gas_used,
            block: receipt.block_number.unwrap_or_default(),
        });
    }
    Ok(())
}

/// Sends a job's transaction and applies its receipt; on a send error the transaction stays stored for the next
/// tick's reconciliation.
pub(crate) async fn send_and_apply(
    keeper: &mut Worker,
    job: TxJob,
    to: Address,
    input: Bytes,
    gas: u64,
    change: impl FnOnce(&PendingTx) -> crate::store::Change,
) -> Result<TransactionReceipt, JobError> {
    let store = std::sync::Arc::clone(&keeper.shared.store);
    let (receipt, pending) = keeper.sender.send(store.as_ref(), job, to, input, gas, change).await?;
    apply(keeper, &pending, Resolution::Mined(Box::new(receipt.clone()))).await?;
    Ok(receipt)
}
