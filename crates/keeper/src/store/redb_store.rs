//! [`Store`] in an embedded [redb](https://docs.rs/redb) file: ACID transactions, one writer, a crash-safe
//! commit (fsync) per change. The file is locked by the process that opens it, so a second keeper on the same
//! file cannot open it ([`StoreError::Locked`]) and waits as a standby instead of sending conflicting
//! transactions.

use std::path::Path;

use alloy::primitives::{Address, B256, U256};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Accepted, BalanceSeen, Change, Durability, ExecutionRecord, IdBinding, PayerTotals, PaymentKey,
    PaymentRecord, PaymentStatus, PendingTx, Store, StoreError, VoucherPut, VoucherRecord, totals_delta,
};

/// Payment key (token, payer, nonce) -> [`PaymentRecord`] JSON.
const PAYMENTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("payments");
/// Acceptance sequence (u64 big-endian) -> payment key, for the Queued payments only.
const QUEUE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("queue");
/// Nonce -> [`PendingTx`] JSON.
const TXS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("txs");
/// Subscription id (32 bytes), block (8), index (4) -> [`ExecutionRecord`] JSON.
const EXECUTIONS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("executions");
/// Channel id -> [`VoucherRecord`] JSON.
const VOUCHERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("vouchers");
/// Channel id -> what a channel desk took on it (U256, big-endian): kept when the voucher is dropped, so a
/// restarted desk never takes an earlier voucher again.
const TAKEN: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("channel_taken");
/// Channels that take no more vouchers.
const REFUSED_VOUCHERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_vouchers");
/// Payers whose payments are refused.
const REFUSED_PAYERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_payers");
/// Channel id -> nothing.
const WATCHED: TableDefinition<'_, &[u8], ()> = TableDefinition::new("watched");
/// Counters.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Token (20 bytes) and payer (20) -> [`PayerTotals`]: the sum of its Queued and Submitted payments, then the sum
/// of its payments ever settled (two U256, big-endian).
const OUTSTANDING: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("payer_totals");

/// `payment-identifier` id -> the fingerprint of the request it came with (32 bytes) and its payment key (72).
const PAYMENT_IDS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("payment_ids");

/// Facts about the chain the database belongs to: `genesis` -> its block 0 hash.
const CHAIN: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("chain");

const NEXT_SEQ: &str = "next_seq";
/// Set once OUTSTANDING holds every payment (databases made before it existed are indexed when opened).
const OUTSTANDING_INDEXED: &str = "payer_totals_indexed";

/// Whether a payment in this status still counts against its payer's balance.
fn is_outstanding(status: PaymentStatus) -> bool {
    matches!(status, PaymentStatus::Queued | PaymentStatus::Submitted)
}

fn payer_key(key: &PaymentKey) -> [u8; 40] {
    let bytes = key.to_bytes();
    let mut out = [0u8; 40];
    out.copy_from_slice(&bytes[..40]);
    out
}

fn totals_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    payer: &[u8; 40],
) -> Result<PayerTotals, StoreError> {
    let Some(value) = table.get(payer.as_slice()).map_err(db_err)? else { return Ok(PayerTotals::default()) };
    let bytes = value.value();
    match bytes.len() {
        64 => Ok(PayerTotals {
            outstanding: U256::from_be_slice(&bytes[..32]),
            settled: U256::from_be_slice(&bytes[32..]),
        }),
        _ => Err(StoreError::Corrupt {
            table: "outstanding",
            message: format!("{} bytes, not 64", bytes.len()),
        }),
    }
}

/// Adds `add` to and takes `sub` from the payer's outstanding sum, and adds `settled` to its settled sum.
fn adjust_totals(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    payer: &[u8; 40],
    add: U256,
    sub: U256,
    settled: U256,
) -> Result<(), StoreError> {
    let totals = totals_in(table, payer)?;
    let mut value = [0u8; 64];
    value[..32]
        .copy_from_slice(&totals.outstanding.saturating_add(add).saturating_sub(sub).to_be_bytes::<32>());
    value[32..].copy_from_slice(&totals.settled.saturating_add(settled).to_be_bytes::<32>());
    table.insert(payer.as_slice(), value.as_slice()).map_err(db_err)?;
    Ok(())
}

