//! The keeper's three jobs. Each one simulates its call, drops the items that would fail (recording why), sends
//! the rest through the [`Sender`](crate::sender::Sender), and turns the receipt into per-item outcomes in the
//! store. [`apply`] does the last step for any stored transaction, so a transaction resolved after a restart
//! ends exactly like one confirmed in the same tick.

pub(crate) mod channels;
pub(crate) mod payments;
pub(crate) mod subscriptions;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::transports::RpcError;

use crate::daemon::{Event, Keeper, Shared};
use crate::sender::{Resolution, SendError};
use crate::store::{PendingTx, StoreError, TxJob};

/// Why a job stopped for this tick.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Sending or reading failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A contract call could not be made or decoded.
    #[error("{0}")]
    Call(String),
    /// A simulated call reverted (or ran out of gas): the node answered, the contract refused.
    #[error("simulation reverted: {0}")]
    Reverted(String),
}

impl From<alloy::contract::Error> for JobError {
    fn from(err: alloy::contract::Error) -> Self {
        Self::Call(err.to_string())
    }
}

/// Simulates `input` on `to` from the keeper and returns the raw return data.
pub(crate) async fn simulate(shared: &Shared, to: Address, input: &Bytes) -> Result<Bytes, JobError> {
    let request =
        TransactionRequest::default().with_from(shared.keeper).with_to(to).with_input(input.clone());
    shared.provider.call(request).await.map_err(|err| match err {
        RpcError::ErrorResp(payload)
            if payload.message.contains("revert") || payload.message.contains("out of gas") =>
        {
            JobError::Reverted(payload.to_string())
        }
        err => JobError::Call(format!("simulation failed: {err}")),
    })
}

/// `estimate` plus a full `budget` (the contract's per-item gas reserve) for each of `wallets` items a contract
/// wallet checks: a wallet may burn on chain what it did not in the estimate, and with its budget reserved it
/// fails its own item instead of running the batch out of gas.
pub(crate) fn with_wallet_budgets(estimate: u64, wallets: u64, budget: U256) -> u64 {
    estimate.saturating_add(wallets.saturating_mul(u64::try_from(budget).unwrap_or(u64::MAX)))
}

/// Applies what happened to a stored transaction to the store and the metrics.
pub(crate) async fn apply(
    keeper: &Keeper,
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
        keeper.shared.metrics.add("x402_keeper_transactions_total", &[("job", job), ("result", result)], 1.0);
        keeper.shared.metrics.add("x402_keeper_tx_gas_used_total", &[("job", job)], receipt.gas_used as f64);
        if !receipt.status() {
            tracing::error!(job, tx = %receipt.transaction_hash, "keeper transaction reverted");
        }
    } else {
        keeper.shared.metrics.add(
            "x402_keeper_transactions_total",
            &[("job", job), ("result", "dropped")],
            1.0,
        );
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
    keeper: &mut Keeper,
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
