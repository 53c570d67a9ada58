//! The daemon: opens the store (waiting as a standby while another keeper holds it), serves the HTTP API, and
//! every interval (or as soon as a full batch of payments is queued) runs one tick: resolve the transactions a
//! previous run left in flight, then the enabled jobs. A tick that fails (RPC down, node restarted) is logged
//! and counted; the next one starts from the stored state again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use x402_bindings::TestStablecoin;

use crate::config::{Job, Settings};
use crate::intake::{PayerCodes, Token, Verifier};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::ratelimit::RateLimiter;
use crate::sender::{Resolution, SendError, Sender};
use crate::store::{RedbStore, Store, StoreError};
use crate::{http, jobs, rpc};

/// How long an in-flight tick may run on after a shutdown request before it is abandoned (its transaction stays
/// stored and is resolved on the next start).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How often a standby keeper retries to open a database held by another keeper.
const STANDBY_RETRY: Duration = Duration::from_secs(2);
/// How often the readiness probe asks the chain for its latest block between ticks.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// While the chain no longer holds the deployment, the error is logged again at most this often.
const HALT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why the keeper could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// The RPC failed at start-up.
    #[error("RPC {url}: {message}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// What failed.
        message: String,
    },
    /// The chain is not the one of the deployment record.
    #[error("the RPC serves chain {actual}, but the deployment record is for chain {expected}")]
    WrongChain {
        /// The record's chain.
        expected: u64,
        /// The RPC's chain.
        actual: u64,
    },
    /// A recorded contract has no code.
    #[error("no contract code at {name} {address}: is the deployment record for this chain?")]
    NoCode {
        /// Which contract.
        name: &'static str,
        /// Its recorded address.
        address: Address,
    },
    /// The chain is not the one the database was made on (it was reset, or the RPC points elsewhere).
    #[error(
        "the chain's genesis block is {actual}, but the database was made on a chain whose genesis block is \
         {expected}: the chain was reset or replaced; start with a fresh --data-dir for a new chain"
    )]
    ChainReset {
        /// The genesis hash the database recorded.
        expected: B256,
        /// The RPC's genesis hash.
        actual: B256,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        message: String,
    },
}

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
pub struct Shared {
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
    /// Set once start-up reconciliation is done and the last tick reached the RPC.
    pub ready: AtomicBool,
    /// Host time (unix seconds) of the last finished tick, for `/health`.
    pub last_tick: AtomicU64,
    /// Set when a shutdown was requested.
    pub stopping: AtomicBool,
    chain_time: tokio::sync::Mutex<(Option<Instant>, u64)>,
    pub(crate) limiter: std::sync::Mutex<RateLimiter>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("keeper", &self.keeper).finish_non_exhaustive()
    }
}

