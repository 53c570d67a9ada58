//! Watches payment channels. Channels enter the watch list when a payer starts a unilateral close (found by
//! scanning `ChannelCloseStarted` logs from the deployment block on) or when a voucher is stored (registered by
//! a recipient, or taken by the facilitator's channel desk). The keeper claims a stored voucher (as the
//! recipient's claim operator) at once when its channel is closing, within the challenge period; on an open
//! channel when the claim would pay at least `channel_claim_threshold` or the channel expires within
//! `channel_claim_before_expiry_secs`. Once a challenge period is over it finalizes the close, which anyone may
//! do. Closed channels leave the list.

use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::{SolCall, SolEvent};
use x402_bindings::{ChannelStatus, ClaimOutcome, IPaymentChannel, PaymentChannel};
use x402_chain::{ChainError, gas};

use super::{JobError, Worker, send_and_apply, with_wallet_budgets};
use crate::context::Context;
use crate::sender::SendError;
use crate::store::{Change, TxJob};
use crate::vouchers::{CLAIMED, claim_outcomes, refusal, signed_by};

/// Blocks per `eth_getLogs` request.
const LOG_RANGE: u64 = 5_000;
/// The store's counter: the last block scanned for `ChannelCloseStarted`.
const SCANNED: &str = "channels_scanned_block";

/// Vouchers per `claimBatch`: 20 contract-wallet vouchers need about 20 x 540k gas, a third of a 30M block.
const CLAIMS_PER_BATCH: usize = 20;

