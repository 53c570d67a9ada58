//! The keeper's transaction pipeline, one transaction in flight at a time (a facilitator's settlement may send the
//! next batches before the first is mined, see [`Sender::submit`]):
//!
//! 1. the caller simulates its call and drops the items that would fail;
//! 2. [`Sender::send`] takes the next nonce (its own counter, re-read from the chain after any send error),
//!    estimates gas, signs, and commits the signed transaction with the items it carries to the store
//!    **before** broadcasting it;
//! 3. it waits for a receipt, bumping the fees of a transaction that is not mined in time (same nonce, every
//!    signed hash kept), and then for the configured confirmation depth;
//! 4. on start-up, [`Sender::resolve`] finds out what happened to each stored transaction: mined (by any of
//!    its hashes), still unknown with its nonce free (re-broadcast), or dropped because the nonce went to
//!    another transaction.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use tokio::time::Instant;

use x402_chain::block::GasLimitCache;
use x402_chain::{ChainError, gas, receipt, send};

use crate::config::TxPolicy;
use crate::store::{Change, PendingTx, Store, StoreError, TxJob};

/// A replacement must pay at least this much more (nodes require 10%).
const BUMP_PERCENT: u128 = 125;

/// Why a send did not produce a confirmed receipt.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The node or the RPC failed; the stored transaction (if any) is resolved on the next tick.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The call would revert (the node's answer), or needs more gas than a block holds.
    #[error("the transaction would revert: {0}")]
    WouldRevert(#[source] ChainError),
    /// The call needs more gas than a block holds.
    #[error("needs {gas} gas, more than the block gas limit {block_limit}")]
    TooBig {
        /// The estimate.
        gas: u64,
        /// The block's limit.
        block_limit: u64,
    },
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(#[source] alloy::network::TransactionBuilderError<alloy::network::Ethereum>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not mined before the timeout; it stays stored and is resolved on the next tick.
    #[error("transaction at nonce {0} not mined in time")]
    Timeout(u64),
    /// Mined, but not buried under the confirmation depth before the timeout; resolved on the next tick.
    #[error("transaction {0} mined but not confirmed in time")]
    Unconfirmed(B256),
    /// Mined, then gone from the chain before reaching the confirmation depth; resolved (re-broadcast if its nonce
    /// is free again) on the next tick.
    #[error("transaction {0} was reorganized out before its confirmation depth")]
    Reorged(B256),
}

/// The first pause between receipt polls; it doubles up to the policy's poll interval.
const FIRST_POLL: Duration = Duration::from_millis(5);

/// A transaction [`Sender::submit`] sent, with the timers [`Sender::poll`] keeps for it.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// The stored transaction.
    pub pending: PendingTx,
    /// When it was sent.
    pub sent_at: Instant,
    deadline: Instant,
    bump_at: Instant,
    pause: Duration,
    /// When to look for its receipt next.
    pub next_poll: Instant,
}

/// What happened to a stored transaction.
#[derive(Debug)]
pub enum Resolution {
    /// Mined (successfully or not) and confirmed.
    Mined(Box<TransactionReceipt>),
    /// Its nonce was used by another transaction: none of its hashes can be mined any more.
    Dropped,
}

/// Sends the keeper's transactions.
pub struct Sender {
    provider: DynProvider,
    wallet: EthereumWallet,
    address: Address,
    chain_id: u64,
    next_nonce: Option<u64>,
    policy: TxPolicy,
    /// The latest block's gas limit: sizing a batch and sending it read it once.
    block_limit: GasLimitCache,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("address", &self.address)
            .field("next_nonce", &self.next_nonce)
            .finish()
    }
}

impl Sender {
    /// A sender for the key in `wallet` on `chain_id`.
    pub fn new(provider: DynProvider, wallet: EthereumWallet, chain_id: u64, policy: TxPolicy) -> Self {
        let address =
            alloy::network::NetworkWallet::<alloy::network::Ethereum>::default_signer_address(&wallet);
        Self {
            provider,
            wallet,
            address,
            chain_id,
            next_nonce: None,
            policy,
            block_limit: Default::default(),
        }
    }

    /// The keeper's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Forgets the cached nonce; the next send reads it from the chain.
    pub fn resync(&mut self) {
        self.next_nonce = None;
    }

    /// The gas `input` to `to` would use from the keeper; an error if it would revert.
    pub async fn estimate(&self, to: Address, input: &Bytes) -> Result<u64, SendError> {
        let request =
            TransactionRequest::default().with_from(self.address).with_to(to).with_input(input.clone());
        self.provider.estimate_gas(request).await.map_err(|err| match ChainError::from(err) {
            reverted @ ChainError::Reverted(_) => SendError::WouldRevert(reverted),
            other => SendError::Chain(other),
        })
    }

    /// The latest block's gas limit, read at most once a second (it moves slowly, if at all).
    pub async fn block_gas_limit(&self) -> Result<u64, SendError> {
        Ok(self.block_limit.get(&self.provider).await?)
    }