impl Shared {
    /// The latest block's timestamp, cached for a second.
    pub async fn chain_time(&self) -> Result<u64, SendError> {
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
    pub async fn fresh_chain_time(&self) -> Result<u64, SendError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| SendError::Rpc(e.to_string()))?
            .ok_or_else(|| SendError::Rpc("no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// Whether a shutdown was requested.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
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

    pub(crate) fn emit(&self, event: Event) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}

/// A running keeper: the shared state and the transaction sender.
#[derive(Debug)]
pub struct Keeper {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sender: Sender,
    ticks: u64,
    /// The current tick was started early because a full batch of payments is queued: only full batches go out.
    pub(crate) woken: bool,
    /// Bound at start so its address is known before [`Keeper::run`] serves on it.
    listener: Option<tokio::net::TcpListener>,
    /// When the keeper last logged that it is halted.
    halt_logged: Option<Instant>,
}

/// Connects, checks the chain against the settings, opens the store (waiting while another keeper holds it)
/// and returns a keeper ready to tick. `None` if `shutdown` fired while waiting.
pub async fn start(
    settings: Settings,
    signer: PrivateKeySigner,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Keeper>, KeeperError> {
    let provider = rpc::connect(&settings.rpc_url, settings.rpc_timeout)
        .map_err(|e| KeeperError::Rpc { url: settings.rpc_url.clone(), message: e.to_string() })?;
    let rpc_err = |e: &dyn std::fmt::Display| KeeperError::Rpc {
        url: settings.rpc_url.clone(),
        message: e.to_string(),
    };
    let chain_id = provider.get_chain_id().await.map_err(|e| rpc_err(&e))?;
    if chain_id != settings.chain_id {
        return Err(KeeperError::WrongChain { expected: settings.chain_id, actual: chain_id });
    }
    let c = settings.contracts;
    for (name, address) in [
        ("X402Payment", c.x402_payment),
        ("Subscription", c.subscription),
        ("PaymentChannel", c.payment_channel),
    ] {
        if provider.get_code_at(address).await.map_err(|e| rpc_err(&e))?.is_empty() {
            return Err(KeeperError::NoCode { name, address });
        }
    }
    let mut tokens = Vec::new();
    for address in &settings.tokens {
        let token = TestStablecoin::new(*address, &provider);
        let name = token.name().call().await.map_err(|e| rpc_err(&e))?;
        let version = token.version().call().await.map_err(|e| rpc_err(&e))?;
        tokens.push(Token { address: *address, name, version });
    }
    let verifier = Verifier::new(chain_id, &tokens, settings.safety_margin);
    let genesis = genesis_hash(&provider).await.map_err(|e| rpc_err(&e))?;

    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", settings.data_dir.display())))?;
    let path = settings.data_dir.join("keeper.redb");
    let store = loop {
        match RedbStore::open(&path) {
            Ok(store) => break store,
            Err(StoreError::Locked(held)) => {
                tracing::warn!(database = %held, "another keeper holds the database; waiting as a standby");
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_RETRY) => {}
                    _ = shutdown.changed() => return Ok(None),
                }
            }
            Err(err) => return Err(err.into()),
        }
    };
    match store.genesis()? {
        Some(expected) if expected != genesis => {
            return Err(KeeperError::ChainReset { expected, actual: genesis });
        }
        Some(_) => {}
        None => store.set_genesis(genesis)?,
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| KeeperError::Listen { addr: settings.listen, message: e.to_string() })?;
    let keeper = signer.address();
    let wallet = EthereumWallet::from(signer);
    let sender = Sender::new(provider.clone(), wallet, chain_id, settings.tx.clone());
    let limiter = RateLimiter::new(
        settings.client_rate,
        settings.global_rate,
        settings.rate_limit_clients,
        std::time::Instant::now(),
    );
    let (events, _) = broadcast::channel(1024);
    let policy = Policy::new(&settings.merchants, settings.min_amount);
    let shared = Arc::new(Shared {
        settings,
        store: Arc::new(store),
        metrics: Metrics::default(),
        provider,
        verifier,
        policy,
        payer_codes: PayerCodes::default(),
        chain_ok: AtomicBool::new(true),
        halted: std::sync::Mutex::new(None),
        genesis,
        keeper,
        events,
        wake: Notify::new(),
        ready: AtomicBool::new(false),
        last_tick: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        chain_time: tokio::sync::Mutex::new((None, 0)),
        limiter: std::sync::Mutex::new(limiter),
    });
    Ok(Some(Keeper { shared, sender, ticks: 0, woken: false, listener: Some(listener), halt_logged: None }))
}

impl Keeper {
    /// Where the HTTP API listens (the actual port when the settings asked for port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (for the HTTP API and observers).
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Runs one tick: resolves transactions left in flight, then every enabled job. Errors are logged, counted
    /// and returned one line each; they never stop the keeper.
    pub async fn tick(&mut self) -> Vec<String> {
        self.ticks += 1;
        let mut errors = Vec::new();
        let chain_time = match self.shared.fresh_chain_time().await {
            Ok(time) => {
                self.shared.chain_answered(true);
                time
            }
            Err(err) => {
                self.shared.chain_answered(false);
                self.shared.ready.store(false, Ordering::Relaxed);
                self.shared.metrics.add("x402_keeper_errors_total", &[("job", "rpc")], 1.0);
                let line = format!("cannot read the chain: {err}");
                tracing::error!(error = %err, "tick skipped: cannot read the chain");
                self.shared.emit(Event::Tick {
                    number: self.ticks,
                    chain_time: 0,
                    queued: 0,
                    errors: vec![line.clone()],
                });
                return vec![line];
            }
        };
        if let Err(line) = self.check_deployment().await {
            self.shared.emit(Event::Tick {
                number: self.ticks,
                chain_time,
                queued: 0,
                errors: vec![line.clone()],
            });
            return vec![line];
        }
        match self.reconcile().await {
            Ok(()) => self.shared.ready.store(true, Ordering::Relaxed),
            Err(err) => {
                self.shared.ready.store(false, Ordering::Relaxed);
                errors.push(format!("reconcile: {err}"));
            }
        }
        if errors.is_empty() {
            for job in self.shared.settings.jobs.clone() {
                if self.shared.is_stopping() {
                    break;
                }
                let name = job.name();
                self.shared.metrics.add("x402_keeper_ticks_total", &[("job", name)], 1.0);
                let result = match job {
                    Job::Subscriptions => jobs::subscriptions::run(self).await,
                    Job::Payments => jobs::payments::run(self).await,
                    Job::Channels => jobs::channels::run(self).await,
                };
                if let Err(err) = result {
                    self.sender.resync();
                    self.shared.metrics.add("x402_keeper_errors_total", &[("job", name)], 1.0);
                    tracing::error!(job = name, error = %err, "job failed; retrying next tick");
                    errors.push(format!("{name}: {err}"));
                }
            }
        }
        self.update_gauges(chain_time).await;
        let queued = self.shared.store.queued_count().unwrap_or_default();
        self.shared.last_tick.store(unix_now(), Ordering::Relaxed);
        self.shared.emit(Event::Tick { number: self.ticks, chain_time, queued, errors: errors.clone() });
        errors
    }