/// The store in one database file.
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn db_err(err: impl std::fmt::Display) -> StoreError {
    StoreError::Database(err.to_string())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(db_err)
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt { table, message: err.to_string() })
}

/// The voucher registered for `channel` in `vouchers`.
fn voucher_in(
    vouchers: &impl ReadableTable<&'static [u8], &'static [u8]>,
    channel: &B256,
) -> Result<Option<VoucherRecord>, StoreError> {
    vouchers.get(channel.as_slice()).map_err(db_err)?.map(|v| decode("vouchers", v.value())).transpose()
}

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// What an operator can do about a database file that cannot be opened.
const RESTORE: &str = "restore it from a backup, or move it away to start with an empty database (the keeper then \
                       knows none of its earlier payments and transactions)";

/// Refuses an existing file that is not a redb database. redb would take a file without its header (empty, or
/// something else entirely) for a new database and overwrite it.
fn check_existing(path: &Path) -> Result<(), StoreError> {
    let unusable =
        |problem: String| StoreError::Unusable { path: path.display().to_string(), problem, remedy: RESTORE };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(unusable(format!("cannot be read ({err})"))),
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, REDB_MAGIC.len() as u64), &mut head)
        .map_err(|err| unusable(format!("cannot be read ({err})")))?;
    match head.len() {
        0 => Err(unusable("is empty (0 bytes), not a keeper database".into())),
        _ if head != REDB_MAGIC => Err(unusable("is not a keeper database (no redb header)".into())),
        _ => Ok(()),
    }
}

