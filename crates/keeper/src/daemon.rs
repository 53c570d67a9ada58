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
use x402_bindings::{Contract, TestStablecoin};
use x402_chain::ChainError;
use x402_chain::clock::unix_now;

use crate::config::{Job, Settings};
pub use crate::context::{Context, Event};
use crate::http;
use crate::intake::{PayerCodes, Token, Verifier};
use crate::jobs::{self, Worker};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::sender::{Resolution, Sender};
use crate::store::{RedbStore, Store, StoreError};

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
    #[error("no contract code at {contract} {address}: is the deployment record for this chain?")]
    NoCode {
        /// Which contract.
        contract: Contract,
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

/// A running keeper: the jobs' worker (the shared state and the transaction sender) and the tick loop's state.
#[derive(Debug)]
pub struct Keeper {
    worker: Worker,
    ticks: u64,
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
    let provider = x402_chain::rpc::connect(&settings.rpc_url, settings.rpc_timeout)
        .map_err(|e| KeeperError::Rpc { url: settings.rpc_url.clone(), message: e.to_string() })?;
    let chain = check_chain(&settings, &provider).await?;
    let Some(store) = open_store(&settings, chain.genesis, shutdown).await? else {
        return Ok(None);
    };
    let listener = if settings.serve_api {
        let bound = tokio::net::TcpListener::bind(settings.listen).await;
        Some(bound.map_err(|e| KeeperError::Listen { addr: settings.listen, message: e.to_string() })?)
    } else {
        None
    };
    let keeper = signer.address();
    let wallet = EthereumWallet::from(signer);
    let sender = Sender::new(provider.clone(), wallet, settings.chain_id, settings.tx.clone());
    let (events, _) = broadcast::channel(1024);
    let policy = Policy::new(&settings.merchants, settings.min_amount);
    let metrics = settings.network_label.as_deref().map_or_else(Metrics::default, Metrics::for_network);
    // On Arbitrum a batch's gas includes its L1 data cost, which only an estimate measures.
    let simulate_v1 = !x402_chain::simulate::gas_includes_l1_cost(settings.chain_id);
    let shared = Arc::new(Context {
        settings,
        store: Arc::new(store),
        metrics,
        provider,
        verifier: chain.verifier,
        policy,
        payer_codes: PayerCodes::default(),
        chain_ok: AtomicBool::new(true),
        simulate_v1: AtomicBool::new(simulate_v1),
        halted: std::sync::Mutex::new(None),
        genesis: chain.genesis,
        keeper,
        events,
        wake: Notify::new(),
        settle_soon: Notify::new(),
        settles_arriving: std::sync::atomic::AtomicUsize::new(0),
        payments_final: tokio::sync::watch::Sender::new(0),
        ready: AtomicBool::new(false),
        last_tick: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        chain_time: tokio::sync::Mutex::new((None, 0)),
    });
    let worker = Worker { shared, sender, woken: false, urgent: false };
    Ok(Some(Keeper { worker, ticks: 0, listener, halt_logged: None }))
}

/// What the chain told [`check_chain`].
struct ChainFacts {
    genesis: B256,
    verifier: Verifier,
}

/// Checks that the endpoint serves the settings' chain and that every driven contract has code, and reads each
/// token's EIP-712 domain.
async fn check_chain(settings: &Settings, provider: &DynProvider) -> Result<ChainFacts, KeeperError> {
    let rpc_err = |e: &dyn std::fmt::Display| KeeperError::Rpc {
        url: settings.rpc_url.clone(),
        message: e.to_string(),
    };
    let chain_id = provider.get_chain_id().await.map_err(|e| rpc_err(&e))?;
    if chain_id != settings.chain_id {
        return Err(KeeperError::WrongChain { expected: settings.chain_id, actual: chain_id });
    }
    for (contract, address) in settings.contracts.driven() {
        if provider.get_code_at(address).await.map_err(|e| rpc_err(&e))?.is_empty() {
            return Err(KeeperError::NoCode { contract, address });
        }
    }
    let mut tokens = Vec::new();
    for address in &settings.tokens {
        let token = TestStablecoin::new(*address, provider);
        let name = token.name().call().await.map_err(|e| rpc_err(&e))?;
        let version = token.version().call().await.map_err(|e| rpc_err(&e))?;
        tokens.push(Token { address: *address, name, version });
    }
    let verifier = Verifier::new(chain_id, &tokens, settings.safety_margin);
    let genesis = genesis_hash(provider).await.map_err(|e| rpc_err(&e))?;
    Ok(ChainFacts { genesis, verifier })
}

/// Opens the database, waiting as a standby while another keeper holds it (`None` if `shutdown` fires first), and
/// refuses one written for a chain with another genesis block.
async fn open_store(
    settings: &Settings,
    genesis: B256,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<RedbStore>, KeeperError> {
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
    Ok(Some(store))
}

impl Keeper {
    /// Where the HTTP API listens (the actual port when the settings asked for port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (for the HTTP API and observers).
    pub fn shared(&self) -> Arc<Context> {
        Arc::clone(&self.worker.shared)
    }

    /// Runs one tick: resolves transactions left in flight, then every enabled job. Errors are logged, counted
    /// and returned one line each; they never stop the keeper.
    pub async fn tick(&mut self) -> Vec<String> {
        self.ticks += 1;
        let mut errors = Vec::new();
        let chain_time = match self.worker.shared.fresh_chain_time().await {
            Ok(time) => {
                self.worker.shared.chain_answered(true);
                time
            }
            Err(err) => {
                self.worker.shared.chain_answered(false);
                self.worker.shared.ready.store(false, Ordering::Relaxed);
                self.worker.shared.metrics.error("rpc");
                let line = format!("cannot read the chain: {err}");
                tracing::error!(error = %err, "tick skipped: cannot read the chain");
                self.worker.shared.emit(Event::Tick {
                    number: self.ticks,
                    chain_time: 0,
                    queued: 0,
                    errors: vec![line.clone()],
                });
                return vec![line];
            }
        };
        if let Err(line) = self.check_deployment().await {
            self.worker.shared.emit(Event::Tick {
                number: self.ticks,
                chain_time,
                queued: 0,
                errors: vec![line.clone()],
            });
            return vec![line];
        }
        match self.reconcile().await {
            Ok(()) => self.worker.shared.ready.store(true, Ordering::Relaxed),
            Err(err) => {
                self.worker.shared.ready.store(false, Ordering::Relaxed);
                errors.push(format!("reconcile: {err}"));
            }
        }
        if errors.is_empty() {
            for job in self.worker.shared.settings.jobs.clone() {
                if self.worker.shared.is_stopping() {
                    break;
                }
                let name = job.name();
                self.worker.shared.metrics.tick(name);
                let result = match job {
                    Job::Subscriptions => jobs::subscriptions::run(&mut self.worker).await,
                    Job::Payments => jobs::payments::run(&mut self.worker).await,
                    Job::Channels => jobs::channels::run(&mut self.worker).await,
                };
                if let Err(err) = result {
                    self.worker.sender.resync();
                    self.worker.shared.metrics.error(name);
                    tracing::error!(job = name, error = %err, "job failed; retrying next tick");
                    errors.push(format!("{name}: {err}"));
                }
            }
        }
        self.update_gauges(chain_time).await;
        let queued = self.worker.shared.store.queued_count().unwrap_or_default();
        self.worker.shared.last_tick.store(unix_now(), Ordering::Relaxed);
        self.worker.shared.emit(Event::Tick {
            number: self.ticks,
            chain_time,
            queued,
            errors: errors.clone(),
        });
        errors
    }

    /// Whether the chain still holds the deployment the keeper started on: the same genesis block and code at the
    /// contracts. If not (a reset node, an RPC now pointing at another chain), nothing may be sent: the keeper's
    /// stored transactions and nonces belong to the old chain. It stays unready and says why, and resumes by
    /// itself if the chain comes back (a node restarted from its own state).
    async fn check_deployment(&mut self) -> Result<(), String> {
        let shared = Arc::clone(&self.worker.shared);
        let (genesis, code) = tokio::join!(genesis_hash(&shared.provider), async {
            for (contract, address) in shared.settings.contracts.driven() {
                if shared.provider.get_code_at(address).await?.is_empty() {
                    return Ok(Some((contract, address)));
                }
            }
            Ok::<_, ChainError>(None)
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
                shared.metrics.error("chain");
                *halted = Some(cause.clone());
                self.worker.sender.resync();
                Err(cause)
            }
        }
    }

    /// Resolves every transaction a previous tick or run left in flight and applies its outcome.
    async fn reconcile(&mut self) -> Result<(), jobs::JobError> {
        for mut pending in self.worker.shared.store.pending_txs()? {
            tracing::info!(
                nonce = pending.nonce,
                job = pending.job.name(),
                "resolving a transaction left in flight"
            );
            let resolution =
                self.worker.sender.resolve(self.worker.shared.store.as_ref(), &mut pending).await?;
            if let Resolution::Dropped = resolution {
                tracing::warn!(
                    nonce = pending.nonce,
                    "transaction dropped: its nonce was used by another one"
                );
            }
            jobs::apply(&self.worker, &pending, resolution).await?;
        }
        Ok(())
    }

    async fn update_gauges(&self, chain_time: u64) {
        let metrics = &self.worker.shared.metrics;
        if let Ok(queued) = self.worker.shared.store.queued_count() {
            metrics.queue_depth(queued);
        }
        metrics.last_tick(chain_time);
        if let Ok(balance) = self.worker.shared.provider.get_balance(self.worker.shared.keeper).await {
            metrics.balance(f64::from(balance));
            if balance < U256::from(self.worker.shared.settings.min_balance_wei) {
                tracing::warn!(keeper = %self.worker.shared.keeper, balance = %balance, "keeper balance is low");
            }
        }
    }

    /// Settles what is queued at once, for callers waiting on their payment (a facilitator's `/settle`): only the
    /// payments job, partial batches included. Falls back to a whole tick while anything needs one first (a
    /// transaction left in flight, start-up not done, the keeper halted).
    async fn settle_tick(&mut self) -> Vec<String> {
        let shared = self.shared();
        let halted = shared.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some();
        let in_flight = shared.store.pending_txs().map_or(true, |txs| !txs.is_empty());
        if halted || in_flight || !shared.ready.load(Ordering::Relaxed) {
            self.worker.woken = false;
            return self.tick().await;
        }
        self.worker.woken = false;
        shared.metrics.tick(Job::Payments.name());
        self.worker.urgent = true;
        let result = jobs::payments::run(&mut self.worker).await;
        self.worker.urgent = false;
        match result {
            Ok(()) => Vec::new(),
            Err(err) => {
                self.worker.sender.resync();
                shared.metrics.error(Job::Payments.name());
                tracing::error!(job = "payments", error = %err, "settlement failed; retrying next tick");
                vec![format!("payments: {err}")]
            }
        }
    }

    /// Ticks every interval (earlier when a full batch is queued) until `shutdown` fires, serving the HTTP API
    /// meanwhile; between ticks, settles at once (after the settle window) what callers wait for. With `once`,
    /// runs a single tick and returns. A tick in flight at shutdown gets [`SHUTDOWN_GRACE`] to finish; after that
    /// it is abandoned, which is safe because every transaction is stored before it is broadcast.
    pub async fn run(mut self, once: bool, mut shutdown: watch::Receiver<bool>) -> Result<(), KeeperError> {
        let shared = self.shared();
        let server = self.listener.take().map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, keeper = %shared.keeper, "keeper HTTP API listening");
            }
            tokio::spawn(http::serve(listener, Arc::clone(&shared), shutdown.clone()))
        });
        let probe = tokio::spawn(probe_chain(Arc::clone(&shared), shutdown.clone()));
        let payments = shared.settings.jobs.contains(&Job::Payments);
        let mut next = Next::Tick { woken: false };
        let mut next_tick = Instant::now();
        loop {
            let finished = match next {
                Next::Tick { woken } => {
                    self.worker.woken = woken;
                    next_tick = Instant::now() + shared.settings.interval;
                    guarded(&shared, self.tick(), &mut shutdown).await
                }
                Next::Settle => guarded(&shared, self.settle_tick(), &mut shutdown).await,
            };
            if !finished || once || *shutdown.borrow() {
                break;
            }
            next = tokio::select! {
                _ = tokio::time::sleep_until(next_tick) => Next::Tick { woken: false },
                _ = shared.wake.notified() => Next::Tick { woken: true },
                _ = shared.settle_soon.notified(), if payments => {
                    tokio::select! {
                        () = gather_arrivals(&shared) => Next::Settle,
                        _ = shutdown.changed() => break,
                    }
                }
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

/// Waits for the callers still being checked on their way to the queue, for at most the settle window, so that
/// they share the batch; a lone caller does not wait at all.
async fn gather_arrivals(shared: &Context) {
    let deadline = Instant::now() + shared.settings.settle_window;
    while shared.settles_arriving.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(ARRIVALS_POLL).await;
    }
}

/// How often the callers on their way to the queue are counted again while a batch waits for them.
const ARRIVALS_POLL: Duration = Duration::from_millis(1);

/// What the tick loop does next.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// A whole tick; `woken` when a full batch started it early.
    Tick { woken: bool },
    /// Only the payments job, for callers waiting on their payment.
    Settle,
}

/// Runs `work` until it finishes or `shutdown` fires; then it gets [`SHUTDOWN_GRACE`] to finish. Whether it finished
/// without a shutdown.
async fn guarded(
    shared: &Context,
    work: impl std::future::Future<Output = Vec<String>>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::pin!(work);
    let finished = tokio::select! {
        _ = &mut work => true,
        _ = shutdown.changed() => false,
    };
    if !finished {
        shared.stopping.store(true, Ordering::Relaxed);
        tracing::info!("shutdown requested; letting the current tick finish");
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut work).await.is_err() {
            tracing::warn!("tick abandoned; its transaction is stored and resolved on the next start");
        }
    }
    finished
}

/// The hash of block 0: changes when a chain is reset or replaced.
async fn genesis_hash(provider: &DynProvider) -> Result<B256, ChainError> {
    let block = provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Number(0)).await?;
    block.map(|b| b.header.hash).ok_or_else(|| x402_chain::error::unusable("the node has no genesis block"))
}

/// Asks the chain for its latest block every [`PROBE_EVERY`], so `/ready` follows the chain between ticks.
async fn probe_chain(shared: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let answered = shared.provider.get_block_number().await.is_ok();
        shared.chain_answered(answered);
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