    /// Signs, stores (with `change`, atomically), broadcasts and confirms a call of `input` on `to` for `job`.
    /// `gas` is the estimate the caller obtained while simulating; `change` (given the signed transaction) is what the
    /// store records with it. Returns the confirmed receipt, or an error
    /// after which the stored transaction is resolved by [`Sender::resolve`] on the next tick. The stored
    /// transaction is returned with the receipt (with every hash signed for it, fee bumps included).
    pub async fn send(
        &mut self,
        store: &dyn Store,
        job: TxJob,
        to: Address,
        input: Bytes,
        gas: u64,
        change: impl FnOnce(&PendingTx) -> Change,
    ) -> Result<(TransactionReceipt, PendingTx), SendError> {
        let flight = self.submit(store, job, to, input, gas, change).await?;
        self.wait(store, flight).await
    }

    /// Polls for the receipt of `flight` until it is confirmed (or an error): the receipt and the stored
    /// transaction, with every hash signed for it.
    async fn wait(
        &mut self,
        store: &dyn Store,
        mut flight: InFlight,
    ) -> Result<(TransactionReceipt, PendingTx), SendError> {
        loop {
            if let Some(receipt) = self.poll(store, &mut flight).await? {
                return Ok((receipt, flight.pending));
            }
            tokio::time::sleep_until(flight.next_poll).await;
        }
    }

    /// `pending`, broadcast just now, with its receipt deadline and fee-bump timer started.
    fn in_flight(&self, pending: PendingTx) -> InFlight {
        let now = Instant::now();
        InFlight {
            pending,
            sent_at: now,
            deadline: now + self.policy.receipt_timeout,
            bump_at: now + self.policy.bump_after,
            pause: FIRST_POLL,
            next_poll: now,
        }
    }

    /// The first half of [`Sender::send`]: signs, stores (with `change`) and broadcasts, at the next nonce; the
    /// transaction is then in flight until [`Sender::poll`] finds its receipt. Several may be in flight at once
    /// (consecutive nonces).
    pub async fn submit(
        &mut self,
        store: &dyn Store,
        job: TxJob,
        to: Address,
        input: Bytes,
        gas: u64,
        change: impl FnOnce(&PendingTx) -> Change,
    ) -> Result<InFlight, SendError> {
        let nonce = match self.next_nonce {
            Some(nonce) => nonce,
            None => {
                self.provider.get_transaction_count(self.address).pending().await.map_err(ChainError::from)?
            }
        };
        let fees = self.provider.estimate_eip1559_fees().await.map_err(ChainError::from)?;
        // A limit above the block's would be refused by the node forever, stored and re-broadcast on every start:
        // the headroom is cut to fit, and a call that needs more than a block is not sent.
        let block_limit = self.block_gas_limit().await?;
        let gas_limit = gas::limit_for(gas, block_limit).ok_or(SendError::TooBig { gas, block_limit })?;
        let mut pending = PendingTx {
            nonce,
            job,
            hashes: Vec::new(),
            raw: Bytes::new(),
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas.min(self.policy.max_fee_per_gas),
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas.min(self.policy.max_fee_per_gas),
            to,
            input,
        };
        self.sign_into(&mut pending).await?;
        let mut change = change(&pending);
        change.put_tx = Some(pending.clone());
        store.commit(change)?;
        if let Err(err) = self.broadcast(&pending.raw).await {
            // The transaction is stored; whether it got out is for `resolve` to find out.
            self.next_nonce = None;
            return Err(err);
        }
        self.next_nonce = Some(nonce + 1);
        Ok(self.in_flight(pending))
    }

    /// Looks once for the receipt of `flight`, bumping its fees when it is due: the confirmed receipt, or `None`
    /// to look again at `flight.next_poll`. An error (the receipt timeout among them) leaves the transaction stored
    /// for [`Sender::resolve`].
    pub async fn poll(
        &mut self,
        store: &dyn Store,
        flight: &mut InFlight,
    ) -> Result<Option<TransactionReceipt>, SendError> {
        let result = self.poll_once(store, flight).await;
        if result.is_err() {
            self.next_nonce = None;
        }
        result
    }

    async fn poll_once(
        &mut self,
        store: &dyn Store,
        flight: &mut InFlight,
    ) -> Result<Option<TransactionReceipt>, SendError> {
        if let Some(receipt) = self.find_receipt(&flight.pending.hashes).await? {
            return self.await_depth(receipt).await.map(Some);
        }
        let now = Instant::now();
        if now >= flight.deadline {
            return Err(SendError::Timeout(flight.pending.nonce));
        }
        if now >= flight.bump_at && flight.pending.max_fee_per_gas < self.policy.max_fee_per_gas {
            self.bump(store, &mut flight.pending).await?;
            flight.bump_at = now + self.policy.bump_after;
        }
        // An automining node has the receipt within milliseconds, a real chain within a block: the pause grows
        // from a few milliseconds to the poll interval.
        flight.next_poll = now + flight.pause;
        flight.pause = (flight.pause * 2).min(self.policy.poll_interval);
        Ok(None)
    }