/// Serializes [`quietly`]'s swaps of the process-wide panic hook.
static PANIC_HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f`, catching a panic of its own without the panic hook printing it (other threads' panics meanwhile are
/// printed as usual), and restores the hook.
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> std::thread::Result<T> {
    let _swapping = PANIC_HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let forward = std::sync::Arc::clone(&previous);
    let this = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != this {
            forward(info);
        }
    }));
    let result = std::panic::catch_unwind(f);
    // Dropping the silencing hook leaves `previous` the only owner of the saved one.
    drop(std::panic::take_hook());
    match std::sync::Arc::try_unwrap(previous) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(shared) => std::panic::set_hook(Box::new(move |info| shared(info))),
    }
    result
}

/// `Database::create`, with redb's assertions on a damaged file (a truncated one fails an `assert!` while its
/// header is read) turned into an error instead of a panic and a stack trace.
fn create(path: &Path) -> Result<Database, StoreError> {
    let opened = quietly(|| Database::create(path));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            Err(StoreError::Locked(path.display().to_string()))
        }
        Ok(Err(err)) => Err(StoreError::Unusable {
            path: path.display().to_string(),
            problem: format!("cannot be opened ({err})"),
            remedy: RESTORE,
        }),
        Err(_) => Err(StoreError::Unusable {
            path: path.display().to_string(),
            problem: "is damaged (truncated or corrupt)".into(),
            remedy: RESTORE,
        }),
    }
}

impl RedbStore {
    /// Opens (or creates) the database at `path`. An existing file must be a whole redb database: an empty,
    /// foreign, truncated or corrupt one is an error naming the file, never a silent fresh start.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        check_existing(path)?;
        let db = create(path)?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(PAYMENTS).map_err(db_err)?;
        tx.open_table(QUEUE).map_err(db_err)?;
        tx.open_table(TXS).map_err(db_err)?;
        tx.open_table(EXECUTIONS).map_err(db_err)?;
        tx.open_table(VOUCHERS).map_err(db_err)?;
        tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
        tx.open_table(TAKEN).map_err(db_err)?;
        tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        tx.open_table(WATCHED).map_err(db_err)?;
        tx.open_table(META).map_err(db_err)?;
        tx.open_table(OUTSTANDING).map_err(db_err)?;
        tx.open_table(CHAIN).map_err(db_err)?;
        tx.open_table(PAYMENT_IDS).map_err(db_err)?;
        index_outstanding(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(Self { db })
    }

    fn write(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write_with(Durability::Immediate, body)
    }

    fn write_with(
        &self,
        durability: Durability,
        body: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        if durability == Durability::UntilSent {
            // Persisted by the next Immediate commit (redb keeps commit order), which every broadcast makes first.
            tx.set_durability(redb::Durability::None).map_err(db_err)?;
        }
        body(&tx)?;
        tx.commit().map_err(db_err)
    }
}

/// Fills OUTSTANDING (payer totals) from the payments of a database made before it existed.
fn index_outstanding(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META).map_err(db_err)?;
    if meta.get(OUTSTANDING_INDEXED).map_err(db_err)?.is_some() {
        return Ok(());
    }
    let payments = tx.open_table(PAYMENTS).map_err(db_err)?;
    let mut outstanding = tx.open_table(OUTSTANDING).map_err(db_err)?;
    for entry in payments.iter().map_err(db_err)? {
        let (_, value) = entry.map_err(db_err)?;
        let record: PaymentRecord = decode("payments", value.value())?;
        let open = if is_outstanding(record.status) { record.value } else { U256::ZERO };
        let settled = if record.status == PaymentStatus::Settled { record.value } else { U256::ZERO };
        if !(open.is_zero() && settled.is_zero()) {
            adjust_totals(&mut outstanding, &payer_key(&record.key), open, U256::ZERO, settled)?;
        }
    }
    meta.insert(OUTSTANDING_INDEXED, 1).map_err(db_err)?;
    Ok(())
}

fn execution_key(record: &ExecutionRecord) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..32].copy_from_slice(&record.subscription.to_be_bytes::<32>());
    key[32..40].copy_from_slice(&record.block.to_be_bytes());
    key[40..].copy_from_slice(&record.index.to_be_bytes());
    key
}

impl Store for RedbStore {
    fn bind_payment_id(&self, id: &str, fingerprint: B256, key: PaymentKey) -> Result<IdBinding, StoreError> {
        let mut binding = IdBinding::Bound;
        self.write(|tx| {
            let mut ids = tx.open_table(PAYMENT_IDS).map_err(db_err)?;
            if let Some(existing) = ids.get(id).map_err(db_err)? {
                let bytes = existing.value();
                if bytes.len() != 104 {
                    return Err(StoreError::Corrupt {
                        table: "payment_ids",
                        message: format!("{} bytes, not 104", bytes.len()),
                    });
                }
                binding = if bytes[..32] == fingerprint[..] {
                    IdBinding::Same(PaymentKey {
                        token: Address::from_slice(&bytes[32..52]),
                        payer: Address::from_slice(&bytes[52..72]),
                        nonce: B256::from_slice(&bytes[72..]),
                    })
                } else {
                    IdBinding::Conflict
                };
                return Ok(());
            }
            let mut value = [0u8; 104];
            value[..32].copy_from_slice(fingerprint.as_slice());
            value[32..].copy_from_slice(&key.to_bytes());
            ids.insert(id, value.as_slice()).map_err(db_err)?;
            Ok(())
        })?;
        Ok(binding)
    }

    fn accept_payment(
        &self,
        mut record: PaymentRecord,
        max_queued: u64,
        seen: BalanceSeen,
        durability: Durability,
    ) -> Result<Accepted, StoreError> {
        let mut outcome = Accepted::QueueFull;
        self.write_with(durability, |tx| {
            let key = record.key.to_bytes();
            let mut payments = tx.open_table(PAYMENTS).map_err(db_err)?;
            if let Some(existing) = payments.get(key.as_slice()).map_err(db_err)? {
                let existing: PaymentRecord = decode("payments", existing.value())?;
                outcome = if existing.signature == record.signature {
                    Accepted::Duplicate(Box::new(existing))
                } else {
                    Accepted::NonceTaken
                };
                return Ok(());
            }
            let mut queue = tx.open_table(QUEUE).map_err(db_err)?;
            let queued = queue.len().map_err(db_err)?;
            if queued >= max_queued {
                return Ok(());
            }
            let payer = payer_key(&record.key);
            let mut outstanding = tx.open_table(OUTSTANDING).map_err(db_err)?;
            let totals = totals_in(&outstanding, &payer)?;
            // What settled since the caller read `seen.settled` may or may not have left the balance it read later:
            // counted as gone.
            let balance = seen.balance.saturating_sub(totals.settled.saturating_sub(seen.settled));
            if totals.outstanding.saturating_add(record.value) > balance {
                outcome = Accepted::OverBalance { outstanding: totals.outstanding, balance };
                return Ok(());
            }
            adjust_totals(&mut outstanding, &payer, record.value, U256::ZERO, U256::ZERO)?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let seq = meta.get(NEXT_SEQ).map_err(db_err)?.map(|v| v.value()).unwrap_or(0);
            meta.insert(NEXT_SEQ, seq + 1).map_err(db_err)?;
            drop(meta);
            record.seq = seq;
            record.status = PaymentStatus::Queued;
            payments.insert(key.as_slice(), encode(&record)?.as_slice()).map_err(db_err)?;
            queue.insert(seq, key.as_slice()).map_err(db_err)?;
            outcome = Accepted::Queued { record: Box::new(record.clone()), queued: queued + 1 };
            Ok(())
        })?;
        Ok(outcome)
    }

    fn payer_totals(&self, token: &Address, payer: &Address) -> Result<PayerTotals, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(OUTSTANDING).map_err(db_err)?;
        let mut key = [0u8; 40];
        key[..20].copy_from_slice(token.as_slice());
        key[20..].copy_from_slice(payer.as_slice());
        totals_in(&table, &key)
    }

    fn payment_id_fingerprint(&self, id: &str) -> Result<Option<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let ids = tx.open_table(PAYMENT_IDS).map_err(db_err)?;
        let Some(bound) = ids.get(id).map_err(db_err)? else { return Ok(None) };
        let bytes = bound.value();
        match bytes.get(..32) {
            Some(fingerprint) if bytes.len() == 104 => Ok(Some(B256::from_slice(fingerprint))),
            _ => Err(StoreError::Corrupt {
                table: "payment_ids",
                message: format!("{} bytes, not 104", bytes.len()),
            }),
        }
    }

    fn payment(&self, key: &PaymentKey) -> Result<Option<PaymentRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let payments = tx.open_table(PAYMENTS).map_err(db_err)?;
        payments
            .get(key.to_bytes().as_slice())
            .map_err(db_err)?
            .map(|v| decode("payments", v.value()))
            .transpose()
    }

    fn queued_payments(&self, limit: usize) -> Result<Vec<PaymentRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let queue = tx.open_table(QUEUE).map_err(db_err)?;
        let payments = tx.open_table(PAYMENTS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in queue.iter().map_err(db_err)?.take(limit) {
            let (_, key) = entry.map_err(db_err)?;
            let record = payments.get(key.value()).map_err(db_err)?.ok_or_else(|| StoreError::Corrupt {
                table: "queue",
                message: "queued key has no payment".into(),
            })?;
            out.push(decode("payments", record.value())?);
        }
        Ok(out)
    }

    fn queued_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        tx.open_table(QUEUE).map_err(db_err)?.len().map_err(db_err)
    }

    fn pending_txs(&self) -> Result<Vec<PendingTx>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let txs = tx.open_table(TXS).map_err(db_err)?;
        txs.iter()
            .map_err(db_err)?
            .map(|entry| {
                let (_, value) = entry.map_err(db_err)?;
                decode("txs", value.value())
            })
            .collect()
    }

    fn commit(&self, change: Change) -> Result<(), StoreError> {
        self.write(|tx| {
            {
                let mut payments = tx.open_table(PAYMENTS).map_err(db_err)?;
                let mut queue = tx.open_table(QUEUE).map_err(db_err)?;
                let mut outstanding = tx.open_table(OUTSTANDING).map_err(db_err)?;
                for record in &change.payments {
                    let key = record.key.to_bytes();
                    let previous: Option<PaymentRecord> = payments
                        .get(key.as_slice())
                        .map_err(db_err)?
                        .map(|v| decode("payments", v.value()))
                        .transpose()?;
                    if let Some((add, sub, settled)) = totals_delta(previous.as_ref(), record) {
                        adjust_totals(&mut outstanding, &payer_key(&record.key), add, sub, settled)?;
                    }
                    if let Some(previous) = previous.filter(|p| p.status == PaymentStatus::Queued) {
                        queue.remove(previous.seq).map_err(db_err)?;
                    }
                    if record.status == PaymentStatus::Queued {
                        queue.insert(record.seq, key.as_slice()).map_err(db_err)?;
                    }
                    payments.insert(key.as_slice(), encode(record)?.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut txs = tx.open_table(TXS).map_err(db_err)?;
                if let Some(nonce) = change.remove_tx {
                    txs.remove(nonce).map_err(db_err)?;
                }
                if let Some(pending) = &change.put_tx {
                    txs.insert(pending.nonce, encode(pending)?.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut executions = tx.open_table(EXECUTIONS).map_err(db_err)?;
                for record in &change.executions {
                    executions
                        .insert(execution_key(record).as_slice(), encode(record)?.as_slice())
                        .map_err(db_err)?;
                }
            }
            {
                let mut watched = tx.open_table(WATCHED).map_err(db_err)?;
                for channel in &change.watch {
                    watched.insert(channel.as_slice(), ()).map_err(db_err)?;
                }
                for channel in &change.unwatch {
                    watched.remove(channel.as_slice()).map_err(db_err)?;
                }
            }
            {
                let mut vouchers = tx.open_table(VOUCHERS).map_err(db_err)?;
                let mut refused = tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
                for (channel, amount) in &change.drop_vouchers {
                    if voucher_in(&vouchers, channel)?.is_some_and(|c| c.amount == *amount) {
                        vouchers.remove(channel.as_slice()).map_err(db_err)?;
                    }
                }
                for channel in &change.refuse_vouchers {
                    vouchers.remove(channel.as_slice()).map_err(db_err)?;
                    refused.insert(channel.as_slice(), ()).map_err(db_err)?;
                }
            }
            {
                let mut refused = tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
                for payer in &change.refuse_payers {
                    refused.insert(payer.as_slice(), ()).map_err(db_err)?;
                }
            }
            let mut meta = tx.open_table(META).map_err(db_err)?;
            for (name, value) in &change.meta {
                meta.insert(*name, *value).map_err(db_err)?;
            }
            Ok(())
        })
    }

    fn put_vouchers(&self, vouchers: &[VoucherRecord]) -> Result<Vec<VoucherPut>, StoreError> {
        let mut puts = Vec::with_capacity(vouchers.len());
        self.write(|tx| {
            let refused = tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
            let mut stored = tx.open_table(VOUCHERS).map_err(db_err)?;
            let mut watched = tx.open_table(WATCHED).map_err(db_err)?;
            let mut taken = tx.open_table(TAKEN).map_err(db_err)?;
            for voucher in vouchers {
                if let Some(now) = voucher.taken {
                    let before = taken
                        .get(voucher.channel.as_slice())
                        .map_err(db_err)?
                        .map(|v| U256::from_be_slice(v.value()));
                    if before.is_none_or(|before| now > before) {
                        taken
                            .insert(voucher.channel.as_slice(), now.to_be_bytes::<32>().as_slice())
                            .map_err(db_err)?;
                    }
                }
                if refused.get(voucher.channel.as_slice()).map_err(db_err)?.is_some() {
                    puts.push(VoucherPut::Refused);
                    continue;
                }
                if let Some(mut current) = voucher_in(&stored, &voucher.channel)?
                    && current.amount >= voucher.amount
                {
                    if voucher.taken > current.taken {
                        current.taken = voucher.taken;
                        stored
                            .insert(voucher.channel.as_slice(), encode(&current)?.as_slice())
                            .map_err(db_err)?;
                    }
                    puts.push(VoucherPut::NotHigher);
                    continue;
                }
                stored.insert(voucher.channel.as_slice(), encode(voucher)?.as_slice()).map_err(db_err)?;
                watched.insert(voucher.channel.as_slice(), ()).map_err(db_err)?;
                puts.push(VoucherPut::Stored);
            }
            Ok(())
        })?;
        Ok(puts)
    }

    fn payer_refused(&self, payer: &Address) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let refused = tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        Ok(refused.get(payer.as_slice()).map_err(db_err)?.is_some())
    }

    fn channel_taken(&self, channel: &B256) -> Result<Option<U256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let taken = tx.open_table(TAKEN).map_err(db_err)?;
        Ok(taken.get(channel.as_slice()).map_err(db_err)?.map(|v| U256::from_be_slice(v.value())))
    }

    fn voucher(&self, channel: &B256) -> Result<Option<VoucherRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        voucher_in(&tx.open_table(VOUCHERS).map_err(db_err)?, channel)
    }

    fn watched_channels(&self) -> Result<Vec<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let watched = tx.open_table(WATCHED).map_err(db_err)?;
        watched
            .iter()
            .map_err(db_err)?
            .map(|entry| {
                let (key, _) = entry.map_err(db_err)?;
                B256::try_from(key.value()).map_err(|_| StoreError::Corrupt {
                    table: "watched",
                    message: "key is not 32 bytes".into(),
                })
            })
            .collect()
    }

    fn executions(&self, subscription: U256) -> Result<Vec<ExecutionRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let executions = tx.open_table(EXECUTIONS).map_err(db_err)?;
        let start = subscription.to_be_bytes::<32>();
        let mut end = [0xffu8; 44];
        end[..32].copy_from_slice(&start);
        executions
            .range(start.as_slice()..=end.as_slice())
            .map_err(db_err)?
            .map(|entry| {
                let (_, value) = entry.map_err(db_err)?;
                decode("executions", value.value())
            })
            .collect()
    }

    fn meta(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let meta = tx.open_table(META).map_err(db_err)?;
        Ok(meta.get(name).map_err(db_err)?.map(|v| v.value()))
    }

    fn genesis(&self) -> Result<Option<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let chain = tx.open_table(CHAIN).map_err(db_err)?;
        let value = chain.get("genesis").map_err(db_err)?;
        value
            .map(|v| {
                B256::try_from(v.value()).map_err(|_| StoreError::Corrupt {
                    table: "chain",
                    message: "genesis is not 32 bytes".into(),
                })
            })
            .transpose()
    }

    fn set_genesis(&self, genesis: B256) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut chain = tx.open_table(CHAIN).map_err(db_err)?;
            chain.insert("genesis", genesis.as_slice()).map_err(db_err)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_foreign_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keeper.redb");
        for (content, problem) in
            [(&b""[..], "is empty (0 bytes)"), (&b"{\"not\": \"redb\"}"[..], "no redb header")]
        {
            std::fs::write(&path, content).unwrap();
            let err = RedbStore::open(&path).err().unwrap();
            assert!(matches!(err, StoreError::Unusable { .. }), "{err}");
            assert!(err.to_string().contains(problem), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), content, "not overwritten");
        }
        std::fs::remove_file(&path).unwrap();
        assert!(RedbStore::open(&path).is_ok(), "a missing file is a new database");
    }

    #[test]
    fn a_payment_accepted_until_sent_is_on_disk_after_the_next_durable_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keeper.redb");
        let store = RedbStore::open(&path).unwrap();
        let record = payment(7, 1000);
        let seen = BalanceSeen { balance: U256::from(5000), settled: U256::ZERO };
        let accepted = store.accept_payment(record.clone(), 10, seen, Durability::UntilSent).unwrap();
        assert!(matches!(accepted, Accepted::Queued { .. }));
        assert_eq!(store.payment(&record.key).unwrap().map(|r| r.status), Some(PaymentStatus::Queued));
        // What a batch's submit commits before its broadcast (durably) takes the payment along.
        store.commit(Change::default()).unwrap();
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.payment(&record.key).unwrap().map(|r| r.status), Some(PaymentStatus::Queued));
        assert_eq!(store.queued_count().unwrap(), 1);
    }

    fn payment(nonce: u8, value: u64) -> PaymentRecord {
        PaymentRecord {
            key: PaymentKey {
                token: Address::repeat_byte(1),
                payer: Address::repeat_byte(2),
                nonce: B256::repeat_byte(nonce),
            },
            to: Address::repeat_byte(3),
            value: U256::from(value),
            valid_after: U256::ZERO,
            valid_before: U256::MAX,
            signature: Default::default(),
            status: PaymentStatus::Queued,
            tx_hash: None,
            block: None,
            reason: None,
            seq: 0,
            attempts: 0,
            wallet: false,
        }
    }
}
