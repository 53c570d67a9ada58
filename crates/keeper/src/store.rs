//! The keeper's durable state behind the [`Store`] trait: accepted payments and their status, the transactions in
//! flight with the items they carry, subscription execution outcomes, registered channel vouchers and watched
//! channels. Every change that must be atomic (a transaction and the items it carries; a receipt's outcomes and
//! the transaction's removal) goes through one [`Store::commit`]. [`RedbStore`] keeps it in an embedded
//! database file for one process; [`PgStore`] in a PostgreSQL database that several processes share, one of them
//! sending transactions at a time ([`Store::sender_lease`]).

mod pg_store;
mod redb_store;

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::config::Job;

pub use pg_store::{PgOptions, PgStore, migrate_schema};
pub use redb_store::RedbStore;

/// Why the store failed. Every variant means the state could not be read or written; none is recoverable by
/// retrying with other input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error("the database {0} is in use by another keeper")]
    Locked(String),
    /// The database file cannot be used as it is: the path, what is wrong, and what to do.
    #[error("the database {path} {problem}; {remedy}")]
    Unusable {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
        /// What the operator can do.
        remedy: &'static str,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// This process no longer holds the sender lease: another one sends now, and nothing was written.
    #[error("another process holds the sender lease now; nothing was written")]
    LeaseLost,
    /// A stored value is not what this version writes.
    #[error("corrupt record in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What failed to decode.
        message: String,
    },
}

/// Identifies an x402 payment: EIP-3009 nonces are unique per (token, payer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PaymentKey {
    /// The token.
    pub token: Address,
    /// The payer (the authorization's `from`).
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
}

impl PaymentKey {
    /// The key's bytes in the database: token, payer, nonce.
    pub fn to_bytes(&self) -> [u8; 72] {
        let mut out = [0u8; 72];
        out[..20].copy_from_slice(self.token.as_slice());
        out[20..40].copy_from_slice(self.payer.as_slice());
        out[40..].copy_from_slice(self.nonce.as_slice());
        out
    }

    /// The payment's id in the HTTP API and the CLI: `<token>:<payer>:<nonce>`, in hex.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.token, self.payer, self.nonce)
    }

    /// Parses [`PaymentKey::id`].
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.split(':');
        let key = Self {
            token: parts.next()?.parse().ok()?,
            payer: parts.next()?.parse().ok()?,
            nonce: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(key)
    }
}

/// Where a payment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Accepted, waiting for the next batch.
    Queued,
    /// In a transaction that is not confirmed yet.
    Submitted,
    /// Transferred to the merchant, in `tx_hash`.
    Settled,
    /// Will not be settled; `reason` says why.
    Failed,
}

/// An accepted payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// Token, payer and nonce.
    pub key: PaymentKey,
    /// The merchant.
    pub to: Address,
    /// Amount in the token's smallest unit.
    pub value: U256,
    /// Valid strictly after (unix seconds).
    pub valid_after: U256,
    /// Valid strictly before (unix seconds).
    pub valid_before: U256,
    /// The payer's signature.
    pub signature: Bytes,
    /// Where it is.
    pub status: PaymentStatus,
    /// The transaction that carries (Submitted) or settled it (Settled).
    pub tx_hash: Option<B256>,
    /// The block that settled it.
    pub block: Option<u64>,
    /// Why it failed: an x402 error reason.
    pub reason: Option<String>,
    /// Order of acceptance; the queue is settled oldest first.
    pub seq: u64,
    /// Batches that carried it and did not land (reverted or replaced); it fails after a few.
    pub attempts: u32,
    /// Signed by a contract wallet (ERC-1271), not by the payer's own key: the token asks the wallet, which may
    /// answer on chain otherwise than in the keeper's simulations.
    #[serde(default)]
    pub wallet: bool,
}

/// How soon a write must be on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Before the call returns (fsync).
    Immediate,
    /// Before anything that depends on it is broadcast: the next durable commit takes it along.
    UntilSent,
}

