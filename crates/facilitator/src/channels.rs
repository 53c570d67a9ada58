//! The `channel` scheme's desk: vouchers taken without the chain. A channel's on-chain state (payer, recipient,
//! token, deposit, status, expiry) is read once, when its first voucher comes, and read again whenever the
//! PaymentChannel logs an event for it; a voucher is checked against that state, its ECDSA signature recovered
//! locally, and taken if it is at least the desk's running total on the channel (the prices of the requests paid)
//! plus this request's price, and within the deposit. The request is charged its price: a voucher above that
//! leaves credit the next vouchers use (so vouchers that arrive out of order cost nothing extra). The channel's
//! highest voucher and the running total are stored in the engine's store, where the keeper's channel job finds
//! the voucher to claim, before the answer is given; concurrent vouchers share one disk commit (group commit).
//!
//! A contract-wallet payer's voucher is checked by simulating the recipient's `claim` with it (the contract asks
//! the wallet, ERC-1271), every voucher: a wallet may stop approving a key it approved before. Vouchers of a
//! channel whose recipient has not made the keeper its claim operator are refused (the keeper could not claim
//! them). The running total outlives a voucher the keeper drops, so a restart never takes an earlier voucher again. One desk per network engine; it is the only writer of what it takes, so one process per store
//! (the engine's rule) keeps "never more than the deposit" true.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::{Eip712Domain, SolCall, SolStruct};
use tokio::sync::{Notify, watch};
use x402_bindings::voucher::{self, Voucher};
use x402_bindings::{ChannelStatus, PaymentChannel};
use x402_chain::ChainError;
use x402_keeper::context::Context;
use x402_keeper::signature::ecdsa_signer;
use x402_keeper::store::{StoreError, VoucherPut, VoucherRecord};
use x402_protocol::channel::{ChannelReason, ChannelReceipt, ChannelState, SCHEME, VoucherRequest};
use x402_protocol::parse_amount;

/// How often the desk reads the PaymentChannel's new events.
const EVENT_POLL: Duration = Duration::from_secs(1);
/// Vouchers are refused (503) when the events were not read for this long.
const EVENTS_STALE: Duration = Duration::from_secs(30);
/// How long a channel named in an event before it was known is remembered.
const NAMED_FOR: Duration = Duration::from_secs(120);
/// Blocks per `eth_getLogs` request.
const LOG_RANGE: u64 = 5_000;

/// What the chain says of a channel, as the desk last read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct View {
    payer: Address,
    recipient: Address,
    token: Address,
    deposit: U256,
    claimed: U256,
    status: u8,
    expires_at: u64,
    challenge_period: u64,
}

#[derive(Debug)]
struct Entry {
    view: View,
    /// What the desk has taken on the channel (cumulative, the prices of the requests paid): the next voucher
    /// must be at least this plus its price.
    charged: U256,
    /// The highest voucher stored (what a claim can pay): at least `charged`.
    stored: U256,
    /// Its signature.
    signature: Bytes,
    /// The store takes no more vouchers for it.
    refused: bool,
}

#[derive(Debug, Default)]
struct Pending {
    /// The commit that will carry what is added now.
    epoch: u64,
    vouchers: HashMap<B256, VoucherRecord>,
}

/// Commits done (every voucher taken up to this epoch is on disk) and the last that failed.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    done: u64,
    failed: u64,
}

