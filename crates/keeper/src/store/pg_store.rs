//! [`Store`] in a PostgreSQL database, shared by several processes on several machines. Each store (a chain and
//! its signer) is a schema of its own, created and migrated on connect (`migrations/`, applied under an advisory
//! lock so instances starting together apply them once). The checks the embedded store makes under its single
//! writer are made here under row locks: a payer's totals row serializes its payments, a channel's advisory lock
//! its vouchers, and the primary keys make a payment, a payment-identifier id and a voucher's channel unique.
//!
//! One process at a time sends transactions: it holds the sender lease ([`Store::sender_lease`]), a row renewed in
//! the background and taken over by another process once it expires. Every [`Store::commit`] (the sender's
//! writes) checks, in its own transaction, that the lease is still this process's with the token it was given,
//! so a process that lost the lease (paused, cut off) writes nothing after the new holder took over.
//!
//! The trait is synchronous, as the embedded store is: each call runs on this store's own runtime and the caller
//! waits for it (in a `block_in_place` on a multi-threaded runtime), with a deadline on every call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Row};

use super::{
    Accepted, BalanceSeen, Change, Durability, ExecutionRecord, IdBinding, PayerTotals, PaymentKey,
    PaymentRecord, PaymentStatus, PendingTx, Store, StoreError, VoucherPut, VoucherRecord, totals_delta,
};

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/0001_store.sql"))];

/// How long one store call may take, waiting for a connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per store.
const POOL_SIZE: usize = 16;
/// The lease's one row.
const LEASE: &str = "sender";

/// How [`PgStore`] connects.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The schema of this store (letters, digits and `_`, starting with a letter or `_`, at most 63).
    pub schema: String,
    /// How long a sender lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
}

/// The sender lease as this process holds it.
#[derive(Debug)]
struct LeaseState {
    /// This process's name in the lease row: host, process id and a random part.
    holder: String,
    /// The token of the lease held, 0 while not held.
    token: AtomicU64,
    /// Whether the renewing task runs.
    renewing: AtomicBool,
    ttl: Duration,
}

/// The store in a PostgreSQL schema.
pub struct PgStore {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    lease: Arc<LeaseState>,
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("schema", &self.schema).finish_non_exhaustive()
    }
}

/// A PostgreSQL error with its causes (the driver's own message is only its kind).
fn pg_err(err: impl std::error::Error) -> StoreError {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError::Database(format!("PostgreSQL: {message}"))
}

fn corrupt(table: &'static str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, message: err.to_string() }
}

fn decode<T: DeserializeOwned>(table: &'static str, row: &Row, column: usize) -> Result<T, StoreError> {
    let Json(value) = row.try_get::<_, Json<T>>(column).map_err(|err| corrupt(table, pg_err(err)))?;
    Ok(value)
}

fn json<T: Serialize + std::fmt::Debug>(value: &T) -> Json<&T> {
    Json(value)
}

fn u256_at(table: &'static str, row: &Row, column: usize) -> Result<U256, StoreError> {
    let bytes: &[u8] = row.try_get(column).map_err(|err| corrupt(table, pg_err(err)))?;
    match bytes.len() {
        32 => Ok(U256::from_be_slice(bytes)),
        n => Err(corrupt(table, format!("{n} bytes, not 32"))),
    }
}

fn b256_at(table: &'static str, row: &Row, column: usize) -> Result<B256, StoreError> {
    let bytes: &[u8] = row.try_get(column).map_err(|err| corrupt(table, pg_err(err)))?;
    B256::try_from(bytes).map_err(|_| corrupt(table, format!("{} bytes, not 32", bytes.len())))
}

fn status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Queued => "queued",
        PaymentStatus::Submitted => "submitted",
        PaymentStatus::Settled => "settled",
        PaymentStatus::Failed => "failed",
    }
}

fn payer_key(key: &PaymentKey) -> Vec<u8> {
    key.to_bytes()[..40].to_vec()
}

fn to_i64(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Database(format!("{what} {value} does not fit PostgreSQL's bigint")))
}

fn to_u64(table: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative value {value}")))
}

