//! Executes due subscriptions: pages through `Subscription.dueSubscriptions` (which decides "due" from the
//! chain's time), simulates `executeBatch` per chunk, and sends the subscriptions that would be charged or whose
//! charge would fail (the contract then marks them PastDue, which takes them off the due list; sending nothing
//! would leave them there for ever). Ids that would be a no-op (not due any more, cancelled) are dropped. A
//! subscription behind by several periods is charged one period per round, and rounds repeat within a tick
//! until nothing is due.

use alloy::primitives::{Bytes, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolCall, SolEvent};
use x402_bindings::{ExecutionOutcome, Subscription};

use super::{JobError, Worker, send_and_apply};
use crate::store::{Change, ExecutionRecord, TxJob};

/// Page size of `dueSubscriptions` (the contract's maximum).
const PAGE: u64 = 1000;
/// Rounds per tick: how many missed periods one subscription can catch up in a tick.
const MAX_ROUNDS: usize = 32;

/// An execution outcome as the API and the metrics name it.
fn outcome_name(outcome: u8) -> &'static str {
    match ExecutionOutcome::try_from(outcome) {
        Ok(ExecutionOutcome::Charged) => "charged",
        Ok(ExecutionOutcome::NotFound) => "not_found",
        Ok(ExecutionOutcome::Inactive) => "inactive",
        Ok(ExecutionOutcome::NotDue) => "not_due",
        Ok(ExecutionOutcome::TokenNotAllowed) => "token_not_allowed",
        Ok(ExecutionOutcome::ChargeFailed) => "charge_failed",
        Err(_) => "unknown",
    }
}

fn encode(ids: &[U256]) -> Bytes {
    Subscription::executeBatchCall { subscriptionIds: ids.to_vec() }.abi_encode().into()
}

/// Every subscription due now, in the contract's order.
async fn due(keeper: &Worker) -> Result<Vec<U256>, JobError> {
    let contract = Subscription::new(keeper.shared.settings.contracts.subscription, &keeper.shared.provider);
    let mut ids = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = contract.dueSubscriptions(U256::from(offset), U256::from(PAGE)).call().await?;
        ids.extend(page.subscriptionIds);
        let next: u64 =
            page.nextOffset.try_into().map_err(|_| JobError::Overflow("dueSubscriptions' nextOffset"))?;
        if next < offset + PAGE {
            break;
        }
        offset = next;
    }
    Ok(ids)
}

/// Runs rounds until nothing due is left to send.
pub(crate) async fn run(keeper: &mut Worker) -> Result<(), JobError> {
    let target = keeper.shared.settings.contracts.subscription;
    for _ in 0..MAX_ROUNDS {
        let ids = due(keeper).await?;
        if ids.is_empty() {
            break;
        }
        let mut sent_any = false;
        for chunk in ids.chunks(keeper.shared.settings.subscriptions_batch) {
            if keeper.shared.is_stopping() {
                return Ok(());
            }
            let returned = keeper.shared.simulate(target, &encode(chunk)).await?;
            let outcomes = Subscription::executeBatchCall::abi_decode_returns(&returned)
                .map_err(|source| JobError::Decode { call: "executeBatch", source })?;
            let mut send = Vec::new();
            for (id, outcome) in chunk.iter().zip(outcomes) {
                let sent = [ExecutionOutcome::Charged, ExecutionOutcome::ChargeFailed].map(u8::from);
                if sent.contains(&outcome) {
                    send.push(*id);
                } else {
                    keeper.shared.metrics.items("subscriptions", "dropped_in_simulation", 1);
                }
            }
            if send.is_empty() {
                continue;
            }
            let input = encode(&send);
            let gas = keeper.sender.estimate(target, &input).await?;
            send_and_apply(keeper, TxJob::Subscriptions { ids: send }, target, input, gas, |_| {
                Change::default()
            })
            .await?;
            sent_any = true;
        }
        if !sent_any {
            break;
        }
    }
    Ok(())
}

/// Records each execution's outcome from the receipt's events; returns how many were charged.
pub(crate) fn apply(
    keeper: &Worker,
    nonce: u64,
    ids: &[U256],
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let mut change = Change { remove_tx: Some(nonce), ..Change::default() };
    let mut charged = 0;
    if let Some(receipt) = receipt.filter(|r| r.status()) {
        let target = keeper.shared.settings.contracts.subscription;
        let base = |id: U256, index: usize| ExecutionRecord {
            subscription: id,
            outcome: String::new(),
            due_at: None,
            amount: None,
            reward: None,
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            index: u32::try_from(index).unwrap_or(u32::MAX),
        };
        let mut charged_seen = 0usize;
        for log in receipt.inner.logs().iter().filter(|log| log.address() == target) {
            if let Ok(event) = Subscription::SubscriptionCharged::decode_log_data(log.data()) {
                // Charged items emit in batch order; skipped ones carry their index.
                let index = ids.iter().position(|id| *id == event.subscriptionId).unwrap_or(charged_seen);
                charged_seen += 1;
                charged += 1;
                change.executions.push(ExecutionRecord {
                    outcome: "charged".into(),
                    due_at: Some(event.dueAt),
                    amount: Some(event.amount),
                    reward: Some(event.reward),
                    ..base(event.subscriptionId, index)
                });
            } else if let Ok(event) = Subscription::ExecutionSkipped::decode_log_data(log.data()) {
                let index = usize::try_from(event.index).unwrap_or(usize::MAX);
                change.executions.push(ExecutionRecord {
                    outcome: outcome_name(event.outcome).into(),
                    ..base(event.subscriptionId, index)
                });
            }
        }
    }
    for record in &change.executions {
        keeper.shared.metrics.items("subscriptions", record.outcome.as_str(), 1);
    }
    keeper.shared.store.commit(change)?;
    Ok(charged)
}