/// Outcome of storing a new payment.
#[derive(Debug)]
pub enum Accepted {
    /// Stored and queued; the queue now holds `queued` payments.
    Queued {
        /// The stored record.
        record: Box<PaymentRecord>,
        /// Payments queued, this one included.
        queued: u64,
    },
    /// The same payment (its (token, payer, nonce) and signature) was accepted before; here is its record.
    Duplicate(Box<PaymentRecord>),
    /// Another authorization of the same (token, payer, nonce) was accepted before (the payer signed the nonce
    /// twice): only that one can settle.
    NonceTaken,
    /// The queue holds its maximum; try later.
    QueueFull,
    /// With the payer's other payments not settled yet (`outstanding` in all), this one would exceed the balance
    /// the payer was seen to hold.
    OverBalance {
        /// The payer's queued and submitted payments in this token, in all.
        outstanding: U256,
        /// The balance it was checked against.
        balance: U256,
    },
}

/// A payer's payments in one token, as the store counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayerTotals {
    /// Queued and submitted, not settled yet.
    pub outstanding: U256,
    /// Ever settled.
    pub settled: U256,
}

/// What writing `record` over `previous` does to its payer's totals: (added to outstanding, taken from it, newly
/// settled), or `None` when it changes nothing. Both stores keep [`PayerTotals`] with it.
fn totals_delta(previous: Option<&PaymentRecord>, record: &PaymentRecord) -> Option<(U256, U256, U256)> {
    let outstanding =
        |p: &PaymentRecord| matches!(p.status, PaymentStatus::Queued | PaymentStatus::Submitted);
    let was = previous.filter(|p| outstanding(p)).map(|p| p.value);
    let is = outstanding(record).then_some(record.value);
    let newly_settled = record.status == PaymentStatus::Settled
        && previous.is_some_and(|p| p.status != PaymentStatus::Settled);
    (was != is || newly_settled).then(|| {
        let settled = if newly_settled { record.value } else { U256::ZERO };
        (is.unwrap_or_default(), was.unwrap_or_default(), settled)
    })
}

/// A payer's balance as the intake read it, with the store's settled total read just before: payments that settle
/// between the two reads lower the balance the check allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceSeen {
    /// The token balance read on chain.
    pub balance: U256,
    /// [`PayerTotals::settled`] read before the balance.
    pub settled: U256,
}

/// What a keeper transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxJob {
    /// `X402Payment.settleBatch(token, items)`; the items in order.
    Payments {
        /// The token of the batch.
        token: Address,
        /// The payments carried, in calldata order.
        items: Vec<PaymentKey>,
    },
    /// `Subscription.executeBatch(ids)`.
    Subscriptions {
        /// The ids, in calldata order.
        ids: Vec<U256>,
    },
    /// `PaymentChannel.claimBatch(...)`: registered vouchers claimed before a close.
    ChannelClaims {
        /// The channels claimed, in calldata order.
        channels: Vec<B256>,
        /// The vouchers' amounts, in the same order (empty in transactions stored by older keepers).
        #[serde(default)]
        amounts: Vec<U256>,
    },
    /// `PaymentChannel.finalizeClose(channel)`.
    ChannelFinalize {
        /// The channel.
        channel: B256,
    },
}

impl TxJob {
    /// The keeper job that sends it.
    pub fn job(&self) -> Job {
        match self {
            Self::Payments { .. } => Job::Payments,
            Self::Subscriptions { .. } => Job::Subscriptions,
            Self::ChannelClaims { .. } | Self::ChannelFinalize { .. } => Job::Channels,
        }
    }

    /// The job's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        self.job().name()
    }
}