/// Adds channels whose close started since the last scan to the watch list.
async fn scan(keeper: &Worker) -> Result<(), JobError> {
    let channels = keeper.shared.settings.contracts.payment_channel;
    let head = keeper.shared.provider.get_block_number().await.map_err(ChainError::from)?;
    let mut from = match keeper.shared.store.meta(SCANNED)? {
        Some(done) => done + 1,
        None => keeper.shared.settings.contracts.deployed_block,
    };
    while from <= head {
        let to = (from + LOG_RANGE - 1).min(head);
        let filter = Filter::new()
            .address(channels)
            .event_signature(PaymentChannel::ChannelCloseStarted::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = keeper.shared.provider.get_logs(&filter).await.map_err(ChainError::from)?;
        let watch = logs.iter().filter_map(|log| log.topics().get(1).copied()).collect();
        keeper.shared.store.commit(Change { watch, meta: vec![(SCANNED, to)], ..Change::default() })?;
        from = to + 1;
    }
    Ok(())
}

/// Claims and finalizes what is due on the watched channels.
pub(crate) async fn run(keeper: &mut Worker) -> Result<(), JobError> {
    scan(keeper).await?;
    let address = keeper.shared.settings.contracts.payment_channel;
    let contract = PaymentChannel::new(address, keeper.shared.provider.clone());
    let now = keeper.shared.fresh_chain_time().await?;
    let mut claims = Vec::new();
    let mut finalize = Vec::new();
    let mut unwatch = Vec::new();
    let rule = keeper.shared.settings.channel_claims;
    for id in keeper.shared.store.watched_channels()? {
        let channel = contract.getChannel(id).call().await?;
        let open = match ChannelStatus::try_from(channel.status) {
            Ok(ChannelStatus::Open) => true,
            Ok(ChannelStatus::Closing) if channel.closesAt.to::<u64>() > now => false,
            Ok(ChannelStatus::Closing) => {
                finalize.push(id);
                continue;
            }
            Ok(ChannelStatus::None | ChannelStatus::Closed) | Err(_) => {
                unwatch.push(id);
                continue;
            }
        };
        let Some(voucher) = keeper.shared.store.voucher(&id)? else { continue };
        let payable =
            voucher.amount.min(U256::from(channel.deposit)).saturating_sub(U256::from(channel.claimed));
        // A closing channel's voucher is claimed at once; an open one's when it pays enough or expiry nears.
        let due = !open
            || payable >= U256::from(rule.threshold)
            || channel.expiresAt.to::<u64>() <= now.saturating_add(rule.before_expiry);
        if payable.is_zero() || !due {
            continue;
        }
        let claim = IPaymentChannel::VoucherClaim {
            channelId: id,
            amount: voucher.amount,
            signature: voucher.signature,
        };
        let by_wallet = !signed_by(&keeper.shared, channel.payer, &claim);
        claims.push((claim, by_wallet));
    }
    if !unwatch.is_empty() {
        keeper.shared.store.commit(Change { unwatch, ..Change::default() })?;
    }
    // Claims go out in chunks of at most CLAIMS_PER_BATCH, halved until each fits a block with room for every
    // wallet check; a failed chunk does not hold up the rest or the finalizations.
    let mut failure = None;
    let block_limit = if claims.is_empty() { 0 } else { keeper.sender.block_gas_limit().await? / 10 * 9 };
    let mut work: Vec<Vec<_>> = claims.chunks(CLAIMS_PER_BATCH).rev().map(<[_]>::to_vec).collect();
    while let Some(chunk) = work.pop() {
        if keeper.shared.is_stopping() {
            break;
        }
        match claim(keeper, &chunk, block_limit).await {
            Ok(None) => {}
            Ok(Some(too_big)) => {
                let (first, second) = too_big.split_at(too_big.len() / 2);
                work.push(second.to_vec());
                work.push(first.to_vec());
            }
            Err(JobError::Send(err @ (SendError::WouldRevert(_) | SendError::TooBig { .. }))) => {
                tracing::error!(error = %err, "channel claims would revert");
                failure.get_or_insert(JobError::Send(err));
            }
            // The transaction pipeline is stuck (or the chain unreachable): the rest would wait the same.
            Err(err @ JobError::Send(_)) => return Err(err),
            Err(err) => {
                tracing::error!(error = %err, "channel claims failed");
                failure.get_or_insert(err);
            }
        }
    }
    for id in finalize {
        if keeper.shared.is_stopping() {
            break;
        }
        let input: Bytes = PaymentChannel::finalizeCloseCall { channelId: id }.abi_encode().into();
        let gas = keeper.sender.estimate(address, &input).await?;
        send_and_apply(keeper, TxJob::ChannelFinalize { channel: id }, address, input, gas, |_| {
            Change::default()
        })
        .await?;
    }
    failure.map_or(Ok(()), Err)
}

/// Simulates `claims` (each with whether a contract wallet checks it), drops the vouchers the contract would
/// skip, and sends the rest in one `claimBatch`, unless two or more of them need more than `block_limit`: those
/// are returned, to be sent in smaller batches. A single voucher that fits no block is dropped.
async fn claim(
    keeper: &mut Worker,
    claims: &[(IPaymentChannel::VoucherClaim, bool)],
    block_limit: u64,
) -> Result<Option<Vec<(IPaymentChannel::VoucherClaim, bool)>>, JobError> {
    let items: Vec<_> = claims.iter().map(|(claim, _)| claim.clone()).collect();
    let outcomes = claim_outcomes(&keeper.shared, &items).await?;
    let skipped: Vec<(B256, U256, u8)> = items
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| **outcome != CLAIMED)
        .map(|(claim, outcome)| (claim.channelId, claim.amount, *outcome))
        .collect();
    if !skipped.is_empty() {
        keeper.shared.store.commit(dropped_vouchers(&keeper.shared, &skipped, false))?;
    }
    let claims: Vec<_> =
        claims.iter().zip(&outcomes).filter(|(_, o)| **o == CLAIMED).map(|(c, _)| c.clone()).collect();
    if claims.is_empty() || keeper.shared.is_stopping() {
        return Ok(None);
    }
    let address = keeper.shared.settings.contracts.payment_channel;
    let wallets = claims.iter().filter(|(_, by_wallet)| *by_wallet).count() as u64;
    let items: Vec<_> = claims.iter().map(|(c, _)| c.clone()).collect();
    let input: Bytes = PaymentChannel::claimBatchCall { items }.abi_encode().into();
    let mut gas = match keeper.sender.estimate(address, &input).await {
        Ok(estimate) => estimate,
        Err(SendError::WouldRevert(_)) if claims.len() > 1 => return Ok(Some(claims)),
        Err(err) => return Err(err.into()),
    };
    if wallets > 0 {
        let reserve =
            PaymentChannel::new(address, &keeper.shared.provider).SIGNATURE_GAS_RESERVE().call().await?;
        gas = with_wallet_budgets(gas, wallets, reserve);
    }
    if !gas::fits(gas, block_limit) {
        if claims.len() > 1 {
            return Ok(Some(claims));
        }
        let (claim, _) = &claims[0];
        tracing::warn!(channel = %claim.channelId, gas, "registered voucher dropped: its claim needs more gas than a block holds");
        let drop = Change { drop_vouchers: vec![(claim.channelId, claim.amount)], ..Change::default() };
        keeper.shared.store.commit(drop)?;
        return Ok(None);
    }
    let channels = claims.iter().map(|(c, _)| c.channelId).collect();
    let amounts = claims.iter().map(|(c, _)| c.amount).collect();
    let job = TxJob::ChannelClaims { channels, amounts };
    send_and_apply(keeper, job, address, input, gas, |_| Change::default()).await.map(|_| None)
}

