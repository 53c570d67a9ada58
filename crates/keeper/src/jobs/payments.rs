//! Settles queued x402 payments with `X402Payment.settleBatch`, oldest first, one token per batch. Items the
//! simulation says would not settle are marked failed with the x402 reason before anything is sent; the
//! receipt's `BatchSettled` outcomes decide the rest. A batch that reverted or was dropped puts its items back
//! in the queue (each fails after [`MAX_ATTEMPTS`] such batches). Contract-wallet payments (ERC-1271) are capped
//! per batch and budgeted in full on top of the estimate, since a wallet may answer on chain otherwise than in
//! simulation; one that did is refused from then on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolCall, SolEvent};
use x402_bindings::{IX402Payment, SettlementOutcome, TestStablecoin, X402Payment};
use x402_chain::{ChainError, gas};

use super::{JobError, Worker, apply as apply_tx, with_wallet_budgets};
use crate::sender::{InFlight, Resolution, SendError};
use crate::store::{Change, PaymentKey, PaymentRecord, PaymentStatus, TxJob};
use x402_protocol::Reason;

/// Batches of a settlement someone waits for that may be in flight at once.
const MAX_IN_FLIGHT: usize = 4;
/// How long the oldest batch in flight waits for its block before what queued since goes out in another batch.
const PIPELINE_AFTER: Duration = Duration::from_millis(1000);
/// How often an empty queue is looked at again while batches wait for their block.
const PIPELINE_RECHECK: Duration = Duration::from_millis(100);

/// Batches that may revert or be dropped with a payment in them before it is marked failed.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// An authorization must stay valid this long past the latest block to be sent at all.
const MIN_VALIDITY_SECS: u64 = 3;
/// Contract-wallet payments per batch: each is given a full item budget (ITEM_GAS_RESERVE, about 518k gas) on
/// top of the estimate, so 20 of them add about 10M gas.
const WALLET_ITEMS_PER_BATCH: usize = 20;
/// The x402 reason for a payment the token refused for another reason than its balance.
const UNEXPECTED: &str = "unexpected_settle_error";

fn item(record: &PaymentRecord) -> IX402Payment::TransferAuthorization {
    IX402Payment::TransferAuthorization {
        from: record.key.payer,
        to: record.to,
        value: record.value,
        validAfter: record.valid_after,
        validBefore: record.valid_before,
        nonce: record.key.nonce,
        signature: record.signature.clone(),
    }
}

fn encode(token: Address, records: &[PaymentRecord]) -> Bytes {
    X402Payment::settleBatchCall { token, items: records.iter().map(item).collect() }.abi_encode().into()
}

fn failed(mut record: PaymentRecord, reason: &str) -> PaymentRecord {
    record.status = PaymentStatus::Failed;
    record.reason = Some(reason.to_owned());
    record
}

/// Why the token refused an authorization whose window and nonce were fine: `insufficient_funds` if the payer's
/// balance, less `ahead` (what the same payer's earlier items in the batch take first), does not cover it.
async fn refusal_reason(keeper: &Worker, record: &PaymentRecord, ahead: U256) -> &'static str {
    let token = TestStablecoin::new(record.key.token, &keeper.shared.provider);
    match token.balanceOf(record.key.payer).call().await {
        Ok(balance) if balance.saturating_sub(ahead) < record.value => Reason::InsufficientFunds.as_str(),
        _ => UNEXPECTED,
    }
}

/// The x402 reason of a `settleBatch` outcome, `None` for a settled item. `ahead` is what the payer's items
/// settled earlier in the same batch take from its balance, when the balance is read before the batch (in a
/// simulation); after a mined batch the balance already reflects them.
async fn reason_for(
    keeper: &Worker,
    record: &PaymentRecord,
    outcome: u8,
    ahead: U256,
) -> Option<&'static str> {
    match SettlementOutcome::try_from(outcome) {
        Ok(SettlementOutcome::Settled) => None,
        Ok(SettlementOutcome::AlreadyUsed) => Some(Reason::NonceAlreadyUsed.as_str()),
        Ok(SettlementOutcome::Expired) => Some(Reason::ValidBefore.as_str()),
        Ok(SettlementOutcome::NotYetValid) => Some(Reason::ValidAfter.as_str()),
        Ok(SettlementOutcome::Failed) => Some(refusal_reason(keeper, record, ahead).await),
        Ok(SettlementOutcome::None) | Err(_) => Some(UNEXPECTED),
    }
}