/// A signed keeper transaction that was (or is about to be) broadcast and is not confirmed yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    /// The keeper's nonce it uses.
    pub nonce: u64,
    /// What it does.
    pub job: TxJob,
    /// Every hash signed at this nonce (fee bumps add one each); at most one of them can be mined.
    pub hashes: Vec<B256>,
    /// The latest signed transaction, for re-broadcast.
    pub raw: Bytes,
    /// Its gas limit.
    pub gas_limit: u64,
    /// Its fee cap per gas.
    pub max_fee_per_gas: u128,
    /// Its priority fee per gas.
    pub max_priority_fee_per_gas: u128,
    /// The target contract.
    pub to: Address,
    /// The call data.
    pub input: Bytes,
}

/// What one subscription execution did, from the transaction's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The subscription.
    pub subscription: U256,
    /// `charged`, or the contract's skip outcome (`past_due` etc.).
    pub outcome: String,
    /// The period charged (its due time), when charged.
    pub due_at: Option<U256>,
    /// Amount charged (including the keeper's reward).
    pub amount: Option<U256>,
    /// The keeper's reward.
    pub reward: Option<U256>,
    /// The transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block: u64,
    /// Position in the batch.
    pub index: u32,
}

/// What [`Store::put_vouchers`] did with one voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherPut {
    /// Stored: the channel's highest voucher now.
    Stored,
    /// Not stored: a voucher at least as high is registered.
    NotHigher,
    /// Not stored: the channel takes no more vouchers ([`Change::refuse_vouchers`]).
    Refused,
}

/// The best voucher a recipient registered for a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherRecord {
    /// The channel.
    pub channel: B256,
    /// Cumulative amount.
    pub amount: U256,
    /// The payer's signature.
    pub signature: Bytes,
    /// What a channel desk had taken on the channel when it stored this (the prices of the requests paid,
    /// at most `amount`; below it when a voucher above what was owed left credit); none for a registered voucher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<U256>,
}

/// One atomic change to the store.
#[derive(Debug, Default)]
pub struct Change {
    /// Payments to write (new status); they enter or leave the queue by status.
    pub payments: Vec<PaymentRecord>,
    /// A transaction to store (before its broadcast) or replace (after a fee bump).
    pub put_tx: Option<PendingTx>,
    /// A transaction to forget (confirmed or dropped), by nonce.
    pub remove_tx: Option<u64>,
    /// Subscription outcomes to record.
    pub executions: Vec<ExecutionRecord>,
    /// Channels to watch (a close was started, or a voucher registered).
    pub watch: Vec<B256>,
    /// Channels no longer worth watching (closed).
    pub unwatch: Vec<B256>,
    /// Registered vouchers (channel, amount) to forget, each only if it is still the registered one.
    pub drop_vouchers: Vec<(B256, U256)>,
    /// Channels whose registered voucher is forgotten and which take no more vouchers (a claim the
    /// simulation passed was refused on chain for its signature).
    pub refuse_vouchers: Vec<B256>,
    /// Contract-wallet payers whose payment passed every simulation and was refused on chain: the keeper takes
    /// no more of their payments.
    pub refuse_payers: Vec<Address>,
    /// Counters to set (scan cursors).
    pub meta: Vec<(&'static str, u64)>,
}

/// What [`Store::bind_payment_id`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdBinding {
    /// The id was free and is now bound to the payment.
    Bound,
    /// The id was bound before, to the same request.
    Same(PaymentKey),
    /// The id is bound to another request.
    Conflict,
}