    /// Finds out what happened to a stored transaction, re-broadcasting it if the node lost it.
    pub async fn resolve(
        &mut self,
        store: &dyn Store,
        pending: &mut PendingTx,
    ) -> Result<Resolution, SendError> {
        self.next_nonce = None;
        if let Some(receipt) = self.find_receipt(&pending.hashes).await? {
            return Ok(Resolution::Mined(Box::new(self.await_depth(receipt).await?)));
        }
        let mined_nonce =
            self.provider.get_transaction_count(self.address).await.map_err(ChainError::from)?;
        if mined_nonce > pending.nonce {
            // Check once more: a hash may have been mined between the two reads.
            return match self.find_receipt(&pending.hashes).await? {
                Some(receipt) => Ok(Resolution::Mined(Box::new(self.await_depth(receipt).await?))),
                None => Ok(Resolution::Dropped),
            };
        }
        self.broadcast(&pending.raw).await?;
        let (receipt, bumped) = self.wait(store, self.in_flight(pending.clone())).await?;
        *pending = bumped;
        Ok(Resolution::Mined(Box::new(receipt)))
    }

    /// The receipt of whichever of `hashes` (all signed at one nonce, so at most one) was mined.
    async fn find_receipt(&self, hashes: &[B256]) -> Result<Option<TransactionReceipt>, SendError> {
        Ok(receipt::find(&self.provider, hashes).await?)
    }

    async fn sign_into(&self, pending: &mut PendingTx) -> Result<(), SendError> {
        let request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(pending.to)
            .with_input(pending.input.clone())
            .with_nonce(pending.nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(pending.gas_limit)
            .with_max_fee_per_gas(pending.max_fee_per_gas)
            .with_max_priority_fee_per_gas(pending.max_priority_fee_per_gas);
        let envelope = request.build(&self.wallet).await.map_err(SendError::Sign)?;
        pending.hashes.push(*envelope.tx_hash());
        pending.raw = envelope.encoded_2718().into();
        Ok(())
    }

    async fn broadcast(&self, raw: &Bytes) -> Result<(), SendError> {
        Ok(send::broadcast(&self.provider, raw).await?)
    }

    async fn bump(&mut self, store: &dyn Store, pending: &mut PendingTx) -> Result<(), SendError> {
        let fees = self.provider.estimate_eip1559_fees().await.map_err(ChainError::from)?;
        let cap = self.policy.max_fee_per_gas;
        pending.max_fee_per_gas =
            (pending.max_fee_per_gas * BUMP_PERCENT / 100).max(fees.max_fee_per_gas).min(cap);
        pending.max_priority_fee_per_gas = (pending.max_priority_fee_per_gas * BUMP_PERCENT / 100)
            .max(fees.max_priority_fee_per_gas)
            .min(pending.max_fee_per_gas);
        self.sign_into(pending).await?;
        store.commit(Change { put_tx: Some(pending.clone()), ..Change::default() })?;
        tracing::warn!(
            nonce = pending.nonce,
            hash = %pending.hashes.last().copied().unwrap_or_default(),
            max_fee_per_gas = pending.max_fee_per_gas,
            "transaction not mined in time; re-sent with higher fees"
        );
        match self.broadcast(&pending.raw).await {
            Ok(()) => Ok(()),
            // An earlier version was mined meanwhile ("nonce too low"), or the node keeps the cheaper one
            // ("underpriced"): the receipt loop finds out which hash landed.
            Err(err) => {
                tracing::warn!(error = %err, nonce = pending.nonce, "fee bump not accepted");
                Ok(())
            }
        }
    }

    /// Waits until `receipt`'s block is `confirmations` deep, re-reading the receipt so a reorg that drops it is
    /// noticed (the wait then starts over with whatever hash gets mined).
    async fn await_depth(&self, receipt: TransactionReceipt) -> Result<TransactionReceipt, SendError> {
        let mut receipt = receipt;
        let deadline = Instant::now() + self.policy.receipt_timeout;
        let mut pause = FIRST_POLL;
        loop {
            let included = receipt.block_number.unwrap_or_default();
            let head = self.provider.get_block_number().await.map_err(ChainError::from)?;
            if head + 1 >= included + self.policy.confirmations {
                let current = self.provider.get_transaction_receipt(receipt.transaction_hash).await;
                match current.map_err(ChainError::from)? {
                    Some(current) if current.block_hash == receipt.block_hash => return Ok(current),
                    Some(current) => receipt = current,
                    None => return Err(SendError::Reorged(receipt.transaction_hash)),
                }
            }
            if Instant::now() >= deadline {
                return Err(SendError::Unconfirmed(receipt.transaction_hash));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.policy.poll_interval);
        }
    }
}