/// Settles the queue: on an interval tick, whatever is queued; after that (and on a tick started early because a
/// batch filled up) only full batches, so payments arriving during a batch wait for the next full batch or tick
/// instead of going out in small ones. Stops when the keeper is stopping or a batch cannot be sent.
pub(crate) async fn run(keeper: &mut Worker) -> Result<(), JobError> {
    let mut partial_allowed = !keeper.woken;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // When to look at the queue again for a batch to pipeline, after finding nothing there.
    let mut recheck = tokio::time::Instant::now();
    loop {
        // For callers waiting on their payment, what queues while a batch waits for its block goes out in the
        // next batch at once (at most MAX_IN_FLIGHT), so that it can share the block.
        let may_send = match in_flight.front() {
            None => true,
            Some(oldest) => {
                keeper.urgent
                    && in_flight.len() < MAX_IN_FLIGHT
                    && oldest.sent_at.elapsed() >= PIPELINE_AFTER
                    && tokio::time::Instant::now() >= recheck
            }
        };
        if may_send && !keeper.shared.is_stopping() {
            let partial = partial_allowed || !in_flight.is_empty();
            if let Some(batch) = next_batch(keeper, partial, &mut partial_allowed).await? {
                in_flight.push_back(submit(keeper, batch).await?);
                continue;
            }
            recheck = tokio::time::Instant::now() + PIPELINE_RECHECK;
        }
        let room = in_flight.len() < MAX_IN_FLIGHT;
        let Some(oldest) = in_flight.front_mut() else { break };
        let store = std::sync::Arc::clone(&keeper.shared.store);
        if let Some(receipt) = keeper.sender.poll(store.as_ref(), oldest).await? {
            let Some(flight) = in_flight.pop_front() else { break };
            apply_tx(keeper, &flight.pending, Resolution::Mined(Box::new(receipt))).await?;
            continue;
        }
        let mut wake = oldest.next_poll;
        if keeper.urgent && room {
            wake = wake.min((oldest.sent_at + PIPELINE_AFTER).max(recheck));
        }
        tokio::time::sleep_until(wake.max(tokio::time::Instant::now())).await;
    }
    Ok(())
}

/// Signs, stores (its payments as Submitted, with the transaction) and broadcasts `batch`.
async fn submit(keeper: &mut Worker, batch: Batch) -> Result<InFlight, JobError> {
    let Batch { token, live, input, gas, mut change } = batch;
    let started = tokio::time::Instant::now();
    let items = live.len();
    let job = TxJob::Payments { token, items: live.iter().map(|r| r.key).collect() };
    let x402 = keeper.shared.settings.contracts.x402_payment;
    let store = std::sync::Arc::clone(&keeper.shared.store);
    let flight = keeper
        .sender
        .submit(store.as_ref(), job, x402, input, gas, move |pending| {
            let hash = pending.hashes.last().copied();
            change.payments.extend(live.into_iter().map(|mut record| {
                record.status = PaymentStatus::Submitted;
                record.tx_hash = hash;
                record
            }));
            change
        })
        .await?;
    tracing::debug!(items, gas, submit_ms = started.elapsed().as_millis() as u64, "batch sent");
    Ok(flight)
}

/// A batch ready to send.
struct Batch {
    token: Address,
    live: Vec<PaymentRecord>,
    input: Bytes,
    gas: u64,
    change: Change,
}