/// The keeper's durable state.
pub trait Store: Send + Sync {
    /// Binds a client's `payment-identifier` id to the request whose fingerprint is given and the payment it
    /// carries, unless the id is bound already (then says to what).
    fn bind_payment_id(&self, id: &str, fingerprint: B256, key: PaymentKey) -> Result<IdBinding, StoreError>;
    /// The fingerprint of the request a `payment-identifier` id is bound to, if it is bound.
    fn payment_id_fingerprint(&self, id: &str) -> Result<Option<B256>, StoreError>;
    /// Stores a new payment as Queued unless its key is known, `max_queued` payments are queued already, or the
    /// payer's payments in the token not settled yet would add up to more than the balance `seen` with it (less
    /// what settled since `seen.settled` was read). The check and the write are one atomic step, so concurrent
    /// payments of one payer cannot both pass it.
    ///
    /// With [`Durability::UntilSent`] the write may be lost in a crash until the next durable commit, which the
    /// transaction that carries the payment makes before it is broadcast: for a caller that waits for the outcome
    /// and retries if the answer never comes (a facilitator's `/settle`), not for one told "queued".
    fn accept_payment(
        &self,
        record: PaymentRecord,
        max_queued: u64,
        seen: BalanceSeen,
        durability: Durability,
    ) -> Result<Accepted, StoreError>;
    /// The payer's payments in `token`: outstanding and ever settled.
    fn payer_totals(&self, token: &Address, payer: &Address) -> Result<PayerTotals, StoreError>;
    /// The payment with `key`.
    fn payment(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError>;
    /// Up to `limit` queued payments, oldest first.
    fn queued_payments(&self, limit: usize) -> Result<Vec<PaymentRecord>, StoreError>;
    /// How many payments are queued.
    fn queued_count(&self) -> Result<u64, StoreError>;
    /// The transactions in flight, lowest nonce first.
    fn pending_txs(&self) -> Result<Vec<PendingTx>, StoreError>;
    /// Applies `change` atomically.
    fn commit(&self, change: Change) -> Result<(), StoreError>;
    /// Stores each voucher that is its channel's highest, on a channel that takes vouchers, in one durable
    /// commit (so one disk sync covers many); says what it did with each, in order. A voucher not above the
    /// stored one still raises its [`VoucherRecord::taken`].
    fn put_vouchers(&self, vouchers: &[VoucherRecord]) -> Result<Vec<VoucherPut>, StoreError>;
    /// [`Self::put_vouchers`] for one voucher.
    fn put_voucher(&self, voucher: &VoucherRecord) -> Result<VoucherPut, StoreError> {
        let puts = self.put_vouchers(std::slice::from_ref(voucher))?;
        Ok(puts.first().copied().unwrap_or(VoucherPut::NotHigher))
    }
    /// Whether `payer` was refused ([`Change::refuse_payers`]).
    fn payer_refused(&self, payer: &Address) -> Result<bool, StoreError>;
    /// The registered voucher of `channel`.
    fn voucher(&self, channel: &B256) -> Result<Option<VoucherRecord>, StoreError>;
    /// The highest [`VoucherRecord::taken`] ever stored for `channel`, kept when its voucher is dropped.
    fn channel_taken(&self, channel: &B256) -> Result<Option<U256>, StoreError>;
    /// Channels being watched.
    fn watched_channels(&self) -> Result<Vec<B256>, StoreError>;
    /// Recorded outcomes of `subscription`, oldest first.
    fn executions(&self, subscription: U256) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// A counter set by [`Change::meta`].
    fn meta(&self, name: &str) -> Result<Option<u64>, StoreError>;
    /// The genesis block hash of the chain this database belongs to, once recorded.
    fn genesis(&self) -> Result<Option<B256>, StoreError>;
    /// Records the chain's genesis block hash (on first start).
    fn set_genesis(&self, genesis: B256) -> Result<(), StoreError>;
    /// Takes or renews the right to send transactions for this store's signer, and keeps renewing it from now on:
    /// the lease's fencing token while this process holds it (a new token means another process held it
    /// meanwhile: what it left in flight must be resolved first), `None` while another one does. Every
    /// [`Self::commit`] of a store that others share is refused ([`StoreError::LeaseLost`]) unless the lease is
    /// still held with the token last returned. A store only one process opens is always held.
    fn sender_lease(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(1))
    }
    /// Whether other processes write to this store too (then what they write is seen only by reading it again).
    fn shared(&self) -> bool {
        false
    }
}