/// The change that forgets the vouchers `claimBatch` skipped (channel, amount, outcome), in a simulation or in a
/// `mined` batch: a skipped voucher will not pay later either (the channel is closing, was paid at least as much,
/// or the recipient withdrew the keeper's right to claim). Only the voucher of that amount is forgotten, so a
/// higher one registered meanwhile stays. A voucher a mined batch refused for its signature, although every
/// simulation passed it, came from a payer whose wallet answers on chain otherwise than off it: its channel
/// takes no more vouchers, so the keeper pays for at most one such claim per channel.
fn dropped_vouchers(shared: &Context, skipped: &[(B256, U256, u8)], mined: bool) -> Change {
    let outcome = if mined { "claim_skipped" } else { "claim_refused" };
    let mut change = Change::default();
    for (channel, amount, code) in skipped {
        let (reason, _) = refusal(*code);
        tracing::warn!(channel = %channel, reason, mined, "registered voucher dropped: the contract would not pay it");
        shared.metrics.items("channels", outcome, 1);
        if mined && *code == ClaimOutcome::InvalidSignature as u8 {
            change.refuse_vouchers.push(*channel);
        } else {
            change.drop_vouchers.push((*channel, *amount));
        }
    }
    change
}

/// Records a claim transaction; returns how many channels it paid. Vouchers the mined batch skipped are
/// dropped (see [`dropped_vouchers`]).
pub(crate) fn apply_claims(
    keeper: &Worker,
    nonce: u64,
    channels: &[B256],
    amounts: &[U256],
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let address = keeper.shared.settings.contracts.payment_channel;
    let logs = receipt.filter(|r| r.status()).map(|r| r.inner.logs()).unwrap_or_default();
    let ours = || logs.iter().filter(|log| log.address() == address);
    let claimed =
        ours().filter(|log| PaymentChannel::ChannelClaimed::decode_log_data(log.data()).is_ok()).count();
    // The claimed amount by calldata index; a transaction stored by an older keeper has none, and then nothing
    // is dropped here (the next simulation does it).
    let skipped: Vec<(B256, U256, u8)> = ours()
        .filter_map(|log| PaymentChannel::ClaimSkipped::decode_log_data(log.data()).ok())
        .filter_map(|event| {
            let amount = amounts.get(usize::try_from(event.index).ok()?)?;
            Some((event.channelId, *amount, event.outcome))
        })
        .collect();
    keeper.shared.metrics.items("channels", "claimed", claimed);
    let change = dropped_vouchers(&keeper.shared, &skipped, true);
    keeper.shared.store.commit(Change { remove_tx: Some(nonce), ..change })?;
    Ok(claimed.min(channels.len()))
}

/// Records a finalization; the channel stops being watched once it is closed.
pub(crate) fn apply_finalize(
    keeper: &Worker,
    nonce: u64,
    channel: B256,
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let done = receipt.is_some_and(TransactionReceipt::status);
    let unwatch = if done { vec![channel] } else { Vec::new() };
    if done {
        keeper.shared.metrics.items("channels", "finalized", 1);
    }
    keeper.shared.store.commit(Change { remove_tx: Some(nonce), unwatch, ..Change::default() })?;
    Ok(usize::from(done))
}