/// Whether `schema` is a plain identifier that needs no quoting.
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    schema.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A name for this process in the lease row.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let random: u64 = rand_u64();
    format!("{host}:{}:{random:016x}", std::process::id())
}

/// 64 random bits from the OS (through the hasher's random keys: no extra dependency).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    hasher.finish()
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or key=value string), creates the store's schema
    /// and applies the migrations it lacks. Fails with the database's own message when it cannot.
    pub fn connect(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        if !valid_schema(&options.schema) {
            return Err(StoreError::Database(format!(
                "the database schema {:?} is not a plain name (lowercase letters, digits and _, at most 63)",
                options.schema
            )));
        }
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Database(format!("the database URL is not valid: {}", pg_err(err))))?;
        config
            .options(format!(
                "-c search_path={} -c statement_timeout={} -c lock_timeout={}",
                options.schema,
                CALL_TIMEOUT.as_millis(),
                CALL_TIMEOUT.as_millis()
            ))
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("x402");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("x402-postgres")
            .enable_all()
            .build()
            .map_err(|err| StoreError::Database(format!("cannot start the database runtime: {err}")))?;
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|err| StoreError::Database(format!("cannot make the connection pool: {err}")))?;
        let handle = runtime.handle().clone();
        let lease = Arc::new(LeaseState {
            holder: holder_name(),
            token: AtomicU64::new(0),
            renewing: AtomicBool::new(false),
            ttl: options.lease_ttl,
        });
        let store = Self { pool, runtime: Some(runtime), handle, lease, schema: options.schema.clone() };
        let pool = store.pool.clone();
        let schema = store.schema.clone();
        store.run(async move { migrate(&pool, &schema).await })?;
        Ok(store)
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Runs `work` on the store's runtime and waits for it, at most [`CALL_TIMEOUT`].
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let outcome = match tokio::time::timeout(CALL_TIMEOUT, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(StoreError::Database(format!(
                    "PostgreSQL did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ))),
            };
            let _ = send.send(outcome);
        });
        let wait = move || {
            receive
                .recv()
                .unwrap_or_else(|_| Err(StoreError::Database("the database runtime stopped".into())))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(current) if current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Runs `body` in one database transaction (committed if it returns `Ok`).
    fn transact<T, F>(&self, durability: Durability, body: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.run(async move {
            let mut client = pool.get().await.map_err(pg_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            if durability == Durability::UntilSent {
                // Flushed with the next synchronous commit, which every broadcast makes first.
                tx.batch_execute("SET LOCAL synchronous_commit = off").await.map_err(pg_err)?;
            }
            let out = body(&tx).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(out)
        })
    }

    /// Runs one read (no transaction of its own).
    fn read<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c deadpool_postgres::Client) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let pool = self.pool.clone();
        self.run(async move {
            let client = pool.get().await.map_err(pg_err)?;
            body(&client).await
        })
    }

    /// Takes or renews the sender lease once; the token if this process holds it now.
    async fn take_lease(pool: &Pool, lease: &LeaseState) -> Result<Option<u64>, StoreError> {
        let client = pool.get().await.map_err(pg_err)?;
        let ttl = lease.ttl.as_secs_f64();
        let row = client
            .query_opt(
                "INSERT INTO lease (name, holder, token, expires_at) \
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
                 ON CONFLICT (name) DO UPDATE SET \
                   token = CASE WHEN lease.holder = EXCLUDED.holder AND lease.expires_at > now() \
                                THEN lease.token ELSE lease.token + 1 END, \
                   holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
                 WHERE lease.holder = EXCLUDED.holder OR lease.expires_at <= now() \
                 RETURNING token",
                &[&LEASE, &lease.holder, &ttl],
            )
            .await
            .map_err(pg_err)?;
        let token = row.map(|row| row.try_get::<_, i64>(0).map_err(pg_err)).transpose()?;
        let token = token.map(|t| to_u64("lease", t)).transpose()?;
        lease.token.store(token.unwrap_or(0), Ordering::SeqCst);
        Ok(token)
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Drop for PgStore {
    fn drop(&mut self) {
        // Give the lease up at once, so another process takes over without waiting for it to expire.
        if self.lease.token.swap(0, Ordering::SeqCst) != 0 {
            let (pool, holder) = (self.pool.clone(), self.lease.holder.clone());
            let _ = self.run(async move {
                let client = pool.get().await.map_err(pg_err)?;
                client
                    .execute(
                        "UPDATE lease SET expires_at = now() WHERE name = $1 AND holder = $2",
                        &[&LEASE, &holder],
                    )
                    .await
                    .map_err(pg_err)?;
                Ok(())
            });
        }
        self.lease.renewing.store(false, Ordering::SeqCst);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Creates the schema and applies the migrations it lacks, one transaction under an advisory lock.
async fn migrate(pool: &Pool, schema: &str) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pg_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('x402 migrations ' || $1::text))", &[&schema])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations \
           (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());"
    ))
    .await
    .map_err(pg_err)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(pg_err)?;
    if let Some(newer) = applied.iter().find(|v| !MIGRATIONS.iter().any(|(m, _)| m == *v)) {
        return Err(StoreError::Database(format!(
            "the database schema {schema} has migration {newer}, which this version does not know: it was \
             migrated by a newer x402; run that version"
        )));
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version])
            .await
            .map_err(pg_err)?;
        tracing::info!(schema, version, "database migration applied");
    }
    tx.commit().await.map_err(pg_err)
}