/// The next batch of the queue, oldest first: the payments that would fail are recorded as failed (committed), the
/// rest simulated and fitted to the block. `None` when nothing is left to send, or (without `partial`) when less
/// than a full batch is queued. `partial_allowed` becomes whether the next call may send a partial batch (only
/// when this one left payments out).
async fn next_batch(
    keeper: &Worker,
    partial: bool,
    partial_allowed: &mut bool,
) -> Result<Option<Batch>, JobError> {
    let batch_size = keeper.shared.settings.payments_batch;
    let mut partial = partial;
    while !keeper.shared.is_stopping() {
        let queued = keeper.shared.store.queued_payments(batch_size)?;
        if queued.len() < batch_size && !partial {
            break;
        }
        partial = false;
        *partial_allowed = false;
        let Some(first) = queued.first() else { break };
        let token = first.key.token;
        let mut change = Change::default();
        let started = tokio::time::Instant::now();
        let candidates: Vec<_> = queued.into_iter().filter(|r| r.key.token == token).collect();
        let now = keeper.shared.fresh_chain_time().await?;
        let Triage { live, mut leftover } = triage(keeper, candidates, now, &mut change).await?;
        let triaged = started.elapsed();
        let (mut live, peak_gas) = if live.is_empty() {
            (live, None)
        } else {
            let simulated = simulate_batch(keeper, token, live, now, &mut change).await?;
            leftover |= simulated.leftover;
            (simulated.live, simulated.peak_gas)
        };
        for record in &change.payments {
            tracing::info!(id = %record.key.id(), reason = record.reason.as_deref().unwrap_or(""), "payment failed before sending");
            keeper.shared.metrics.items("payments", record.reason.as_deref().unwrap_or(UNEXPECTED), 1);
        }
        if live.is_empty() {
            keeper.shared.commit_payments(change)?;
            continue;
        }
        let before = live.len();
        let simulated = started.elapsed();
        let Some((input, gas)) = sized_batch(keeper, token, &mut live, peak_gas, &mut change).await? else {
            keeper.shared.commit_payments(change)?;
            continue;
        };
        tracing::debug!(
            items = live.len(),
            triage_ms = triaged.as_millis() as u64,
            simulate_ms = (simulated - triaged).as_millis() as u64,
            estimate_ms = (started.elapsed() - simulated).as_millis() as u64,
            "batch prepared"
        );
        // Payments left out (over the wallet cap, or to fit the block) go in the next batch now, not at the
        // next tick.
        *partial_allowed = leftover || live.len() < before;
        return Ok(Some(Batch { token, live, input, gas, change }));
    }
    Ok(None)
}

/// The payments a step goes on with, and whether some were left queued for the next batch.
struct Triage {
    live: Vec<PaymentRecord>,
    leftover: bool,
}

/// Fails the payments that can no longer settle (expiring, or from a wallet refused on chain) into `change` and
/// keeps at most [`WALLET_ITEMS_PER_BATCH`] payments from wallets.
async fn triage(
    keeper: &Worker,
    candidates: Vec<PaymentRecord>,
    now: u64,
    change: &mut Change,
) -> Result<Triage, JobError> {
    let has_code = payers_with_code(keeper, &candidates).await?;
    let mut triage = Triage { live: Vec::new(), leftover: false };
    let mut wallets = 0;
    for mut record in candidates {
        // A payer that has code now (a contract, or an account delegated since intake) is asked by the token
        // like a wallet, whatever signed the payment.
        record.wallet |= has_code.contains(&record.key.payer);
        if record.valid_before <= U256::from(now + MIN_VALIDITY_SECS) {
            change.payments.push(failed(record, Reason::ValidBefore.as_str()));
        } else if record.wallet && keeper.shared.store.payer_refused(&record.key.payer)? {
            change.payments.push(failed(record, Reason::Signature.as_str()));
        } else if record.wallet && wallets == WALLET_ITEMS_PER_BATCH {
            // Left queued for the next batch, which goes out right after this one.
            triage.leftover = true;
        } else {
            wallets += usize::from(record.wallet);
            triage.live.push(record);
        }
    }
    Ok(triage)
}

/// The payments a simulation would settle, whether some were left queued, and the most gas the simulated batch
/// needed at any point, when the node measured it (the payments left out only lower it: a failed item's changes,
/// warm slots included, are undone).
struct Simulated {
    live: Vec<PaymentRecord>,
    leftover: bool,
    peak_gas: Option<u64>,
}

/// Simulates `settleBatch` over `live` at chain time `now` and keeps the payments it would settle; the others fail
/// into `change` with their reason. A batch too big for the node's call gas cap (the block gas limit, typically)
/// reverts as a whole: it is halved until it simulates, and the rest stays queued for the next batch.
async fn simulate_batch(
    keeper: &Worker,
    token: Address,
    mut live: Vec<PaymentRecord>,
    now: u64,
    change: &mut Change,
) -> Result<Simulated, JobError> {
    let x402 = keeper.shared.settings.contracts.x402_payment;
    let mut leftover = false;
    let (returned, peak_gas) = loop {
        match keeper.shared.simulate_measured(x402, &encode(token, &live), now + 1).await {
            Ok(answer) => break answer,
            Err(err) if err.is_revert() && live.len() > 1 => {
                live.truncate(live.len().div_ceil(2));
                leftover = true;
            }
            Err(err) => return Err(err.into()),
        }
    };
    let outcomes = X402Payment::settleBatchCall::abi_decode_returns(&returned)
        .map_err(|source| JobError::Decode { call: "settleBatch", source })?;
    let mut settle = Vec::with_capacity(live.len());
    let mut ahead: HashMap<Address, U256> = HashMap::new();
    for (record, outcome) in live.into_iter().zip(outcomes) {
        let taken = ahead.entry(record.key.payer).or_default();
        match reason_for(keeper, &record, outcome, *taken).await {
            None => {
                *taken += record.value;
                settle.push(record);
            }
            Some(reason) => change.payments.push(failed(record, reason)),
        }
    }
    Ok(Simulated { live: settle, leftover, peak_gas })
}