    /// Whether the chain still holds the deployment the keeper started on: the same genesis block and code at the
    /// contracts. If not (a reset node, an RPC now pointing at another chain), nothing may be sent: the keeper's
    /// stored transactions and nonces belong to the old chain. It stays unready and says why, and resumes by
    /// itself if the chain comes back (a node restarted from its own state).
    async fn check_deployment(&mut self) -> Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let c = shared.settings.contracts;
        let (genesis, code) = tokio::join!(genesis_hash(&shared.provider), async {
            for (name, address) in [
                ("X402Payment", c.x402_payment),
                ("Subscription", c.subscription),
                ("PaymentChannel", c.payment_channel),
            ] {
                if shared.provider.get_code_at(address).await?.is_empty() {
                    return Ok(Some((name, address)));
                }
            }
            Ok::<_, alloy::transports::TransportError>(None)
        });
        let cause = match (genesis, code) {
            (Err(err), _) | (_, Err(err)) => {
                shared.chain_answered(false);
                shared.ready.store(false, Ordering::Relaxed);
                return Err(format!("cannot read the chain: {err}"));
            }
            (Ok(_), Ok(Some((name, address)))) => Some(format!(
                "the chain no longer holds the deployment: no code at {name} {address}; nothing is sent until it \
                 does (was the node reset?)"
            )),
            (Ok(genesis), Ok(None)) if genesis != shared.genesis => Some(format!(
                "the chain was reset: its genesis block is now {genesis}, the keeper started on {}; nothing is \
                 sent until the chain holds the deployment again (or start with a fresh --data-dir)",
                shared.genesis
            )),
            (Ok(_), Ok(None)) => None,
        };
        let mut halted = shared.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cause {
            None => {
                if halted.take().is_some() {
                    tracing::info!("the chain holds the deployment again; resuming");
                }
                Ok(())
            }
            Some(cause) => {
                let due = self.halt_logged.is_none_or(|at| at.elapsed() >= HALT_LOG_EVERY);
                if halted.as_deref() != Some(cause.as_str()) || due {
                    tracing::error!(cause = %cause, "keeper halted");
                    self.halt_logged = Some(Instant::now());
                }
                shared.metrics.add("x402_keeper_errors_total", &[("job", "chain")], 1.0);
                *halted = Some(cause.clone());
                self.sender.resync();
                Err(cause)
            }
        }
    }