/// Applies the migrations of the schema `schema` at `url` and says which versions it holds now.
pub fn migrate_schema(url: &str, schema: &str) -> Result<Vec<i32>, StoreError> {
    let store =
        PgStore::connect(url, &PgOptions { schema: schema.into(), lease_ttl: Duration::from_secs(1) })?;
    store.read(|client| {
        Box::pin(async move {
            client
                .query("SELECT version FROM schema_migrations ORDER BY version", &[])
                .await
                .map_err(pg_err)?
                .iter()
                .map(|row| row.try_get(0).map_err(pg_err))
                .collect()
        })
    })
}

async fn totals_locked(tx: &Transaction<'_>, payer: &[u8]) -> Result<PayerTotals, StoreError> {
    tx.execute(
        "INSERT INTO payer_totals (payer, outstanding, settled) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING",
        &[&payer, &U256::ZERO.to_be_bytes::<32>().as_slice()],
    )
    .await
    .map_err(pg_err)?;
    let row = tx
        .query_one("SELECT outstanding, settled FROM payer_totals WHERE payer = $1 FOR UPDATE", &[&payer])
        .await
        .map_err(pg_err)?;
    Ok(PayerTotals {
        outstanding: u256_at("payer_totals", &row, 0)?,
        settled: u256_at("payer_totals", &row, 1)?,
    })
}

