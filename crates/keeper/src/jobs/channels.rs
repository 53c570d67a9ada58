//! Watches payment channels. Channels enter the watch list when a payer starts a unilateral close (found by
//! scanning `ChannelCloseStarted` logs from the deployment block on) or when a recipient registers a voucher.
//! For a closing channel whose registered voucher is worth more than what was claimed, the keeper claims it
//! (as the recipient's claim operator) while the challenge period runs; once the period is over it finalizes
//! the close, which anyone may do. Closed channels leave the list.

use alloy::primitives::{B256, Bytes};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::{SolCall, SolEvent};
use x402_bindings::{IPaymentChannel, PaymentChannel};

use super::{JobError, send_and_apply, simulate};
use crate::daemon::{Keeper, Shared};
use crate::store::{Change, TxJob};

/// Blocks per `eth_getLogs` request.
const LOG_RANGE: u64 = 5_000;
/// The store's counter: the last block scanned for `ChannelCloseStarted`.
const SCANNED: &str = "channels_scanned_block";

const OPEN: u8 = 1;
const CLOSING: u8 = 2;
/// `ClaimOutcome.Claimed`.
pub(crate) const CLAIMED: u8 = 0;

/// Why `claimBatch` would skip a voucher: its `ClaimOutcome` as an API reason and a message.
pub(crate) fn refusal(outcome: u8) -> (&'static str, &'static str) {
    match outcome {
        1 => ("unknown_channel", "no channel with this id"),
        2 => ("channel_not_claimable", "the channel is closed or its challenge period is over"),
        3 => ("keeper_not_claim_operator", "the recipient has not made the keeper its claim operator"),
        4 => ("nothing_to_claim", "the voucher is not above what the channel has paid out already"),
        5 => {
            ("invalid_voucher_signature", "neither the payer's signature nor approved by its ERC-1271 wallet")
        }
        _ => ("unknown_outcome", "claimBatch answered an outcome this keeper does not know"),
    }
}

/// PaymentChannel's verdict on each voucher: the outcomes of `claimBatch(claims)` simulated from the keeper,
/// which applies every rule a claim will (channel state, the keeper's right to claim, an amount above what was
/// paid, the payer's low-s ECDSA signature or its ERC-1271 wallet's approval within the contract's gas budget).
pub(crate) async fn claim_outcomes(
    shared: &Shared,
    claims: &[IPaymentChannel::VoucherClaim],
) -> Result<Vec<u8>, JobError> {
    let input: Bytes = PaymentChannel::claimBatchCall { items: claims.to_vec() }.abi_encode().into();
    let returned = simulate(shared, shared.settings.contracts.payment_channel, &input).await?;
    PaymentChannel::claimBatchCall::abi_decode_returns(&returned)
        .map_err(|e| JobError::Call(format!("cannot decode claimBatch's outcomes: {e}")))
}

/// Adds channels whose close started since the last scan to the watch list.
async fn scan(keeper: &Keeper) -> Result<(), JobError> {
    let channels = keeper.shared.settings.contracts.payment_channel;
    let head = keeper.shared.provider.get_block_number().await.map_err(|e| JobError::Call(e.to_string()))?;
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
        let logs =
            keeper.shared.provider.get_logs(&filter).await.map_err(|e| JobError::Call(e.to_string()))?;
        let watch = logs.iter().filter_map(|log| log.topics().get(1).copied()).collect();
        keeper.shared.store.commit(Change { watch, meta: vec![(SCANNED, to)], ..Change::default() })?;
        from = to + 1;
    }
    Ok(())
}

/// Claims and finalizes what is due on the watched channels.
pub(crate) async fn run(keeper: &mut Keeper) -> Result<(), JobError> {
    scan(keeper).await?;
    let address = keeper.shared.settings.contracts.payment_channel;
    let contract = PaymentChannel::new(address, keeper.shared.provider.clone());
    let now = keeper.shared.fresh_chain_time().await?;
    let mut claims = Vec::new();
    let mut finalize = Vec::new();
    let mut unwatch = Vec::new();
    for id in keeper.shared.store.watched_channels()? {
        let channel = contract.getChannel(id).call().await?;
        match channel.status {
            OPEN => {}
            CLOSING if channel.closesAt.to::<u64>() > now => {
                if let Some(voucher) = keeper.shared.store.voucher(&id)?
                    && contract.claimable(id, voucher.amount).call().await? > alloy::primitives::U256::ZERO
                {
                    claims.push(IPaymentChannel::VoucherClaim {
                        channelId: id,
                        amount: voucher.amount,
                        signature: voucher.signature,
                    });
                }
            }
            CLOSING => finalize.push(id),
            _ => unwatch.push(id),
        }
    }
    if !unwatch.is_empty() {
        keeper.shared.store.commit(Change { unwatch, ..Change::default() })?;
    }
    if !claims.is_empty() {
        let outcomes = claim_outcomes(&keeper.shared, &claims).await?;
        let claims: Vec<_> = claims
            .into_iter()
            .zip(outcomes)
            .filter_map(|(claim, outcome)| {
                if outcome != CLAIMED {
                    let (reason, _) = refusal(outcome);
                    tracing::warn!(channel = %claim.channelId, reason, "registered voucher cannot be claimed");
                    keeper.shared.metrics.add(
                        "x402_keeper_items_total",
                        &[("job", "channels"), ("outcome", "claim_refused")],
                        1.0,
                    );
                }
                (outcome == CLAIMED).then_some(claim)
            })
            .collect();
        if !claims.is_empty() && !keeper.shared.is_stopping() {
            let channels = claims.iter().map(|c| c.channelId).collect();
            let input: Bytes = PaymentChannel::claimBatchCall { items: claims }.abi_encode().into();
            let gas = keeper.sender.estimate(address, &input).await?;
            send_and_apply(keeper, TxJob::ChannelClaims { channels }, address, input, gas, |_| {
                Change::default()
            })
            .await?;
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
    Ok(())
}

/// Records a claim transaction; returns how many channels it paid.
pub(crate) fn apply_claims(
    keeper: &Keeper,
    nonce: u64,
    channels: &[B256],
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let address = keeper.shared.settings.contracts.payment_channel;
    let claimed = receipt.filter(|r| r.status()).map_or(0, |r| {
        r.inner
            .logs()
            .iter()
            .filter(|log| log.address() == address)
            .filter(|log| PaymentChannel::ChannelClaimed::decode_log_data(log.data()).is_ok())
            .count()
    });
    keeper.shared.metrics.add(
        "x402_keeper_items_total",
        &[("job", "channels"), ("outcome", "claimed")],
        claimed as f64,
    );
    keeper.shared.store.commit(Change { remove_tx: Some(nonce), ..Change::default() })?;
    Ok(claimed.min(channels.len()))
}

/// Records a finalization; the channel stops being watched once it is closed.
pub(crate) fn apply_finalize(
    keeper: &Keeper,
    nonce: u64,
    channel: B256,
    receipt: Option<&TransactionReceipt>,
) -> Result<usize, JobError> {
    let done = receipt.is_some_and(TransactionReceipt::status);
    let unwatch = if done { vec![channel] } else { Vec::new() };
    if done {
        keeper.shared.metrics.add(
            "x402_keeper_items_total",
            &[("job", "channels"), ("outcome", "finalized")],
            1.0,
        );
    }
    keeper.shared.store.commit(Change { remove_tx: Some(nonce), unwatch, ..Change::default() })?;
    Ok(usize::from(done))
}