/// Requests of [`payers_with_code`] in flight at once.
const CODE_LOOKUPS_IN_FLIGHT: usize = 16;

/// The payers among `records` that have code: the token asks them (ERC-1271) about their signatures. Asked
/// concurrently, a few at a time, so a batch of many payers does not wait on one round trip after another.
async fn payers_with_code(keeper: &Worker, records: &[PaymentRecord]) -> Result<HashSet<Address>, JobError> {
    let payers: HashSet<Address> = records.iter().map(|r| r.key.payer).collect();
    let mut with_code = HashSet::new();
    let mut lookups = tokio::task::JoinSet::new();
    let mut pending = payers.into_iter();
    loop {
        while lookups.len() < CODE_LOOKUPS_IN_FLIGHT
            && let Some(payer) = pending.next()
        {
            let provider = keeper.shared.provider.clone();
            lookups.spawn(async move { (payer, provider.get_code_at(payer).await) });
        }
        let Some(done) = lookups.join_next().await else { break };
        let (payer, code) = done?;
        if !code.map_err(ChainError::from)?.is_empty() {
            with_code.insert(payer);
        }
    }
    Ok(with_code)
}

/// The calldata and gas of `live` as one batch that fits 90% of the block gas limit, or `None` when nothing is
/// left to send. A wallet may burn on chain what it did not in the estimate, so each wallet item gets a full item
/// budget (`ITEM_GAS_RESERVE`) on top: such a wallet fails its own item instead of running the batch out of gas.
/// Too big a batch sheds its newest wallet items first, then its newest half, until it fits; what is shed stays
/// queued. A single payment that fits no block is failed (in `change`).
///
/// `peak_gas` is the simulation's own measure of `live` (see [`Simulated`]): while the batch is still the one
/// simulated, it stands for the estimate (the node's binary search would run the batch a dozen times or more),
/// with one item budget added, which `settleBatch` keeps free before its last item.
async fn sized_batch(
    keeper: &Worker,
    token: Address,
    live: &mut Vec<PaymentRecord>,
    peak_gas: Option<u64>,
    change: &mut Change,
) -> Result<Option<(Bytes, u64)>, JobError> {
    let x402 = keeper.shared.settings.contracts.x402_payment;
    let block_limit = keeper.sender.block_gas_limit().await? / 10 * 9;
    let mut reserve = None;
    let mut measured = peak_gas;
    while !live.is_empty() {
        let input = encode(token, live);
        let wallets = live.iter().filter(|r| r.wallet).count() as u64;
        let estimate = match measured.take() {
            Some(peak) => Some(with_wallet_budgets(peak, 1, item_reserve(keeper, &mut reserve).await?)),
            // The node refuses to estimate past its own cap: a batch too big for it is halved like one too big
            // here.
            None => match keeper.sender.estimate(x402, &input).await {
                Ok(estimate) => Some(estimate),
                Err(SendError::WouldRevert(_)) if live.len() > 1 => None,
                Err(err) => return Err(err.into()),
            },
        };
        let gas = match (estimate, wallets) {
            (Some(estimate), 0) => Some(estimate),
            (Some(estimate), _) => {
                Some(with_wallet_budgets(estimate, wallets, item_reserve(keeper, &mut reserve).await?))
            }
            (None, _) => None,
        };
        if let Some(gas) = gas.filter(|gas| gas::fits(*gas, block_limit)) {
            return Ok(Some((input, gas)));
        }
        if live.len() == 1 {
            let record = live.remove(0);
            tracing::warn!(id = %record.key.id(), "payment fails: it needs more gas than a block holds");
            change.payments.push(failed(record, UNEXPECTED));
        } else if let (Some(gas), Some(budget), true) = (gas, reserve, wallets > 0) {
            // Shed the newest wallet items, as many as the excess needs (at least one).
            let budget = u64::try_from(budget).unwrap_or(u64::MAX).max(1);
            let excess = gas::headroom(gas).saturating_sub(block_limit).div_ceil(budget).max(1);
            for _ in 0..excess {
                let Some(index) = live.iter().rposition(|r| r.wallet) else { break };
                live.remove(index);
            }
        } else {
            live.truncate(live.len().div_ceil(2));
        }
    }
    Ok(None)
}