/// Why the desk could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The chain could not be read.
    #[error("cannot read the channel: {0}")]
    Chain(#[from] ChainError),
    /// The contract's events have not been read for a while: a close may have started unseen.
    #[error("{0}")]
    Events(String),
    /// A contract read failed.
    #[error("cannot read the channel: {0}")]
    Contract(#[source] alloy::contract::Error),
    /// The voucher could not be stored.
    #[error("cannot store the voucher: {0}")]
    Store(String),
}

impl From<alloy::contract::Error> for DeskError {
    fn from(err: alloy::contract::Error) -> Self {
        Self::Contract(err)
    }
}

/// The desk of one network.
#[derive(Debug)]
pub struct Desk {
    context: Arc<Context>,
    network: String,
    domain: Eip712Domain,
    channels: Mutex<HashMap<B256, Entry>>,
    pending: Mutex<Pending>,
    wake: Notify,
    progress: watch::Sender<Progress>,
    /// Channels the event reader was told of before they were known (locked after `channels`).
    named: Mutex<HashMap<B256, Instant>>,
    /// When the event reader last read up to the head.
    followed: Mutex<Instant>,
}

/// What the desk knows of a channel.
enum Known {
    /// No such channel.
    Unknown,
    /// Its recipient has not made the keeper its claim operator.
    NoOperator(View),
    /// Known: its state and what was taken.
    Channel(View, U256),
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Desk {
    /// The desk of `context`'s network (`network` as CAIP-2), with its writer and its event reader running.
    pub fn start(context: Arc<Context>) -> Arc<Self> {
        let settings = &context.settings;
        let domain = voucher::domain(settings.chain_id, settings.contracts.payment_channel);
        let desk = Arc::new(Self {
            network: format!("eip155:{}", settings.chain_id),
            domain,
            channels: Mutex::default(),
            pending: Mutex::new(Pending { epoch: 1, vouchers: HashMap::new() }),
            wake: Notify::new(),
            progress: watch::Sender::new(Progress::default()),
            named: Mutex::default(),
            followed: Mutex::new(Instant::now()),
            context,
        });
        tokio::spawn(Arc::clone(&desk).write_loop());
        tokio::spawn(Arc::clone(&desk).event_loop());
        desk
    }

    /// The PaymentChannel the desk takes vouchers for.
    pub fn payment_channel(&self) -> Address {
        self.context.settings.contracts.payment_channel
    }

    /// Takes the voucher of `request` if it pays the request's price on a channel to its `payTo` in its asset;
    /// the receipt says what was taken, or why not. A taken voucher is on disk when this returns.
    pub async fn accept(&self, request: &VoucherRequest) -> Result<ChannelReceipt, DeskError> {
        let voucher = &request.voucher;
        let channel = voucher.channel_id;
        let refuse = |reason: ChannelReason, message: String, cumulative: U256, remaining: U256| {
            let counted = format!("refused_{}", reason.as_str().trim_start_matches("invalid_channel_"));
            self.context.metrics.items("vouchers", &counted, 1);
            Ok(self.receipt(channel, None, cumulative, remaining, U256::ZERO, Some((reason, message))))
        };
        let (Some(amount), Some(price)) = (parse_amount(&voucher.amount), parse_amount(&request.price))
        else {
            return refuse(
                ChannelReason::Malformed,
                "amounts must be decimal".into(),
                U256::ZERO,
                U256::ZERO,
            );
        };
        if price.is_zero() {
            return refuse(
                ChannelReason::Malformed,
                "the price must be positive".into(),
                U256::ZERO,
                U256::ZERO,
            );
        }
        let extra = &request.extra;
        if request.network != self.network
            || extra.payment_channel != self.payment_channel()
            || extra.name != voucher::DOMAIN_NAME
            || extra.version != voucher::DOMAIN_VERSION
        {
            let message = format!(
                "this desk takes vouchers of the PaymentChannel {} ({} version {}) on {}",
                self.payment_channel(),
                voucher::DOMAIN_NAME,
                voucher::DOMAIN_VERSION,
                self.network
            );
            return refuse(ChannelReason::UnknownContract, message, U256::ZERO, U256::ZERO);
        }
        let Some(min_deposit) = parse_amount(&extra.min_deposit) else {
            return refuse(
                ChannelReason::Malformed,
                "minDeposit must be decimal".into(),
                U256::ZERO,
                U256::ZERO,
            );
        };
        if let Some(stalled) = self.events_stalled() {
            return Err(DeskError::Events(stalled));
        }
        let (view, charged) = match self.entry(channel).await? {
            Known::Channel(view, charged) => (view, charged),
            Known::Unknown => {
                let message = format!("no channel {channel} on {}", self.payment_channel());
                return refuse(ChannelReason::NotFound, message, U256::ZERO, U256::ZERO);
            }
            Known::NoOperator(view) if view.recipient != request.pay_to || view.token != request.asset => {
                let message = format!(
                    "the channel pays {} in {}, the route {} in {}",
                    view.recipient, view.token, request.pay_to, request.asset
                );
                return refuse(ChannelReason::WrongChannel, message, U256::ZERO, U256::ZERO);
            }
            Known::NoOperator(view) => {
                let message = format!(
                    "the recipient {} has not made this facilitator's signer {} its claim operator \
                     (PaymentChannel.setClaimOperator), so its vouchers could not be claimed",
                    view.recipient, self.context.keeper
                );
                return refuse(ChannelReason::NoClaimOperator, message, U256::ZERO, U256::ZERO);
            }
        };
        let remaining = view.deposit.saturating_sub(charged);
        if view.recipient != request.pay_to || view.token != request.asset {
            let message = format!(
                "the channel pays {} in {}, the route {} in {}",
                view.recipient, view.token, request.pay_to, request.asset
            );
            return refuse(ChannelReason::WrongChannel, message, charged, remaining);
        }
        if view.status != ChannelStatus::Open as u8 {
            let message = "the channel is closing or closed: open a new one".to_owned();
            return refuse(ChannelReason::NotOpen, message, charged, remaining);
        }
        let now = self.context.chain_time().await?;
        if view.challenge_period < extra.min_challenge_period
            || view.expires_at < now.saturating_add(extra.min_expiry_seconds)
        {
            let message = format!(
                "the channel's challenge period is {} s and it expires at {}; this server takes at least {} s and \
                 an expiry after {}",
                view.challenge_period,
                view.expires_at,
                extra.min_challenge_period,
                now.saturating_add(extra.min_expiry_seconds)
            );
            return refuse(ChannelReason::TermsTooShort, message, charged, remaining);
        }
        if view.deposit < min_deposit {
            let message =
                format!("the deposit {} is below this server's minimum {min_deposit}", view.deposit);
            return refuse(ChannelReason::DepositTooSmall, message, charged, remaining);
        }
        // Cheap refusals before the signature: a voucher that cannot pay is not worth recovering.
        if amount < charged.saturating_add(price) {
            let message = format!(
                "the voucher must be at least {} ({charged} taken + price {price})",
                charged.saturating_add(price)
            );
            return refuse(ChannelReason::TooLow, message, charged, remaining);
        }
        if amount > view.deposit {
            let message = format!("the voucher {amount} is above the deposit {}: top up", view.deposit);
            return refuse(ChannelReason::OverDeposit, message, charged, remaining);
        }
        let digest = Voucher { channelId: channel, amount }.eip712_signing_hash(&self.domain);
        // A contract wallet is asked about every voucher: it may stop approving a key it approved before.
        if ecdsa_signer(&voucher.signature, digest) != Some(view.payer)
            && !self.wallet_approves(channel, &view, amount, &voucher.signature).await?
        {
            let message = format!("the voucher is not signed by the channel's payer {}", view.payer);
            return refuse(ChannelReason::Signature, message, charged, remaining);
        }
        // Taken in memory under the lock (a racing voucher for the same amount loses), then stored if it is the
        // channel's highest. What is taken is the price; a voucher above what is owed is credit for the next ones.
        let (owed, epoch) = {
            let mut channels = locked(&self.channels);
            let Some(entry) = channels.get_mut(&channel) else {
                return Err(DeskError::Store("the channel was forgotten meanwhile".into()));
            };
            let (charged, deposit) = (entry.charged, entry.view.deposit);
            let remaining = deposit.saturating_sub(charged);
            if entry.refused || entry.view.status != ChannelStatus::Open as u8 {
                drop(channels);
                let message = "the channel takes no more vouchers".to_owned();
                return refuse(ChannelReason::NotOpen, message, charged, remaining);
            }
            let owed = charged.saturating_add(price);
            if amount < owed {
                drop(channels);
                let message = format!("another voucher was taken first: sign at least {owed}");
                return refuse(ChannelReason::TooLow, message, charged, remaining);
            }
            if amount > deposit {
                drop(channels);
                return refuse(
                    ChannelReason::OverDeposit,
                    format!("above the deposit {deposit}"),
                    charged,
                    remaining,
                );
            }
            entry.charged = owed;
            if amount > entry.stored {
                entry.stored = amount;
                entry.signature = voucher.signature.clone();
            }
            // The running total is stored with the highest voucher, also when this voucher used credit: after a
            // restart, a voucher taken once must stay refused.
            let record = VoucherRecord {
                channel,
                amount: entry.stored,
                signature: entry.signature.clone(),
                taken: Some(owed),
            };
            let mut pending = locked(&self.pending);
            pending.vouchers.insert(channel, record);
            (owed, pending.epoch)
        };
        self.wake.notify_one();
        if let Err(err) = self.durable(epoch).await {
            // Not stored yet (it will be with the next commit): the request is not served, so it is not charged,
            // and the same voucher may be sent again.
            if let Some(entry) = locked(&self.channels).get_mut(&channel) {
                entry.charged = entry.charged.saturating_sub(price);
            }
            return Err(err);
        }
        if locked(&self.channels).get(&channel).is_some_and(|entry| entry.refused) {
            let message = "the channel takes no more vouchers".to_owned();
            return refuse(ChannelReason::NotOpen, message, owed, view.deposit.saturating_sub(owed));
        }
        self.context.metrics.items("vouchers", "accepted", 1);
        let remaining = view.deposit.saturating_sub(owed);
        Ok(self.receipt(channel, Some(view.payer), owed, remaining, price, None))
    }

    /// The channel as the desk knows it (read from the chain and the store if it was not known yet).
    pub async fn state(&self, channel: B256) -> Result<Option<ChannelState>, DeskError> {
        let (view, taken, voucher) = match self.entry(channel).await? {
            Known::Unknown => return Ok(None),
            Known::NoOperator(view) => {
                let (taken, stored, _) = self.stored(channel, &view)?;
                (view, taken, stored)
            }
            Known::Channel(..) => {
                let channels = locked(&self.channels);
                let Some(entry) = channels.get(&channel) else { return Ok(None) };
                (entry.view, entry.charged, entry.stored)
            }
        };
        let status = match ChannelStatus::try_from(view.status) {
            Ok(ChannelStatus::Open) => "open",
            Ok(ChannelStatus::Closing) => "closing",
            _ => "closed",
        };
        Ok(Some(ChannelState {
            channel_id: channel,
            network: self.network.clone(),
            payer: view.payer,
            recipient: view.recipient,
            token: view.token,
            status: status.to_owned(),
            deposit: view.deposit.to_string(),
            claimed: view.claimed.to_string(),
            taken: taken.to_string(),
            voucher: voucher.to_string(),
            expires_at: view.expires_at,
        }))
    }

    fn receipt(
        &self,
        channel: B256,
        payer: Option<Address>,
        cumulative: U256,
        remaining: U256,
        charged: U256,
        refusal: Option<(ChannelReason, String)>,
    ) -> ChannelReceipt {
        ChannelReceipt {
            success: refusal.is_none(),
            scheme: SCHEME.to_owned(),
            network: self.network.clone(),
            channel_id: channel,
            payer: payer.map(|p| p.to_checksum(None)),
            cumulative: cumulative.to_string(),
            remaining: remaining.to_string(),
            charged: charged.to_string(),
            error_reason: refusal.as_ref().map(|(reason, _)| reason.as_str().to_owned()),
            error_message: refusal.map(|(_, message)| message),
        }
    }

    /// The channel as known (its state and what was taken), read from the chain and the store the first time.
    /// A channel whose recipient has not made the keeper its claim operator is not kept: its vouchers could not
    /// be claimed by the keeper, so they are refused until the recipient does.
    async fn entry(&self, channel: B256) -> Result<Known, DeskError> {
        if let Some(entry) = locked(&self.channels).get(&channel) {
            return Ok(Known::Channel(entry.view, entry.charged));
        }
        let Some(view) = self.read(channel).await? else { return Ok(Known::Unknown) };
        let is_operator = PaymentChannel::new(self.payment_channel(), &self.context.provider)
            .isClaimOperator(view.recipient, self.context.keeper)
            .call()
            .await?;
        if !is_operator {
            return Ok(Known::NoOperator(view));
        }
        let (charged, stored, signature) = self.stored(channel, &view)?;
        // A close started after the reading above is in an event the reader noted for this channel (it notes every
        // channel it is told of before it is known, under the channels lock): read again then.
        let (known, stale) = {
            let mut channels = locked(&self.channels);
            let stale = locked(&self.named).remove(&channel).is_some();
            let entry =
                channels.entry(channel).or_insert(Entry { view, charged, stored, signature, refused: false });
            (Known::Channel(entry.view, entry.charged), stale)
        };
        if stale {
            self.refresh(channel).await?;
            return Ok(match locked(&self.channels).get(&channel) {
                Some(entry) => Known::Channel(entry.view, entry.charged),
                None => known,
            });
        }
        Ok(known)
    }

    /// What the store says was taken on the channel, its highest voucher and that voucher's signature. A voucher
    /// registered by hand (no running total) counts in full; the running total outlives a voucher the keeper
    /// dropped; a channel with neither counts as taken up to what it paid out.
    fn stored(&self, channel: B256, view: &View) -> Result<(U256, U256, Bytes), DeskError> {
        let store = &self.context.store;
        let record = store.voucher(&channel).map_err(|err| DeskError::Store(err.to_string()))?;
        let floor = store.channel_taken(&channel).map_err(|err| DeskError::Store(err.to_string()))?;
        let (taken, stored, signature) = match record {
            Some(record) => (Some(record.taken.unwrap_or(record.amount)), record.amount, record.signature),
            None => (None, U256::ZERO, Bytes::new()),
        };
        let charged = match (taken, floor) {
            (None, None) => view.claimed,
            (a, b) => a.unwrap_or_default().max(b.unwrap_or_default()),
        };
        Ok((charged, stored, signature))
    }

    /// Reads a known channel again.
    async fn refresh(&self, channel: B256) -> Result<(), DeskError> {
        if let Some(view) = self.read(channel).await?
            && let Some(entry) = locked(&self.channels).get_mut(&channel)
        {
            entry.view = view;
        }
        Ok(())
    }

    async fn read(&self, channel: B256) -> Result<Option<View>, DeskError> {
        let contract = PaymentChannel::new(self.payment_channel(), &self.context.provider);
        let onchain = contract.getChannel(channel).call().await?;
        if onchain.status == ChannelStatus::None as u8 {
            return Ok(None);
        }
        Ok(Some(View {
            payer: onchain.payer,
            recipient: onchain.recipient,
            token: onchain.token,
            deposit: U256::from(onchain.deposit),
            claimed: U256::from(onchain.claimed),
            status: onchain.status,
            expires_at: onchain.expiresAt.to::<u64>(),
            challenge_period: u64::from(onchain.challengePeriod),
        }))
    }

    /// Whether the contract would pay the recipient with this voucher: its `claim`, simulated from the recipient
    /// (the contract asks a contract-wallet payer through ERC-1271, with its own gas budget).
    async fn wallet_approves(
        &self,
        channel: B256,
        view: &View,
        amount: U256,
        signature: &Bytes,
    ) -> Result<bool, DeskError> {
        let input: Bytes =
            PaymentChannel::claimCall { channelId: channel, amount, signature: signature.clone() }
                .abi_encode()
                .into();
        let request =
            TransactionRequest::default().from(view.recipient).to(self.payment_channel()).input(input.into());
        match self.context.provider.call(request).await.map_err(ChainError::from) {
            Ok(_) => Ok(true),
            Err(err) if err.is_revert() => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Why vouchers cannot be taken now, if the events were not read for [`EVENTS_STALE`].
    fn events_stalled(&self) -> Option<String> {
        let since = locked(&self.followed).elapsed();
        (since > EVENTS_STALE).then(|| {
            format!(
                "the PaymentChannel's events were not read for {} s: vouchers wait until they are",
                since.as_secs()
            )
        })
    }

    /// Waits until the commit `epoch` (or a later one) is on disk.
    async fn durable(&self, epoch: u64) -> Result<(), DeskError> {
        let mut progress = self.progress.subscribe();
        let seen = progress
            .wait_for(|p| p.done >= epoch || p.failed >= epoch)
            .await
            .map_err(|_| DeskError::Store("the voucher writer stopped".into()))?;
        if seen.done >= epoch {
            return Ok(());
        }
        Err(DeskError::Store("the store failed; the voucher is kept and stored with the next commit".into()))
    }

    /// Stores the vouchers taken since the last commit, in one commit, as long as the process runs.
    async fn write_loop(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                let (epoch, batch) = {
                    let mut pending = locked(&self.pending);
                    if pending.vouchers.is_empty() {
                        break;
                    }
                    let epoch = pending.epoch;
                    pending.epoch += 1;
                    (epoch, pending.vouchers.drain().map(|(_, v)| v).collect::<Vec<_>>())
                };
                let store = Arc::clone(&self.context.store);
                let records = batch.clone();
                let result = tokio::task::spawn_blocking(move || store.put_vouchers(&records))
                    .await
                    .unwrap_or_else(|err| Err(StoreError::Database(err.to_string())));
                match result {
                    Ok(puts) => {
                        {
                            let mut channels = locked(&self.channels);
                            for (record, put) in batch.iter().zip(puts) {
                                if put == VoucherPut::Refused
                                    && let Some(entry) = channels.get_mut(&record.channel)
                                {
                                    entry.refused = true;
                                }
                            }
                        }
                        self.context.metrics.items("vouchers", "stored", batch.len());
                        self.progress.send_modify(|p| p.done = epoch);
                    }
                    Err(err) => {
                        tracing::error!(error = %err, vouchers = batch.len(), "cannot store taken vouchers; retrying");
                        {
                            let mut pending = locked(&self.pending);
                            // A record taken since is newer (its voucher and total at least as high).
                            for record in batch {
                                pending.vouchers.entry(record.channel).or_insert(record);
                            }
                        }
                        self.progress.send_modify(|p| p.failed = epoch);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }

    /// Reads the PaymentChannel's events and reads every known channel they name again (a top-up, a claim, a
    /// close started or done), so a closing channel takes no more vouchers within a poll.
    async fn event_loop(self: Arc<Self>) {
        let mut next: Option<u64> = None;
        loop {
            if self.context.is_stopping() {
                return;
            }
            match self.follow(next).await {
                Ok(block) => next = Some(block),
                Err(err) => tracing::warn!(error = %err, "cannot read channel events; retrying"),
            }
            tokio::time::sleep(EVENT_POLL).await;
        }
    }

    /// Reads events from block `from` (the head when `None`) to the head; returns the next block to read.
    async fn follow(&self, from: Option<u64>) -> Result<u64, DeskError> {
        let head = self.context.provider.get_block_number().await.map_err(ChainError::from)?;
        let Some(mut from) = from else { return Ok(head + 1) };
        while from <= head {
            let to = (from + LOG_RANGE - 1).min(head);
            let filter = Filter::new().address(self.payment_channel()).from_block(from).to_block(to);
            let logs = self.context.provider.get_logs(&filter).await.map_err(ChainError::from)?;
            let mut named: Vec<B256> = logs.iter().filter_map(|log| log.topics().get(1).copied()).collect();
            named.sort();
            named.dedup();
            for channel in named {
                let known = {
                    let channels = locked(&self.channels);
                    let known = channels.contains_key(&channel);
                    if !known {
                        // Being loaded, perhaps: the loader reads it again when it inserts it.
                        let mut noted = locked(&self.named);
                        let now = Instant::now();
                        noted.retain(|_, at| now.duration_since(*at) < NAMED_FOR);
                        noted.insert(channel, now);
                    }
                    known
                };
                if known {
                    self.refresh(channel).await?;
                }
            }
            from = to + 1;
        }
        *locked(&self.followed) = Instant::now();
        Ok(from)
    }
}
