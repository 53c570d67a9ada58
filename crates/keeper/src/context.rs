//! What the tick loop, the jobs and the HTTP API share: the settings, the store, the chain connection, the intake
//! checks and policy, the metrics, the rate limiter, readiness, and the events a watcher (the devnet) follows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use x402_chain::ChainError;
use x402_chain::simulate::{self, Simulation};

use crate::config::Settings;
use crate::intake::{PayerCodes, Verifier};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::store::{Change, PaymentStatus, Store, StoreError};

/// Something the keeper did, for whoever watches it (the devnet prints these).
#[derive(Clone, Debug)]
pub enum Event {
    /// A transaction was confirmed.
    Batch {
        /// `payments`, `subscriptions` or `channels`.
        job: &'static str,
        /// What it did, e.g. `settleBatch`.
        action: &'static str,
        /// Its hash.
        tx: B256,
        /// Items it carried.
        items: usize,
        /// Items that succeeded.
        succeeded: usize,
        /// Gas used.
        gas_used: u64,
        /// Its block.
        block: u64,
    },
    /// A tick finished.
    Tick {
        /// Tick number since start.
        number: u64,
        /// Chain time at its start.
        chain_time: u64,
        /// Payments still queued.
        queued: u64,
        /// Errors, one line each.
        errors: Vec<String>,
    },
}

/// State shared by the tick loop and the HTTP handlers.
pub struct Context {
    /// The settings.
    pub settings: Settings,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Metrics.
    pub metrics: Metrics,
    /// The RPC.
    pub provider: DynProvider,
    /// Chain-free payment checks.
    pub verifier: Verifier,
    /// Whose payments are settled, and from what amount.
    pub policy: Policy,
    /// Payers recently seen without code.
    pub payer_codes: PayerCodes,
    /// Whether the chain answered the last time anything asked it (a tick, the intake, the probe).
    pub chain_ok: AtomicBool,
    /// Whether the node may have `eth_simulateV1` (false once it said it has not).
    pub simulate_v1: AtomicBool,
    /// Why the keeper sends nothing: the chain no longer holds the deployment (reset, or replaced).
    pub halted: std::sync::Mutex<Option<String>>,
    /// The genesis block hash of the chain the keeper started on.
    pub genesis: B256,
    /// The keeper's address.
    pub keeper: Address,
    /// Events.
    pub events: broadcast::Sender<Event>,
    /// Wakes the tick loop early (a full batch is queued).
    pub wake: Notify,
    /// Asks the tick loop to settle what is queued soon (a caller waits for it).
    pub settle_soon: Notify,
    /// Callers on their way to the queue (a facilitator's `/settle` being checked): a batch someone waits for
    /// waits for them, at most the settle window, so that they share it.
    pub settles_arriving: std::sync::atomic::AtomicUsize,
    /// Counts the store commits that gave payments a final status (settled or failed); a caller waiting for one
    /// looks again whenever it changes.
    pub payments_final: tokio::sync::watch::Sender<u64>,
    /// Set once start-up reconciliation is done and the last tick reached the RPC.
    pub ready: AtomicBool,
    /// Host time (unix seconds) of the last finished tick, for `/health`.
    pub last_tick: AtomicU64,
    /// Set when a shutdown was requested.
    pub stopping: AtomicBool,
    /// The latest block's time and when it was read.
    pub chain_time: tokio::sync::Mutex<(Option<Instant>, u64)>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("keeper", &self.keeper).finish_non_exhaustive()
    }
}

impl Context {
    /// The latest block's timestamp, cached for a second.
    pub async fn chain_time(&self) -> Result<u64, ChainError> {
        let mut cached = self.chain_time.lock().await;
        if let (Some(at), time) = *cached
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(time);
        }
        let time = self.fresh_chain_time().await?;
        *cached = (Some(Instant::now()), time);
        Ok(time)
    }

    /// The latest block's timestamp, read now.
    pub async fn fresh_chain_time(&self) -> Result<u64, ChainError> {
        x402_chain::block::time(&self.provider).await
    }

    /// Runs `input` on `to` from the keeper's address without sending it; the raw return data, or the node's
    /// refusal ([`ChainError::Reverted`]) with its revert data.
    pub async fn simulate(&self, to: Address, input: &Bytes) -> Result<Bytes, ChainError> {
        let request =
            TransactionRequest::default().with_from(self.keeper).with_to(to).with_input(input.clone());
        Ok(self.provider.call(request).await?)
    }

    /// Runs `input` on `to` like [`Context::simulate`], in a block at chain time `time`, and measures its gas
    /// where the node can in the same execution (`eth_simulateV1`): the return data and the most gas the call
    /// needed at any point ([`x402_chain::simulate::Simulated::peak_gas`]), `None` when the node cannot say (the
    /// call went through `eth_call`).
    pub async fn simulate_measured(
        &self,
        to: Address,
        input: &Bytes,
        time: u64,
    ) -> Result<(Bytes, Option<u64>), ChainError> {
        if self.simulate_v1.load(Ordering::Relaxed) {
            match simulate::call(&self.provider, self.keeper, to, input, time).await? {
                Simulation::Ran(simulated) => {
                    let peak = simulated.peak_gas();
                    return Ok((simulated.returned, Some(peak)));
                }
                Simulation::Unsupported => {
                    tracing::info!("the node has no eth_simulateV1: batches are simulated, then estimated");
                    self.simulate_v1.store(false, Ordering::Relaxed);
                }
                Simulation::Refused(answer) => {
                    tracing::debug!(code = answer.code, message = %answer.message, "eth_simulateV1 refused; eth_call instead");
                }
            }
        }
        Ok((self.simulate(to, input).await?, None))
    }

    /// Whether a shutdown was requested.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Why the keeper takes no payment now (shutting down, or halted because the chain lost the deployment).
    pub fn not_taking(&self) -> Option<String> {
        if self.is_stopping() {
            return Some("the keeper is shutting down".into());
        }
        self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records whether the chain just answered (in time).
    pub fn chain_answered(&self, answered: bool) {
        self.chain_ok.store(answered, Ordering::Relaxed);
    }

    /// Why `/ready` is 503, or `None` when ready: in-flight transactions resolved by the last tick, the chain
    /// answering and holding the deployment, no shutdown under way.
    pub fn unready_cause(&self) -> Option<String> {
        if self.is_stopping() {
            return Some("shutting down".into());
        }
        if let Some(cause) = self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            return Some(cause);
        }
        if !self.chain_ok.load(Ordering::Relaxed) {
            return Some("the chain does not answer".into());
        }
        if !self.ready.load(Ordering::Relaxed) {
            return Some("transactions left in flight are not resolved yet".into());
        }
        None
    }

    /// Commits `change` and, if it gives payments a status, tells whoever waits on [`Context::payments_final`].
    pub fn commit_payments(&self, change: Change) -> Result<(), StoreError> {
        let touches = change
            .payments
            .iter()
            .any(|p| matches!(p.status, PaymentStatus::Settled | PaymentStatus::Failed));
        self.store.commit(change)?;
        if touches {
            self.payments_final.send_modify(|count| *count += 1);
        }
        Ok(())
    }

    /// Tells watchers what happened.
    pub fn emit(&self, event: Event) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}