/// `settleBatch`'s gas budget per item (`ITEM_GAS_RESERVE`), read from the contract once per `reserve`.
async fn item_reserve(keeper: &Worker, reserve: &mut Option<U256>) -> Result<U256, JobError> {
    if let Some(budget) = *reserve {
        return Ok(budget);
    }
    let contract = X402Payment::new(keeper.shared.settings.contracts.x402_payment, &keeper.shared.provider);
    Ok(*reserve.insert(contract.ITEM_GAS_RESERVE().call().await?))
}

/// The token's `Transfer` events in `receipt`, counted by (from, to, value).
fn transfers_of(receipt: &TransactionReceipt, token: Address) -> HashMap<(Address, Address, U256), usize> {
    let mut out = HashMap::new();
    for log in receipt.inner.logs().iter().filter(|log| log.address() == token) {
        if let Ok(event) = TestStablecoin::Transfer::decode_log_data(log.data()) {
            *out.entry((event.from, event.to, event.value)).or_default() += 1;
        }
    }
    out
}

/// Takes one `Transfer` of the payment's payer, merchant and value from `transfers`; false if there is none left.
fn take_transfer(transfers: &mut HashMap<(Address, Address, U256), usize>, record: &PaymentRecord) -> bool {
    match transfers.get_mut(&(record.key.payer, record.to, record.value)) {
        Some(count) if *count > 0 => {
            *count -= 1;
            true
        }
        _ => false,
    }
}

/// Records the outcome of a settlement transaction; returns how many payments it settled.
pub(crate) async fn apply(
    keeper: &Worker,
    nonce: u64,
    token: Address,
    items: &[PaymentKey],
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let x402 = keeper.shared.settings.contracts.x402_payment;
    let outcomes: Option<Bytes> = receipt.filter(|r| r.status()).and_then(|r| {
        r.inner.logs().iter().filter(|log| log.address() == x402).find_map(|log| {
            let event = X402Payment::BatchSettled::decode_log_data(log.data()).ok()?;
            (event.token == token).then_some(event.outcomes)
        })
    });
    let mut transfers = receipt.map(|r| transfers_of(r, token)).unwrap_or_default();
    let mut change = Change { remove_tx: Some(nonce), ..Change::default() };
    let mut settled = 0;
    for (index, key) in items.iter().enumerate() {
        let Some(mut record) = keeper.shared.store.payment(key)? else { continue };
        if record.status != PaymentStatus::Submitted {
            continue;
        }
        match (&outcomes, receipt) {
            (Some(outcomes), Some(receipt)) => {
                let outcome = outcomes.get(index).copied().unwrap_or_default();
                let reason = match reason_for(keeper, &record, outcome, U256::ZERO).await {
                    // The contract says settled; the token's own event must say the same.
                    None if !take_transfer(&mut transfers, &record) => {
                        Some(Reason::TransferEventMismatch.as_str())
                    }
                    reason => reason,
                };
                match reason {
                    None => {
                        settled += 1;
                        record.status = PaymentStatus::Settled;
                        record.tx_hash = Some(receipt.transaction_hash);
                        record.block = receipt.block_number;
                        record.reason = None;
                        keeper.shared.metrics.items("payments", "settled", 1);
                    }
                    Some(reason) => {
                        if record.wallet
                            && SettlementOutcome::try_from(outcome) == Ok(SettlementOutcome::Failed)
                        {
                            // Funded, in its window, its nonce unused, approved in every simulation moments
                            // before, and still refused (or drained meanwhile): the wallet answers on chain
                            // otherwise than off it.
                            tracing::warn!(payer = %record.key.payer, "wallet refused on chain what it approved in simulation; its payments are refused from now on");
                            change.refuse_payers.push(record.key.payer);
                        }
                        record.tx_hash = Some(receipt.transaction_hash);
                        record.block = receipt.block_number;
                        record = failed(record, reason);
                        keeper.shared.metrics.items("payments", reason, 1);
                    }
                }
            }
            _ => {
                // Reverted, or dropped: nothing of it happened on chain.
                record.attempts += 1;
                record.tx_hash = None;
                if record.attempts >= MAX_ATTEMPTS {
                    record = failed(record, UNEXPECTED);
                    keeper.shared.metrics.items("payments", UNEXPECTED, 1);
                } else {
                    record.status = PaymentStatus::Queued;
                }
            }
        }
        change.payments.push(record);
    }
    keeper.shared.commit_payments(change)?;
    Ok(settled)
}