    /// Resolves every transaction a previous tick or run left in flight and applies its outcome.
    async fn reconcile(&mut self) -> Result<(), jobs::JobError> {
        for mut pending in self.shared.store.pending_txs()? {
            tracing::info!(
                nonce = pending.nonce,
                job = pending.job.name(),
                "resolving a transaction left in flight"
            );
            let resolution = self.sender.resolve(self.shared.store.as_ref(), &mut pending).await?;
            if let Resolution::Dropped = resolution {
                tracing::warn!(
                    nonce = pending.nonce,
                    "transaction dropped: its nonce was used by another one"
                );
            }
            jobs::apply(self, &pending, resolution).await?;
        }
        Ok(())
    }

    async fn update_gauges(&self, chain_time: u64) {
        let metrics = &self.shared.metrics;
        if let Ok(queued) = self.shared.store.queued_count() {
            metrics.set("x402_keeper_queue_depth", &[], queued as f64);
        }
        metrics.set("x402_keeper_last_tick_timestamp", &[], chain_time as f64);
        if let Ok(balance) = self.shared.provider.get_balance(self.shared.keeper).await {
            metrics.set("x402_keeper_balance_wei", &[], f64::from(balance));
            if balance < U256::from(self.shared.settings.min_balance_wei) {
                tracing::warn!(keeper = %self.shared.keeper, balance = %balance, "keeper balance is low");
            }
        }
    }

    /// Ticks every interval (earlier when a full batch is queued) until `shutdown` fires, serving the HTTP API
    /// meanwhile. With `once`, runs a single tick and returns. A tick in flight at shutdown gets
    /// [`SHUTDOWN_GRACE`] to finish; after that it is abandoned, which is safe because every transaction is stored
    /// before it is broadcast.
    pub async fn run(mut self, once: bool, mut shutdown: watch::Receiver<bool>) -> Result<(), KeeperError> {
        let shared = self.shared();
        let server = self.listener.take().map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, keeper = %shared.keeper, "keeper HTTP API listening");
            }
            tokio::spawn(http::serve(listener, Arc::clone(&shared), shutdown.clone()))
        });
        let probe = tokio::spawn(probe_chain(Arc::clone(&shared), shutdown.clone()));
        let mut woken = false;
        loop {
            self.woken = woken;
            let finished = {
                let tick = self.tick();
                tokio::pin!(tick);
                let finished = tokio::select! {
                    _ = &mut tick => true,
                    _ = shutdown.changed() => false,
                };
                if !finished {
                    shared.stopping.store(true, Ordering::Relaxed);
                    tracing::info!("shutdown requested; letting the current tick finish");
                    if tokio::time::timeout(SHUTDOWN_GRACE, &mut tick).await.is_err() {
                        tracing::warn!(
                            "tick abandoned; its transaction is stored and resolved on the next start"
                        );
                    }
                }
                finished
            };
            if !finished || once || *shutdown.borrow() {
                break;
            }
            woken = tokio::select! {
                _ = tokio::time::sleep(shared.settings.interval) => false,
                _ = shared.wake.notified() => true,
                _ = shutdown.changed() => break,
            };
        }
        shared.stopping.store(true, Ordering::Relaxed);
        probe.abort();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
        tracing::info!("keeper stopped");
        Ok(())
    }
}

/// The hash of block 0: changes when a chain is reset or replaced.
async fn genesis_hash(provider: &DynProvider) -> Result<B256, alloy::transports::TransportError> {
    let block = provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Number(0)).await?;
    block
        .map(|b| b.header.hash)
        .ok_or_else(|| alloy::transports::TransportErrorKind::custom_str("the node has no genesis block"))
}

/// Asks the chain for its latest block every [`PROBE_EVERY`], so `/ready` follows the chain between ticks.
async fn probe_chain(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let answered = shared.provider.get_block_number().await.is_ok();
        shared.chain_answered(answered);
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
