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
    Accepted, Change, ExecutionRecord, PaymentKey, PaymentRecord, PaymentStatus, PendingTx, Store,
    StoreError, VoucherPut, VoucherRecord,
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
/// Channels that take no more vouchers.
const REFUSED_VOUCHERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_vouchers");
/// Payers whose payments are refused.
const REFUSED_PAYERS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("refused_payers");
/// Channel id -> nothing.
const WATCHED: TableDefinition<'_, &[u8], ()> = TableDefinition::new("watched");
/// Counters.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Token (20 bytes) and payer (20) -> the sum of its Queued and Submitted payments (U256, big-endian).
const OUTSTANDING: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("outstanding");

/// Facts about the chain the database belongs to: `genesis` -> its block 0 hash.
const CHAIN: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("chain");

const NEXT_SEQ: &str = "next_seq";
/// Set once OUTSTANDING holds every payment (databases made before it existed are indexed when opened).
const OUTSTANDING_INDEXED: &str = "outstanding_indexed";

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

fn outstanding_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    payer: &[u8; 40],
) -> Result<U256, StoreError> {
    let value = table.get(payer.as_slice()).map_err(db_err)?;
    Ok(value.map(|v| U256::from_be_slice(v.value())).unwrap_or_default())
}

/// Adds `add` to and takes `sub` from the payer's outstanding sum.
fn adjust_outstanding(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    payer: &[u8; 40],
    add: U256,
    sub: U256,
) -> Result<(), StoreError> {
    let total = outstanding_in(table, payer)?.saturating_add(add).saturating_sub(sub);
    if total.is_zero() {
        table.remove(payer.as_slice()).map_err(db_err)?;
    } else {
        table.insert(payer.as_slice(), total.to_be_bytes::<32>().as_slice()).map_err(db_err)?;
    }
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

/// `Database::create`, with redb's assertions on a damaged file (a truncated one fails an `assert!` while its
/// header is read) turned into an error instead of a panic and a stack trace.
fn create(path: &Path) -> Result<Database, StoreError> {
    let hook = std::panic::take_hook();
    // Silenced only while redb reads the header, before the keeper starts any other work.
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| Database::create(path));
    std::panic::set_hook(hook);
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
        tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        tx.open_table(WATCHED).map_err(db_err)?;
        tx.open_table(META).map_err(db_err)?;
        tx.open_table(OUTSTANDING).map_err(db_err)?;
        tx.open_table(CHAIN).map_err(db_err)?;
        index_outstanding(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(Self { db })
    }

    fn write(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        body(&tx)?;
        tx.commit().map_err(db_err)
    }
}

/// Fills OUTSTANDING from the payments of a database made before it existed.
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
        if is_outstanding(record.status) {
            adjust_outstanding(&mut outstanding, &payer_key(&record.key), record.value, U256::ZERO)?;
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
    fn accept_payment(
        &self,
        mut record: PaymentRecord,
        max_queued: u64,
        balance: U256,
    ) -> Result<Accepted, StoreError> {
        let mut outcome = Accepted::QueueFull;
        self.write(|tx| {
            let key = record.key.to_bytes();
            let mut payments = tx.open_table(PAYMENTS).map_err(db_err)?;
            if let Some(existing) = payments.get(key.as_slice()).map_err(db_err)? {
                outcome = Accepted::Duplicate(Box::new(decode("payments", existing.value())?));
                return Ok(());
            }
            let mut queue = tx.open_table(QUEUE).map_err(db_err)?;
            let queued = queue.len().map_err(db_err)?;
            if queued >= max_queued {
                return Ok(());
            }
            let payer = payer_key(&record.key);
            let mut outstanding = tx.open_table(OUTSTANDING).map_err(db_err)?;
            let before = outstanding_in(&outstanding, &payer)?;
            if before.saturating_add(record.value) > balance {
                outcome = Accepted::OverBalance { outstanding: before };
                return Ok(());
            }
            adjust_outstanding(&mut outstanding, &payer, record.value, U256::ZERO)?;
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

    fn outstanding(&self, token: &Address, payer: &Address) -> Result<U256, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(OUTSTANDING).map_err(db_err)?;
        let mut key = [0u8; 40];
        key[..20].copy_from_slice(token.as_slice());
        key[20..].copy_from_slice(payer.as_slice());
        outstanding_in(&table, &key)
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
                    let was = previous.as_ref().filter(|p| is_outstanding(p.status)).map(|p| p.value);
                    let is = is_outstanding(record.status).then_some(record.value);
                    if was != is {
                        let (add, sub) = (is.unwrap_or_default(), was.unwrap_or_default());
                        adjust_outstanding(&mut outstanding, &payer_key(&record.key), add, sub)?;
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

    fn put_voucher(&self, voucher: &VoucherRecord) -> Result<VoucherPut, StoreError> {
        let mut put = VoucherPut::Stored;
        self.write(|tx| {
            let refused = tx.open_table(REFUSED_VOUCHERS).map_err(db_err)?;
            if refused.get(voucher.channel.as_slice()).map_err(db_err)?.is_some() {
                put = VoucherPut::Refused;
                return Ok(());
            }
            let mut vouchers = tx.open_table(VOUCHERS).map_err(db_err)?;
            if voucher_in(&vouchers, &voucher.channel)?.is_some_and(|c| c.amount >= voucher.amount) {
                put = VoucherPut::NotHigher;
                return Ok(());
            }
            vouchers.insert(voucher.channel.as_slice(), encode(voucher)?.as_slice()).map_err(db_err)?;
            let mut watched = tx.open_table(WATCHED).map_err(db_err)?;
            watched.insert(voucher.channel.as_slice(), ()).map_err(db_err)?;
            Ok(())
        })?;
        Ok(put)
    }

    fn payer_refused(&self, payer: &Address) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let refused = tx.open_table(REFUSED_PAYERS).map_err(db_err)?;
        Ok(refused.get(payer.as_slice()).map_err(db_err)?.is_some())
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
}