async fn set_totals(tx: &Transaction<'_>, payer: &[u8], totals: PayerTotals) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE payer_totals SET outstanding = $2, settled = $3 WHERE payer = $1",
        &[
            &payer,
            &totals.outstanding.to_be_bytes::<32>().as_slice(),
            &totals.settled.to_be_bytes::<32>().as_slice(),
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn put_payment(tx: &Transaction<'_>, record: &PaymentRecord) -> Result<(), StoreError> {
    let key = record.key.to_bytes();
    let seq = to_i64("seq", record.seq)?;
    tx.execute(
        "INSERT INTO payments (key, seq, status, record) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, status = EXCLUDED.status, record = EXCLUDED.record",
        &[&key.as_slice(), &seq, &status_name(record.status), &json(record)],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// Serializes the writers of one channel's voucher (for the rest of the transaction).
async fn lock_channel(tx: &Transaction<'_>, channel: &B256) -> Result<(), StoreError> {
    let mut id = [0u8; 8];
    id.copy_from_slice(&channel[..8]);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&i64::from_be_bytes(id)]).await.map_err(pg_err)?;
    Ok(())
}

async fn voucher_in(tx: &Transaction<'_>, channel: &B256) -> Result<Option<VoucherRecord>, StoreError> {
    let row = tx
        .query_opt("SELECT record FROM vouchers WHERE channel = $1", &[&channel.as_slice()])
        .await
        .map_err(pg_err)?;
    row.map(|row| decode("vouchers", &row, 0)).transpose()
}

async fn commit_change(tx: &Transaction<'_>, change: Change, lease: (&str, u64)) -> Result<(), StoreError> {
    let (holder, token) = lease;
    let fenced = match token {
        0 => false,
        token => tx
            .query_opt(
                "SELECT 1 FROM lease WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now() FOR SHARE",
                &[&LEASE, &holder, &to_i64("token", token)?],
            )
            .await
            .map_err(pg_err)?
            .is_some(),
    };
    if !fenced {
        return Err(StoreError::LeaseLost);
    }
    let mut payments = change.payments;
    // One lock order for every writer: by key, so by payer.
    payments.sort_by_key(|p| p.key);
    for record in &payments {
        let key = record.key.to_bytes();
        let previous: Option<PaymentRecord> = tx
            .query_opt("SELECT record FROM payments WHERE key = $1 FOR UPDATE", &[&key.as_slice()])
            .await
            .map_err(pg_err)?
            .map(|row| decode("payments", &row, 0))
            .transpose()?;
        if let Some((add, sub, settled)) = totals_delta(previous.as_ref(), record) {
            let payer = payer_key(&record.key);
            let mut totals = totals_locked(tx, &payer).await?;
            totals.outstanding = totals.outstanding.saturating_add(add).saturating_sub(sub);
            totals.settled = totals.settled.saturating_add(settled);
            set_totals(tx, &payer, totals).await?;
        }
        put_payment(tx, record).await?;
    }
    if let Some(nonce) = change.remove_tx {
        tx.execute("DELETE FROM txs WHERE nonce = $1", &[&to_i64("nonce", nonce)?]).await.map_err(pg_err)?;
    }
    if let Some(pending) = &change.put_tx {
        tx.execute(
            "INSERT INTO txs (nonce, record) VALUES ($1, $2) ON CONFLICT (nonce) DO UPDATE SET record = EXCLUDED.record",
            &[&to_i64("nonce", pending.nonce)?, &json(pending)],
        )
        .await
        .map_err(pg_err)?;
    }
    for record in &change.executions {
        tx.execute(
            "INSERT INTO executions (subscription, block, idx, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subscription, block, idx) DO UPDATE SET record = EXCLUDED.record",
            &[
                &record.subscription.to_be_bytes::<32>().as_slice(),
                &to_i64("block", record.block)?,
                &i32::try_from(record.index)
                    .map_err(|_| StoreError::Database("execution index too large".into()))?,
                &json(record),
            ],
        )
        .await
        .map_err(pg_err)?;
    }
    for channel in &change.watch {
        tx.execute(
            "INSERT INTO watched (channel) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&channel.as_slice()],
        )
        .await
        .map_err(pg_err)?;
    }
    for channel in &change.unwatch {
        tx.execute("DELETE FROM watched WHERE channel = $1", &[&channel.as_slice()]).await.map_err(pg_err)?;
    }
    let mut locked: Vec<B256> =
        change.drop_vouchers.iter().map(|(c, _)| *c).chain(change.refuse_vouchers.iter().copied()).collect();
    locked.sort();
    locked.dedup();
    for channel in &locked {
        lock_channel(tx, channel).await?;
    }
    for (channel, amount) in &change.drop_vouchers {
        if voucher_in(tx, channel).await?.is_some_and(|v| v.amount == *amount) {
            tx.execute("DELETE FROM vouchers WHERE channel = $1", &[&channel.as_slice()])
                .await
                .map_err(pg_err)?;
        }
    }
    for channel in &change.refuse_vouchers {
        tx.execute("DELETE FROM vouchers WHERE channel = $1", &[&channel.as_slice()])
            .await
            .map_err(pg_err)?;
        tx.execute(
            "INSERT INTO refused_vouchers (channel) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&channel.as_slice()],
        )
        .await
        .map_err(pg_err)?;
    }
    for payer in &change.refuse_payers {
        tx.execute(
            "INSERT INTO refused_payers (payer) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&payer.as_slice()],
        )
        .await
        .map_err(pg_err)?;
    }
    for (name, value) in &change.meta {
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[name, &to_i64(name, *value)?],
        )
        .await
        .map_err(pg_err)?;
    }
    Ok(())
}

async fn put_vouchers_in(
    tx: &Transaction<'_>,
    vouchers: Vec<VoucherRecord>,
) -> Result<Vec<VoucherPut>, StoreError> {
    let mut channels: Vec<B256> = vouchers.iter().map(|v| v.channel).collect();
    channels.sort();
    channels.dedup();
    for channel in &channels {
        lock_channel(tx, channel).await?;
    }
    let mut puts = Vec::with_capacity(vouchers.len());
    for voucher in &vouchers {
        let channel = voucher.channel.as_slice();
        if let Some(now) = voucher.taken {
            tx.execute(
                "INSERT INTO channel_taken (channel, taken) VALUES ($1, $2) \
                 ON CONFLICT (channel) DO UPDATE SET taken = EXCLUDED.taken WHERE channel_taken.taken < EXCLUDED.taken",
                &[&channel, &now.to_be_bytes::<32>().as_slice()],
            )
            .await
            .map_err(pg_err)?;
        }
        let refused = tx
            .query_opt("SELECT 1 FROM refused_vouchers WHERE channel = $1", &[&channel])
            .await
            .map_err(pg_err)?
            .is_some();
        if refused {
            puts.push(VoucherPut::Refused);
            continue;
        }
        if let Some(mut current) = voucher_in(tx, &voucher.channel).await?
            && current.amount >= voucher.amount
        {
            if voucher.taken > current.taken {
                current.taken = voucher.taken;
                tx.execute(
                    "UPDATE vouchers SET record = $2 WHERE channel = $1",
                    &[&channel, &json(&current)],
                )
                .await
                .map_err(pg_err)?;
            }
            puts.push(VoucherPut::NotHigher);
            continue;
        }
        tx.execute(
            "INSERT INTO vouchers (channel, record) VALUES ($1, $2) ON CONFLICT (channel) DO UPDATE SET record = EXCLUDED.record",
            &[&channel, &json(voucher)],
        )
        .await
        .map_err(pg_err)?;
        tx.execute("INSERT INTO watched (channel) VALUES ($1) ON CONFLICT DO NOTHING", &[&channel])
            .await
            .map_err(pg_err)?;
        puts.push(VoucherPut::Stored);
    }
    Ok(puts)
}

async fn accept_in(
    tx: &Transaction<'_>,
    mut record: PaymentRecord,
    max_queued: u64,
    seen: BalanceSeen,
) -> Result<Accepted, StoreError> {
    let key = record.key.to_bytes();
    let payer = payer_key(&record.key);
    // The payer's totals row, locked, serializes its payments (the payment key holds the payer).
    let totals = totals_locked(tx, &payer).await?;
    if let Some(row) = tx
        .query_opt("SELECT record FROM payments WHERE key = $1", &[&key.as_slice()])
        .await
        .map_err(pg_err)?
    {
        let existing: PaymentRecord = decode("payments", &row, 0)?;
        return Ok(if existing.signature == record.signature {
            Accepted::Duplicate(Box::new(existing))
        } else {
            Accepted::NonceTaken
        });
    }
    let queued: i64 = tx
        .query_one("SELECT count(*) FROM payments WHERE status = 'queued'", &[])
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(pg_err)?;
    let queued = to_u64("payments", queued)?;
    if queued >= max_queued {
        return Ok(Accepted::QueueFull);
    }
    // What settled since the caller read `seen.settled` may or may not have left the balance it read later:
    // counted as gone.
    let balance = seen.balance.saturating_sub(totals.settled.saturating_sub(seen.settled));
    if totals.outstanding.saturating_add(record.value) > balance {
        return Ok(Accepted::OverBalance { outstanding: totals.outstanding, balance });
    }
    let seq: i64 = tx
        .query_one("SELECT nextval('payment_seq')", &[])
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(pg_err)?;
    record.seq = to_u64("payment_seq", seq)?;
    record.status = PaymentStatus::Queued;
    put_payment(tx, &record).await?;
    set_totals(
        tx,
        &payer,
        PayerTotals { outstanding: totals.outstanding.saturating_add(record.value), ..totals },
    )
    .await?;
    Ok(Accepted::Queued { record: Box::new(record), queued: queued + 1 })
}

fn params<'a>(values: &'a [&'a (dyn ToSql + Sync)]) -> &'a [&'a (dyn ToSql + Sync)] {
    values
}

impl Store for PgStore {
    fn bind_payment_id(&self, id: &str, fingerprint: B256, key: PaymentKey) -> Result<IdBinding, StoreError> {
        let id = id.to_owned();
        self.transact(Durability::Immediate, move |tx| {
            Box::pin(async move {
                let inserted = tx
                    .execute(
                        "INSERT INTO payment_ids (id, fingerprint, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        params(&[&id, &fingerprint.as_slice(), &key.to_bytes().as_slice()]),
                    )
                    .await
                    .map_err(pg_err)?;
                if inserted == 1 {
                    return Ok(IdBinding::Bound);
                }
                let row = tx
                    .query_one("SELECT fingerprint, key FROM payment_ids WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?;
                if b256_at("payment_ids", &row, 0)? != fingerprint {
                    return Ok(IdBinding::Conflict);
                }
                let bytes: &[u8] = row.try_get(1).map_err(pg_err)?;
                if bytes.len() != 72 {
                    return Err(corrupt("payment_ids", format!("key of {} bytes, not 72", bytes.len())));
                }
                Ok(IdBinding::Same(PaymentKey {
                    token: Address::from_slice(&bytes[..20]),
                    payer: Address::from_slice(&bytes[20..40]),
                    nonce: B256::from_slice(&bytes[40..]),
                }))
            })
        })
    }

    fn payment_id_fingerprint(&self, id: &str) -> Result<Option<B256>, StoreError> {
        let id = id.to_owned();
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT fingerprint FROM payment_ids WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| b256_at("payment_ids", &row, 0)).transpose()
            })
        })
    }

    fn accept_payment(
        &self,
        record: PaymentRecord,
        max_queued: u64,
        seen: BalanceSeen,
        durability: Durability,
    ) -> Result<Accepted, StoreError> {
        self.transact(durability, move |tx| Box::pin(accept_in(tx, record, max_queued, seen)))
    }

    fn payer_totals(&self, token: &Address, payer: &Address) -> Result<PayerTotals, StoreError> {
        let mut key = token.to_vec();
        key.extend_from_slice(payer.as_slice());
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT outstanding, settled FROM payer_totals WHERE payer = $1", &[&key])
                    .await
                    .map_err(pg_err)?;
                match row {
                    None => Ok(PayerTotals::default()),
                    Some(row) => Ok(PayerTotals {
                        outstanding: u256_at("payer_totals", &row, 0)?,
                        settled: u256_at("payer_totals", &row, 1)?,
                    }),
                }
            })
        })
    }

    fn payment(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        let key = key.to_bytes();
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT record FROM payments WHERE key = $1", &[&key.as_slice()])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| decode("payments", &row, 0)).transpose()
            })
        })
    }

    fn queued_payments(&self, limit: usize) -> Result<Vec<PaymentRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT record FROM payments WHERE status = 'queued' ORDER BY seq LIMIT $1",
                        &[&limit],
                    )
                    .await
                    .map_err(pg_err)?;
                rows.iter().map(|row| decode("payments", row, 0)).collect()
            })
        })
    }

    fn queued_count(&self) -> Result<u64, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_one("SELECT count(*) FROM payments WHERE status = 'queued'", &[])
                    .await
                    .map_err(pg_err)?;
                to_u64("payments", row.try_get(0).map_err(pg_err)?)
            })
        })
    }

    fn pending_txs(&self) -> Result<Vec<PendingTx>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let rows =
                    client.query("SELECT record FROM txs ORDER BY nonce", &[]).await.map_err(pg_err)?;
                rows.iter().map(|row| decode("txs", row, 0)).collect()
            })
        })
    }

    fn commit(&self, change: Change) -> Result<(), StoreError> {
        let (holder, token) = (self.lease.holder.clone(), self.lease.token.load(Ordering::SeqCst));
        self.transact(Durability::Immediate, move |tx| {
            Box::pin(async move { commit_change(tx, change, (&holder, token)).await })
        })
    }

    fn put_vouchers(&self, vouchers: &[VoucherRecord]) -> Result<Vec<VoucherPut>, StoreError> {
        let vouchers = vouchers.to_vec();
        self.transact(Durability::Immediate, move |tx| Box::pin(put_vouchers_in(tx, vouchers)))
    }

    fn payer_refused(&self, payer: &Address) -> Result<bool, StoreError> {
        let payer = *payer;
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT 1 FROM refused_payers WHERE payer = $1", &[&payer.as_slice()])
                    .await
                    .map_err(pg_err)?;
                Ok(row.is_some())
            })
        })
    }

    fn voucher(&self, channel: &B256) -> Result<Option<VoucherRecord>, StoreError> {
        let channel = *channel;
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT record FROM vouchers WHERE channel = $1", &[&channel.as_slice()])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| decode("vouchers", &row, 0)).transpose()
            })
        })
    }

    fn channel_taken(&self, channel: &B256) -> Result<Option<U256>, StoreError> {
        let channel = *channel;
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT taken FROM channel_taken WHERE channel = $1", &[&channel.as_slice()])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| u256_at("channel_taken", &row, 0)).transpose()
            })
        })
    }

    fn watched_channels(&self) -> Result<Vec<B256>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let rows = client
                    .query("SELECT channel FROM watched ORDER BY channel", &[])
                    .await
                    .map_err(pg_err)?;
                rows.iter().map(|row| b256_at("watched", row, 0)).collect()
            })
        })
    }

    fn executions(&self, subscription: U256) -> Result<Vec<ExecutionRecord>, StoreError> {
        let id = subscription.to_be_bytes::<32>();
        self.read(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT record FROM executions WHERE subscription = $1 ORDER BY block, idx",
                        &[&id.as_slice()],
                    )
                    .await
                    .map_err(pg_err)?;
                rows.iter().map(|row| decode("executions", row, 0)).collect()
            })
        })
    }

    fn meta(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let name = name.to_owned();
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT value FROM meta WHERE name = $1", &[&name])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| to_u64("meta", row.try_get(0).map_err(pg_err)?)).transpose()
            })
        })
    }

    fn genesis(&self) -> Result<Option<B256>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT value FROM chain WHERE name = 'genesis'", &[])
                    .await
                    .map_err(pg_err)?;
                row.map(|row| b256_at("chain", &row, 0)).transpose()
            })
        })
    }

    fn set_genesis(&self, genesis: B256) -> Result<(), StoreError> {
        self.transact(Durability::Immediate, move |tx| {
            Box::pin(async move {
                // The first instance records it; another one started on another chain is refused by the caller's
                // comparison with what is recorded.
                tx.execute(
                    "INSERT INTO chain (name, value) VALUES ('genesis', $1) ON CONFLICT DO NOTHING",
                    &[&genesis.as_slice()],
                )
                .await
                .map_err(pg_err)?;
                Ok(())
            })
        })
    }

    fn sender_lease(&self) -> Result<Option<u64>, StoreError> {
        let (pool, lease) = (self.pool.clone(), Arc::clone(&self.lease));
        let token = self.run(async move { Self::take_lease(&pool, &lease).await })?;
        if !self.lease.renewing.swap(true, Ordering::SeqCst) {
            let (pool, lease) = (self.pool.clone(), Arc::clone(&self.lease));
            self.handle.spawn(async move {
                let every = (lease.ttl / 3).max(Duration::from_millis(100));
                while lease.renewing.load(Ordering::SeqCst) {
                    tokio::time::sleep(every).await;
                    if let Err(err) = Self::take_lease(&pool, &lease).await {
                        lease.token.store(0, Ordering::SeqCst);
                        tracing::warn!(error = %err, "cannot renew the sender lease");
                    }
                }
            });
        }
        Ok(token)
    }

    fn shared(&self) -> bool {
        true
    }
}
